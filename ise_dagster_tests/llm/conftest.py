"""The real local model servers (llama-cpp-python; Gemma 3 270M, Qwen2.5-Coder-0.5B) for
`llm` tests."""

from collections.abc import Iterator

import pytest

from ise_dagster.llm.local_models import GEMMA3_270M, QWEN_CODER_05B
from ise_dagster.llm.local_server import LocalServer
from ise_dagster_tests.helpers import start_or_skip


@pytest.hookimpl(tryfirst=True)  # before `-m` deselection, so `-m "not llm"` sees the marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if {"local_llm", "local_qwen"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.llm)


@pytest.fixture(scope="session")
def local_llm() -> Iterator[LocalServer]:
    """A started LocalServer, shared by the session. The first use on a machine builds
    llama-cpp-python (minutes, once). A failed install or start skips the tests, except
    under CI, where it fails them: CI is expected to have the server."""
    server = start_or_skip(
        LocalServer(model=GEMMA3_270M.alias, progress=lambda msg: print(f"[local_llm] {msg}"))
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def local_qwen() -> Iterator[LocalServer]:
    """Qwen2.5-Coder-0.5B-Instruct on its own chat template (hermes tools)."""
    server = start_or_skip(LocalServer(model=QWEN_CODER_05B.alias, progress=print))
    try:
        yield server
    finally:
        server.stop()
