"""Shared test helpers (the LLM benchmark uses `local_llm_resource` too)."""

import os
from pathlib import Path

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


def local_llm_resource(base_url: str, cache_dir: Path, model: str = "gemma3-270m", **overrides):
    """Settings for the local server: json_object + schema, a named first tool, short
    answers so a call stays within seconds."""
    from ise_dagster.resources import LLMResource

    # Greedy: the server ignores seed under this chat format, so only temperature 0 repeats.
    short = dict(model=model, max_tokens=96, seed=0, temperature=0)
    settings = dict(
        backend="openai",
        base_url=base_url,
        api_key="local",
        structured_output="json_object",
        force_first_tool="exec",
        max_agent_steps=2,
        max_concurrency=2,
        cache_dir=str(cache_dir),
        writer=short,
        user=short,
        agent={**short, "max_tokens": 128},
    )
    return LLMResource(**{**settings, **overrides})
