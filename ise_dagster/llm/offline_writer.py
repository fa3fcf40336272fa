"""The embedded intent writer: persona-styled requests composed without a model.

It is a small grammar, not a template with blanks: the tone (openers, hedges, urgency,
closers), the layout (one-liner, ticket, checklist...), the experience level, the
complexity (how many constraints and checks) and a per-intent seed each change the text.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ise_dagster.taxonomy.models import IntentSpec, Task, Taxonomy

VERSION = "offline-1"

_LEVEL_ASIDES = {
    "intern": ["I'm still new to this, so", "Sorry if this is obvious, but", "My mentor said"],
    "junior": ["I tried this myself but got stuck, so", "Not fully sure how to approach it, but"],
    "mid-level": ["Should be routine:", "Nothing exotic here:"],
    "senior": ["You know the drill.", "I'd do it myself but I'm in reviews all day."],
    "staff": ["This feeds a cross-team decision, so be rigorous.", "Treat this as the reference."],
    "executive": ["Keep it brief.", "I only need the outcome, not the play-by-play."],
}

_INTROS = [
    "I'm {article} {role} in {industry}.",
    "Context: I'm the {role} here, {context}.",
    "For background, I'm {context}.",
    "Quick context: {role}, {industry}.",
    "Some background: I work as {article} {role}, {context}.",
]

_CONSTRAINTS = {
    "*": [
        "don't touch anything outside the workspace",
        "keep the original files unchanged and write results to new files",
        "write a short summary of what you did to NOTES.md",
        "tell me which files you changed",
        "stick to the standard library, nothing to install",
        "make a backup before you edit anything in place",
        "keep a log of the commands you ran in run.log",
        "make sure re-running it gives the same result",
    ],
    "Intelligence-Core": ["show the numbers behind any conclusion", "flag rows you had to skip"],
    "Code-Runtime": ["run the tests before you say it's done", "keep the public API as it is"],
    "File-IO": ["preserve the original encoding", "keep the column order as it is"],
    "Source-Chain": ["commit with a clear message", "don't rewrite existing history"],
    "Automation-Flow": ["make the script safe to run twice", "exit non-zero on any failure"],
    "Web-Extraction": ["work from the saved pages only", "keep the source URL for every record"],
    "Comms-Social": ["don't send anything, drafts only", "keep the tone friendly but short"],
    "Multimedia": ["don't overwrite the originals", "keep the metadata intact"],
    "Agent-Memory": ["don't delete old notes, mark them outdated", "cite the note ids you used"],
    "System-Infrastructure": ["don't kill anything you didn't start", "check disk usage after"],
}

_CHECKS = [
    "verify the result actually works before you report back",
    "double-check the output against the input counts",
    "show me the final state when you're done",
    "run a quick sanity check at the end",
]

_SEQUENCE = ["first", "then", "after that", "next", "also", "once that's done", "finally"]


@dataclass
class _Parts:
    """The pieces of one request, before a layout arranges them."""

    opener: str
    intro: str
    aside: str
    asks: list[str]
    titles: list[str]
    constraints: list[str]
    checks: list[str]
    urgency: str
    closer: str


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:] if s else s


def _sentence(s: str) -> str:
    s = _cap(s.strip())
    return s if not s or s[-1] in ".!?:" else s + "."


def _ask(rng: random.Random, task: Task) -> str:
    goal = task.goal
    if rng.random() < 0.35:
        goal = f"{goal}, leaving {task.artifact}"
    return goal


class OfflineIntentWriter:
    """Writes intents from the taxonomy alone: no network, no key, deterministic per seed."""

    name = "offline"
    version = VERSION

    def __init__(self, taxonomy: Taxonomy) -> None:
        self._taxonomy = taxonomy
        missing = {s.layout.id for s in taxonomy.styles.values()} - set(_LAYOUTS)
        if missing:
            raise ValueError(f"offline writer has no layout for {sorted(missing)}")

    def write(self, specs: Sequence[IntentSpec]) -> list[str]:
        return [self.write_one(spec) for spec in specs]

    def write_one(self, spec: IntentSpec) -> str:
        rng = random.Random(spec.seed)
        style = self._taxonomy.style(spec.persona.communication_style)
        text = _LAYOUTS[style.layout.id](rng, self._parts(rng, spec))
        # Parts meet at seams ("I need you to" + "need you to ...", "report back" + "Report
        # back."): say a repeated phrase once, whichever layout made it.
        return REPEATED_PHRASE.sub(r"\1", text)

    def _parts(self, rng: random.Random, spec: IntentSpec) -> _Parts:
        p = spec.persona
        tone = self._taxonomy.style(p.communication_style).tone
        n_constraints, n_checks = {"simple": (0, 0), "medium": (1, 1), "complex": (3, 1)}[
            spec.complexity
        ]
        pool = list(_CONSTRAINTS["*"])
        for d in spec.domains:
            pool += _CONSTRAINTS[d]
        constraints = rng.sample(pool, n_constraints)
        if constraints and rng.random() < 0.6:
            constraints[0] = f"{constraints[0]}, {rng.choice(tone.hedges)}"
        intro = rng.choice(_INTROS).format(
            role=p.role,
            industry=p.industry,
            article="an" if p.role[:1].lower() in "aeiou" else "a",
            context=p.work_context,
        )
        urgent = rng.random() < (0.6 if p.experience_level == "executive" else 0.3)
        return _Parts(
            opener=rng.choice(tone.openers) if rng.random() < 0.8 else "",
            intro=intro if rng.random() < 0.7 else "",
            aside=rng.choice(_LEVEL_ASIDES[p.experience_level]) if rng.random() < 0.4 else "",
            asks=[_ask(rng, t) for t in spec.tasks],
            titles=[t.title for t in spec.tasks],
            constraints=constraints,
            checks=rng.sample(_CHECKS, n_checks),
            urgency=rng.choice(tone.urgency) if urgent else "",
            closer=rng.choice(tone.closers) if rng.random() < 0.75 else "",
        )


# A phrase of two or more words said twice in a row ("could you Could you").
REPEATED_PHRASE = re.compile(r"\b(\w+(?:\s+\w+)+)\s+\1\b", re.I)


def _join(*chunks: str, sep: str = " ") -> str:
    return sep.join(c for c in chunks if c)


def _sequenced(rng: random.Random, asks: list[str]) -> list[str]:
    if len(asks) < 3:  # a one-task intent (the agent benchmark's) has nothing to sequence
        words = ["first", "then"][: len(asks)] if len(asks) > 1 else [""]
        return [f"{w} {a}".strip() for w, a in zip(words, asks, strict=False)]
    words = ["first"] + rng.sample(_SEQUENCE[1:-1], min(len(asks) - 2, 5)) + ["finally"]
    return [f"{w} {a}" for w, a in zip(words, asks, strict=False)]


def _one_liner(rng: random.Random, x: _Parts) -> str:
    asks = ", ".join(x.asks[:-1]) + f" and {x.asks[-1]}"
    tail = "; ".join(x.constraints + x.checks)
    body = f"can you {asks}" + (f" ({tail})" if tail else "")
    return _join(x.opener, _sentence(_join(body, x.urgency, sep=" ")), x.closer)


def _paragraph(rng: random.Random, x: _Parts) -> str:
    lead = rng.choice(["I need you to", "Could you", "Please", "Can you"])
    steps = _sequenced(rng, x.asks)
    body = [_sentence(f"{lead} {steps[0]}")] + [_sentence(s) for s in steps[1:]]
    extra = [_sentence(f"Please {c}") for c in x.constraints + x.checks]
    return _join(x.opener, x.intro, x.aside, *body, *extra, _sentence(x.urgency), x.closer)


def _bullets(rng: random.Random, x: _Parts) -> str:
    head = _join(x.opener, x.intro, rng.choice(["Here's what I need:", "To do:", "Asks:"]))
    lines = [f"- {_cap(a)}" for a in x.asks]
    if x.constraints or x.checks:
        lines.append(rng.choice(["Notes:", "Ground rules:", "Please:"]))
        lines += [f"- {_cap(c)}" for c in x.constraints + x.checks]
    return "\n".join([head, *lines, _join(_sentence(x.urgency), x.closer)]).strip()


def _numbered(rng: random.Random, x: _Parts) -> str:
    head = _join(x.opener, x.aside, rng.choice(["Steps:", "In order:", "Plan:"]))
    lines = [f"{i}. {_cap(a)}" for i, a in enumerate(x.asks + x.checks, 1)]
    tail = [_sentence(f"Constraint: {c}") for c in x.constraints]
    return "\n".join([head, *lines, *tail, _join(_sentence(x.urgency), x.closer)]).strip()


def _context_first(rng: random.Random, x: _Parts) -> str:
    background = x.intro or _sentence(f"This is about {x.titles[0].lower()}")
    ask = "; ".join(_sequenced(rng, x.asks))
    need = rng.choice(["What I need:", "The ask:", "So,"])
    rules = _sentence("Also " + ", and ".join(x.constraints + x.checks)) if x.constraints else ""
    return _join(x.opener, background, x.aside, need, _sentence(ask), rules, x.closer)


def _ask_first(rng: random.Random, x: _Parts) -> str:
    ask = _sentence(rng.choice(["Please ", "I need you to ", ""]) + " and ".join(x.asks))
    details = [_sentence(c) for c in x.constraints + x.checks]
    return _join(x.opener, ask, *details, x.intro, _sentence(x.urgency), x.closer)


def _ticket(rng: random.Random, x: _Parts) -> str:
    more = f" (+{len(x.titles) - 1} more)" if len(x.titles) > 1 else ""
    lines = [f"Title: {x.titles[0]}{more}"]
    if x.intro or x.aside:
        lines.append(f"Context: {_join(x.intro, x.aside)}")
    lines.append("Tasks:")
    lines += [f"  - {_cap(a)}" for a in x.asks]
    if x.constraints:
        lines.append(f"Constraints: {'; '.join(x.constraints)}")
    if x.checks or x.urgency:
        lines.append(f"Done when: {_join('; '.join(x.checks), x.urgency, sep=', ') or 'all of it'}")
    return "\n".join([_join(x.opener), *lines, x.closer]).strip()


def _checklist(rng: random.Random, x: _Parts) -> str:
    lines = [f"[ ] {_cap(a)}" for a in x.asks]
    accept = x.checks + x.constraints or [f"{x.titles[-1].lower()} is done"]
    head = _join(x.opener, rng.choice(["Checklist for you:", "Please work through:", "Todo:"]))
    footer = _sentence(f"Acceptance: {'; '.join(accept)}")
    return "\n".join([head, *lines, footer, _join(_sentence(x.urgency), x.closer)]).strip()


def _questions(rng: random.Random, x: _Parts) -> str:
    asks = [rng.choice(["Can you", "Could you", "Would you"]) + f" {a}?" for a in x.asks]
    asks += [f"And could you {c}?" for c in x.constraints + x.checks]
    return _join(x.opener, x.aside, *asks, _sentence(x.urgency), x.closer)


def _chat(rng: random.Random, x: _Parts) -> str:
    lines = [x.opener or rng.choice(["hey", "hi", "yo"])]
    lines += [rng.choice(["need you to", "can you", "pls"]) + f" {x.asks[0]}"]
    lines += [rng.choice(["also", "and", "oh and", "then"]) + f" {a}" for a in x.asks[1:]]
    lines += x.constraints + x.checks + [x.urgency, x.closer]
    return "\n".join(line for line in lines if line)


_LAYOUTS: dict[str, Callable[[random.Random, _Parts], str]] = {
    "one-liner": _one_liner,
    "paragraph": _paragraph,
    "bullets": _bullets,
    "numbered": _numbered,
    "context-first": _context_first,
    "ask-first": _ask_first,
    "ticket": _ticket,
    "checklist": _checklist,
    "questions": _questions,
    "chat": _chat,
}
