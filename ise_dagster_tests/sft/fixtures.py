"""Stage 2/3 rows shaped exactly as the stages write them, for tests without Docker."""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from ise_dagster import schemas
from ise_dagster.llm.tools import TOOL_SCHEMAS
from ise_dagster.sandbox import ToolResult
from ise_dagster.stages.dialogues import tool_content

PERSONA = {name: "x" for name in schemas.PERSONA.to_schema()}


def _calls(*specs: tuple[str, dict[str, Any]], start: int) -> list[dict[str, Any]]:
    return [
        {"id": f"call_{start + i}", "type": "function",
         "function": {"name": tool, "arguments": json.dumps(args)}}
        for i, (tool, args) in enumerate(specs)
    ]  # fmt: skip


def stage2_messages(tag: str = "a") -> list[dict[str, Any]]:
    """A dialogue with heterogeneous tools, a parallel batch, a failed call and text turns."""
    first = _calls(("exec", {"cmd": "ls -la", "cwd": "t1"}), ("read", {"path": "t1/a.csv"}),
                   start=0)  # fmt: skip
    second = _calls(("write", {"path": "t1/out.txt", "content": f"done {tag}\n"}), start=2)
    third = _calls(("exec", {"cmd": "cat missing"}), start=3)

    def tool(call, out, ok=True):
        result = ToolResult(tool=call["function"]["name"], ok=ok, exit_code=0 if ok else 1,
                            stdout=out if ok else "", stderr="" if ok else out)  # fmt: skip
        return {"role": "tool", "tool_call_id": call["id"], "name": call["function"]["name"],
                "content": tool_content(result), "success": ok}  # fmt: skip

    return [
        {"role": "system", "content": "You are an OS agent."},
        {"role": "user", "content": f"Please merge the CSV exports ({tag})."},
        {"role": "assistant", "content": "", "tool_calls": first},
        tool(first[0], "a.csv\nb.csv\n"),
        tool(first[1], "id,name\n1,x\n"),
        {"role": "assistant", "content": "Writing the result.", "tool_calls": second},
        tool(second[0], ""),
        {"role": "assistant", "content": "", "tool_calls": third},
        tool(third[0], "cat: missing: No such file or directory", ok=False),
        {"role": "assistant", "content": "Merged 2 exports into t1/out.txt."},
        {"role": "user", "content": "Thanks."},
        {"role": "assistant", "content": "You're welcome."},
    ]


def dialogue_row(trajectory_id: str, messages: list[dict[str, Any]], **over: Any) -> dict:
    calls = sum(len(m.get("tool_calls") or []) for m in messages)
    row = {
        "trajectory_id": trajectory_id, "date": "2026-11-24", "domain": "File-IO",
        "intent_ids": [f"intent-{trajectory_id}"], "persona": PERSONA,
        "domains": ["File-IO"], "tasks": ["t1"], "complexity": "medium", "fixture_seeds": [1],
        "status": "completed", "is_success": True,
        "messages": json.dumps(messages), "tools": json.dumps(TOOL_SCHEMAS),
        "user_turns": 2, "total_turns": len(messages) - 1, "tool_calls": calls,
        "distinct_tools": 3, "role_drift_turns": 0, "turn_kinds": ["request", "follow_up"],
        "final_output": "", "attempts": 1, "duration_s": 1.0,
        "generator": "offline-user+playbook-agent", "user_model": "offline",
        "agent_model": "offline", "error": None, "llm_calls": 0, "llm_cached_calls": 0,
        "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0, "malformed_tool_calls": 0,
    }  # fmt: skip
    row.update(over)
    return row


def trace_row(dialogue: dict[str, Any], label: str = "verified", replayed: str = "") -> dict:
    """Stage 3's row: each step's observation is the replay's (`replayed` marks it)."""
    messages = json.loads(dialogue["messages"])
    results = {m["tool_call_id"]: m for m in messages if m["role"] == "tool"}
    steps = []
    for m in messages:
        for call in m.get("tool_calls") or []:
            seen = json.loads(results[call["id"]]["content"])
            if replayed and "stdout" in seen:
                seen["stdout"] += replayed
            steps.append({
                "index": len(steps), "task_id": "t1", "tool": call["function"]["name"],
                "arguments": call["function"]["arguments"], "ok": seen["ok"],
                "exit_code": seen["exit_code"], "stdout": seen.get("stdout", ""),
                "stderr": seen.get("stderr", ""), "observation": json.dumps(seen),
                "duration_ms": 1.0, "timed_out": False, "matches_stage2": True,
                "label": "ok" if seen["ok"] else "failed",
            })  # fmt: skip
    return {
        "trajectory_id": dialogue["trajectory_id"], "date": dialogue["date"],
        "domain": dialogue["domain"], "intent_ids": dialogue["intent_ids"], "label": label,
        "steps": steps, "n_steps": len(steps), "n_failed": 1, "n_recovered": 0,
        "n_mismatched": 0, "task_verdicts": [], "snapshot_files": 0, "snapshot_bytes": 0,
        "snapshot_digest": "", "attempts": 1, "replay_s": 1.0,
    }  # fmt: skip


def frames(dialogues: list[dict], traces: list[dict]) -> tuple[pl.DataFrame, pl.DataFrame]:
    return (
        pl.DataFrame(dialogues, schema=schemas.DIALOGUES),
        pl.DataFrame(traces, schema=schemas.EXECUTED_TRACES),
    )
