"""Stage 2 and 3 assets: `dialogues` and `executed_traces`, by date|domain."""

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetIn,
    Backoff,
    Jitter,
    MetadataValue,
    MultiToSingleDimensionPartitionMapping,
    Output,
    RetryPolicy,
    asset,
)

from ise_dagster import schemas
from ise_dagster.config import DialoguesConfig, ExecutedTracesConfig
from ise_dagster.partitions import START_DATE, date_domain_partitions
from ise_dagster.resources import LLMResource, TaxonomyResource
from ise_dagster.sandbox import SandboxResource
from ise_dagster.stages.dialogues import (
    LLM_FAILURE_STATUSES,
    DialogueSettings,
    select_intents,
    simulate_partition,
)
from ise_dagster.stages.traces import replay_partition

# Sandbox and model failures are transient far more often than not: retry the step.
TRANSIENT_RETRY = RetryPolicy(
    max_retries=3, delay=5, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
)


def _date_domain(context: AssetExecutionContext) -> tuple[str, str]:
    keys = context.partition_key.keys_by_dimension  # type: ignore[attr-defined]
    return keys["date"], keys["domain"]


@asset(
    partitions_def=date_domain_partitions,
    ins={
        "intents": AssetIn(
            partition_mapping=MultiToSingleDimensionPartitionMapping(
                partition_dimension_name="domain"
            )
        )
    },
    io_manager_key="parquet_io_manager",
    group_name="stage2_dialogues",
    retry_policy=TRANSIENT_RETRY,
    kinds={"docker", "parquet"},
    pool="llm",  # with a pool limit, parallel runs share one cap on model traffic
)
def dialogues(
    context: AssetExecutionContext,
    config: DialoguesConfig,
    intents: pl.DataFrame,
    taxonomy: TaxonomyResource,
    llm: LLMResource,
    sandbox: SandboxResource,
) -> Output[pl.DataFrame]:
    """Multi-turn dialogues: a role-locked user delegates each intent's tasks turn by turn to
    an agent whose tool calls run live in a fresh sandbox workspace. OpenAI chat format."""
    date, domain = _date_domain(context)
    chosen = select_intents(intents, date, config.dialogues_per_partition, config.seed, START_DATE)
    context.log.info(f"{date}|{domain}: simulating {chosen.height} dialogues ({llm.backend})")
    llm.preflight()
    queue_before = sandbox.stats()
    frame, counts = simulate_partition(
        chosen,
        date,
        taxonomy.load(),
        sandbox,
        DialogueSettings(max_user_turns=config.max_user_turns),
        concurrency=config.concurrency,
        progress=context.log.info,
        user_factory=llm.user_simulator_factory(),
        agent_factory=llm.agent_factory(),
        checkpoint=llm.dialogue_checkpoint(),
    )
    done = frame.filter(status="completed")
    return Output(
        frame,
        metadata={
            "dialogues": frame.height,
            "completed": done.height,
            "discarded_turn_cap": counts.get("turn_cap", 0),
            "invalid_intents": counts.get("invalid_intent", 0),
            "fixture_errors": counts.get("fixture_error", 0),
            "role_drift_turns": int(frame["role_drift_turns"].sum()),
            "user_turns_mean": _mean(done, "user_turns"),
            "total_turns_mean": _mean(done, "total_turns"),
            "tool_calls_mean": _mean(done, "tool_calls"),
            "distinct_tools_mean": _mean(done, "distinct_tools"),
            "user_success_rate": _mean(done, "is_success"),
            "infra_retries": int((frame["attempts"] - 1).clip(lower_bound=0).sum()),
            "seconds_per_dialogue": _mean(frame, "duration_s"),
            "generator": frame["generator"].drop_nulls().first() or "",
            "resumed_from_checkpoint": counts.get("resumed", 0),
            "labeled_llm_failures": sum(counts.get(s, 0) for s in LLM_FAILURE_STATUSES),
            "malformed_tool_calls": int(frame["malformed_tool_calls"].sum()),
            "cost_usd_estimate": float(frame["cost_usd"].sum()),
            **_queue_metadata(sandbox, queue_before),
            **llm.metadata(),
        },
    )


@asset(
    partitions_def=date_domain_partitions,
    io_manager_key="parquet_io_manager",
    group_name="stage3_traces",
    retry_policy=TRANSIENT_RETRY,
    kinds={"docker", "parquet"},
)
def executed_traces(
    context: AssetExecutionContext,
    config: ExecutedTracesConfig,
    dialogues: pl.DataFrame,
    sandbox: SandboxResource,
) -> Output[pl.DataFrame]:
    """Every tool call of every completed dialogue replayed in a fresh workspace, each step
    labeled ok / failed / recovered and each trajectory verified / failed / non_reproducible."""
    todo = dialogues.filter(status="completed").to_dicts()
    context.log.info(f"replaying {len(todo)} dialogues")
    queue_before = sandbox.stats()
    rows = replay_partition(todo, sandbox, config.concurrency)
    frame = pl.DataFrame(rows, schema=schemas.EXECUTED_TRACES)
    labels = dict(frame["label"].value_counts().iter_rows()) if frame.height else {}
    return Output(
        frame,
        metadata={
            "trajectories": frame.height,
            "verified": labels.get("verified", 0),
            "failed": labels.get("failed", 0),
            "non_reproducible": labels.get("non_reproducible", 0),
            "steps": int(frame["n_steps"].sum()),
            "failed_steps": int(frame["n_failed"].sum()),
            "recovered_steps": int(frame["n_recovered"].sum()),
            "mismatched_observations": int(frame["n_mismatched"].sum()),
            "seconds_per_replay": _mean(frame, "replay_s"),
            "label_preview": MetadataValue.json(labels),
            **_queue_metadata(sandbox, queue_before),
        },
    )


def _queue_metadata(sandbox: SandboxResource, before: dict[str, float]) -> dict[str, float]:
    """Workspaces this step took and how long it queued for them (max_live_workspaces)."""
    after = sandbox.stats()
    n = after["acquired"] - before["acquired"]
    waited = after["queue_wait_s"] - before["queue_wait_s"]
    return {
        "workspaces": int(n),
        "workspace_queue_wait_s_mean": round(waited / n, 3) if n else 0.0,
        "workspace_queue_wait_s_max": round(after["max_queue_wait_s"], 3),
    }


def _mean(frame: pl.DataFrame, column: str) -> float:
    return float(frame[column].cast(pl.Float64).mean() or 0.0) if frame.height else 0.0
