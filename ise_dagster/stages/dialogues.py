"""Stage 2: simulate a role-locked user delegating an intent to an agent, with every tool
call executed live in a fresh sandbox workspace. A trajectory is OpenAI chat messages."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import polars as pl

from ise_dagster import schemas
from ise_dagster.llm.client import ContextLengthError, RequestRejectedError
from ise_dagster.llm.offline_user import OfflineUserSimulator
from ise_dagster.llm.openai_user import UserOutputError
from ise_dagster.llm.playbook_agent import PlaybookAgent
from ise_dagster.llm.simulator import Agent, UserSimulator, UserView
from ise_dagster.llm.tools import TOOL_SCHEMAS, RejectedCall
from ise_dagster.llm.usage import Usage
from ise_dagster.sandbox import SandboxInfraError, SandboxResource, ToolResult, Workspace
from ise_dagster.stages import guards
from ise_dagster.stages.guards import detect_role_drift
from ise_dagster.stages.intents import stable_seed
from ise_dagster.stages.progress import map_with_progress
from ise_dagster.tasklib.base import Call
from ise_dagster.tasklib.registry import UnknownTaskError, recipe_for
from ise_dagster.tasklib.runner import FixtureError, seed_task, verify
from ise_dagster.taxonomy.models import Persona, Taxonomy

MAX_TOOL_OUTPUT = 4000  # characters of stdout/stderr kept in a tool message


class Cancelled(Exception):
    """The partition is being abandoned (Ctrl-C, or another dialogue failed for good): a
    dialogue in flight stops at its next tool call or turn instead of running to its end."""


def check_cancelled(stop: threading.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise Cancelled("the partition was abandoned")


# Dialogues the model side could not finish; kept, labeled, never counted as completed.
LLM_FAILURE_STATUSES = ("context_length", "user_invalid_output", "llm_rejected")


def fixture_seed(intent_id: str, task_id: str) -> int:
    return stable_seed("fixture", intent_id, task_id)


def trajectory_id(intent_id: str, date: str) -> str:
    key = f"{intent_id}|{date}"
    return "traj-" + hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass
class Transcript:
    """Builds the OpenAI-format message list as the dialogue happens."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: int = 0
    tools_used: set[str] = field(default_factory=set)
    call_args: list[dict[str, Any]] = field(default_factory=list)  # of the well-formed calls

    def add(self, role: str, content: str) -> None:
        self.messages.append({"role": role, "content": content})

    def add_tool_batch(
        self, calls: Sequence[Call | RejectedCall], results: list[ToolResult], narration: str
    ) -> None:
        ids = [f"call_{self.tool_calls + i}" for i in range(len(calls))]
        self.messages.append(
            {
                "role": "assistant",
                "content": narration,
                "tool_calls": [
                    {"id": cid, "type": "function",
                     "function": {"name": c.tool, "arguments": _arguments(c)}}
                    for cid, c in zip(ids, calls, strict=True)
                ],
            }
        )  # fmt: skip
        for cid, call, result in zip(ids, calls, results, strict=True):
            self.messages.append(
                {
                    "role": "tool",
                    "tool_call_id": cid,
                    "name": call.tool,
                    "content": tool_content(result),
                    "success": result.ok,
                }
            )
        self.tool_calls += len(calls)
        self.tools_used.update(c.tool for c in calls)
        self.call_args.extend(c.args for c in calls if isinstance(c, Call))


def _arguments(call: Call | RejectedCall) -> str:
    # A rejected call keeps the model's text as written: that is the failure to learn from.
    return call.arguments if isinstance(call, RejectedCall) else json.dumps(call.args)


def tool_content(result: ToolResult) -> str:
    """What the agent sees of a tool result."""
    body: dict[str, Any] = {"ok": result.ok, "exit_code": result.exit_code}
    for name in ("stdout", "stderr"):
        text = getattr(result, name)
        if text:
            body[name] = text[:MAX_TOOL_OUTPUT] + (
                "...[truncated]"
                if len(text) > MAX_TOOL_OUTPUT or getattr(result, f"{name}_truncated")
                else ""
            )
    if result.error:
        body["error"] = result.error
    if result.timed_out:
        body["timed_out"] = True
    # Background-job facts the agent acts on (is it running, how did it exit).
    for key in ("job", "pid", "running", "job_exit_code", "jobs"):
        if result.extras.get(key) is not None:
            body[key] = result.extras[key]
    if survivors := result.extras.get("survivors"):
        body["survivors"] = survivors
    # What the call's end did that the agent did not see: processes that left its session
    # were killed, or the command stopped reading its stdin.
    if killed := result.extras.get("escaped_killed"):
        body["killed_at_exit"] = [proc["cmd"] for proc in killed]
    if result.extras.get("stdin_truncated"):
        body["stdin_truncated"] = True
    return json.dumps(body, ensure_ascii=False)


