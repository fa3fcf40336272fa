"""The agent's tools as OpenAI function schemas: what a trajectory's `tools` field holds."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ise_dagster.tasklib.base import Call


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

_SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOL_SCHEMAS}
_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


@dataclass(frozen=True)
class RejectedCall:
    """A tool call the model wrote but that cannot run; the agent gets `error` back as the
    tool result, as real agent runtimes do. `arguments` is kept exactly as written."""

    tool: str
    arguments: str
    error: str
    cause: str  # unknown_tool | invalid_json | truncated | schema


_TOOL_CALL_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)
_FENCE = re.compile(r"\A```[\w-]*\s*\n(.*?)\n?```\s*\Z", re.S)
_CALL_NAME = re.compile(r"[A-Za-z_][\w.-]*\Z")
_DECODER = json.JSONDecoder()


def unfence(text: str) -> str:
    """The body of a reply that is one markdown code block (```json ... ```), else the text."""
    match = _FENCE.match(text.strip())
    return match.group(1).strip() if match else text.strip()


def _is_call_shaped(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("name"), str)
        and bool(_CALL_NAME.match(item["name"]))
        and set(item) <= {"name", "arguments", "parameters"}
        and isinstance(item.get("arguments", item.get("parameters", {})), dict | str)
    )


def _leading_json_values(text: str) -> list[Any]:
    """The JSON values the text starts with, one after another (a model may write a call
    and then imagine its result); stops at the first thing that is not JSON."""
    values, pos = [], 0
    while pos < len(text):
        try:
            value, pos = _DECODER.raw_decode(text, pos)
        except json.JSONDecodeError:
            break
        values += value if isinstance(value, list) else [value]
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return values


def calls_in_text(content: str | None) -> list[dict[str, Any]]:
    """Tool calls a model wrote as text because its server renders the chat template but
    does not parse calls back (the hermes format of Qwen and others: `<tool_call>{"name":
    ..., "arguments": ...}</tool_call>`, or the bare JSON, since detokenizing may drop the
    special `<tool_call>` token, sometimes in a ```json fence). Wire-shaped like
    `tool_calls`; [] when the text is an answer. Bare JSON counts when it starts with
    call-shaped objects (`name` and `arguments` only); what follows them, typically a tool
    result the model imagined, is dropped. Unknown names still count: the schema check
    rejects them and the model is told which tools exist."""
    text = unfence(content or "")
    blocks = _TOOL_CALL_BLOCK.findall(text)
    if blocks:
        items: list[Any] = []
        for raw in blocks:
            try:
                parsed = json.loads(raw)
            except json.JSONDecodeError:
                return []
            items += parsed if isinstance(parsed, list) else [parsed]
        if not all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in items):
            return []
    else:
        if not text.startswith(("{", "[")):
            return []
        items = []
        for value in _leading_json_values(text):
            if not _is_call_shaped(value):
                break
            items.append(value)
    calls = []
    for item in items:
        args = item.get("arguments", item.get("parameters", {}))
        calls.append(
            {"id": f"text_call_{len(calls)}", "type": "function",
             "function": {"name": item["name"],
                          "arguments": args if isinstance(args, str) else json.dumps(args)}}
        )  # fmt: skip
    return calls


def parse_tool_call(name: str, arguments: str, truncated: bool = False) -> Call | RejectedCall:
    """Check a model's tool call against the schemas. Stage 3 uses the same check, so a
    rejected call replays as the same rejection."""
    if name not in _SCHEMAS:
        known = ", ".join(sorted(_SCHEMAS))
        return RejectedCall(name, arguments, f"unknown tool {name!r}; tools: {known}",
                            "unknown_tool")  # fmt: skip
    try:
        args = json.loads(arguments or "{}")
    except json.JSONDecodeError as e:
        cut = truncated or not arguments.rstrip().endswith("}")
        error = f"arguments are not valid JSON ({e.msg} at char {e.pos})"
        if cut:
            return RejectedCall(name, arguments, f"{error}; they look cut off", "truncated")
        return RejectedCall(name, arguments, error, "invalid_json")
    if not isinstance(args, dict):
        return RejectedCall(name, arguments, "arguments must be a JSON object", "schema")
    if problem := schema_problem(_SCHEMAS[name], args):
        return RejectedCall(name, arguments, f"invalid arguments for {name}: {problem}", "schema")
    return Call(name, args)


def schema_problem(schema: dict[str, Any], args: dict[str, Any]) -> str | None:
    props = schema["properties"]
    missing = [k for k in schema.get("required", []) if k not in args]
    if missing:
        return f"missing required {', '.join(missing)}"
    unknown = [k for k in args if k not in props]
    if unknown:
        return f"unknown argument {', '.join(unknown)}; allowed: {', '.join(props)}"
    for key, value in args.items():
        spec = props[key]
        types = _TYPES.get(spec.get("type", ""), (object,))
        if (
            value is None
            or not isinstance(value, types)
            or (isinstance(value, bool) and bool not in types)
        ):
            return f"{key} must be {spec.get('type')}"
        if "enum" in spec and value not in spec["enum"]:
            return f"{key} must be one of {', '.join(spec['enum'])}"
    return None
