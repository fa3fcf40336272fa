"""`ise sandbox ...` commands."""

import click


@click.group(name="sandbox")
def sandbox_group() -> None:
    """Build the workspace image and run commands in hardened workspaces."""
