"""Stage 3: replay every tool call of a dialogue in a fresh workspace and label it.

Per step: ok, failed, or recovered (a failure that a later step of the same task fixed, in a
task whose verifier passes). Per trajectory: verified (every task's verifier passes and the
replay reproduced Stage 2's outcomes), failed (a verifier says the work was not done), or
non_reproducible (the replay's outcomes differ from what the dialogue saw).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from ise_dagster.llm.tools import parse_tool_call
from ise_dagster.sandbox import SandboxInfraError, SandboxResource, ToolResult
from ise_dagster.stages.dialogues import check_cancelled, run_call, tool_content
from ise_dagster.stages.progress import map_with_progress
from ise_dagster.tasklib.base import Call, task_of
from ise_dagster.tasklib.registry import recipe_for
from ise_dagster.tasklib.runner import seed_task, verify

MAX_STEP_OUTPUT = 4000


def tool_steps(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The dialogue's tool calls in order, each with what Stage 2 observed."""
    observed = {m["tool_call_id"]: m for m in messages if m["role"] == "tool"}
    steps = []
    for m in messages:
        for call in m.get("tool_calls") or []:
            seen = observed.get(call["id"], {})
            content = json.loads(seen.get("content") or "{}")
            steps.append(
                {
                    "tool": call["function"]["name"],
                    "arguments": call["function"]["arguments"],
                    "stage2_ok": bool(seen.get("success")),
                    "stage2_exit_code": content.get("exit_code"),
                    "stage2_stdout": content.get("stdout", ""),
                }
            )
    return steps


def label_steps(steps: list[dict[str, Any]], verified: dict[str, bool]) -> list[str]:
    """ok / failed / recovered: a failure is recovered when a later step of the same task
    succeeded and that task's verifier passed."""
    labels = []
    for i, step in enumerate(steps):
        if step["ok"]:
            labels.append("ok")
            continue
        task = step["task_id"]
        later_ok = any(s["ok"] and s["task_id"] == task for s in steps[i + 1 :])
        labels.append("recovered" if later_ok and verified.get(task, False) else "failed")
    return labels


def _same(a: str, b: str) -> bool:
    # Listings carry mtimes and sizes of fresh files; compare them without digits.
    strip = str.maketrans("", "", "0123456789")
    return a == b or a.translate(strip) == b.translate(strip)


def replay(
    dialogue: dict[str, Any],
    sandbox: SandboxResource,
    infra_retries: int = 2,
    stop: threading.Event | None = None,
) -> dict:
    """Replay one dialogue; an infrastructure failure retries it and is never a label.
    `stop` set (the partition is abandoned) ends it at the next step."""
    task_ids = list(dialogue["tasks"])
    recipes = [recipe_for(t) for t in task_ids]
    planned = tool_steps(json.loads(dialogue["messages"]))
    last_error: Exception | None = None
    for attempt in range(1, infra_retries + 2):
        started = time.perf_counter()
        try:
            with sandbox.workspace() as ws:
                for recipe, seed in zip(recipes, dialogue["fixture_seeds"], strict=True):
                    seed_task(ws, recipe, seed)
                steps: list[dict[str, Any]] = []
                jobs: dict[str, str] = {}  # background job id -> the task that started it
                for i, plan in enumerate(planned):
                    check_cancelled(stop)
                    # The same check as Stage 2: a call the agent got rejected is rejected again.
                    call = parse_tool_call(plan["tool"], plan["arguments"])
                    args = call.args if isinstance(call, Call) else {}
                    result = run_call(ws, call)
                    if result.is_infra_error:
                        raise SandboxInfraError(result.error or "sandbox failed")
                    steps.append(_step(i, plan, result, task_of(args, task_ids, jobs)))
                    if (job := result.extras.get("job")) is not None and steps[-1]["task_id"]:
                        jobs.setdefault(str(job), steps[-1]["task_id"])
                verdicts = [(r.task_id, *verify(ws, r)) for r in recipes]
                snap = ws.snapshot()
        except SandboxInfraError as e:
            last_error = e
            continue
        return _trace_row(
            dialogue, planned, steps, verdicts, snap, attempt, time.perf_counter() - started
        )
    raise SandboxInfraError(
        f"{dialogue['trajectory_id']}: sandbox failed {infra_retries + 1} times: {last_error}"
    )


def replay_partition(
    dialogues: list[dict[str, Any]],
    sandbox: SandboxResource,
    concurrency: int,
    progress: Callable[[str], None] = print,
    label: str = "replays",
) -> list[dict[str, Any]]:
    """Replay dialogues in parallel; rows come back in the dialogues' order. The first
    failure cancels the rest."""

    def work(dialogue: dict[str, Any], stop: threading.Event) -> dict[str, Any]:
        return replay(dialogue, sandbox, stop=stop)

    return map_with_progress(work, dialogues, concurrency, label, progress)


def _step(i: int, plan: dict, result: ToolResult, task_id: str | None) -> dict:
    return {
        "index": i,
        "task_id": task_id,
        "tool": plan["tool"],
        "arguments": plan["arguments"],
        "ok": result.ok,
        "exit_code": result.exit_code,
        "stdout": result.stdout[:MAX_STEP_OUTPUT],
        "stderr": (result.stderr or result.error or "")[:MAX_STEP_OUTPUT],
        "observation": tool_content(result),
        "duration_ms": float(result.duration_ms or 0.0),
        "timed_out": result.timed_out,
        "matches_stage2": result.ok == plan["stage2_ok"]
        and result.exit_code == plan["stage2_exit_code"]
        and _same(result.stdout[:MAX_STEP_OUTPUT], plan["stage2_stdout"][:MAX_STEP_OUTPUT]),
        "label": "",
    }


def _trace_row(dialogue, planned, steps, verdicts, snap, attempt, seconds) -> dict[str, Any]:
    verified = {task: passed for task, passed, _ in verdicts}
    for step, label in zip(steps, label_steps(steps, verified), strict=True):
        step["label"] = label
    # Text may differ in harmless ways; a different outcome means the data is not grounded.
    reproducible = all(
        s["ok"] == p["stage2_ok"] and s["exit_code"] == p["stage2_exit_code"]
        for s, p in zip(steps, planned, strict=True)
    )
    if not reproducible:
        label = "non_reproducible"
    elif all(verified.values()):
        label = "verified"
    else:
        label = "failed"
    files = snap.get("files", [])
    listing = "\n".join(f"{f.get('path')} {f.get('sha256')}" for f in files)
    return {
        "trajectory_id": dialogue["trajectory_id"],
        "date": dialogue["date"],
        "domain": dialogue["domain"],
        "intent_ids": dialogue["intent_ids"],
        "label": label,
        "steps": steps,
        "n_steps": len(steps),
        "n_failed": sum(s["label"] == "failed" for s in steps),
        "n_recovered": sum(s["label"] == "recovered" for s in steps),
        "n_mismatched": sum(not s["matches_stage2"] for s in steps),
        "task_verdicts": [{"task_id": t, "passed": p, "reason": r} for t, p, r in verdicts],
        "snapshot_files": len(files),
        "snapshot_bytes": sum(int(f.get("size", 0)) for f in files),
        "snapshot_digest": hashlib.sha256(listing.encode()).hexdigest()[:16],
        "attempts": attempt,
        "replay_s": seconds,
    }
