import os
import shutil
from pathlib import Path

import pytest
from dagster import DagsterInstance

from ise_dagster.io.parquet import ParquetIOManager
from ise_dagster.resources import EmbedderResource, LLMResource, TaxonomyResource
from ise_dagster.taxonomy.load import DATA_DIR

# The tests pin their own backends: a shell with the README's ISE_LLM_* exports must not
# change what they test (defaults are read when definitions are imported, so do it now).
for _name in [n for n in os.environ if n.startswith("ISE_LLM_")]:
    del os.environ[_name]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def resources(data_dir: Path) -> dict:
    return {
        "parquet_io_manager": ParquetIOManager(base_dir=str(data_dir)),
        "taxonomy": TaxonomyResource(),
        "llm": LLMResource(backend="offline"),
        "embedder": EmbedderResource(),
    }


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture
def taxonomy_copy(tmp_path: Path) -> Path:
    """A writable copy of the shipped taxonomy files, for corrupting."""
    dst = tmp_path / "taxonomy"
    shutil.copytree(DATA_DIR, dst)
    return dst
