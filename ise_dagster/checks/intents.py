"""Partition-aware checks on `intents` and the pool-wide check on `intent_pool`.

Each check recomputes its figure from the stored rows rather than trusting the asset's
metadata, so a bad file fails the check even if the asset code was wrong.
"""

import numpy as np
import polars as pl
from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, asset_check

from ise_dagster.assets.intents import intent_pool, intents
from ise_dagster.checks.outcome import BLOCKING, WARNS, outcome
from ise_dagster.config import IntentChecksConfig, IntentPoolTargets
from ise_dagster.diversity.dedup import nearest_neighbour
from ise_dagster.diversity.vendi import vendi_score
from ise_dagster.partitions import domain_partitions
from ise_dagster.resources import EmbedderResource, TaxonomyResource
from ise_dagster.taxonomy import COMPLEXITIES, Taxonomy


@asset_check(
    asset=intents,
    partitions_def=domain_partitions,
    blocking=True,
    description="No two rows share an intent_id (a content hash). " + BLOCKING,
)
def intents_ids_unique(
    context: AssetCheckExecutionContext, intents: pl.DataFrame
) -> AssetCheckResult:
    dupes = intents.height - intents["intent_id"].n_unique()
    return outcome(context, dupes == 0, f"{dupes} duplicate ids", "0", duplicate_ids=dupes)


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


@asset_check(
    asset=intents,
    partitions_def=domain_partitions,
    blocking=True,
    description="Every row has 2-3 distinct domains with the partition's first, 3-6 distinct "
    "known tasks from those domains, a known persona, a complexity and non-empty text. " + BLOCKING,
)
def intents_rows_valid(
    context: AssetCheckExecutionContext, intents: pl.DataFrame, taxonomy: TaxonomyResource
) -> AssetCheckResult:
    problems = invalid_rows(intents, taxonomy.load(), context.partition_key)
    return outcome(
        context,
        not problems,
        f"{len(problems)} invalid rows of {intents.height}",
        "0",
        invalid_rows=len(problems),
        examples="\n".join(problems[:10]),
    )


@asset_check(
    asset=intents,
    partitions_def=domain_partitions,
    description="The complexity mix within mix_tolerance (0.03) of the configured 10/40/50, "
    "or three standard errors on small partitions. " + WARNS,
)
def intents_complexity_mix(
    context: AssetCheckExecutionContext, config: IntentChecksConfig, intents: pl.DataFrame
) -> AssetCheckResult:
    want = config.complexity_mix.as_dict()
    n = max(intents.height, 1)
    counts = dict(intents["complexity"].cast(pl.String).value_counts().iter_rows())
    have = {c: counts.get(c, 0) / n for c in COMPLEXITIES}
    # Small partitions get three standard errors of slack, so sampling noise is not a failure.
    allowed = {
        c: max(config.mix_tolerance, 3 * (want[c] * (1 - want[c]) / n) ** 0.5) for c in COMPLEXITIES
    }
    worst = max(abs(have[c] - want[c]) for c in COMPLEXITIES)
    return outcome(
        context,
        all(abs(have[c] - want[c]) <= allowed[c] for c in COMPLEXITIES),
        "/".join(f"{have[c]:.1%}" for c in COMPLEXITIES),
        "/".join(f"{want[c]:.0%}" for c in COMPLEXITIES) + f" ± {min(allowed.values()):.1%}",
        severity=AssetCheckSeverity.WARN,
        observed_shares={c: round(v, 4) for c, v in have.items()},
        configured=want,
        max_deviation=round(worst, 4),
        allowed_deviation={c: round(v, 4) for c, v in allowed.items()},
    )


@asset_check(
    asset=intents,
    partitions_def=domain_partitions,
    blocking=True,
    description="Share of intents whose nearest neighbour in the partition is above the "
    "near-duplicate cosine (0.95) at most max_near_dup_rate (0). " + BLOCKING,
)
def intents_near_dup_rate(
    context: AssetCheckExecutionContext,
    config: IntentChecksConfig,
    intents: pl.DataFrame,
    embedder: EmbedderResource,
) -> AssetCheckResult:
    vectors = embedder.get().embed(intents["natural_language_intent"].to_list())
    rate = (
        float(np.mean(nearest_neighbour(vectors) > config.near_dup_threshold))
        if len(vectors)
        else 0.0
    )
    return outcome(
        context,
        rate <= config.max_near_dup_rate,
        f"near-duplicate rate {rate:.2%}",
        f"<= {config.max_near_dup_rate:.2%}",
        near_dup_rate=round(rate, 4),
        threshold=config.near_dup_threshold,
    )


@asset_check(
    asset=intents,
    partitions_def=domain_partitions,
    blocking=True,
    description="The partition's Vendi score (q=1, cosine) at least min_vendi (10 on the "
    "default wordllama-256 embedder; a writer that repeats itself scores 1-3). " + BLOCKING,
)
def intents_vendi(
    context: AssetCheckExecutionContext,
    config: IntentChecksConfig,
    intents: pl.DataFrame,
    embedder: EmbedderResource,
) -> AssetCheckResult:
    emb = embedder.get()
    score = vendi_score(emb.embed(intents["natural_language_intent"].to_list()))
    return outcome(
        context,
        score >= config.min_vendi,
        f"Vendi {score:.2f} ({emb.name})",
        f">= {config.min_vendi:g}",
        vendi_score=round(score, 2),
        embedder=emb.name,
    )


@asset_check(
    asset=intent_pool,
    description="The whole pool against the paper: at least 43,956 unique intents, Vendi at "
    "least min_vendi (25 on wordllama-256), cross-domain near-duplicate rate at most 1%. " + WARNS,
)
def intent_pool_meets_targets(
    context: AssetCheckExecutionContext, config: IntentPoolTargets, intent_pool: pl.DataFrame
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
    return outcome(
        context,
        not failures,
        "; ".join(failures) or "pool meets the configured targets",
        f">= {config.min_unique_intents} intents, Vendi >= {config.min_vendi:g}, "
        f"cross-domain near-dup rate <= {config.max_cross_domain_near_dup_rate}",
        severity=AssetCheckSeverity.WARN,
        **headline,
    )
