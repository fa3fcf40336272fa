"""Partition-aware checks on `executed_traces`: is the data really execution-grounded?"""

import polars as pl
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetIn,
    asset_check,
)

from ise_dagster.assets.dialogues import executed_traces
from ise_dagster.checks.dialogues import _completed
from ise_dagster.checks.outcome import BLOCKING, WARNS, outcome
from ise_dagster.config import TraceTargets
from ise_dagster.partitions import date_domain_partitions


@asset_check(
    asset=executed_traces,
    partitions_def=date_domain_partitions,
    blocking=True,
    additional_ins={"dialogues": AssetIn("dialogues")},
    description="Every completed dialogue has a trace, with one replayed step per tool call. "
    + BLOCKING,
)
def every_tool_call_executed(
    context: AssetCheckExecutionContext, executed_traces: pl.DataFrame, dialogues: pl.DataFrame
) -> AssetCheckResult:
    want = dict(_completed(dialogues).select("trajectory_id", "tool_calls").iter_rows())
    got = dict(executed_traces.select("trajectory_id", "n_steps").iter_rows())
    missing = [t for t in want if t not in got]
    short = [t for t, n in want.items() if t in got and got[t] != n]
    return outcome(
        context,
        not missing and not short,
        f"{len(missing)} missing traces, {len(short)} with a different step count, "
        f"of {len(want)} dialogues",
        "0 and 0",
        dialogues=len(want),
        missing_traces=len(missing),
        step_count_mismatch=len(short),
    )


def _rate(frame: pl.DataFrame, expr: pl.Expr) -> float:
    return float(frame.select(expr.mean()).item() or 0.0) if frame.height else 0.0


@asset_check(
    asset=executed_traces,
    partitions_def=date_domain_partitions,
    description="Share of trajectories whose replay reproduced Stage 2's outcomes (each call's "
    "success and exit code) at least min_reproducible_rate (95%). " + WARNS,
)
def reproducible_rate(
    context: AssetCheckExecutionContext, config: TraceTargets, executed_traces: pl.DataFrame
) -> AssetCheckResult:
    rate = _rate(executed_traces, pl.col("label") != "non_reproducible")
    return outcome(
        context,
        executed_traces.height > 0 and rate >= config.min_reproducible_rate,
        f"{rate:.1%} of {executed_traces.height} reproducible",
        f">= {config.min_reproducible_rate:.0%}",
        severity=AssetCheckSeverity.WARN,
        rate=round(rate, 4),
        n=executed_traces.height,
    )


@asset_check(
    asset=executed_traces,
    partitions_def=date_domain_partitions,
    description="Share of trajectories labelled verified (every task's verifier passed on the "
    "replayed workspace and the outcomes reproduced) at least min_verified_rate (80%). " + WARNS,
)
def verified_success_rate(
    context: AssetCheckExecutionContext, config: TraceTargets, executed_traces: pl.DataFrame
) -> AssetCheckResult:
    rate = _rate(executed_traces, pl.col("label") == "verified")
    return outcome(
        context,
        executed_traces.height > 0 and rate >= config.min_verified_rate,
        f"{rate:.1%} of {executed_traces.height} verified",
        f">= {config.min_verified_rate:.0%}",
        severity=AssetCheckSeverity.WARN,
        rate=round(rate, 4),
        n=executed_traces.height,
    )


@asset_check(
    asset=executed_traces,
    partitions_def=date_domain_partitions,
    description="Share of trajectories holding a failed step that a later step fixed (the "
    "failure-and-recovery data agents learn from) at least min_recovery_share (50%). " + WARNS,
)
def failure_recovery_present(
    context: AssetCheckExecutionContext, config: TraceTargets, executed_traces: pl.DataFrame
) -> AssetCheckResult:
    share = _rate(executed_traces, pl.col("n_recovered") > 0)
    return outcome(
        context,
        executed_traces.height > 0 and share >= config.min_recovery_share,
        f"{share:.1%} of {executed_traces.height} with a recovered failure",
        f">= {config.min_recovery_share:.0%}",
        severity=AssetCheckSeverity.WARN,
        share_with_recovery=round(share, 4),
        recovered_steps=int(executed_traces["n_recovered"].sum()),
    )
