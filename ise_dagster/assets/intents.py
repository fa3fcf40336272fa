"""Stage 1 assets: `intents` per domain and the pool-wide `intent_pool` report."""

import numpy as np
import polars as pl
from dagster import AssetExecutionContext, AssetIn, MetadataValue, Output, asset

from ise_dagster import schemas
from ise_dagster.config import (
    PAPER_UNIQUE_INTENTS,
    PAPER_VENDI_MPNET,
    IntentPoolConfig,
    IntentsConfig,
)
from ise_dagster.diversity.dedup import nearest_neighbour
from ise_dagster.diversity.vendi import vendi_score
from ise_dagster.partitions import domain_partitions
from ise_dagster.resources import EmbedderResource, LLMResource, TaxonomyResource
from ise_dagster.stages import report
from ise_dagster.stages.intents import IntentBatch, generate_intents


@asset(
    partitions_def=domain_partitions,
    io_manager_key="parquet_io_manager",
    group_name="stage1_intents",
    kinds={"polars", "parquet"},
    pool="llm",  # with a pool limit, parallel runs share one cap on model traffic
)
def intents(
    context: AssetExecutionContext,
    config: IntentsConfig,
    taxonomy: TaxonomyResource,
    llm: LLMResource,
    embedder: EmbedderResource,
) -> Output[pl.DataFrame]:
    """Natural-language intents for one primary domain: sampled 4D tuples, written in the
    persona's voice, exact- and near-deduplicated, with the partition's Vendi score."""
    tax = taxonomy.load()
    emb = embedder.get()
    llm.preflight()
    writer = llm.intent_writer(tax)
    domain = context.partition_key
    context.log.info(
        f"{domain}: sampling {config.intents_per_domain} intents with {writer.name} writer, "
        f"{emb.name} embeddings"
    )
    batch = generate_intents(
        tax,
        domain,
        target=config.intents_per_domain,
        seed=config.seed,
        complexity_mix=config.complexity_mix.as_dict(),
        writer=writer,
        embedder=emb,
        near_dup_threshold=config.near_dup_threshold,
    )
    frame = batch.frame
    if frame.height < config.intents_per_domain:
        context.log.warning(
            f"{domain}: pool saturated at {frame.height} unique intents "
            f"(asked for {config.intents_per_domain}) after {batch.rounds} rounds"
        )
    context.log.info(
        f"{domain}: kept {frame.height} of {batch.sampled} sampled "
        f"({batch.dropped_exact} exact, {batch.dropped_near} near duplicates); "
        f"Vendi {batch.vendi:.2f}"
    )
    mix = frame["complexity"].value_counts().sort("complexity")
    return Output(
        frame,
        metadata={
            "sampled": batch.sampled,
            "kept": frame.height,
            "dropped_exact_duplicates": batch.dropped_exact,
            "dropped_near_duplicates": batch.dropped_near,
            "surplus_beyond_target": batch.surplus,
            "near_dup_threshold": config.near_dup_threshold,
            "sampling_rounds": batch.rounds,
            "vendi_score": MetadataValue.float(round(batch.vendi, 2)),
            "embedder": emb.name,
            "writer": f"{writer.name}@{writer.version}",
            "taxonomy_version": tax.version,
            "complexity_counts": {r["complexity"]: r["count"] for r in mix.iter_rows(named=True)},
            "writer_failures": batch.writer_failures,
            **llm.metadata(),
            "seconds_by_phase": {k: round(v, 3) for k, v in batch.seconds.items()},
            "summary": MetadataValue.md(_intents_summary(frame, batch, config, emb.name)),
            "preview": MetadataValue.md(_preview(frame)),
        },
    )


def _intents_summary(
    frame: pl.DataFrame, batch: IntentBatch, config: IntentsConfig, embedder: str
) -> str:
    n = max(frame.height, 1)
    mix = dict(frame["complexity"].cast(pl.String).value_counts().iter_rows())
    want = config.complexity_mix.as_dict()
    figures = [
        ("unique intents", f"{frame.height:,}", f"{config.intents_per_domain:,} (paper: "
         f"{PAPER_UNIQUE_INTENTS:,} over 10 domains)"),
        ("Vendi score", f"{batch.vendi:.2f} ({embedder})",
         f"pool of {PAPER_UNIQUE_INTENTS:,}: {PAPER_VENDI_MPNET} (all-mpnet-base-v2)"),
        ("sampled / kept", f"{batch.sampled:,} / {frame.height:,}", ""),
        ("dropped: exact / near duplicates", f"{batch.dropped_exact:,} / {batch.dropped_near:,}",
         f"near: cosine > {config.near_dup_threshold}"),
        *((f"complexity: {c}", f"{mix.get(c, 0) / n:.1%}", f"{want[c]:.0%}") for c in want),
    ]  # fmt: skip
    tasks = frame["tasks"].list.len().to_list()
    return "\n\n".join(
        [
            report.markdown_table(["figure", "this partition", "target"], figures),
            report.histogram(tasks, "tasks per intent", "intents"),
            "Vendi is only comparable at the same embedder and pool size.",
        ]
    )


