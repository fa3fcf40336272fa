import json
from pathlib import Path

import pytest

from ise_dagster.taxonomy import TOOLS, TaxonomyError, load_taxonomy
from ise_dagster.taxonomy.build_personas import compose_personas
from ise_dagster.taxonomy.load import DATA_DIR

PAPER_DOMAINS = [
    "Intelligence-Core", "Code-Runtime", "File-IO", "Source-Chain", "Automation-Flow",
    "Web-Extraction", "Comms-Social", "Multimedia", "Agent-Memory", "System-Infrastructure",
]  # fmt: skip


def test_shipped_taxonomy_reaches_the_papers_sizes():
    tax = load_taxonomy()
    assert tax.domain_ids == PAPER_DOMAINS
    assert len(tax.tasks) >= 131
    assert all(tax.tasks_in(d) for d in PAPER_DOMAINS)
    assert len(tax.personas) >= 965
    assert len({p.industry for p in tax.personas}) >= 47
    assert len({p.role for p in tax.personas}) >= 500
    assert len({p.experience_level for p in tax.personas}) == 6
    assert len({p.communication_style for p in tax.personas}) >= 120
    assert {tool for t in tax.tasks for tool in t.tools} == set(TOOLS)


def test_shipped_personas_are_reproducible_from_their_parts():
    shipped = json.loads((DATA_DIR / "personas.json").read_text())["personas"]
    assert compose_personas() == shipped


def _edit(dir_: Path, name: str, edit) -> None:
    path = dir_ / name
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize(
    ("file", "edit", "entry", "problem"),
    [
        (
            "tasks.json",
            lambda d: d["tasks"][3].update(domain="Astrology"),
            "task '",
            "unknown domain 'Astrology'",
        ),
        (
            "tasks.json",
            lambda d: d["tasks"].append(dict(d["tasks"][0])),
            "task id '",
            "duplicate task id",
        ),
        ("tasks.json", lambda d: d["tasks"][5].pop("goal"), "tasks[5]", "missing field 'goal'"),
        (
            "tasks.json",
            lambda d: d["tasks"][2].update(tools=["exec", "teleport"]),
            "task '",
            "unknown tool",
        ),
        (
            "domains.json",
            lambda d: d["domains"].append(d["domains"][0]),
            "domain id",
            "duplicate domain id",
        ),
        (
            "personas.json",
            lambda d: d["personas"][7].update(role="Wizard"),
            "persona 'persona-0008'",
            "role 'Wizard'",
        ),
        (
            "personas.json",
            lambda d: d["personas"].__delitem__(slice(900, None)),
            "personas",
            "need 965",
        ),
        (
            "persona_parts.json",
            lambda d: d["tones"][0].update(openers=[]),
            "tones[0]",
            "'openers' must be a non-empty list",
        ),
    ],
)
def test_broken_taxonomy_names_file_entry_and_problem(taxonomy_copy, file, edit, entry, problem):
    _edit(taxonomy_copy, file, edit)
    with pytest.raises(TaxonomyError) as err:
        load_taxonomy(taxonomy_copy)
    assert err.value.file.endswith(file)
    assert entry in err.value.entry
    assert problem in err.value.problem


def test_invalid_json_reports_the_line(taxonomy_copy):
    (taxonomy_copy / "domains.json").write_text('{"version": "x",\n "domains": [oops]}')
    with pytest.raises(TaxonomyError, match=r"domains.json: line 2: invalid JSON"):
        load_taxonomy(taxonomy_copy)


def test_missing_file_is_named(taxonomy_copy):
    (taxonomy_copy / "tasks.json").unlink()
    with pytest.raises(TaxonomyError, match=r"tasks.json: \(file\): file is missing"):
        load_taxonomy(taxonomy_copy)


def test_a_taxonomy_whose_domains_differ_from_the_partitions_is_refused(taxonomy_copy):
    from ise_dagster.resources import TaxonomyResource

    assert TaxonomyResource(data_dir=str(taxonomy_copy)).load().domain_ids  # same domains: ok
    renamed = taxonomy_copy.with_name("renamed")  # a new path: loads are cached by path
    renamed.mkdir()
    for f in taxonomy_copy.glob("*.json"):
        text = f.read_text().replace('"Intelligence-Core"', '"Insight-Core"')
        (renamed / f.name).write_text(text)
    assert "Insight-Core" in load_taxonomy(renamed).domain_ids  # a valid taxonomy...
    with pytest.raises(TaxonomyError, match=r"domains.json: domains: \['Insight-Core'"):
        TaxonomyResource(data_dir=str(renamed)).load()  # ...that the partitions cannot serve
