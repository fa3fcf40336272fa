"""Run recipes in a sandbox workspace: seed fixtures, drive playbooks, verify."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from ise_dagster.sandbox import SandboxInfraError, ToolResult, Workspace
from ise_dagster.tasklib.base import Call, Ctx, Fixture, Playbook, Reply, TaskRecipe

VERIFY_TIMEOUT_S = 60.0


class FixtureError(RuntimeError):
    """A task's fixture could not be built; the message names the task and the command."""


def build_fixture(recipe: TaskRecipe, seed: int) -> tuple[Fixture, dict[str, Any]]:
    return recipe.fixture(random.Random(seed))


def seed_task(ws: Workspace, recipe: TaskRecipe, seed: int) -> Ctx:
    """Write the task's files under /workspace/<task id>/ and run its setup commands."""
    fixture, facts = build_fixture(recipe, seed)
    task_dir = recipe.task_id
    try:
        ws.seed_files({f"{task_dir}/{path}": data for path, data in fixture.files.items()})
    except SandboxInfraError:
        raise
    except Exception as e:
        raise FixtureError(f"{recipe.task_id}: seeding files failed: {e}") from e
    for cmd in fixture.setup:
        result = ws.call("exec", {"cmd": cmd, "cwd": task_dir})
        if result.is_infra_error:  # the sandbox's fault, not the fixture's: retry elsewhere
            raise SandboxInfraError(
                f"{recipe.task_id}: sandbox failed during setup: {result.error}"
            )
        if not result.ok:
            raise FixtureError(
                f"{recipe.task_id}: setup command failed (exit {result.exit_code}): {cmd!r}: "
                f"{(result.stderr or result.error or '').strip()[:500]}"
            )
    return Ctx(task_dir=task_dir, facts=facts)


def bind(call: Call, task_dir: str) -> Call:
    """Point a call at the task's directory: cwd for commands, a prefix for file paths."""
    args = dict(call.args)
    if call.tool in ("exec", "apply_patch") or (
        call.tool == "process" and args.get("action") == "start"
    ):
        args.setdefault("cwd", task_dir)
    elif call.tool in ("read", "write", "edit") and "path" in args:
        args["path"] = f"{task_dir}/{args['path']}"
    return replace(call, args=args)


@dataclass
class Event:
    """One thing a playbook did: a batch of tool calls with their results, or a reply."""

    calls: list[Call]
    results: list[ToolResult]
    reply: str | None = None


def drive(playbook: Playbook, ws: Workspace, task_dir: str) -> Iterator[Event]:
    """Run a playbook against a live workspace, feeding each call its real result."""
    observation: Any = None
    while True:
        try:
            step = playbook.send(observation)
        except StopIteration:
            return
        if isinstance(step, Reply):
            observation = None
            yield Event([], [], reply=step.text)
            continue
        calls = [bind(c, task_dir) for c in (step if isinstance(step, list) else [step])]
        results = [ws.call(c.tool, c.args) for c in calls]
        if any(r.is_infra_error for r in results):
            yield Event(calls, results)
            return
        observation = results if isinstance(step, list) else results[0]
        yield Event(calls, results)


def verify(ws: Workspace, recipe: TaskRecipe) -> tuple[bool, str]:
    """Run the task's verifier in its directory: (passed, reason)."""
    try:
        result = ws.verify(recipe.verify, cwd=recipe.task_id, timeout_s=VERIFY_TIMEOUT_S)
    except SandboxInfraError as exc:
        raise SandboxInfraError(f"{recipe.task_id}: sandbox failed while verifying: {exc}") from exc
    reason = (result.stdout + result.stderr).strip()[-500:]
    return result.ok and result.exit_code == 0, reason
