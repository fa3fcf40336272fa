"""Degenerate dialogues, caught while they happen: real models produce them and a trainer
must never see one labelled `completed`. Each ends the dialogue with its own status.

- premature_completion: the user declared the work done before any tool call ran, or before
  a task of the intent was worked on at all;
- user_refused: the user simulator refused its role ("I'm sorry, but I can't ...");
- repeated_failing_call: the agent sent the same failing call REPEAT_LIMIT times;
- malformed_answer: the agent's final answer is a tool call written as text
  (`functions.read:`, `<tool_call>`, raw call JSON), not an answer.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from ise_dagster.llm.offline_writer import REPEATED_PHRASE
from ise_dagster.llm.tools import calls_in_text, unfence
from ise_dagster.tasklib.base import task_of

DEGENERATE_STATUSES = (
    "premature_completion",
    "user_refused",
    "repeated_failing_call",
    "malformed_answer",
)
REPEAT_LIMIT = 3

# The agent's side in a user message: reports of work done, tool output, code fences, or an
# assistant's stock phrases.
_DRIFT = re.compile(
    r"^\s*(I ran|I've (run|updated|fixed|written|created)|Here is what I did|Checked:|"
    r"Done[.:]|Exit code:?\s*-?\d+|Traceback)|```|\[exit \d+\]|"
    r"\bhow (can|may) I (help|assist) you\b|\bis there anything else I can\b|"
    r"\bI('d| would) be (happy|glad) to help\b",
    re.I | re.M,
)
# Whole-message refusals only, never a persona's "as an AI engineer" or "I can't find ...".
_REFUSAL = re.compile(
    r"\A\W*(?:(?:I'?m|I am) (?:sorry|afraid),? (?:but )?)?"
    r"I (?:can(?:no|')?t|am unable to|'m unable to|won'?t) (?:help|assist|comply|participate|"
    r"engage|fulfil|(?:complete|continue) (?:this|that|the) (?:conversation|request|role))|"
    r"\bas an AI(?: language model| model| assistant|,)|"
    r"\bI(?:'m| am) (?:just )?an? (?:AI(?: language)? model|AI assistant|language model|AI[,.])",
    re.I,
)
_CALL_TEXT = re.compile(
    r"^\s*(functions\.[\w-]+\s*:?|<\|?tool_call\|?>|\[TOOL_CALLS\]|<function[=>])", re.I
)


class Degenerate(Exception):
    """Raised where a dialogue turns degenerate; `status` is its label."""

    def __init__(self, status: str, reason: str) -> None:
        assert status in DEGENERATE_STATUSES, status
        super().__init__(reason)
        self.status = status


def detect_role_drift(query: str) -> bool:
    """True when a user message reads like the agent's side: reports of work done, tool
    output, code fences, an assistant's offer of help, or a refusal. The role-locked user
    delegates; it never does the work, and never answers as the assistant."""
    return bool(_DRIFT.search(query.replace("\u2019", "'"))) or is_refusal(query)


def is_refusal(query: str) -> bool:
    """True when the user simulator refuses to play (a safety reflex of small models)."""
    return bool(_REFUSAL.search(query.replace("\u2019", "'")))  # models write ’ too


def detect_stutter(query: str) -> bool:
    """True when a user message repeats a phrase back to back, a template seam."""
    return bool(REPEATED_PHRASE.search(query))


def is_call_as_text(reply: str) -> bool:
    """True when a final answer is a tool call in text form rather than an answer, fenced
    in a code block or not."""
    return bool(_CALL_TEXT.match(unfence(reply))) or bool(calls_in_text(reply))


def unworked_tasks(call_args: Iterable[dict[str, Any]], task_ids: list[str]) -> list[str]:
    """Tasks of the intent that no tool call worked in. Empty when any call cannot be placed
    in a task: that call may have been the missing task's work."""
    seen = set()
    for args in call_args:
        task = task_of(args, task_ids)
        if task is None:
            return []
        seen.add(task)
    return [t for t in task_ids if t not in seen]


class RepeatedFailures:
    """Counts identical failing calls (same tool, same arguments) across a dialogue."""

    def __init__(self, limit: int = REPEAT_LIMIT) -> None:
        self.limit = limit
        self._failed: Counter[tuple[str, str]] = Counter()

    def record(self, tool: str, arguments: str, ok: bool) -> str | None:
        """The reason to stop, once the same failing call reaches the limit."""
        if ok:
            return None
        key = (tool, arguments)
        self._failed[key] += 1
        if self._failed[key] < self.limit:
            return None
        shown = arguments if len(arguments) <= 200 else arguments[:197] + "..."
        return f"{tool} {shown} failed {self._failed[key]} times"
