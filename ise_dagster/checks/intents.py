"""Partition-aware checks on `intents` and the pool-wide check on `intent_pool`.

Each check recomputes its figure from the stored rows rather than trusting the asset's
metadata, so a bad file fails the check even if the asset code was wrong.
"""

import numpy as np
import polars as pl
from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, asset_check

from ise_dagster.assets.intents import intent_pool, intents
from ise_dagster.config import IntentChecksConfig, IntentPoolTargets
from ise_dagster.diversity.dedup import nearest_neighbour
from ise_dagster.diversity.vendi import vendi_score
from ise_dagster.partitions import domain_partitions
from ise_dagster.resources import EmbedderResource, TaxonomyResource
from ise_dagster.taxonomy import COMPLEXITIES, Taxonomy


@asset_check(asset=intents, partitions_def=domain_partitions, blocking=True)
def intents_ids_unique(intents: pl.DataFrame) -> AssetCheckResult:
    dupes = intents.height - intents["intent_id"].n_unique()
    return AssetCheckResult(passed=dupes == 0, metadata={"duplicate_ids": dupes})


def invalid_rows(frame: pl.DataFrame, taxonomy: Taxonomy, domain: str) -> list[str]:
    """A reason per invalid row: wrong domain counts, tasks, persona or complexity."""
    problems = []
    for row in frame.iter_rows(named=True):
        domains, tasks = row["domains"], row["tasks"]
        why = []
        if not 2 <= len(domains) <= 3 or len(set(domains)) != len(domains):
            why.append(f"{len(domains)} domains")
        if domains[:1] != [domain] or row["domain"] != domain:
            why.append("primary domain is not the partition")
        if not 3 <= len(tasks) <= 6 or len(set(tasks)) != len(tasks):
            why.append(f"{len(tasks)} tasks")
        for t in tasks:
            if not taxonomy.has_task(t):
                why.append(f"unknown task {t}")
            elif taxonomy.task(t).domain not in domains:
                why.append(f"task {t} outside the intent's domains")
        if not taxonomy.has_persona(row["persona"]["id"]):
            why.append(f"unknown persona {row['persona']['id']}")
        if row["complexity"] not in COMPLEXITIES:
            why.append(f"complexity {row['complexity']!r}")
        if not row["natural_language_intent"].strip():
            why.append("empty text")
        if why:
            problems.append(f"{row['intent_id']}: {'; '.join(why)}")
    return problems


@asset_check(asset=intents, partitions_def=domain_partitions, blocking=True)
def intents_rows_valid(
    context: AssetCheckExecutionContext, intents: pl.DataFrame, taxonomy: TaxonomyResource
) -> AssetCheckResult:
    problems = invalid_rows(intents, taxonomy.load(), context.partition_key)
    return AssetCheckResult(
        passed=not problems,
        metadata={"invalid_rows": len(problems), "examples": "\n".join(problems[:10])},
    )


@asset_check(asset=intents, partitions_def=domain_partitions)
def intents_complexity_mix(config: IntentChecksConfig, intents: pl.DataFrame) -> AssetCheckResult:
    want = config.complexity_mix.as_dict()
    n = max(intents.height, 1)
    counts = dict(intents["complexity"].cast(pl.String).value_counts().iter_rows())
    have = {c: counts.get(c, 0) / n for c in COMPLEXITIES}
    # Small partitions get three standard errors of slack, so sampling noise is not a failure.
    allowed = {
        c: max(config.mix_tolerance, 3 * (want[c] * (1 - want[c]) / n) ** 0.5) for c in COMPLEXITIES
    }
    worst = max(abs(have[c] - want[c]) for c in COMPLEXITIES)
    return AssetCheckResult(
        passed=all(abs(have[c] - want[c]) <= allowed[c] for c in COMPLEXITIES),
        severity=AssetCheckSeverity.WARN,
        metadata={
            "observed": {c: round(v, 4) for c, v in have.items()},
            "configured": want,
            "max_deviation": round(worst, 4),
            "allowed_deviation": {c: round(v, 4) for c, v in allowed.items()},
        },
    )


@asset_check(asset=intents, partitions_def=domain_partitions, blocking=True)
def intents_near_dup_rate(
    config: IntentChecksConfig, intents: pl.DataFrame, embedder: EmbedderResource
) -> AssetCheckResult:
    vectors = embedder.get().embed(intents["natural_language_intent"].to_list())
    rate = (
        float(np.mean(nearest_neighbour(vectors) > config.near_dup_threshold))
        if len(vectors)
        else 0.0
    )
    return AssetCheckResult(
        passed=rate <= config.max_near_dup_rate,
        metadata={
            "near_dup_rate": rate,
            "threshold": config.near_dup_threshold,
            "max_rate": config.max_near_dup_rate,
        },
    )


@asset_check(asset=intents, partitions_def=domain_partitions, blocking=True)
def intents_vendi(
    config: IntentChecksConfig, intents: pl.DataFrame, embedder: EmbedderResource
) -> AssetCheckResult:
    emb = embedder.get()
    score = vendi_score(emb.embed(intents["natural_language_intent"].to_list()))
    return AssetCheckResult(
        passed=score >= config.min_vendi,
        metadata={"vendi_score": score, "min_vendi": config.min_vendi, "embedder": emb.name},
    )


@asset_check(asset=intent_pool)
def intent_pool_meets_targets(
    config: IntentPoolTargets, intent_pool: pl.DataFrame
) -> AssetCheckResult:
    headline = dict(intent_pool.filter(pl.col("key") == "").select("metric", "value").iter_rows())
    failures = []
    if headline["unique_intents"] < config.min_unique_intents:
        failures.append(f"{headline['unique_intents']:.0f} intents < {config.min_unique_intents}")
    if headline["vendi_score"] < config.min_vendi:
        failures.append(f"Vendi {headline['vendi_score']:.2f} < {config.min_vendi}")
    if headline["cross_domain_near_dup_rate"] > config.max_cross_domain_near_dup_rate:
        failures.append(
            f"cross-domain near-dup rate {headline['cross_domain_near_dup_rate']:.4f} > "
            f"{config.max_cross_domain_near_dup_rate}"
        )
    return AssetCheckResult(
        passed=not failures,
        severity=AssetCheckSeverity.WARN,
        description="; ".join(failures) or "pool meets the configured targets",
        metadata={**headline, **config.model_dump()},
    )
