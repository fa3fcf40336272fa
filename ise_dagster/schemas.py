"""Polars schemas of every stored table, declared once."""

import polars as pl

from ise_dagster.taxonomy.models import COMPLEXITIES, Persona

Complexity = pl.Enum(list(COMPLEXITIES))

PERSONA = pl.Struct({name: pl.String for name in Persona.__dataclass_fields__})

INTENTS = pl.Schema(
    {
        "intent_id": pl.String,
        "domain": pl.String,
        "natural_language_intent": pl.String,
        "domains": pl.List(pl.String),
        "tasks": pl.List(pl.String),
        "tools": pl.List(pl.String),
        "persona": PERSONA,
        "complexity": Complexity,
        "sample_seed": pl.Int64,
        "writer": pl.String,
        "taxonomy_version": pl.String,
    }
)

INTENT_POOL = pl.Schema(
    {
        "metric": pl.String,
        "key": pl.String,
        "value": pl.Float64,
    }
)

# What identifies a trajectory and the intent behind it, in every table that holds one.
TRAJECTORY = {
    "trajectory_id": pl.String,
    "date": pl.String,
    "domain": pl.String,
    "intent_ids": pl.List(pl.String),
    "persona": PERSONA,
    "domains": pl.List(pl.String),
    "tasks": pl.List(pl.String),
    "complexity": Complexity,
}

DIALOGUES = pl.Schema(
    {
        **TRAJECTORY,
        "fixture_seeds": pl.List(pl.Int64),
        "status": pl.String,  # the values: COLUMN_DOCS below
        "is_success": pl.Boolean,
        "messages": pl.String,  # JSON: OpenAI chat messages
        "tools": pl.String,  # JSON: OpenAI function schemas
        "user_turns": pl.Int64,
        "total_turns": pl.Int64,
        "tool_calls": pl.Int64,
        "distinct_tools": pl.Int64,
        "role_drift_turns": pl.Int64,
        "turn_kinds": pl.List(pl.String),
        "final_output": pl.String,
        "attempts": pl.Int64,
        "duration_s": pl.Float64,
        "generator": pl.String,
        "user_model": pl.String,  # "offline" for the embedded roles
        "agent_model": pl.String,
        "error": pl.String,
        # LLM accounting for this trajectory (zeros for the offline backend).
        "llm_calls": pl.Int64,
        "llm_cached_calls": pl.Int64,
        "prompt_tokens": pl.Int64,
        "completion_tokens": pl.Int64,
        "cost_usd": pl.Float64,
        "malformed_tool_calls": pl.Int64,
    }
)

STEP = pl.Struct(
    {
        "index": pl.Int64,
        "task_id": pl.String,
        "tool": pl.String,
        "arguments": pl.String,
        "ok": pl.Boolean,
        "exit_code": pl.Int64,
        "stdout": pl.String,
        "stderr": pl.String,
        # The tool message the replay produced, exactly as an agent would see it.
        "observation": pl.String,
        "duration_ms": pl.Float64,
        "timed_out": pl.Boolean,
        "matches_stage2": pl.Boolean,
        "label": pl.String,  # ok | failed | recovered
    }
)

EXECUTED_TRACES = pl.Schema(
    {
        "trajectory_id": pl.String,
        "date": pl.String,
        "domain": pl.String,
        "intent_ids": pl.List(pl.String),
        "label": pl.String,  # verified | failed | non_reproducible
        "steps": pl.List(STEP),
        "n_steps": pl.Int64,
        "n_failed": pl.Int64,
        "n_recovered": pl.Int64,
        "n_mismatched": pl.Int64,
        "task_verdicts": pl.List(
            pl.Struct({"task_id": pl.String, "passed": pl.Boolean, "reason": pl.String})
        ),
        "snapshot_files": pl.Int64,
        "snapshot_bytes": pl.Int64,
        "snapshot_digest": pl.String,
        "attempts": pl.Int64,
        "replay_s": pl.Float64,
    }
)

# Training records. `arguments` and `parameters` stay JSON strings: Arrow would otherwise
# unify every tool's argument keys into one struct and load each call with the others' keys
# as nulls. `ise_dagster.sft.records.chat_inputs` turns a loaded row into template input.
TOOL_CALL = pl.Struct(
    {
        "id": pl.String,
        "type": pl.String,
        "function": pl.Struct({"name": pl.String, "arguments": pl.String}),
    }
)
MESSAGE = pl.Struct(
    {
        "role": pl.String,
        "content": pl.String,
        "tool_calls": pl.List(TOOL_CALL),
        "tool_call_id": pl.String,
        "name": pl.String,
    }
)
TOOL = pl.Struct(
    {
        "type": pl.String,
        "function": pl.Struct(
            {"name": pl.String, "description": pl.String, "parameters": pl.String}
        ),
    }
)

SFT_DATASET = pl.Schema(
    {
        "messages": pl.List(MESSAGE),
        "tools": pl.List(TOOL),
        **TRAJECTORY,
        "status": pl.String,
        "label": pl.String,
        "is_success": pl.Boolean,
        "total_steps": pl.Int64,
        "step_labels": pl.List(pl.String),
        "user_turns": pl.Int64,
        "total_turns": pl.Int64,
        "distinct_tools": pl.Int64,
        "parallel_call_turns": pl.Int64,
        "approx_tokens": pl.Int64,
        "content_hash": pl.String,
        "generator": pl.String,
        "user_model": pl.String,
        "agent_model": pl.String,
    }
)