def _preview(frame: pl.DataFrame, n: int = 3) -> str:
    parts = []
    for row in frame.head(n).iter_rows(named=True):
        who = f"{row['persona']['name']}, {row['persona']['role']}"
        parts.append(
            f"**{row['intent_id']}** ({row['complexity']}, {who})\n\n> "
            + row["natural_language_intent"].replace("\n", "\n> ")
        )
    return "\n\n".join(parts)


@asset(
    ins={"intents": AssetIn(metadata={"allow_missing_partitions": True})},
    io_manager_key="parquet_io_manager",
    group_name="stage1_intents",
    kinds={"polars", "parquet"},
)
def intent_pool(
    context: AssetExecutionContext,
    config: IntentPoolConfig,
    intents: dict[str, pl.DataFrame],
    embedder: EmbedderResource,
) -> Output[pl.DataFrame]:
    """Pool-wide figures over every materialized intents partition, to hold against the
    paper's 43,956 intents and Vendi 61.57: cross-domain near-duplicate rate, Vendi, and
    counts by domain, task and complexity."""
    pool = pl.concat(list(intents.values())) if intents else pl.DataFrame(schema=schemas.INTENTS)
    emb = embedder.get()
    vectors = emb.embed(pool["natural_language_intent"].to_list())
    groups = pool["domain"].to_numpy()
    cross = nearest_neighbour(vectors, groups) > config.near_dup_threshold if pool.height else []
    cross_rate = float(np.mean(cross)) if pool.height else 0.0
    vendi = vendi_score(vectors)
    stats = pool_stats(pool, vendi, cross_rate)
    context.log.info(
        f"pool: {pool.height} intents over {len(intents)} domains, Vendi {vendi:.2f} "
        f"({emb.name}), cross-domain near-duplicate rate {cross_rate:.4f}"
    )
    return Output(
        stats,
        metadata={
            "unique_intents": pool.height,
            "domains_present": sorted(intents),
            "vendi_score": MetadataValue.float(round(vendi, 2)),
            "cross_domain_near_dup_rate": MetadataValue.float(round(cross_rate, 4)),
            "embedder": emb.name,
            "paper_unique_intents": PAPER_UNIQUE_INTENTS,
            "paper_vendi_mpnet": PAPER_VENDI_MPNET,
            "distinct_tasks_used": pool["tasks"].explode().n_unique() if pool.height else 0,
            "summary": MetadataValue.md(_pool_summary(pool, vendi, cross_rate, emb.name)),
        },
    )


def _pool_summary(pool: pl.DataFrame, vendi: float, cross_rate: float, embedder: str) -> str:
    figures = [
        ("unique intents", f"{pool.height:,}", f"{PAPER_UNIQUE_INTENTS:,}"),
        ("Vendi score", f"{vendi:.2f} ({embedder})", f"{PAPER_VENDI_MPNET} (all-mpnet-base-v2)"),
        ("cross-domain near-duplicate rate", f"{cross_rate:.4f}", ""),
    ]
    return "\n\n".join(
        [
            report.markdown_table(["figure", "pool", "paper"], figures),
            report.counts_table(pool, "domain", "intents"),
            report.counts_table(pool.with_columns(pl.col("complexity").cast(pl.String)),
                                "complexity", "intents"),
        ]
    )  # fmt: skip


def pool_stats(pool: pl.DataFrame, vendi: float, cross_rate: float) -> pl.DataFrame:
    """The pool report as long rows of (metric, key, value)."""

    def counts(metric: str, column: pl.Expr) -> pl.DataFrame:
        return (
            pool.select(column.alias("key"))
            .group_by("key")
            .len()
            .select(
                pl.lit(metric).alias("metric"),
                pl.col("key").cast(pl.String),
                pl.col("len").cast(pl.Float64).alias("value"),
            )
            .sort("key")
        )

    headline = pl.DataFrame(
        {
            "metric": ["unique_intents", "vendi_score", "cross_domain_near_dup_rate"],
            "key": ["", "", ""],
            "value": [float(pool.height), vendi, cross_rate],
        },
        schema=schemas.INTENT_POOL,
    )
    return pl.concat(
        [
            headline,
            counts("by_domain", pl.col("domain")),
            counts("by_task", pl.col("tasks").explode()),
            counts("by_complexity", pl.col("complexity")),
        ]
    )
