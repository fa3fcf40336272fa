import numpy as np
import pytest

from ise_dagster.diversity.dedup import greedy_near_dedup, nearest_neighbour, normalise_text
from ise_dagster.diversity.embed import get_embedder
from ise_dagster.diversity.vendi import vendi_score


def _unit(rows):
    x = np.asarray(rows, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_normalise_text_ignores_case_punctuation_and_spacing():
    assert normalise_text("Fix  the BUG, please!") == normalise_text("fix the bug please")
    assert normalise_text("fix the bug") != normalise_text("fix the bugs")


def test_greedy_dedup_keeps_first_of_each_cluster_in_order():
    emb = _unit([[1, 0, 0], [0.999, 0.04, 0], [0, 1, 0], [0, 0.999, 0.04], [0, 0, 1]])
    keep = greedy_near_dedup(emb, threshold=0.99)
    assert keep.tolist() == [True, False, True, False, True]


def test_greedy_dedup_respects_previously_kept_rows_and_blocks(monkeypatch):
    monkeypatch.setattr("ise_dagster.diversity.dedup.BLOCK", 2)
    emb = _unit([[1, 0, 0], [0, 1, 0], [0.999, 0.04, 0], [0, 0, 1]])
    keep = greedy_near_dedup(emb, threshold=0.99, kept=_unit([[0, 0, 1]]))
    assert keep.tolist() == [True, True, False, False]


def test_nearest_neighbour_with_and_without_groups():
    emb = _unit([[1, 0], [1, 0.01], [0, 1]])
    assert nearest_neighbour(emb)[0] > 0.99
    groups = np.array(["a", "a", "b"])
    # Rows 0 and 1 share a group, so across groups their nearest is the orthogonal row.
    assert nearest_neighbour(emb, groups)[0] == pytest.approx(0.0, abs=1e-6)


def test_vendi_counts_effective_distinct_items():
    assert vendi_score(np.tile(_unit([[1, 2, 3]]), (50, 1))) == pytest.approx(1.0, abs=1e-6)
    assert vendi_score(np.eye(8, dtype=np.float32)) == pytest.approx(8.0, rel=1e-6)
    assert vendi_score(np.zeros((0, 4))) == 0.0


def test_wordllama_embedder_is_offline_normalised_and_semantic():
    emb = get_embedder("wordllama-256")
    vecs = emb.embed(
        ["merge the CSV exports", "combine the csv export files", "water the garden plants"]
    )
    assert vecs.shape == (3, 256)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2]


def test_unknown_embedder_names_the_choices():
    with pytest.raises(ValueError, match="wordllama-256"):
        get_embedder("bogus")
    with pytest.raises(ValueError, match="sentence-transformers|no model directory"):
        get_embedder("st:/nonexistent/all-mpnet-base-v2")
