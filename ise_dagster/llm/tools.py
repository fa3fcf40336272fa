"""The agent's tools as OpenAI function schemas: what a trajectory's `tools` field holds."""

from __future__ import annotations

from typing import Any


def _fn(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


_STR, _INT, _NUM = {"type": "string"}, {"type": "integer"}, {"type": "number"}

TOOL_SCHEMAS: list[dict[str, Any]] = [
    _fn("exec", "Run a bash command in the workspace.",
        {"cmd": _STR, "cwd": _STR, "timeout_s": _NUM, "stdin": _STR}, ["cmd"]),
    _fn("read", "Read a text file, or a range of its lines.",
        {"path": _STR, "start_line": _INT, "end_line": _INT}, ["path"]),
    _fn("write", "Create or overwrite a file.",
        {"path": _STR, "content": _STR, "append": {"type": "boolean"}}, ["path", "content"]),
    _fn("edit", "Replace one exact, unique string in a file.",
        {"path": _STR, "old": _STR, "new": _STR}, ["path", "old", "new"]),
    _fn("apply_patch", "Apply a unified diff.", {"patch": _STR, "cwd": _STR}, ["patch"]),
    _fn("process", "Start, poll, read the output of, or kill a background job.",
        {"action": {"type": "string", "enum": ["start", "poll", "read", "kill", "list"]},
         "cmd": _STR, "cwd": _STR, "job": _STR}, ["action"]),
]  # fmt: skip

TOOL_NAMES = frozenset(t["function"]["name"] for t in TOOL_SCHEMAS)
