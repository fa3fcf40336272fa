"""The code location: every asset, check, job and resource of ise-dagster."""

from dagster import Definitions, load_asset_checks_from_modules, load_assets_from_modules

from ise_dagster.assets import intents as intent_assets
from ise_dagster.checks import intents as intent_checks
from ise_dagster.io.parquet import ParquetIOManager
from ise_dagster.jobs import intent_pool_job, intents_job
from ise_dagster.resources import EmbedderResource, GeneratorResource, TaxonomyResource

defs = Definitions(
    assets=load_assets_from_modules([intent_assets]),
    asset_checks=load_asset_checks_from_modules([intent_checks]),
    jobs=[intents_job, intent_pool_job],
    resources={
        "parquet_io_manager": ParquetIOManager(),
        "taxonomy": TaxonomyResource(),
        "generator": GeneratorResource(),
        "embedder": EmbedderResource(),
    },
)
