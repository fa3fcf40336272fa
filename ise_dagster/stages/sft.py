"""The SFT dataset: trajectories a trainer may learn from, with Stage 3's observations.

A trajectory is kept when the policy says so (by default: Stage 2 `completed`, Stage 3
`verified`, well-formed, within a token budget). Every other one is counted by reason.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import polars as pl

from ise_dagster import schemas
from ise_dagster.config import SFT_MAX_TOKENS
from ise_dagster.sft.records import (
    approx_tokens,
    canonical_messages,
    canonical_tools,
    content_hash,
    structure_problems,
)


@dataclass(frozen=True)
class SftPolicy:
    statuses: tuple[str, ...] = ("completed",)
    labels: tuple[str, ...] = ("verified",)
    max_tokens: int = SFT_MAX_TOKENS
    keep_malformed_calls: bool = False  # calls whose arguments are not a JSON object


@dataclass
class SftBuild:
    frame: pl.DataFrame
    dropped: Counter[str]
    examples: dict[str, list[str]]  # reason -> a few trajectory ids


def build_sft_dataset(
    dialogues: pl.DataFrame, traces: pl.DataFrame, policy: SftPolicy = SftPolicy()
) -> SftBuild:
    """One record per kept trajectory, in the dialogues' order; drops counted by reason."""
    by_id = {t["trajectory_id"]: t for t in traces.to_dicts()}
    rows: list[dict[str, Any]] = []
    dropped: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    seen: set[str] = set()
    for d in dialogues.to_dicts():
        trace = by_id.get(d["trajectory_id"])
        try:
            row = _record(d, trace, policy)
        except _Drop as drop:
            dropped[drop.reason] += 1
            examples.setdefault(drop.reason, []).append(d["trajectory_id"])
            continue
        if row["content_hash"] in seen:
            dropped["duplicate"] += 1
            examples.setdefault("duplicate", []).append(d["trajectory_id"])
            continue
        seen.add(row["content_hash"])
        rows.append(row)
    frame = pl.DataFrame(rows, schema=schemas.SFT_DATASET)
    return SftBuild(frame, dropped, {k: v[:5] for k, v in examples.items()})


class _Drop(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


def _record(d: dict[str, Any], trace: dict[str, Any] | None, policy: SftPolicy) -> dict:
    if d["status"] not in policy.statuses:
        raise _Drop(f"status_{d['status']}")
    if trace is None:
        raise _Drop("no_executed_trace")
    if trace["label"] not in policy.labels:
        raise _Drop(f"label_{trace['label']}")
    try:
        raw = json.loads(d["messages"])
        tools = canonical_tools(json.loads(d["tools"]))
    except (TypeError, json.JSONDecodeError, KeyError):
        raise _Drop("unparseable_messages") from None
    calls = [c for m in raw for c in m.get("tool_calls") or []]
    if not calls:
        raise _Drop("no_tool_calls")  # a dialogue "completed" without doing anything
    steps = trace["steps"]
    if len(steps) != len(calls):
        raise _Drop("trace_step_mismatch")
    if any(s.get("observation") is None for s in steps):
        raise _Drop("trace_lacks_observations")  # written before Stage 3 recorded them
    if not policy.keep_malformed_calls and not all(_is_object(c) for c in calls):
        raise _Drop("malformed_tool_call")
    observations = {c["id"]: s["observation"] for c, s in zip(calls, steps, strict=True)}
    try:
        messages = canonical_messages(raw, observations)
    except KeyError:
        raise _Drop("unmatched_tool_call_id") from None
    if structure_problems(messages) or not messages or messages[0]["role"] != "system":
        raise _Drop("invalid_structure")
    tokens = approx_tokens(messages, tools)
    if tokens > policy.max_tokens:
        raise _Drop("over_token_budget")
    return {
        "messages": messages,
        "tools": tools,
        **{k: d[k] for k in schemas.TRAJECTORY},
        **{k: d[k] for k in ("status", "is_success", "user_turns", "total_turns",
                             "distinct_tools", "generator", "user_model", "agent_model")},
        "label": trace["label"],
        "total_steps": len(calls),
        "step_labels": [s["label"] for s in steps],
        "parallel_call_turns": sum(len(m.get("tool_calls") or []) > 1 for m in raw),
        "approx_tokens": tokens,
        "content_hash": content_hash(messages),
    }  # fmt: skip


def _is_object(call: dict[str, Any]) -> bool:
    try:
        return isinstance(json.loads(call["function"]["arguments"]), dict)
    except (TypeError, json.JSONDecodeError):
        return False
