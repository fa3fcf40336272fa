"""The 4D taxonomy (Persona x Domain x Task x Complexity), shipped as versioned data files."""

from ise_dagster.taxonomy.load import TaxonomyError, load_taxonomy
from ise_dagster.taxonomy.models import (
    COMPLEXITIES,
    TOOLS,
    Domain,
    Persona,
    Task,
    Taxonomy,
)

__all__ = [
    "COMPLEXITIES",
    "TOOLS",
    "Domain",
    "Persona",
    "Task",
    "Taxonomy",
    "TaxonomyError",
    "load_taxonomy",
]
