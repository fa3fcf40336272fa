from collections import Counter

import numpy as np
import pytest

from ise_dagster.diversity.embed import get_embedder
from ise_dagster.llm.offline_writer import OfflineIntentWriter
from ise_dagster.stages.intents import generate_intents, intent_id, sample_specs
from ise_dagster.taxonomy import load_taxonomy

MIX = {"simple": 0.1, "medium": 0.4, "complex": 0.5}


@pytest.fixture(scope="module")
def tax():
    return load_taxonomy()


def test_specs_follow_the_4d_rules(tax):
    specs = sample_specs(tax, "File-IO", 400, seed=1, complexity_mix=MIX)
    for s in specs:
        assert s.domains[0] == "File-IO"
        assert 2 <= len(s.domains) <= 3 and len(set(s.domains)) == len(s.domains)
        assert 3 <= len(s.tasks) <= 6 and len({t.id for t in s.tasks}) == len(s.tasks)
        assert {t.domain for t in s.tasks} == set(s.domains)  # every chosen domain is used
    shares = Counter(s.complexity for s in specs)
    assert abs(shares["complex"] / 400 - 0.5) < 0.08
    assert abs(shares["simple"] / 400 - 0.1) < 0.05


def test_sampling_is_deterministic_per_domain_and_seed(tax):
    a = sample_specs(tax, "Multimedia", 50, seed=7, complexity_mix=MIX)
    assert a == sample_specs(tax, "Multimedia", 50, seed=7, complexity_mix=MIX)
    assert a != sample_specs(tax, "Multimedia", 50, seed=8, complexity_mix=MIX)


def test_unknown_domain_is_a_clear_error(tax):
    with pytest.raises(ValueError, match="unknown domain 'Nope'"):
        sample_specs(tax, "Nope", 5, seed=0, complexity_mix=MIX)


def test_offline_writer_speaks_in_the_persona_voice(tax):
    writer = OfflineIntentWriter(tax)
    specs = sample_specs(tax, "Code-Runtime", 300, seed=3, complexity_mix=MIX)
    texts = writer.write(specs)
    assert texts == writer.write(specs)  # deterministic
    assert len(set(texts)) == len(texts)  # varied, never a fixed string
    for spec, text in zip(specs, texts, strict=True):
        # Every task's goal is asked for, in some form.
        assert all(t.goal[:30].lower() in text.lower() for t in spec.tasks), text
        style = tax.style(spec.persona.communication_style)
        if style.layout.id == "ticket":
            assert text.splitlines()[0].startswith("Title:") or "Title:" in text
        if style.layout.id == "numbered":
            assert "\n1. " in text
    # The tone's own phrases turn up across the pool.
    tones_used = sum(
        any(o in t for o in tax.style(s.persona.communication_style).tone.openers)
        for s, t in zip(specs, texts, strict=True)
    )
    assert tones_used > len(specs) // 2


def test_complex_intents_carry_more_constraints_than_simple_ones(tax):
    writer = OfflineIntentWriter(tax)
    specs = sample_specs(tax, "File-IO", 400, seed=5, complexity_mix=MIX)
    lengths = {"simple": [], "complex": []}
    for s, t in zip(specs, writer.write(specs), strict=True):
        if s.complexity in lengths:
            lengths[s.complexity].append(len(t))
    assert np.mean(lengths["complex"]) > 1.3 * np.mean(lengths["simple"])


def test_intent_ids_are_stable_content_hashes(tax):
    spec = sample_specs(tax, "File-IO", 1, seed=0, complexity_mix=MIX)[0]
    assert intent_id("do it", spec) == intent_id("do it", spec)
    assert intent_id("do it", spec) != intent_id("do it now", spec)


class RepeatingWriter:
    """A writer that says the same few things, to exercise the dedup path."""

    name, version = "repeating", "1"

    def write(self, specs):
        phrasing = ["Fix the build.", "Fix the build!", "Fix the build, please.", "Tidy the logs."]
        return [phrasing[s.seed % len(phrasing)] for s in specs]


def test_generate_drops_exact_and_near_duplicates_and_stops_when_saturated(tax):
    batch = generate_intents(
        tax, "File-IO", target=50, seed=0, complexity_mix=MIX, writer=RepeatingWriter(),
        embedder=get_embedder(), near_dup_threshold=0.9,
    )  # fmt: skip
    assert batch.frame.height < 4  # "...!" is an exact dup; "..., please." a near one
    assert batch.dropped_exact > 0 and batch.dropped_near > 0
    assert batch.surplus == 0
    assert batch.sampled == batch.frame.height + batch.dropped_exact + batch.dropped_near


def test_generate_reaches_its_target_with_the_offline_writer(tax):
    batch = generate_intents(
        tax, "Agent-Memory", target=300, seed=0, complexity_mix=MIX,
        writer=OfflineIntentWriter(tax), embedder=get_embedder(), near_dup_threshold=0.97,
    )  # fmt: skip
    assert batch.frame.height == 300
    assert batch.frame["intent_id"].n_unique() == 300
    assert batch.sampled == 300 + batch.dropped_exact + batch.dropped_near + batch.surplus
    assert batch.vendi > 5
    assert set(batch.seconds) == {"sample", "write", "embed", "dedup", "vendi"}
