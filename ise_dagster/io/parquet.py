"""A polars Parquet IO manager on Dagster's UPathIOManager.

Layout: `<root>/<asset>/<partition>.parquet` (multi-partitions: `<asset>/<date>/<domain>`).
Writes go to a temp file in the same directory and are renamed into place, so a killed run
leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path
from typing import Any

import polars as pl
from dagster import (
    ConfigurableIOManagerFactory,
    InputContext,
    MetadataValue,
    OutputContext,
    TableColumn,
    TableSchema,
    UPathIOManager,
)
from pydantic import Field
from upath import UPath

from ise_dagster.schemas import COLUMN_DOCS

DEFAULT_DATA_DIR = "./data"


def data_dir() -> str:
    """The data root: `ISE_DATA_DIR`, else ./data."""
    return os.environ.get("ISE_DATA_DIR") or DEFAULT_DATA_DIR


class DataDirError(RuntimeError):
    """The data directory cannot be written."""


class ParquetReadError(RuntimeError):
    """A stored file could not be read as Parquet; the message names the path."""


class PolarsParquetIOManager(UPathIOManager):
    extension = ".parquet"

    def __init__(self, base_path: UPath, compression_level: int = 3) -> None:
        super().__init__(base_path=base_path)
        self._level = compression_level

    def dump_to_path(self, context: OutputContext, obj: pl.DataFrame, path: UPath) -> None:
        if obj is None:
            return
        if not isinstance(obj, pl.DataFrame):
            raise TypeError(f"{context.asset_key.to_user_string()}: expected a polars DataFrame")
        if path.protocol in ("", "file", "local"):
            size = _write_local_atomic(obj, Path(path.path), self._level)
        else:  # object stores make a single put atomic already
            with path.open("wb") as f:
                obj.write_parquet(f, compression="zstd", compression_level=self._level)
            size = path.stat().st_size
        context.add_output_metadata(
            {
                "dagster/row_count": MetadataValue.int(obj.height),
                "dagster/column_schema": _table_schema(
                    obj, COLUMN_DOCS.get(context.asset_key.path[-1], {})
                ),
                "file_size_bytes": MetadataValue.int(size),
            }
        )

    def make_directory(self, path: UPath) -> None:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DataDirError(_unwritable(path, e)) from e

    def load_from_path(self, context: InputContext, path: UPath) -> pl.DataFrame:
        try:
            with path.open("rb") as f:
                return pl.read_parquet(f)
        except FileNotFoundError:
            raise
        except Exception as e:  # polars raises several types for corrupt or foreign files
            raise ParquetReadError(f"cannot read Parquet file {path}: {e}") from e


def _write_local_atomic(frame: pl.DataFrame, path: Path, level: int) -> int:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # from a run killed mid-write
        with contextlib.suppress(OSError):
            stale.unlink()
    try:
        frame.write_parquet(tmp, compression="zstd", compression_level=level)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise DataDirError(_unwritable(path, e)) from e
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return path.stat().st_size


def _unwritable(path: object, error: OSError) -> str:
    return (
        f"cannot write {path}: {error}. Point ISE_DATA_DIR (or the IO manager's base_dir) "
        "at a writable directory."
    )


def _table_schema(frame: pl.DataFrame, docs: dict[str, str]) -> TableSchema:
    return TableSchema(
        columns=[
            TableColumn(name, str(dt), description=docs.get(name))
            for name, dt in frame.schema.items()
        ]
    )


class ParquetIOManager(ConfigurableIOManagerFactory):
    """Persists polars frames as zstd Parquet under `base_dir` ($ISE_DATA_DIR, else ./data)."""

    base_dir: str | None = Field(
        default=None, description="Root directory or URL; defaults to $ISE_DATA_DIR, then ./data."
    )
    compression_level: int = Field(default=3, ge=1, le=22)

    def create_io_manager(self, context: Any) -> PolarsParquetIOManager:
        root = self.base_dir or data_dir()
        base = UPath(root) if "://" in root else UPath(os.path.abspath(root))
        return PolarsParquetIOManager(base, self.compression_level)
