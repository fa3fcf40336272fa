"""Stage 1: sample Persona x Domain x Task x Complexity tuples, write them, dedup, score.

Everything here is deterministic from (domain, seed): the same partition re-materialised
yields identical rows.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from ise_dagster import schemas
from ise_dagster.diversity.dedup import greedy_near_dedup, normalise_text
from ise_dagster.diversity.embed import Embedder
from ise_dagster.diversity.vendi import vendi_score
from ise_dagster.llm.writer import IntentWriter
from ise_dagster.taxonomy.models import COMPLEXITIES, IntentSpec, Taxonomy

# How many tasks an intent draws, by complexity: {count: probability}. The paper gives only
# the range (3-6). This split (3.375 on average) is calibrated so that, with the task
# library's playbooks (~8.7 tool calls a task), trajectories land on the paper's 29.26 tool
# calls per trajectory. See BENCHMARKS.md.
TASKS_BY_COMPLEXITY = {
    "simple": {3: 1.0},
    "medium": {3: 1.0},
    "complex": {3: 0.55, 4: 0.25, 5: 0.1, 6: 0.1},
}
MAX_ROUNDS = 8


def stable_seed(*parts: object) -> int:
    """A 63-bit seed from any values; unlike hash(), the same in every process."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def sample_specs(
    taxonomy: Taxonomy,
    domain: str,
    n: int,
    seed: int,
    complexity_mix: Mapping[str, float],
    round_: int = 0,
) -> list[IntentSpec]:
    """Sample `n` 4D tuples with `domain` as the primary domain."""
    if domain not in taxonomy.domain_ids:
        raise ValueError(f"unknown domain {domain!r}; known: {taxonomy.domain_ids}")
    rng = np.random.default_rng(stable_seed("intents", domain, seed, round_))
    others = [d for d in taxonomy.domain_ids if d != domain]
    weights = np.array([complexity_mix[c] for c in COMPLEXITIES], dtype=float)
    complexities = rng.choice(len(COMPLEXITIES), size=n, p=weights / weights.sum())
    specs = []
    for i in range(n):
        complexity = COMPLEXITIES[complexities[i]]
        counts = TASKS_BY_COMPLEXITY[complexity]
        n_tasks = int(rng.choice(list(counts), p=list(counts.values())))
        n_domains = 2 if complexity == "simple" else int(rng.integers(2, 4))
        domains = (domain, *rng.choice(others, size=n_domains - 1, replace=False).tolist())
        # One task from each chosen domain, the rest from any of them.
        tasks = [taxonomy.tasks_in(d)[rng.integers(len(taxonomy.tasks_in(d)))] for d in domains]
        pool = [t for d in domains for t in taxonomy.tasks_in(d) if t not in tasks]
        extra = rng.choice(len(pool), size=n_tasks - len(tasks), replace=False)
        tasks += [pool[j] for j in extra]
        order = rng.permutation(len(tasks))
        specs.append(
            IntentSpec(
                domains=tuple(domains),
                tasks=tuple(tasks[j] for j in order),
                persona=taxonomy.personas[rng.integers(len(taxonomy.personas))],
                complexity=complexity,
                seed=int(rng.integers(2**62)),
            )
        )
    return specs


def intent_id(text: str, spec: IntentSpec) -> str:
    """A stable content hash over the words and the tuple they came from."""
    key = "\x1f".join(
        [
            text,
            ",".join(spec.domains),
            ",".join(t.id for t in spec.tasks),
            spec.persona.id,
            spec.complexity,
        ]
    )
    return "int-" + hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass
class IntentBatch:
    """One partition's intents plus what it took to make them."""

    frame: pl.DataFrame
    embeddings: np.ndarray
    sampled: int = 0
    dropped_exact: int = 0
    dropped_near: int = 0
    surplus: int = 0  # unique, but past the target in the last round
    writer_failures: int = 0  # specs the writer could not put into valid words
    rounds: int = 0
    vendi: float = 0.0
    seconds: dict[str, float] = field(default_factory=dict)


def generate_intents(
    taxonomy: Taxonomy,
    domain: str,
    target: int,
    seed: int,
    complexity_mix: Mapping[str, float],
    writer: IntentWriter,
    embedder: Embedder,
    near_dup_threshold: float,
    oversample: float = 1.15,
) -> IntentBatch:
    """Sample, write, dedup (exact, then near) and score until `target` unique intents exist.

    Rounds stop early when the pool saturates; the batch then holds fewer than `target`.
    """
    seconds = {"sample": 0.0, "write": 0.0, "embed": 0.0, "dedup": 0.0, "vendi": 0.0}
    seen_text: set[str] = set()
    kept_specs: list[IntentSpec] = []
    kept_text: list[str] = []
    kept_emb: list[np.ndarray] = []
    batch = IntentBatch(frame=pl.DataFrame(schema=schemas.INTENTS), embeddings=np.zeros((0, 0)))

    while len(kept_specs) < target and batch.rounds < MAX_ROUNDS:
        need = target - len(kept_specs)
        t0 = time.perf_counter()
        specs = sample_specs(
            taxonomy, domain, int(need * oversample) + 8, seed, complexity_mix, batch.rounds
        )
        t1 = time.perf_counter()
        texts = writer.write(specs)
        t2 = time.perf_counter()
        fresh = []
        for spec, text in zip(specs, texts, strict=True):
            if text is None:  # a labeled writer failure: counted, and the next round refills
                batch.writer_failures += 1
                continue
            key = normalise_text(text)
            if key in seen_text:
                batch.dropped_exact += 1
                continue
            seen_text.add(key)
            fresh.append((spec, text))
        emb = embedder.embed([text for _, text in fresh])
        t3 = time.perf_counter()
        prior = np.vstack(kept_emb) if kept_emb else None
        keep = greedy_near_dedup(emb, near_dup_threshold, prior)
        t4 = time.perf_counter()
        batch.dropped_near += int((~keep).sum())
        batch.sampled += len(specs)
        batch.rounds += 1
        for (spec, text), k, e in zip(fresh, keep, emb, strict=True):
            if not k:
                continue
            if len(kept_specs) == target:
                batch.surplus += 1
                continue
            kept_specs.append(spec)
            kept_text.append(text)
            kept_emb.append(e[None, :])
        for name, dt in zip(seconds, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=False):
            seconds[name] += dt

    batch.embeddings = np.vstack(kept_emb) if kept_emb else np.zeros((0, 1), np.float32)
    t5 = time.perf_counter()
    batch.vendi = vendi_score(batch.embeddings)
    seconds["vendi"] = time.perf_counter() - t5
    batch.seconds = seconds
    batch.frame = intents_frame(kept_specs, kept_text, writer, taxonomy)
    return batch


def intents_frame(
    specs: list[IntentSpec], texts: list[str], writer: IntentWriter, taxonomy: Taxonomy
) -> pl.DataFrame:
    rows = {
        "intent_id": [intent_id(t, s) for s, t in zip(specs, texts, strict=True)],
        "domain": [s.domains[0] for s in specs],
        "natural_language_intent": texts,
        "domains": [list(s.domains) for s in specs],
        "tasks": [[t.id for t in s.tasks] for s in specs],
        "tools": [list(s.tools) for s in specs],
        "persona": [s.persona.to_dict() for s in specs],
        "complexity": [s.complexity for s in specs],
        "sample_seed": [s.seed for s in specs],
        "writer": [f"{writer.name}@{writer.version}"] * len(specs),
        "taxonomy_version": [taxonomy.version] * len(specs),
    }
    return pl.DataFrame(rows, schema=schemas.INTENTS)