@dataclass
class DialogueSettings:
    max_user_turns: int = 23  # the paper's longest dialogue; needing more discards it
    infra_retries: int = 2


UserFactory = Callable[[Taxonomy, int], UserSimulator]
AgentFactory = Callable[..., Agent]


def simulate(
    intent: dict[str, Any],
    date: str,
    taxonomy: Taxonomy,
    sandbox: SandboxResource,
    settings: DialogueSettings,
    user_factory: UserFactory = OfflineUserSimulator,
    agent_factory: AgentFactory = PlaybookAgent,
    verify_tasks: bool = False,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """One dialogue for one intent, retried on a fresh workspace if the sandbox fails.
    `verify_tasks` runs each task's verifier in the workspace afterwards (`task_verdicts`)."""
    base = _base_row(intent, date)
    try:
        task_ids = list(intent["tasks"])
        recipes = [recipe_for(t) for t in task_ids]
        tasks = tuple(taxonomy.task(t) for t in task_ids)
    except (UnknownTaskError, KeyError) as e:
        return {**base, "status": "invalid_intent", "error": str(e)}
    seeds = [fixture_seed(intent["intent_id"], t) for t in task_ids]
    last_error: Exception | None = None
    for attempt in range(1, settings.infra_retries + 2):
        started = time.perf_counter()
        try:
            with sandbox.workspace() as ws:
                try:
                    contexts = [seed_task(ws, r, s) for r, s in zip(recipes, seeds, strict=True)]
                except FixtureError as e:
                    return {**base, "status": "fixture_error", "error": str(e),
                            "fixture_seeds": seeds, "attempts": attempt}  # fmt: skip

                user = user_factory(taxonomy, stable_seed("user", intent["intent_id"]))
                agent = agent_factory(recipes, contexts)
                transcript = Transcript()
                transcript.add("system", agent.system_prompt)
                run_tools = LiveTools(ws, transcript, stop)
                row = _converse(intent, tasks, user, agent, run_tools, transcript, settings)
                if verify_tasks:
                    row["task_verdicts"] = [
                        {"task_id": r.task_id, "passed": passed, "reason": reason}
                        for r in recipes
                        for passed, reason in [verify(ws, r)]
                    ]
        except SandboxInfraError as e:
            last_error = e
            continue
        return {
            **base,
            **row,
            "fixture_seeds": seeds,
            "attempts": attempt,
            "duration_s": time.perf_counter() - started,
            "generator": f"{user.name}+{agent.name}",
            # Roles written before `model` joined the protocol: their name says what they are.
            "user_model": getattr(user, "model", user.name),
            "agent_model": getattr(agent, "model", agent.name),
            **_usage_columns(user, agent),
        }
    raise SandboxInfraError(
        f"intent {intent['intent_id']}: sandbox failed {settings.infra_retries + 1} times: "
        f"{last_error}"
    )


class LiveTools:
    """Runs an agent's calls for real and records them; a sandbox failure aborts the attempt.
    A rejected call is answered with its error and never reaches the sandbox."""

    def __init__(
        self, ws: Workspace, transcript: Transcript, stop: threading.Event | None = None
    ) -> None:
        self._ws = ws
        self._transcript = transcript
        self._repeats = guards.RepeatedFailures()
        self.stop = stop
        self.messages = transcript.messages

    def __call__(self, calls: Sequence[Call | RejectedCall], narration: str) -> list[ToolResult]:
        check_cancelled(self.stop)
        results = [run_call(self._ws, c) for c in calls]
        for r in results:
            if r.is_infra_error:
                raise SandboxInfraError(r.error or "sandbox failed")
        self._transcript.add_tool_batch(calls, results, narration)
        for call, result in zip(calls, results, strict=True):
            if stuck := self._repeats.record(call.tool, _arguments(call), result.ok):
                raise guards.Degenerate("repeated_failing_call", stuck)
        return results


def run_call(ws: Workspace, call: Call | RejectedCall) -> ToolResult:
    if isinstance(call, RejectedCall):
        return ToolResult.tool_error(call.tool, call.error, rejected=call.cause)
    return ws.call(call.tool, call.args)


def _usage_columns(user: UserSimulator, agent: Agent) -> dict[str, Any]:
    usage = Usage()
    for part in (user.usage, agent.usage):
        if part is not None:
            usage.merge(part)
    return {
        "llm_calls": usage.calls,
        "llm_cached_calls": usage.cached_calls,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "cost_usd": usage.cost_usd,
        "malformed_tool_calls": sum(usage.malformed_tool_calls.values()),
    }


def _converse(
    intent, tasks, user, agent, run_tools: LiveTools, transcript, settings
) -> dict[str, Any]:
    persona = Persona(**intent["persona"])
    queries: list[str] = []
    replies: list[str] = []
    kinds: list[str] = []
    drift = 0
    error = None
    while True:
        check_cancelled(run_tools.stop)
        view = UserView(persona, intent["natural_language_intent"], tasks, tuple(queries),
                        tuple(replies))  # fmt: skip
        try:
            turn = user.next_turn(view)
        except UserOutputError as e:
            status, success, error = "user_invalid_output", False, str(e)
            break
        except ContextLengthError as e:  # the user's view grows with the dialogue too
            status, success, error = "context_length", False, f"user simulator: {e}"
            break
        except RequestRejectedError as e:
            status, success, error = "llm_rejected", False, f"user simulator: {e}"
            break
        if turn.completed:
            status, success = "completed", turn.is_success
            if premature := _premature(transcript, list(intent["tasks"])):
                status, success, error = "premature_completion", False, premature
            break
        if len(queries) >= settings.max_user_turns:
            status, success = "turn_cap", False
            break
        drift += detect_role_drift(turn.query)
        queries.append(turn.query)
        kinds.append(turn.kind)
        transcript.add("user", turn.query)
        if guards.is_refusal(turn.query):
            status, success, error = "user_refused", False, "the user simulator refused its role"
            break
        try:
            answer = agent.respond(turn, run_tools)
        except ContextLengthError as e:
            # Ended cleanly: the trajectory so far is kept, labeled, and never "completed".
            status, success, error = "context_length", False, f"agent: {e}"
            break
        except RequestRejectedError as e:
            status, success, error = "llm_rejected", False, f"agent: {e}"
            break
        except guards.Degenerate as e:
            status, success, error = e.status, False, f"agent: {e}"
            break
        replies.append(answer.reply)
        transcript.add("assistant", answer.reply)
        if guards.is_call_as_text(answer.reply):
            status, success = "malformed_answer", False
            error = "agent: the final answer is a tool call written as text"
            break
    messages = transcript.messages
    return {
        "status": status,
        "is_success": success,
        "messages": json.dumps(messages, ensure_ascii=False),
        "user_turns": len(queries),
        "total_turns": len(messages) - 1,  # every message but the system prompt
        "tool_calls": transcript.tool_calls,
        "distinct_tools": len(transcript.tools_used),
        "role_drift_turns": drift,
        "turn_kinds": kinds,
        "final_output": replies[-1] if replies else "",
        "error": error,
    }


def _premature(transcript: Transcript, task_ids: list[str]) -> str | None:
    """Why a declared completion is premature, if it is."""
    if transcript.tool_calls == 0:
        return "the user declared completion before any tool call ran"
    if missing := guards.unworked_tasks(transcript.call_args, task_ids):
        return f"the user declared completion before any work on {', '.join(missing)}"
    return None


def _base_row(intent: dict[str, Any], date: str) -> dict[str, Any]:
    return {
        "trajectory_id": trajectory_id(intent["intent_id"], date),
        "date": date,
        "domain": intent["domain"],
        "intent_ids": [intent["intent_id"]],
        "persona": intent["persona"],
        "domains": list(intent["domains"]),
        "tasks": list(intent["tasks"]),
        "complexity": intent.get("complexity"),
        "tools": json.dumps(TOOL_SCHEMAS),
        "status": None,
        "is_success": False,
        "messages": "[]",
        "user_turns": 0,
        "total_turns": 0,
        "tool_calls": 0,
        "distinct_tools": 0,
        "role_drift_turns": 0,
        "turn_kinds": [],
        "final_output": "",
        "fixture_seeds": [],
        "attempts": 0,
        "duration_s": 0.0,
        "generator": "",
        "user_model": None,
        "agent_model": None,
        "error": None,
        "llm_calls": 0,
        "llm_cached_calls": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "cost_usd": 0.0,
        "malformed_tool_calls": 0,
    }


def select_intents(
    intents: pl.DataFrame, date: str, n: int, seed: int, start_date: str
) -> pl.DataFrame:
    """`n` intents for `date`: a fixed shuffle of the pool, read in date-sized slices, so no
    intent repeats across dates until the pool is used up (then it wraps around)."""
    if intents.height == 0 or n == 0:
        return intents.head(0)
    order = intents.with_columns(
        pl.col("intent_id")
        .map_elements(lambda i: stable_seed("order", seed, i), return_dtype=pl.Int64)
        .alias("_order")
    ).sort("_order", "intent_id")
    day = (dt.date.fromisoformat(date) - dt.date.fromisoformat(start_date)).days
    if day < 0:
        raise ValueError(f"date {date} is before the partitions' start date {start_date}")
    idx = [(day * n + k) % order.height for k in range(min(n, order.height))]
    return order[idx].drop("_order")


class Checkpoint(Protocol):
    """Finished dialogues kept across runs, so a re-run of a killed partition skips them."""

    def get(self, intent: dict[str, Any], date: str) -> dict[str, Any] | None: ...

    def put(self, intent: dict[str, Any], date: str, row: dict[str, Any]) -> None: ...


def simulate_partition(
    intents: pl.DataFrame,
    date: str,
    taxonomy: Taxonomy,
    sandbox: SandboxResource,
    settings: DialogueSettings,
    concurrency: int = 2,
    progress: Callable[[str], None] = print,
    user_factory: UserFactory = OfflineUserSimulator,
    agent_factory: AgentFactory = PlaybookAgent,
    checkpoint: Checkpoint | None = None,
    label: str = "dialogues simulated",
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Simulate every intent; returns the kept rows (ordered by intent) and counts
    (by status, plus `resumed`: rows taken from the checkpoint)."""
    todo = intents.to_dicts()

    def one(intent: dict[str, Any], stop: threading.Event) -> tuple[dict[str, Any], bool]:
        if checkpoint is not None and (row := checkpoint.get(intent, date)) is not None:
            return row, True
        row = simulate(intent, date, taxonomy, sandbox, settings, user_factory, agent_factory,
                       stop=stop)  # fmt: skip
        # Model-side failures depend on the server (its context size, what it rejects), so
        # a re-run tries them again; the request cache replays their calls up to the failure.
        if checkpoint is not None and row["status"] not in LLM_FAILURE_STATUSES:
            checkpoint.put(intent, date, row)
        return row, False

    # Fail fast: the step is retried whole, so finishing the rest would be wasted; dialogues
    # in flight stop at their next call and remove their workspaces.
    done = map_with_progress(one, todo, concurrency, label, progress)  # in the intents' order
    rows = [row for row, _ in done]
    counts = Counter(r["status"] for r in rows)
    if checkpoint is not None:
        counts["resumed"] = sum(was_resumed for _, was_resumed in done)
    kept = [r for r in rows if r["status"] != "turn_cap"]
    return pl.DataFrame(kept, schema=schemas.DIALOGUES), dict(counts)


def paper_comparison(dialogues: pl.DataFrame) -> list[tuple[str, float, float]]:
    """(statistic, ours, paper) over the completed dialogues, for reports."""
    from ise_dagster import config

    done = dialogues.filter(status="completed")
    turns = done["user_turns"]
    return [
        ("user turns, mean", turns.mean(), config.PAPER_USER_TURNS_MEAN),
        ("user turns, median", turns.median(), config.PAPER_USER_TURNS_MEDIAN),
        ("share with 6-10 user turns", turns.is_between(6, 10).mean(), config.PAPER_SHARE_6_TO_10),
        ("total turns, mean", done["total_turns"].mean(), config.PAPER_TOTAL_TURNS_MEAN),
        ("tool calls, mean", done["tool_calls"].mean(), config.PAPER_TOOL_CALLS_MEAN),
        ("distinct tools, mean", done["distinct_tools"].mean(), config.PAPER_DISTINCT_TOOLS_MEAN),
    ]
