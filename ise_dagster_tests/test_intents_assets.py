import polars as pl
import pytest
from dagster import DagsterInvalidConfigError, materialize

from ise_dagster.assets.intents import intent_pool, intents
from ise_dagster.checks import intents as intent_checks
from ise_dagster.definitions import defs
from ise_dagster.schemas import INTENTS

CHECKS = [
    intent_checks.intents_ids_unique,
    intent_checks.intents_rows_valid,
    intent_checks.intents_complexity_mix,
    intent_checks.intents_near_dup_rate,
    intent_checks.intents_vendi,
]


def _config(n: int = 200, **over) -> dict:
    return {"ops": {"intents": {"config": {"intents_per_domain": n, **over}}}}


def _materialize(resources, instance, key, run_config=None, **kw):
    return materialize(
        [intents, *CHECKS],
        partition_key=key,
        resources=resources,
        instance=instance,
        run_config=run_config or _config(),
        **kw,
    )


def test_intents_partition_lands_as_parquet_and_passes_its_checks(resources, instance, data_dir):
    result = _materialize(resources, instance, "File-IO")
    assert result.success
    frame = pl.read_parquet(data_dir / "intents" / "File-IO.parquet")
    assert frame.schema == INTENTS
    assert frame.height == 200
    assert (frame["domain"] == "File-IO").all()
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == {c.check_key.name for c in CHECKS}
    assert all(e.passed for e in evaluations.values()), evaluations
    meta = result.asset_materializations_for_node("intents")[0].metadata
    assert meta["kept"].value == 200
    assert meta["vendi_score"].value > 5
    assert "preview" in meta and "dagster/row_count" in meta
    assert "| unique intents | 200 | 200 (paper: 43,956 over 10 domains) |" in meta["summary"].value
    assert "| tasks per intent | intents |" in meta["summary"].value
    schema = {c.name: c.description for c in meta["dagster/column_schema"].schema.columns}
    assert schema["natural_language_intent"] == "the request, in the persona's voice"
    vendi = evaluations["intents_vendi"]
    assert vendi.description.startswith("File-IO: Vendi ") and "(target >= 10)" in vendi.description
    assert vendi.metadata["partition"].value == "File-IO"


def test_rematerializing_a_partition_yields_identical_rows(resources, instance, data_dir):
    path = data_dir / "intents" / "Multimedia.parquet"
    _materialize(resources, instance, "Multimedia", _config(80))
    first = pl.read_parquet(path)
    _materialize(resources, instance, "Multimedia", _config(80))
    assert pl.read_parquet(path).equals(first)
    _materialize(resources, instance, "Multimedia", _config(80, seed=1))
    assert not pl.read_parquet(path).equals(first)


def test_unknown_partition_key_is_rejected_before_anything_is_written(
    resources, instance, data_dir
):
    with pytest.raises(Exception, match="Astrology"):
        _materialize(resources, instance, "Astrology")
    assert not data_dir.exists()


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"complexity_mix": {"simple": 0.5, "medium": 0.4, "complex": 0.5}}, "sum to 1"),
        ({"intents_per_domain": -3}, "intents_per_domain"),
        ({"near_dup_threshold": 1.5}, "near_dup_threshold"),
    ],
)
def test_out_of_range_config_is_a_clear_error(resources, instance, data_dir, over, message):
    with pytest.raises((DagsterInvalidConfigError, Exception), match=message):
        _materialize(resources, instance, "File-IO", {"ops": {"intents": {"config": over}}})
    assert not (data_dir / "intents").exists()


def test_blocking_check_failure_is_reported(resources, instance):
    run_config = _config(60)
    run_config["ops"]["intents_intents_vendi"] = {"config": {"min_vendi": 10_000}}
    result = _materialize(resources, instance, "Agent-Memory", run_config, raise_on_error=False)
    failed = [e.check_name for e in result.get_asset_check_evaluations() if not e.passed]
    assert failed == ["intents_vendi"]


def test_intent_pool_reports_pool_wide_figures(resources, instance, data_dir):
    for domain in ("File-IO", "Code-Runtime"):
        _materialize(resources, instance, domain, _config(120))
    result = materialize(
        [intents.to_source_asset(), intent_pool, intent_checks.intent_pool_meets_targets],
        selection=[intent_pool, intent_checks.intent_pool_meets_targets],
        resources=resources,
        instance=instance,
        raise_on_error=False,
    )
    stats = pl.read_parquet(data_dir / "intent_pool.parquet")
    headline = dict(stats.filter(pl.col("key") == "").select("metric", "value").iter_rows())
    assert headline["unique_intents"] == 240
    assert 0 <= headline["cross_domain_near_dup_rate"] <= 1
    by_domain = dict(stats.filter(metric="by_domain").select("key", "value").iter_rows())
    assert by_domain == {"Code-Runtime": 120.0, "File-IO": 120.0}
    assert stats.filter(metric="by_complexity")["value"].sum() == 240
    assert stats.filter(metric="by_task")["value"].sum() >= 240 * 3
    # 240 intents are far below the paper-scale target, so the pool check must say so.
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert "240 intents < 43956" in evaluation.description


def test_definitions_load_and_validate():
    defs.validate_loadable(defs)
    assert {"intents", "intent_pool"} <= {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert defs.resolve_job_def("intents_job").partitions_def is not None
