"""The intent-writer seam: everything that turns a 4D tuple into words implements this."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ise_dagster.taxonomy.models import IntentSpec


class IntentWriter(Protocol):
    name: str
    version: str

    def write(self, specs: Sequence[IntentSpec]) -> list[str | None]:
        """Return one natural-language intent per spec, in the persona's voice; None where
        the writer failed (a model that never gave a valid answer)."""
        ...
