"""Shared test helpers."""

import os

import pytest


def require_docker():
    """A Docker client, or a skip on a machine without an engine. CI has one, so there a
    missing engine fails the run instead of skipping the tests."""
    from ise_dagster.sandbox import docker_client

    try:
        return docker_client()
    except Exception as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no Docker engine: {exc}")
