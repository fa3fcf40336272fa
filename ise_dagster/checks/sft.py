"""Partition-aware checks on `sft_dataset`: is every record something a trainer can use?"""

import polars as pl
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetIn,
    asset_check,
)

from ise_dagster.assets.sft import sft_dataset
from ise_dagster.checks.outcome import BLOCKING, WARNS, outcome
from ise_dagster.config import SftTargets
from ise_dagster.partitions import date_domain_partitions
from ise_dagster.sft.card import length_summary
from ise_dagster.sft.templates import TEMPLATES, render_problems


@asset_check(
    asset=sft_dataset,
    partitions_def=date_domain_partitions,
    additional_ins={"executed_traces": AssetIn("executed_traces")},
    description="Non-empty whenever Stage 3 verified a trajectory. With none verified upstream "
    "the dataset is empty and valid, and this warns. Not blocking.",
)
def sft_dataset_not_empty(
    context: AssetCheckExecutionContext, sft_dataset: pl.DataFrame, executed_traces: pl.DataFrame
) -> AssetCheckResult:
    verified = int((executed_traces["label"] == "verified").sum())
    return outcome(
        context,
        sft_dataset.height > 0,
        f"{sft_dataset.height} records, {verified} verified upstream",
        "> 0 records",
        severity=AssetCheckSeverity.WARN if verified == 0 else AssetCheckSeverity.ERROR,
        records=sft_dataset.height,
        verified_upstream=verified,
    )


@asset_check(
    asset=sft_dataset,
    partitions_def=date_domain_partitions,
    blocking=True,
    description="Every record renders through every shipped chat template ("
    + ", ".join(TEMPLATES)
    + "), with one result per tool call and no empty assistant turn. "
    + BLOCKING,
)
def sft_records_render(
    context: AssetCheckExecutionContext, sft_dataset: pl.DataFrame
) -> AssetCheckResult:
    bad: dict[str, list[str]] = {}
    for row in sft_dataset.select("trajectory_id", "messages", "tools").iter_rows(named=True):
        problems = render_problems(row)
        if problems:
            bad[row["trajectory_id"]] = problems[:3]
    return outcome(
        context,
        not bad,
        f"{len(bad)} of {sft_dataset.height} records fail to render",
        "0",
        templates=", ".join(TEMPLATES),
        failing_records=len(bad),
        examples=str(dict(list(bad.items())[:3])),
    )


@asset_check(
    asset=sft_dataset,
    partitions_def=date_domain_partitions,
    blocking=True,
    description="No trajectory twice in the partition (sha256 of its messages). " + BLOCKING,
)
def sft_no_duplicates(
    context: AssetCheckExecutionContext, sft_dataset: pl.DataFrame
) -> AssetCheckResult:
    duplicates = sft_dataset.height - sft_dataset["content_hash"].n_unique()
    return outcome(context, duplicates == 0, f"{duplicates} duplicates", "0", duplicates=duplicates)


@asset_check(
    asset=sft_dataset,
    partitions_def=date_domain_partitions,
    description="Every record within the token budget (characters / 4); reports min, median, "
    "p95 and max. " + WARNS,
)
def sft_token_lengths(
    context: AssetCheckExecutionContext, config: SftTargets, sft_dataset: pl.DataFrame
) -> AssetCheckResult:
    lengths = length_summary(sft_dataset["approx_tokens"])
    return outcome(
        context,
        lengths["max"] <= config.max_tokens,
        f"longest record {lengths['max']:,} tokens",
        f"<= {config.max_tokens:,}",
        severity=AssetCheckSeverity.WARN,
        **lengths,
        tokenizer="characters / 4",
    )
