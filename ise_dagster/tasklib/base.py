"""What a task recipe is made of.

A recipe turns one taxonomy task into something that really runs:
- `fixture(rng)` builds the task's starting files (and optional setup commands, e.g.
  `git init`), deterministically from the rng;
- `playbook(ctx)` is a generator that yields tool calls, receives their real results, and
  reacts to them: explore, act, hit a realistic failure, recover, verify. It yields `Reply`
  to end an agent turn with a text answer built from what it observed;
- `verify` is Python source run with python3 in the task directory at the end; exit status 0
  means the task was really done, and whatever it prints is the reason.

Each task lives in its own directory, `/workspace/<task id>/`, so several tasks of one
intent share a workspace without colliding. Tool calls run with that directory as `cwd`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from ise_dagster.sandbox import ToolResult


@dataclass(frozen=True)
class Fixture:
    files: dict[str, str | bytes]
    setup: tuple[str, ...] = ()  # shell commands run in the task dir after seeding


@dataclass(frozen=True)
class Call:
    """One tool call the agent makes; `say` is the assistant's short narration."""

    tool: str
    args: dict[str, Any]
    say: str = ""


@dataclass(frozen=True)
class Reply:
    """Ends the agent's turn with a text answer to the user."""

    text: str


Step = Call | list[Call] | Reply
Observation = ToolResult | list[ToolResult] | None
Playbook = Generator[Step, Observation, None]


@dataclass
class Ctx:
    """What a playbook knows: its task dir and the fixture's facts (e.g. expected values)."""

    task_dir: str
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskRecipe:
    task_id: str
    fixture: Callable[[random.Random], tuple[Fixture, dict[str, Any]]]
    playbook: Callable[[Ctx], Playbook]
    verify: str
    failure_mode: str  # the realistic mistake the playbook makes and recovers from


WORKSPACE = "/workspace/"


def task_of(
    args: dict[str, Any], task_ids: list[str], jobs: dict[str, str] | None = None
) -> str | None:
    """The task a call worked on (each task has its own directory): the one its cwd or path
    names, relative or under /workspace; else the background job's; else the single task
    directory its command or patch mentions (what LLM agents send: `cd /workspace/t && ...`)."""
    for where in (args.get("cwd"), args.get("path")):
        if isinstance(where, str) and where:
            head = where.removeprefix(WORKSPACE).removeprefix("./").split("/", 1)[0]
            if head in task_ids:
                return head
    if jobs and str(args.get("job")) in jobs:
        return jobs[str(args["job"])]
    text = " ".join(str(args.get(k) or "") for k in ("cmd", "patch", "cwd", "path"))
    mentioned = {t for t in task_ids if re.search(rf"(?<![\w.-]){re.escape(t)}(?![\w.-])", text)}
    return mentioned.pop() if len(mentioned) == 1 else None
