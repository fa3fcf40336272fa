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
