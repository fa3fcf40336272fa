"""Typed records of the 4D taxonomy: domains, tasks, personas and complexity."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

TOOLS = ("exec", "read", "write", "edit", "apply_patch", "process")
COMPLEXITIES = ("simple", "medium", "complex")
EXPERIENCE_LEVELS = ("intern", "junior", "mid-level", "senior", "staff", "executive")


@dataclass(frozen=True)
class Domain:
    id: str
    summary: str


@dataclass(frozen=True)
class Task:
    id: str
    domain: str
    title: str
    goal: str
    description: str
    tools: tuple[str, ...]
    workspace: tuple[str, ...]
    artifact: str


@dataclass(frozen=True)
class Tone:
    """A communication register: the phrases a persona opens, hedges and closes with."""

    id: str
    name: str
    openers: tuple[str, ...]
    closers: tuple[str, ...]
    hedges: tuple[str, ...]
    urgency: tuple[str, ...]


@dataclass(frozen=True)
class Layout:
    """How a request is laid out on the page (one-liner, bullets, ticket...)."""

    id: str
    name: str


@dataclass(frozen=True)
class CommunicationStyle:
    name: str
    tone: Tone
    layout: Layout


@dataclass(frozen=True)
class Persona:
    id: str
    name: str
    role: str
    industry: str
    expertise: str
    experience_level: str
    communication_style: str
    work_context: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class Industry:
    name: str
    roles: tuple[str, ...]
    expertise: tuple[str, ...]
    workplaces: tuple[str, ...]


@dataclass(frozen=True)
class Taxonomy:
    """The whole 4D taxonomy, validated. Built by `load_taxonomy`."""

    version: str
    domains: tuple[Domain, ...]
    tasks: tuple[Task, ...]
    personas: tuple[Persona, ...]
    styles: dict[str, CommunicationStyle] = field(repr=False)
    industries: tuple[Industry, ...] = field(repr=False)

    def __post_init__(self) -> None:
        # Lookup tables; derived, so they cannot drift from the tuples above.
        object.__setattr__(self, "_tasks", {t.id: t for t in self.tasks})
        object.__setattr__(self, "_personas", {p.id: p for p in self.personas})
        by_domain: dict[str, list[Task]] = {d.id: [] for d in self.domains}
        for t in self.tasks:
            by_domain[t.domain].append(t)
        object.__setattr__(self, "_by_domain", {k: tuple(v) for k, v in by_domain.items()})

    @property
    def domain_ids(self) -> list[str]:
        return [d.id for d in self.domains]

    def task(self, task_id: str) -> Task:
        return self._tasks[task_id]  # type: ignore[attr-defined]

    def has_task(self, task_id: str) -> bool:
        return task_id in self._tasks  # type: ignore[attr-defined]

    def persona(self, persona_id: str) -> Persona:
        return self._personas[persona_id]  # type: ignore[attr-defined]

    def has_persona(self, persona_id: str) -> bool:
        return persona_id in self._personas  # type: ignore[attr-defined]

    def tasks_in(self, domain: str) -> tuple[Task, ...]:
        return self._by_domain[domain]  # type: ignore[attr-defined]

    def style(self, name: str) -> CommunicationStyle:
        return self.styles[name]


@dataclass(frozen=True)
class IntentSpec:
    """One sampled 4D tuple: what an intent asks for, before it is put into words.

    `domains[0]` is the primary domain (the partition); `seed` drives the wording.
    """

    domains: tuple[str, ...]
    tasks: tuple[Task, ...]
    persona: Persona
    complexity: str
    seed: int

    @property
    def tools(self) -> tuple[str, ...]:
        return tuple(sorted({tool for t in self.tasks for tool in t.tools}))