# One row per task attempted by `agent_benchmark` (stages/agent_bench.py).
AGENT_BENCH = pl.Schema(
    {
        "task_id": pl.String,
        "domain": pl.String,
        "passed": pl.Boolean,
        "status": pl.String,
        "reason": pl.String,
        "user_turns": pl.Int64,
        "tool_calls": pl.Int64,
        "malformed_tool_calls": pl.Int64,
        "llm_calls": pl.Int64,
        "prompt_tokens": pl.Int64,
        "completion_tokens": pl.Int64,
        "cost_usd": pl.Float64,
        "duration_s": pl.Float64,
        "agent_model": pl.String,
        "user_model": pl.String,
    }
)

# Column descriptions the IO manager attaches to a table's schema in the Dagster UI.
_TRAJECTORY_DOCS = {
    "trajectory_id": "content hash of the intent, date and seeds: stable across re-runs",
    "date": "the date partition",
    "domain": "the primary domain (the domain partition)",
    "intent_ids": "the Stage 1 intents this trajectory serves",
    "persona": "who the simulated user is: name, industry, role, experience, tone, layout",
    "domains": "the 2-3 domains the intent spans",
    "tasks": "task ids from the task library, in the order the user delegates them",
    "complexity": "simple | medium | complex",
}
COLUMN_DOCS: dict[str, dict[str, str]] = {
    "intents": {
        "intent_id": "content hash of the sampled tuple and text",
        "domain": "the primary domain (the partition)",
        "natural_language_intent": "the request, in the persona's voice",
        "domains": "the 2-3 domains the intent spans, primary first",
        "tasks": "3-6 task ids from those domains",
        "tools": "the tools the tasks need",
        "persona": _TRAJECTORY_DOCS["persona"],
        "complexity": _TRAJECTORY_DOCS["complexity"],
        "sample_seed": "seed of the sampling round that drew the tuple",
        "writer": "what wrote the text: offline writer or model",
    },
    "intent_pool": {
        "metric": "unique_intents | vendi_score | cross_domain_near_dup_rate | by_domain | "
        "by_task | by_complexity",
        "key": "the domain, task or complexity for by_* metrics; empty for headline figures",
        "value": "the figure (a count for by_* metrics)",
    },
    "dialogues": {
        **_TRAJECTORY_DOCS,
        "fixture_seeds": "per task, the seed of the files seeded into the workspace",
        "status": "completed | invalid_intent | fixture_error | context_length | "
        "user_invalid_output | llm_rejected | premature_completion | user_refused | "
        "repeated_failing_call | malformed_answer (turn-capped dialogues are counted, not kept)",
        "is_success": "the user simulator's verdict at the end of the dialogue",
        "messages": "JSON string: the OpenAI chat messages; tool messages carry name and success",
        "tools": "JSON string: the OpenAI function schemas the agent was offered",
        "user_turns": "user messages after the system prompt",
        "total_turns": "all messages but the system prompt",
        "tool_calls": "tool calls the agent made",
        "distinct_tools": "different tools among them",
        "role_drift_turns": "user turns that broke the user role (blocking check)",
        "turn_kinds": "per user turn: request | follow_up | correction",
        "attempts": "tries after sandbox failures (1 = first try)",
        "duration_s": "wall time of the dialogue",
        "generator": "user simulator + agent that wrote the dialogue",
        "error": "why the dialogue was not completed",
        "prompt_tokens": "model tokens in (0 offline)",
        "completion_tokens": "model tokens out (0 offline)",
        "cost_usd": "cost estimate from the configured prices",
        "malformed_tool_calls": "calls whose arguments were not a JSON object",
    },
    "executed_traces": {
        "trajectory_id": _TRAJECTORY_DOCS["trajectory_id"],
        "label": "verified (every task verifier passed, outcomes reproduced) | failed | "
        "non_reproducible",
        "steps": "every tool call replayed in a fresh workspace, with its observation and a "
        "label: ok | failed | recovered",
        "n_steps": "tool calls replayed",
        "n_failed": "steps that failed and were not recovered",
        "n_recovered": "failed steps a later step of the same task fixed",
        "n_mismatched": "steps whose output differs from what Stage 2 observed",
        "task_verdicts": "per task: did its verifier pass on the replayed workspace, and why",
        "snapshot_digest": "sha256 of the final workspace files",
        "replay_s": "wall time of the replay",
    },
    "sft_dataset": {
        "messages": "OpenAI chat messages; tool contents are Stage 3's replayed output; "
        "tool_calls[].function.arguments is a JSON string",
        "tools": "OpenAI function tools; function.parameters is a JSON-schema string",
        "label": "Stage 3 label: verified | failed | non_reproducible",
        "total_steps": "tool calls in the trajectory",
        "step_labels": "per tool call, in order: ok | failed | recovered (Stage 3)",
        "parallel_call_turns": "assistant messages with more than one tool call",
        "approx_tokens": "length estimate: characters of the JSON record / 4",
        "content_hash": "sha256 of the messages: equal hashes are duplicate trajectories",
        "generator": "user simulator + agent that wrote the dialogue",
    },
    "agent_benchmark": {
        "task_id": "the task attempted, as a one-task intent in a persona's words",
        "passed": "the task's verifier accepted the workspace after the dialogue (pass@1)",
        "status": "how the dialogue ended (see dialogues.status)",
        "reason": "why it did not pass: the verifier's words, or the dialogue's error",
        "tool_calls": "tool calls the agent sent",
        "malformed_tool_calls": "of those, calls that were not well formed (not run)",
        "duration_s": "wall time of the attempt",
    },
}
