"""`ise sandbox ...` commands."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys

import click

from ise_dagster.sandbox.cleanup import DEFAULT_LABEL, sweep
from ise_dagster.sandbox.image import ensure_image
from ise_dagster.sandbox.resource import SandboxResource, docker_client
from ise_dagster.sandbox.result import SandboxInfraError
from ise_dagster.sandbox.workspace import AGENT_ENV, AGENT_USER


def _err(message: str) -> None:
    click.echo(message, err=True)


@click.group(name="sandbox")
def sandbox_group() -> None:
    """Build the workspace image and run commands in hardened workspaces."""


@sandbox_group.command("build-image")
@click.option("--base-image", default=None, help="Use this LOCAL base instead of debootstrap.")
def build_image(base_image: str | None) -> None:
    """Build the workspace image offline if it is missing; print its tag."""
    try:
        click.echo(ensure_image(docker_client(), _err, base_image))
    except SandboxInfraError as exc:
        raise click.ClickException(str(exc)) from exc


@sandbox_group.command("exec", context_settings={"ignore_unknown_options": True})
@click.option("--timeout", "timeout_s", type=float, default=30.0, show_default=True)
@click.option("--login", is_flag=True, help="Run under `bash -lc` instead of `bash -c`.")
@click.argument("cmd", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_cmd(timeout_s: float, login: bool, cmd: tuple[str, ...]) -> None:
    """Run CMD in a fresh hardened workspace and print the JSON result.

    One argument is passed to bash as is (`-- 'ls | wc -l'`); several are shell-quoted.
    Exit status: 0 ok, 1 the command failed, 2 the sandbox failed.
    """
    command = cmd[0] if len(cmd) == 1 else shlex.join(cmd)
    try:
        with SandboxResource(timeout_s=timeout_s).workspace() as ws:
            res = ws.call("exec", {"cmd": command, "timeout_s": timeout_s, "login": login})
    except SandboxInfraError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(res.to_dict(), indent=2))
    sys.exit(0 if res.ok else 2 if res.is_infra_error else 1)


@sandbox_group.command("shell")
def shell() -> None:
    """Interactive bash in a fresh hardened workspace (removed when you exit)."""
    docker_cli = shutil.which("docker")
    if docker_cli is None:
        raise click.ClickException("`ise sandbox shell` needs the docker CLI on PATH")
    try:
        with SandboxResource().workspace() as ws:
            _err(f"[sandbox] container {ws.container_id[:12]}; exit the shell to remove it")
            env = [f"--env={k}={v}" for k, v in AGENT_ENV.items()]
            tty = ["-it"] if sys.stdin.isatty() else ["-i"]
            argv = [docker_cli, "exec", *tty, "-u", AGENT_USER, "-w", "/workspace", *env]
            subprocess.run([*argv, ws.container_id, "bash", "-l"], check=False)
    except SandboxInfraError as exc:
        raise click.ClickException(str(exc)) from exc


@sandbox_group.command("sweep")
@click.option("--all", "everything", is_flag=True, help="Also containers of live processes.")
@click.option("--label", default=DEFAULT_LABEL, show_default=True)
def sweep_cmd(everything: bool, label: str) -> None:
    """Remove leftover workspace containers (by default only those whose owner is gone)."""
    try:
        removed = sweep(docker_client(), label, everything=everything)
    except SandboxInfraError as exc:
        raise click.ClickException(str(exc)) from exc
    names = ": " + ", ".join(removed) if removed else ""
    click.echo(f"removed {len(removed)} container(s){names}")
