"""Polars schemas of every stored table, declared once."""

import polars as pl

from ise_dagster.taxonomy.models import COMPLEXITIES, Persona

Complexity = pl.Enum(list(COMPLEXITIES))

PERSONA = pl.Struct({name: pl.String for name in Persona.__dataclass_fields__})

INTENTS = pl.Schema(
    {
        "intent_id": pl.String,
        "domain": pl.String,
        "natural_language_intent": pl.String,
        "domains": pl.List(pl.String),
        "tasks": pl.List(pl.String),
        "tools": pl.List(pl.String),
        "persona": PERSONA,
        "complexity": Complexity,
        "sample_seed": pl.Int64,
        "writer": pl.String,
        "taxonomy_version": pl.String,
    }
)

INTENT_POOL = pl.Schema(
    {
        "metric": pl.String,
        "key": pl.String,
        "value": pl.Float64,
    }
)
