"""Short constructors for playbook tool calls, named after the sandbox tools."""

from __future__ import annotations

from ise_dagster.tasklib.base import Call


def sh(cmd: str, say: str = "", timeout_s: float | None = None) -> Call:
    args: dict = {"cmd": cmd}
    if timeout_s is not None:
        args["timeout_s"] = timeout_s
    return Call("exec", args, say)


def read(path: str, start: int | None = None, end: int | None = None, say: str = "") -> Call:
    args: dict = {"path": path}
    if start is not None:
        args["start_line"] = start
    if end is not None:
        args["end_line"] = end
    return Call("read", args, say)


def write(path: str, content: str, say: str = "") -> Call:
    return Call("write", {"path": path, "content": content}, say)


def edit(path: str, old: str, new: str, say: str = "") -> Call:
    return Call("edit", {"path": path, "old": old, "new": new}, say)


def patch(diff: str, say: str = "") -> Call:
    return Call("apply_patch", {"patch": diff}, say)


def start(cmd: str, say: str = "") -> Call:
    return Call("process", {"action": "start", "cmd": cmd}, say)


def poll(job: str, say: str = "") -> Call:
    return Call("process", {"action": "poll", "job": job}, say)


def output(job: str, say: str = "") -> Call:
    return Call("process", {"action": "read", "job": job}, say)


def kill(job: str, say: str = "") -> Call:
    return Call("process", {"action": "kill", "job": job}, say)


def swap(text: str, old: str, new: str) -> str:
    """The fixed version of a script: replace one exact snippet, which must be there once."""
    assert text.count(old) == 1, old
    return text.replace(old, new)
