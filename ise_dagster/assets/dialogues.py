"""Stage 2 and 3 assets: `dialogues` and `executed_traces`, by date|domain."""

import contextlib
from collections.abc import Iterator

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetIn,
    Backoff,
    DagsterExecutionInterruptedError,
    Failure,
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
from ise_dagster.stages import report
from ise_dagster.stages.dialogues import (
    LLM_FAILURE_STATUSES,
    DialogueSettings,
    select_intents,
    simulate_partition,
)
from ise_dagster.stages.guards import DEGENERATE_STATUSES
from ise_dagster.stages.traces import replay_partition

# Sandbox and model failures are transient far more often than not: retry the step.
TRANSIENT_RETRY = RetryPolicy(
    max_retries=3, delay=5, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
)


@contextlib.contextmanager
def stop_on_interrupt() -> Iterator[None]:
    """Dagster turns an interrupt of a step that has a retry policy into a retry, so Ctrl-C
    of `make ui` or "Terminate" in the UI would start the partition over and the run would
    go on. An interrupt ends the step instead; re-run the partition to finish it."""
    try:
        yield
    except (DagsterExecutionInterruptedError, KeyboardInterrupt) as exc:
        raise Failure(
            "interrupted (Ctrl-C or run terminated); not retried", allow_retries=False
        ) from exc


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
    width = llm.dialogue_concurrency(config.concurrency)
    context.log.info(f"{date}|{domain}: simulating {chosen.height} dialogues, {width} at a time "
                     f"({llm.backend})")  # fmt: skip
    llm.preflight()
    sandbox.preflight()
    queue_before = sandbox.stats()
    with stop_on_interrupt():
        frame, counts = simulate_partition(
            chosen,
            date,
            taxonomy.load(),
            sandbox,
            DialogueSettings(max_user_turns=config.max_user_turns),
            concurrency=width,
            progress=context.log.info,
            user_factory=llm.user_simulator_factory(),
            agent_factory=llm.agent_factory(),
            checkpoint=llm.dialogue_checkpoint(),
            label=f"dialogues {date}|{domain} simulated",
        )
    done = frame.filter(status="completed")
    context.log.info(f"{date}|{domain}: {done.height} of {frame.height} dialogues completed")
    return Output(
        frame,
        metadata={
            "summary": MetadataValue.md(_dialogues_summary(frame, counts)),
            "sample_trajectory": MetadataValue.md(report.sample_dialogue(frame)),
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
            "labeled_degenerate": sum(counts.get(s, 0) for s in DEGENERATE_STATUSES),
            "malformed_tool_calls": int(frame["malformed_tool_calls"].sum()),
            "prompt_tokens": int(frame["prompt_tokens"].sum()),
            "completion_tokens": int(frame["completion_tokens"].sum()),
            "cost_usd_estimate": round(float(frame["cost_usd"].sum()), 4),
            **_queue_metadata(sandbox, queue_before),
            **llm.metadata(),
        },
    )


def _dialogues_summary(frame: pl.DataFrame, counts: dict[str, int]) -> str:
    done = frame.filter(status="completed")
    statuses = {k: v for k, v in counts.items() if k != "resumed"}
    return "\n\n".join(
        [
            f"**{done.height} of {sum(statuses.values())} dialogues completed** "
            "(statistics over the completed ones).",
            report.paper_table(frame),
            report.markdown_table(["status", "dialogues"], sorted(statuses.items())),
            report.histogram(done["user_turns"].to_list(), "user turns", "dialogues"),
            report.histogram(done["tool_calls"].to_list(), "tool calls", "dialogues"),
            report.usage_table(frame),
        ]
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
    date, domain = _date_domain(context)
    context.log.info(f"{date}|{domain}: replaying {len(todo)} dialogues")
    sandbox.preflight()
    queue_before = sandbox.stats()
    with stop_on_interrupt():
        rows = replay_partition(
            todo, sandbox, config.concurrency, context.log.info, f"replays {date}|{domain}"
        )
    frame = pl.DataFrame(rows, schema=schemas.EXECUTED_TRACES)
    labels = dict(frame["label"].value_counts().iter_rows()) if frame.height else {}
    return Output(
        frame,
        metadata={
            "summary": MetadataValue.md(_traces_summary(frame)),
            "sample_trajectory": MetadataValue.md(report.sample_replay(frame)),
            "trajectories": frame.height,
            "verified": labels.get("verified", 0),
            "failed": labels.get("failed", 0),
            "non_reproducible": labels.get("non_reproducible", 0),
            "steps": int(frame["n_steps"].sum()),
            "failed_steps": int(frame["n_failed"].sum()),
            "recovered_steps": int(frame["n_recovered"].sum()),
            "mismatched_observations": int(frame["n_mismatched"].sum()),
            "seconds_per_replay": _mean(frame, "replay_s"),
            **_queue_metadata(sandbox, queue_before),
        },
    )


def _traces_summary(frame: pl.DataFrame) -> str:
    steps = frame["steps"].explode().struct.field("label") if frame.height else pl.Series([])
    step_labels = pl.DataFrame({"step label": steps.cast(pl.String)})
    verified = int((frame["label"] == "verified").sum()) if frame.height else 0
    return "\n\n".join(
        [
            f"**{verified} of {frame.height} trajectories verified** by replay in fresh "
            "workspaces.",
            report.counts_table(frame, "label", "trajectories"),
            report.counts_table(step_labels, "step label", "tool calls"),
            report.histogram(frame["n_steps"].to_list(), "tool calls", "trajectories"),
        ]
    )


def _queue_metadata(sandbox: SandboxResource, before: dict[str, float]) -> dict[str, float]:
    """Workspaces this step took and how long it queued for them (max_live_workspaces)."""
    after = sandbox.stats()
    n = after["acquired"] - before["acquired"]
    waited = after["queue_wait_s"] - before["queue_wait_s"]
    return {
        "workspaces": int(n),
        "workspace_queue_wait_s_mean": round(waited / n, 2) if n else 0.0,
        "workspace_queue_wait_s_max": round(after["max_queue_wait_s"], 2),
    }


def _mean(frame: pl.DataFrame, column: str) -> float:
    """Rounded to what a person compares (the checks recompute exact figures)."""
    return round(float(frame[column].cast(pl.Float64).mean() or 0.0), 2) if frame.height else 0.0
