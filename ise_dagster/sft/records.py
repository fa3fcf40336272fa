"""A training record's messages in the three shapes it travels in.

- **canonical** (what `sft_dataset` stores): OpenAI chat messages with only the keys a
  message of its role has; `arguments` and tool `parameters` are JSON strings.
- **OpenAI fine-tuning** (`to_openai`): the canonical record minus the keys the fine-tuning
  format does not document (`name` on tool messages, empty `content` beside tool calls).
- **Hugging Face chat-template input** (`chat_inputs`): what `apply_chat_template` wants,
  `arguments` and `parameters` as dicts, made from a row as Arrow loads it (absent keys come
  back as None, which this strips again).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import polars as pl

Message = dict[str, Any]


def canonical_messages(messages: list[Message], observations: dict[str, str]) -> list[Message]:
    """Stage 2's messages with each tool message's content replaced by Stage 3's replayed
    observation (by tool_call_id). Stage 2's `success` flag is left out: the replay's step
    labels travel beside the messages."""
    out: list[Message] = []
    for m in messages:
        role = m["role"]
        if role == "tool":
            out.append({"role": "tool", "tool_call_id": m["tool_call_id"], "name": m["name"],
                        "content": observations[m["tool_call_id"]]})  # fmt: skip
        elif role == "assistant" and m.get("tool_calls"):
            calls = [
                {"id": c["id"], "type": "function",
                 "function": {"name": c["function"]["name"],
                              "arguments": c["function"]["arguments"]}}
                for c in m["tool_calls"]
            ]  # fmt: skip
            out.append({"role": "assistant", "content": m.get("content") or "",
                        "tool_calls": calls})  # fmt: skip
        else:
            out.append({"role": role, "content": m.get("content") or ""})
    return out


def canonical_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"type": "function",
         "function": {"name": t["function"]["name"],
                      "description": t["function"].get("description", ""),
                      "parameters": json.dumps(t["function"].get("parameters", {}))}}
        for t in tools
    ]  # fmt: skip


def content_hash(messages: list[Message]) -> str:
    return hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()


def approx_tokens(messages: list[Message], tools: list[dict[str, Any]]) -> int:
    """A tokenizer-free length estimate: characters of the JSON record / 4."""
    chars = len(json.dumps(messages, ensure_ascii=False)) + len(json.dumps(tools))
    return -(-chars // 4)


def strip_nulls(value: Any) -> Any:
    """Undo Arrow's struct unification: drop keys whose value is None, at every depth.
    Canonical records never hold a None, so this restores them exactly."""
    if isinstance(value, dict):
        return {k: strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_nulls(v) for v in value]
    return value


# Self-contained: the dataset card ships this function's source, so it uses only `json`.
def chat_inputs(row: dict) -> tuple[list[dict], list[dict]]:
    """`(messages, tools)` for `tokenizer.apply_chat_template(messages, tools=tools)` from a
    row of the Parquet dataset as `datasets` or polars loads it: the None keys Arrow adds are
    dropped, tool-call `arguments` and tool `parameters` parsed into dicts."""

    def clean(value):
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if v is not None}
        return [clean(v) for v in value] if isinstance(value, list) else value

    def as_object(text):
        try:
            value = json.loads(text)
        except (TypeError, ValueError):
            return text  # a malformed call kept as the model wrote it
        return value if isinstance(value, dict) else text

    messages, tools = clean(list(row["messages"])), clean(list(row["tools"]))
    for m in messages:
        for call in m.get("tool_calls") or []:
            call["function"]["arguments"] = as_object(call["function"]["arguments"])
    for t in tools:
        t["function"]["parameters"] = json.loads(t["function"]["parameters"])
    return messages, tools


def to_openai(row: dict[str, Any]) -> dict[str, Any]:
    """One line of OpenAI fine-tuning JSONL: `{"messages": [...], "tools": [...]}` with
    arguments as JSON strings and only the documented keys on each message."""
    messages = []
    for m in strip_nulls(list(row["messages"])):
        if m["role"] == "tool":
            m = {"role": "tool", "tool_call_id": m["tool_call_id"], "content": m["content"]}
        elif m.get("tool_calls") and not m.get("content"):
            m = {"role": "assistant", "tool_calls": m["tool_calls"]}
        messages.append(m)
    tools = strip_nulls(list(row["tools"]))
    for t in tools:
        t["function"]["parameters"] = json.loads(t["function"]["parameters"])
    return {"messages": messages, "tools": tools}


# Keys polars writes as null for a message that lacks them; never null in a canonical record.
# A structural `,"key":null` cannot occur inside a JSON string (its quote would be escaped
# there), and a message struct always opens with its non-null role.
_NULL_KEYS = r',"(?:content|tool_calls|tool_call_id|name)":null'


def openai_jsonl_lines(frame: pl.DataFrame) -> list[str]:
    """`to_openai` for a whole frame, as JSONL lines, computed column-wise (several times
    faster than row by row; the tests hold the two equal). Tool lists are few, so each
    distinct one is converted once."""
    field = pl.element().struct.field
    message = pl.struct(
        field("role"),
        pl.when(field("tool_calls").is_not_null() & (field("content") == ""))
        .then(None)
        .otherwise(field("content"))
        .alias("content"),
        field("tool_calls"),
        field("tool_call_id"),
        pl.when(field("role") == "tool").then(None).otherwise(field("name")).alias("name"),
    )
    encoded = frame.select(
        pl.col("messages")
        .list.eval(message.struct.json_encode())
        .list.join(",")
        .str.replace_all(_NULL_KEYS, ""),
        pl.col("tools").list.eval(pl.element().struct.json_encode()).list.join(",").alias("key"),
    ).with_row_index()
    tools_json = {
        key: json.dumps(to_openai({"messages": [], "tools": frame["tools"][i]})["tools"],
                        ensure_ascii=False)
        for i, key in encoded.unique("key", keep="first").select("index", "key").iter_rows()
    }  # fmt: skip
    lines = encoded.select(
        pl.concat_str(
            pl.lit('{"messages":['), "messages", pl.lit('],"tools":'),
            pl.col("key").replace_strict(tools_json, return_dtype=pl.String), pl.lit("}"),
        )
    )  # fmt: skip
    return lines.to_series().to_list()


def split_parallel_calls(messages: list[Message]) -> list[Message]:
    """One tool call per assistant turn, each followed by its result, for chat templates that
    refuse parallel calls (Llama 3.1). The first call keeps the turn's text."""
    results = {m["tool_call_id"]: m for m in messages if m["role"] == "tool"}
    moved: set[str] = set()  # results already placed after their own call
    out: list[Message] = []
    for m in messages:
        calls = m.get("tool_calls") or []
        if len(calls) > 1:
            for i, call in enumerate(calls):
                out.append({**m, "content": m["content"] if i == 0 else "", "tool_calls": [call]})
                if call["id"] in results:
                    out.append(results[call["id"]])
                    moved.add(call["id"])
        elif m["role"] != "tool" or m["tool_call_id"] not in moved:
            out.append(m)
    return out


def structure_problems(messages: list[Message]) -> list[str]:
    """What a trainer or template would trip on: a tool call not followed by exactly one
    result with its id before the next assistant turn, a result with no call, an empty
    assistant turn (no text, no call)."""
    problems: list[str] = []
    pending: dict[str, int] = {}
    for k, m in enumerate(messages):
        role = m["role"]
        if role == "assistant":
            problems += [f"message {i}: call {c} has no result" for c, i in pending.items()]
            pending = {c["id"]: k for c in m.get("tool_calls") or []}
            if not m.get("tool_calls") and not (m.get("content") or "").strip():
                problems.append(f"message {k}: empty assistant turn")
        elif role == "tool":
            if pending.pop(m.get("tool_call_id"), None) is None:
                problems.append(f"message {k}: result {m.get('tool_call_id')} answers no call")
        elif pending:
            problems += [f"message {i}: call {c} has no result" for c, i in pending.items()]
            pending = {}
    problems += [f"message {i}: call {c} has no result" for c, i in pending.items()]
    return problems
