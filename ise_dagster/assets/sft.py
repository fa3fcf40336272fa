"""The end of the road: `sft_dataset` (training records per date|domain) and `sft_export`
(a date's records as OpenAI JSONL, Hugging Face Parquet and a dataset card)."""

from pathlib import Path

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetIn,
    MaterializeResult,
    MetadataValue,
    MultiToSingleDimensionPartitionMapping,
    Output,
    asset,
)

from ise_dagster.config import SftDatasetConfig, SftExportConfig
from ise_dagster.io.parquet import data_dir
from ise_dagster.partitions import daily_partitions, date_domain_partitions
from ise_dagster.sft.card import length_summary, stats_table
from ise_dagster.sft.export import MANIFEST, export_dataset
from ise_dagster.stages.report import counts_table, markdown_table, sample_trajectory
from ise_dagster.stages.sft import SftPolicy, build_sft_dataset


@asset(
    partitions_def=date_domain_partitions,
    io_manager_key="parquet_io_manager",
    group_name="stage4_datasets",
    kinds={"parquet"},
)
def sft_dataset(
    context: AssetExecutionContext,
    config: SftDatasetConfig,
    dialogues: pl.DataFrame,
    executed_traces: pl.DataFrame,
) -> Output[pl.DataFrame]:
    """Training records: the trajectories the policy keeps (by default completed, verified,
    well-formed, within the token budget), with Stage 3's replayed observations as tool
    results and the step labels beside them. Every dropped trajectory is counted by reason."""
    policy = SftPolicy(
        statuses=tuple(config.keep_statuses),
        labels=tuple(config.keep_labels),
        max_tokens=config.max_tokens,
        keep_malformed_calls=config.keep_malformed_calls,
    )
    built = build_sft_dataset(dialogues, executed_traces, policy)
    frame = built.frame
    for reason, ids in built.examples.items():
        context.log.info(f"dropped {built.dropped[reason]} ({reason}), e.g. {', '.join(ids)}")
    context.log.info(f"kept {frame.height} of {dialogues.height} trajectories")
    lengths = length_summary(frame["approx_tokens"])
    return Output(
        frame,
        metadata={
            "records": frame.height,
            "dropped": sum(built.dropped.values()),
            **{f"dropped_{reason}": n for reason, n in sorted(built.dropped.items())},
            "tokens_min": lengths["min"],
            "tokens_median": lengths["median"],
            "tokens_p95": lengths["p95"],
            "tokens_max": lengths["max"],
            "summary": MetadataValue.md(_summary(frame, built.dropped, lengths)),
            "sample_trajectory": MetadataValue.md(_sample(frame)),
        },
    )


def _sample(frame: pl.DataFrame) -> str:
    if not frame.height:
        return "No records."
    row = frame.row(0, named=True)
    return f"**{row['trajectory_id']}** ({row['label']})\n\n" + sample_trajectory(row["messages"])


def _summary(frame: pl.DataFrame, dropped: dict[str, int], lengths: dict[str, int]) -> str:
    parts = [f"**{frame.height} records**, {sum(dropped.values())} trajectories dropped."]
    if dropped:
        parts.append(markdown_table(["dropped because", "trajectories"], sorted(dropped.items())))
    if frame.height:
        parts += [stats_table(frame), counts_table(frame, "label")]
    parts.append(markdown_table(["tokens (chars / 4)", "value"], lengths.items()))
    return "\n\n".join(parts)


@asset(
    partitions_def=daily_partitions,
    ins={
        "sft_dataset": AssetIn(
            partition_mapping=MultiToSingleDimensionPartitionMapping(
                partition_dimension_name="date"
            ),
            metadata={"allow_missing_partitions": True},  # domains not run that day
        )
    },
    group_name="stage4_datasets",
    kinds={"parquet", "json"},
)
def sft_export(
    context: AssetExecutionContext,
    config: SftExportConfig,
    sft_dataset: dict[str, pl.DataFrame],
) -> MaterializeResult:
    """A date's records, every domain together, as files trainers load: OpenAI fine-tuning
    JSONL, Hugging Face Parquet and a dataset card (README.md), under
    `<data dir>/exports/<date>/` unless `out_dir` says otherwise."""
    date = context.partition_key
    out = Path(config.out_dir or Path(data_dir()) / "exports" / date)
    # Replaces its own earlier export; a directory holding anything else is refused.
    summary = export_dataset(
        (sft_dataset[k] for k in sorted(sft_dataset)),
        out,
        formats=("openai", "hf") if config.format == "both" else (config.format,),
        overwrite=(out / MANIFEST).exists(),
        split_parallel=config.split_parallel_calls,
        title=f"ISE trajectories {date}",
    )
    context.log.info(f"exported {summary.records} records to {summary.out}")
    return MaterializeResult(
        metadata={
            "records": summary.records,
            "partitions": len(sft_dataset),
            "path": MetadataValue.path(str(summary.out)),
            "files": MetadataValue.md("\n".join(f"- `{f}`" for f in summary.files)),
            "records_per_s": round(summary.records / max(summary.seconds, 1e-9), 1),
            "dataset_card": MetadataValue.md((summary.out / "README.md").read_text()),
        }
    )
