"""Load the versioned taxonomy files shipped in `data/` and validate them.

Every problem is reported as `TaxonomyError` naming the file, the entry and the problem,
so a broken edit to a data file stops loading with a message a person can act on.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from ise_dagster.taxonomy.models import (
    EXPERIENCE_LEVELS,
    TOOLS,
    CommunicationStyle,
    Domain,
    Industry,
    Layout,
    Persona,
    Task,
    Taxonomy,
    Tone,
)

DATA_DIR = Path(__file__).parent / "data"

# The paper's taxonomy sizes; the shipped files must reach them.
MIN_TASKS = 131
MIN_PERSONAS = 965
MIN_INDUSTRIES = 47
MIN_ROLES = 500
MIN_STYLES = 120


class TaxonomyError(ValueError):
    def __init__(self, file: Path | str, entry: str, problem: str) -> None:
        self.file, self.entry, self.problem = str(file), entry, problem
        super().__init__(f"{file}: {entry}: {problem}")


def _read(path: Path, key: str) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TaxonomyError(path, "(file)", "file is missing") from None
    except json.JSONDecodeError as e:
        raise TaxonomyError(path, f"line {e.lineno}", f"invalid JSON: {e.msg}") from None
    if not isinstance(doc, dict) or key not in doc:
        raise TaxonomyError(path, "(top level)", f"expected an object with a '{key}' field")
    version = doc.get("version")
    if not isinstance(version, str) or not version:
        raise TaxonomyError(path, "(top level)", "missing 'version'")
    if not isinstance(doc[key], list):
        raise TaxonomyError(path, key, "expected a list")
    return doc


def _fields(path: Path, entry: Any, where: str, spec: dict[str, type]) -> dict[str, Any]:
    """Check that `entry` has exactly the typed, non-empty fields in `spec`."""
    if not isinstance(entry, dict):
        raise TaxonomyError(path, where, "expected an object")
    name = entry.get("id") or entry.get("name")
    label = f"{where} ({name})" if name else where
    for key, typ in spec.items():
        if key not in entry:
            raise TaxonomyError(path, label, f"missing field '{key}'")
        value = entry[key]
        if not isinstance(value, typ) or (typ in (str, list) and not value):
            raise TaxonomyError(path, label, f"field '{key}' must be a non-empty {typ.__name__}")
        if typ is list and not all(isinstance(v, str) and v.strip() for v in value):
            raise TaxonomyError(path, label, f"field '{key}' must hold non-empty strings")
    extra = set(entry) - set(spec)
    if extra:
        raise TaxonomyError(path, label, f"unknown field(s) {sorted(extra)}")
    return entry


def _unique(path: Path, items: list[str], what: str) -> None:
    seen: set[str] = set()
    for item in items:
        if item in seen:
            raise TaxonomyError(path, f"{what} '{item}'", f"duplicate {what}")
        seen.add(item)


def _load_domains(path: Path) -> tuple[str, tuple[Domain, ...]]:
    doc = _read(path, "domains")
    version, rows = doc["version"], doc["domains"]
    spec = {"id": str, "summary": str}
    domains = tuple(Domain(**_fields(path, r, f"domains[{i}]", spec)) for i, r in enumerate(rows))
    _unique(path, [d.id for d in domains], "domain id")
    return version, domains


def _load_tasks(path: Path, domain_ids: set[str]) -> tuple[Task, ...]:
    rows = _read(path, "tasks")["tasks"]
    spec = {
        "id": str,
        "domain": str,
        "title": str,
        "goal": str,
        "description": str,
        "tools": list,
        "workspace": list,
        "artifact": str,
    }
    tasks = []
    for i, row in enumerate(rows):
        r = _fields(path, row, f"tasks[{i}]", spec)
        label = f"task '{r['id']}'"
        if r["domain"] not in domain_ids:
            raise TaxonomyError(path, label, f"unknown domain '{r['domain']}'")
        bad = [t for t in r["tools"] if t not in TOOLS]
        if bad:
            raise TaxonomyError(path, label, f"unknown tool(s) {bad}; allowed: {list(TOOLS)}")
        tasks.append(Task(**{**r, "tools": tuple(r["tools"]), "workspace": tuple(r["workspace"])}))
    _unique(path, [t.id for t in tasks], "task id")
    if len(tasks) < MIN_TASKS:
        raise TaxonomyError(path, "tasks", f"{len(tasks)} tasks; at least {MIN_TASKS} required")
    empty = sorted(domain_ids - {t.domain for t in tasks})
    if empty:
        raise TaxonomyError(path, "tasks", f"domains with no task: {empty}")
    return tuple(tasks)


def _load_styles(
    parts_path: Path, layouts_path: Path
) -> tuple[tuple[Industry, ...], dict[str, CommunicationStyle]]:
    doc = _read(parts_path, "industries")
    ind_spec = {"name": str, "roles": list, "expertise": list, "workplaces": list}
    industries = tuple(
        Industry(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in r.items()})
        for r in (
            _fields(parts_path, r, f"industries[{i}]", ind_spec)
            for i, r in enumerate(doc["industries"])
        )
    )
    _unique(parts_path, [x.name for x in industries], "industry")
    _unique(parts_path, [r for x in industries for r in x.roles], "role")
    levels = doc.get("experience_levels")
    if levels != list(EXPERIENCE_LEVELS):
        raise TaxonomyError(
            parts_path, "experience_levels", f"must be exactly {list(EXPERIENCE_LEVELS)}"
        )
    tone_spec = {
        "id": str,
        "name": str,
        "openers": list,
        "closers": list,
        "hedges": list,
        "urgency": list,
    }
    tones = [
        Tone(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in t.items()})
        for t in (
            _fields(parts_path, t, f"tones[{i}]", tone_spec)
            for i, t in enumerate(doc.get("tones") or [])
        )
    ]
    _unique(parts_path, [t.id for t in tones], "tone id")
    layout_rows = _read(layouts_path, "layouts")["layouts"]
    layouts = [
        Layout(**_fields(layouts_path, r, f"layouts[{i}]", {"id": str, "name": str}))
        for i, r in enumerate(layout_rows)
    ]
    _unique(layouts_path, [x.id for x in layouts], "layout id")
    styles = {
        f"{t.name}, {x.name}": CommunicationStyle(f"{t.name}, {x.name}", t, x)
        for t in tones
        for x in layouts
    }
    if len(styles) < MIN_STYLES:
        raise TaxonomyError(
            parts_path, "tones", f"{len(styles)} communication styles; need {MIN_STYLES}"
        )
    return industries, styles


def _load_personas(
    path: Path, industries: tuple[Industry, ...], styles: dict[str, CommunicationStyle]
) -> tuple[Persona, ...]:
    rows = _read(path, "personas")["personas"]
    spec = {k: str for k in Persona.__dataclass_fields__}
    by_industry = {x.name: x for x in industries}
    personas = []
    for i, row in enumerate(rows):
        p = Persona(**_fields(path, row, f"personas[{i}]", spec))
        label = f"persona '{p.id}'"
        ind = by_industry.get(p.industry)
        if ind is None:
            raise TaxonomyError(path, label, f"unknown industry '{p.industry}'")
        if p.role not in ind.roles:
            raise TaxonomyError(path, label, f"role '{p.role}' is not listed under {p.industry}")
        if p.expertise not in ind.expertise:
            raise TaxonomyError(path, label, f"expertise '{p.expertise}' is not under {p.industry}")
        if p.experience_level not in EXPERIENCE_LEVELS:
            raise TaxonomyError(path, label, f"unknown experience level '{p.experience_level}'")
        if p.communication_style not in styles:
            raise TaxonomyError(
                path, label, f"unknown communication style '{p.communication_style}'"
            )
        personas.append(p)
    _unique(path, [p.id for p in personas], "persona id")
    _unique(path, [p.name for p in personas], "persona name")
    floors = {
        "personas": (len(personas), MIN_PERSONAS),
        "industries": (len({p.industry for p in personas}), MIN_INDUSTRIES),
        "roles": (len({p.role for p in personas}), MIN_ROLES),
        "experience levels": (len({p.experience_level for p in personas}), len(EXPERIENCE_LEVELS)),
        "communication styles": (len({p.communication_style for p in personas}), MIN_STYLES),
    }
    for what, (have, need) in floors.items():
        if have < need:
            raise TaxonomyError(path, "personas", f"covers {have} {what}; need {need}")
    return tuple(personas)


def load_taxonomy(data_dir: Path | str | None = None) -> Taxonomy:
    """Load and validate the taxonomy in `data_dir` (the shipped files by default)."""
    return _load_cached(Path(data_dir) if data_dir else DATA_DIR)


@lru_cache(maxsize=4)
def _load_cached(data_dir: Path) -> Taxonomy:
    version, domains = _load_domains(data_dir / "domains.json")
    tasks = _load_tasks(data_dir / "tasks.json", {d.id for d in domains})
    industries, styles = _load_styles(data_dir / "persona_parts.json", data_dir / "layouts.json")
    personas = _load_personas(data_dir / "personas.json", industries, styles)
    return Taxonomy(
        version=version,
        domains=domains,
        tasks=tasks,
        personas=personas,
        styles=styles,
        industries=industries,
    )
