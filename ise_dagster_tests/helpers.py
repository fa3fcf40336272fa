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


def start_or_skip(server):
    """Start a LocalServer, or skip when it cannot be installed or started here. CI must
    have it, so there the failure is raised instead."""
    try:
        return server.start()
    except Exception as exc:
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            raise
        pytest.skip(f"no local model server: {exc}")
