"""Partition-aware checks on `executed_traces`: is the data really execution-grounded?"""

import polars as pl
from dagster import AssetCheckResult, AssetCheckSeverity, AssetIn, asset_check

from ise_dagster.assets.dialogues import executed_traces
from ise_dagster.checks.dialogues import _completed
from ise_dagster.config import TraceTargets
from ise_dagster.partitions import date_domain_partitions


@asset_check(
    asset=executed_traces,
    partitions_def=date_domain_partitions,
    blocking=True,
    additional_ins={"dialogues": AssetIn("dialogues")},
)
def every_tool_call_executed(
    executed_traces: pl.DataFrame, dialogues: pl.DataFrame
) -> AssetCheckResult:
    want = dict(_completed(dialogues).select("trajectory_id", "tool_calls").iter_rows())
    got = dict(executed_traces.select("trajectory_id", "n_steps").iter_rows())
    missing = [t for t in want if t not in got]
    short = [t for t, n in want.items() if t in got and got[t] != n]
    return AssetCheckResult(
        passed=not missing and not short,
        metadata={
            "dialogues": len(want),
            "missing_traces": len(missing),
            "step_count_mismatch": len(short),
        },
    )


def _rate(frame: pl.DataFrame, expr: pl.Expr) -> float:
    return float(frame.select(expr.mean()).item() or 0.0) if frame.height else 0.0


@asset_check(asset=executed_traces, partitions_def=date_domain_partitions)
def reproducible_rate(config: TraceTargets, executed_traces: pl.DataFrame) -> AssetCheckResult:
    rate = _rate(executed_traces, pl.col("label") != "non_reproducible")
    return AssetCheckResult(
        severity=AssetCheckSeverity.WARN,
        passed=executed_traces.height > 0 and rate >= config.min_reproducible_rate,
        metadata={"rate": rate, "min": config.min_reproducible_rate, "n": executed_traces.height},
    )


@asset_check(asset=executed_traces, partitions_def=date_domain_partitions)
def verified_success_rate(config: TraceTargets, executed_traces: pl.DataFrame) -> AssetCheckResult:
    rate = _rate(executed_traces, pl.col("label") == "verified")
    return AssetCheckResult(
        severity=AssetCheckSeverity.WARN,
        passed=executed_traces.height > 0 and rate >= config.min_verified_rate,
        metadata={"rate": rate, "min": config.min_verified_rate, "n": executed_traces.height},
    )


@asset_check(asset=executed_traces, partitions_def=date_domain_partitions)
def failure_recovery_present(
    config: TraceTargets, executed_traces: pl.DataFrame
) -> AssetCheckResult:
    share = _rate(executed_traces, pl.col("n_recovered") > 0)
    return AssetCheckResult(
        severity=AssetCheckSeverity.WARN,
        passed=executed_traces.height > 0 and share >= config.min_recovery_share,
        metadata={
            "share_with_recovery": share,
            "min": config.min_recovery_share,
            "recovered_steps": int(executed_traces["n_recovered"].sum()),
        },
    )
