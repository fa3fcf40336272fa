"""Partition-aware checks on `sft_dataset`: is every record something a trainer can use?"""

import polars as pl
from dagster import AssetCheckResult, AssetCheckSeverity, AssetIn, asset_check

from ise_dagster.assets.sft import sft_dataset
from ise_dagster.config import SftTargets
from ise_dagster.partitions import date_domain_partitions
from ise_dagster.sft.card import length_summary
from ise_dagster.sft.templates import TEMPLATES, render_problems


@asset_check(
    asset=sft_dataset,
    partitions_def=date_domain_partitions,
    additional_ins={"executed_traces": AssetIn("executed_traces")},
    description="Non-empty whenever Stage 3 verified a trajectory. With none verified upstream "
    "the dataset is empty and valid, and this warns.",
)
def sft_dataset_not_empty(
    sft_dataset: pl.DataFrame, executed_traces: pl.DataFrame
) -> AssetCheckResult:
    verified = int((executed_traces["label"] == "verified").sum())
    return AssetCheckResult(
        passed=sft_dataset.height > 0,
        severity=AssetCheckSeverity.WARN if verified == 0 else AssetCheckSeverity.ERROR,
        metadata={"records": sft_dataset.height, "verified_upstream": verified},
    )


@asset_check(
    asset=sft_dataset,
    partitions_def=date_domain_partitions,
    blocking=True,
    description="Every record renders through every shipped chat template ("
    + ", ".join(TEMPLATES)
    + "), with one result per tool call and no empty assistant turn.",
)
def sft_records_render(sft_dataset: pl.DataFrame) -> AssetCheckResult:
    bad: dict[str, list[str]] = {}
    for row in sft_dataset.select("trajectory_id", "messages", "tools").iter_rows(named=True):
        problems = render_problems(row)
        if problems:
            bad[row["trajectory_id"]] = problems[:3]
    return AssetCheckResult(
        passed=not bad,
        metadata={
            "records": sft_dataset.height,
            "templates": ", ".join(TEMPLATES),
            "failing_records": len(bad),
            "examples": str(dict(list(bad.items())[:3])),
        },
    )


@asset_check(
    asset=sft_dataset,
    partitions_def=date_domain_partitions,
    blocking=True,
    description="No trajectory twice in the partition (sha256 of its messages).",
)
def sft_no_duplicates(sft_dataset: pl.DataFrame) -> AssetCheckResult:
    duplicates = sft_dataset.height - sft_dataset["content_hash"].n_unique()
    return AssetCheckResult(passed=duplicates == 0, metadata={"duplicates": duplicates})


@asset_check(
    asset=sft_dataset,
    partitions_def=date_domain_partitions,
    description="Every record within the token budget (characters / 4); reports min, median, "
    "p95 and max.",
)
def sft_token_lengths(config: SftTargets, sft_dataset: pl.DataFrame) -> AssetCheckResult:
    lengths = length_summary(sft_dataset["approx_tokens"])
    return AssetCheckResult(
        passed=lengths["max"] <= config.max_tokens,
        severity=AssetCheckSeverity.WARN,
        metadata={**lengths, "budget": config.max_tokens, "tokenizer": "characters / 4"},
    )
