"""A validator for OpenAI's chat fine-tuning format with tool calling.

What the fine-tuning guide documents for a training line: `messages` (system, user,
assistant, tool), optional `tools` and `parallel_tool_calls`; an assistant message carries
`content`, `tool_calls` or both (plus an optional `weight` of 0 or 1); `arguments` is a JSON
string; a tool message answers a call of the preceding assistant message by
`tool_call_id`. Anything else is reported, so an export never ships a key the API rejects.
"""

from __future__ import annotations

import json
from typing import Any

_LINE_KEYS = {"messages", "tools", "parallel_tool_calls"}
_MESSAGE_KEYS = {
    "system": {"role", "content", "name"},
    "user": {"role", "content", "name"},
    "assistant": {"role", "content", "tool_calls", "weight", "name"},
    "tool": {"role", "content", "tool_call_id"},
}


def openai_format_errors(line: dict[str, Any]) -> list[str]:
    """Every way `line` departs from the format; empty when it is valid."""
    errors: list[str] = []
    if not isinstance(line, dict):
        return ["line is not a JSON object"]
    if extra := set(line) - _LINE_KEYS:
        errors.append(f"unknown top-level keys {sorted(extra)}")
    names = _tool_names(line.get("tools", []), errors)
    messages = line.get("messages")
    if not isinstance(messages, list) or not messages:
        return errors + ["messages is missing or empty"]
    open_calls: set[str] = set()
    assistants = 0
    for k, m in enumerate(messages):
        where = f"message {k}"
        role = m.get("role") if isinstance(m, dict) else None
        if role not in _MESSAGE_KEYS:
            errors.append(f"{where}: unknown role {role!r}")
            continue
        if extra := set(m) - _MESSAGE_KEYS[role]:
            errors.append(f"{where}: keys {sorted(extra)} not allowed on a {role} message")
        content = m.get("content")
        if content is not None and not isinstance(content, str):
            errors.append(f"{where}: content is not a string")
        if role == "assistant":
            assistants += 1
            if open_calls:
                errors.append(f"{where}: calls {sorted(open_calls)} were never answered")
            open_calls = _calls(m.get("tool_calls"), names, where, errors)
            if not content and not m.get("tool_calls"):
                errors.append(f"{where}: assistant message with neither content nor tool_calls")
            if "weight" in m and m["weight"] not in (0, 1):
                errors.append(f"{where}: weight must be 0 or 1")
        elif role == "tool":
            if m.get("tool_call_id") not in open_calls:
                errors.append(f"{where}: tool_call_id {m.get('tool_call_id')!r} answers no call")
            open_calls.discard(m.get("tool_call_id"))
            if not isinstance(content, str):
                errors.append(f"{where}: tool message without string content")
        else:
            if open_calls:
                errors.append(f"{where}: calls {sorted(open_calls)} were never answered")
                open_calls = set()
            if not isinstance(content, str) or not content:
                errors.append(f"{where}: {role} message without content")
    if open_calls:
        errors.append(f"calls {sorted(open_calls)} were never answered")
    if not assistants:
        errors.append("no assistant message to learn from")
    return errors


def _tool_names(tools: Any, errors: list[str]) -> set[str]:
    if not isinstance(tools, list):
        errors.append("tools is not a list")
        return set()
    names = set()
    for i, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(fn, dict):
            errors.append(f"tool {i}: not a {{'type': 'function', 'function': ...}} object")
            continue
        if set(tool) - {"type", "function"}:
            errors.append(f"tool {i}: unknown keys {sorted(set(tool) - {'type', 'function'})}")
        if not isinstance(fn.get("name"), str) or not fn["name"]:
            errors.append(f"tool {i}: function without a name")
        if not isinstance(fn.get("parameters", {}), dict):
            errors.append(f"tool {i}: parameters is not a JSON-schema object")
        if set(fn) - {"name", "description", "parameters", "strict"}:
            errors.append(f"tool {i}: unknown function keys")
        names.add(fn.get("name"))
    return names


def _calls(calls: Any, names: set[str], where: str, errors: list[str]) -> set[str]:
    if calls is None:
        return set()
    if not isinstance(calls, list) or not calls:
        errors.append(f"{where}: tool_calls is not a non-empty list")
        return set()
    ids = set()
    for j, call in enumerate(calls):
        at = f"{where} call {j}"
        if not isinstance(call, dict) or set(call) != {"id", "type", "function"}:
            errors.append(f"{at}: a call has exactly id, type and function")
            continue
        fn = call["function"]
        if (
            call["type"] != "function"
            or not isinstance(fn, dict)
            or set(fn)
            != {
                "name",
                "arguments",
            }
        ):
            errors.append(f"{at}: function must hold exactly name and arguments")
            continue
        if names and fn["name"] not in names:
            errors.append(f"{at}: calls {fn['name']!r}, which is not among the tools")
        if not isinstance(fn["arguments"], str):
            errors.append(f"{at}: arguments must be a JSON string")
        else:
            try:
                json.loads(fn["arguments"])
            except json.JSONDecodeError:
                errors.append(f"{at}: arguments do not parse as JSON")
        if call["id"] in ids:
            errors.append(f"{at}: duplicate id {call['id']!r}")
        ids.add(call["id"])
    return ids
