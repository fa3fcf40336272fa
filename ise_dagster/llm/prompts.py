"""Prompts are versioned files in the package (`prompts/<name>.v<N>.md`), filled with
`string.Template` ($name), so a JSON example in a prompt needs no escaping.

A prompt's id (name, version and a digest of its text) is part of every cache key: editing a
prompt can never replay answers written for the old text.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from string import Template

_FILE = re.compile(r"^(?P<name>[a-z_]+)\.v(?P<version>\d+)\.md$")


@dataclass(frozen=True)
class Prompt:
    name: str
    version: int
    text: str

    @property
    def id(self) -> str:
        digest = hashlib.sha256(self.text.encode()).hexdigest()[:12]
        return f"{self.name}.v{self.version}:{digest}"

    def render(self, **values: object) -> str:
        return Template(self.text).substitute({k: str(v) for k, v in values.items()}).strip()


@cache
def load_prompt(name: str, version: int | None = None) -> Prompt:
    """The named prompt, at `version` or the newest one shipped."""
    found = {}
    for entry in files("ise_dagster.llm").joinpath("prompts").iterdir():
        m = _FILE.match(entry.name)
        if m and m["name"] == name:
            found[int(m["version"])] = entry
    if not found:
        raise FileNotFoundError(f"no prompt file ise_dagster/llm/prompts/{name}.v<N>.md")
    if version is not None and version not in found:
        raise FileNotFoundError(f"prompt {name} has versions {sorted(found)}, not {version}")
    v = version if version is not None else max(found)
    return Prompt(name, v, found[v].read_text(encoding="utf-8"))
