"""The real local model server (llama-cpp-python + Gemma 3 270M) for `llm` tests."""

from collections.abc import Iterator

import pytest

from ise_dagster.llm.local_server import LocalServer
from ise_dagster_tests.helpers import start_or_skip


@pytest.hookimpl(tryfirst=True)  # before `-m` deselection, so `-m "not llm"` sees the marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "local_llm" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.llm)


@pytest.fixture(scope="session")
def local_llm() -> Iterator[LocalServer]:
    """A started LocalServer, shared by the session. The first use on a machine builds
    llama-cpp-python (minutes, once). A failed install or start skips the tests, except
    under CI, where it fails them: CI is expected to have the server."""
    server = start_or_skip(LocalServer(progress=lambda msg: print(f"[local_llm] {msg}")))
    try:
        yield server
    finally:
        server.stop()
