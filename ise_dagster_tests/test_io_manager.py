import polars as pl
import pyarrow.parquet as pq
import pytest
from dagster import (
    AssetIn,
    DagsterInstance,
    StaticPartitionsDefinition,
    asset,
    materialize,
)

from ise_dagster.io.parquet import DataDirError, ParquetIOManager, ParquetReadError

parts = StaticPartitionsDefinition(["a", "b", "c"])


@asset(partitions_def=parts, io_manager_key="io")
def numbers(context) -> pl.DataFrame:
    return pl.DataFrame({"part": [context.partition_key] * 3, "n": [1, 2, 3]})


@asset(io_manager_key="io", ins={"numbers": AssetIn(metadata={"allow_missing_partitions": True})})
def total(numbers: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return pl.concat(numbers.values()).group_by("part").agg(pl.col("n").sum()).sort("part")


def _run(data_dir, assets, **kw):
    return materialize(
        assets,
        resources={"io": ParquetIOManager(base_dir=str(data_dir))},
        instance=DagsterInstance.ephemeral(),
        **kw,
    )


def test_writes_zstd_parquet_at_asset_partition_path_with_metadata(data_dir):
    result = _run(data_dir, [numbers], partition_key="b")
    path = data_dir / "numbers" / "b.parquet"
    assert pl.read_parquet(path)["part"].to_list() == ["b"] * 3
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "ZSTD"
    meta = result.asset_materializations_for_node("numbers")[0].metadata
    assert meta["dagster/row_count"].value == 3
    assert meta["file_size_bytes"].value == path.stat().st_size
    assert [c.name for c in meta["dagster/column_schema"].schema.columns] == ["part", "n"]
    assert [p.name for p in path.parent.iterdir()] == ["b.parquet"]  # no temp files left


def test_loads_several_partitions_and_skips_missing_ones(data_dir):
    for key in ("a", "c"):
        _run(data_dir, [numbers], partition_key=key)
    _run(data_dir, [numbers.to_source_asset(), total], selection=[total])
    assert pl.read_parquet(data_dir / "total.parquet").to_dicts() == [
        {"part": "a", "n": 6},
        {"part": "c", "n": 6},
    ]


def test_corrupt_file_error_names_the_path(data_dir):
    _run(data_dir, [numbers], partition_key="a")
    bad = data_dir / "numbers" / "a.parquet"
    bad.write_bytes(b"this is not parquet at all")
    with pytest.raises(ParquetReadError, match=str(bad)):
        _run(data_dir, [numbers.to_source_asset(), total], selection=[total])
    assert not (data_dir / "total.parquet").exists()


def test_non_writable_data_dir_is_a_clear_error_and_writes_nothing(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data dir should be")
    with pytest.raises(DataDirError, match="not-a-dir.*ISE_DATA_DIR"):
        _run(blocker / "data", [numbers], partition_key="a")
    assert blocker.read_text() == "a file where the data dir should be"


def test_failed_write_keeps_the_previous_file(data_dir, monkeypatch):
    _run(data_dir, [numbers], partition_key="a")
    path = data_dir / "numbers" / "a.parquet"
    before = path.read_bytes()

    def explode(self, file, **kw):
        with open(file, "wb") as f:
            f.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", explode)
    with pytest.raises(DataDirError, match="disk full"):
        _run(data_dir, [numbers], partition_key="a")
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["a.parquet"]


def test_data_dir_defaults_to_env(monkeypatch, tmp_path):
    monkeypatch.setenv("ISE_DATA_DIR", str(tmp_path / "envdata"))
    materialize(
        [numbers], partition_key="c", resources={"io": ParquetIOManager()},
        instance=DagsterInstance.ephemeral(),
    )  # fmt: skip
    assert (tmp_path / "envdata" / "numbers" / "c.parquet").exists()


def test_temp_files_of_a_killed_write_are_cleared_by_the_next_write(data_dir):
    stale = data_dir / "numbers" / ".a.parquet.deadbeef.tmp"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"PAR1 half")
    _run(data_dir, [numbers], partition_key="a")
    assert [p.name for p in stale.parent.iterdir()] == ["a.parquet"]
