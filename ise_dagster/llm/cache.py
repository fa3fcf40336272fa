"""The persistent request cache: one small JSON file per entry, under the data dir.

A file per entry keeps parallel runs safe without locks: each writer renames a finished temp
file into place, so readers see a whole entry or none, and two runs writing the same key
write the same answer. Every entry carries its key and a checksum of its body, so a corrupt
or truncated file is detected, deleted and refetched rather than trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

FORMAT = 1


def cache_key(payload: dict[str, Any]) -> str:
    """A stable hash of everything that determines a model's answer."""
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def _digest(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


class RequestCache:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._made: set[Path] = set()
        self._lock = threading.Lock()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> tuple[dict[str, Any] | None, int, bool]:
        """(value, bytes read, corrupt). A corrupt entry is removed so it gets refetched."""
        path = self.path(key)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None, 0, False
        try:
            entry = json.loads(raw)
            body = entry["body"]
            if entry["format"] != FORMAT or entry["key"] != key or entry["sha256"] != _digest(body):
                raise ValueError("checksum or key mismatch")
            return json.loads(body), len(raw), False
        except (ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)
            return None, len(raw), True

    def put(self, key: str, value: dict[str, Any]) -> int:
        """Store atomically; returns the bytes written."""
        path = self.path(key)
        if path.parent not in self._made:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock:
                self._made.add(path.parent)
        body = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        entry = {"format": FORMAT, "key": key, "sha256": _digest(body), "body": body}
        data = json.dumps(entry, ensure_ascii=False).encode()
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return len(data)


class DialogueCheckpoint:
    """Finished dialogue rows in the request cache, keyed by the intent, the date and the
    generator's fingerprint (models, sampling, prompts): a killed partition's re-run takes
    the dialogues that finished from here and makes no calls for them."""

    def __init__(self, cache: RequestCache, fingerprint: dict[str, Any]) -> None:
        self.cache = cache
        self.fingerprint = fingerprint

    def _key(self, intent: dict[str, Any], date: str) -> str:
        return cache_key({"kind": "dialogue", "intent": intent, "date": date,
                          "generator": self.fingerprint})  # fmt: skip

    def get(self, intent: dict[str, Any], date: str) -> dict[str, Any] | None:
        return self.cache.get(self._key(intent, date))[0]

    def put(self, intent: dict[str, Any], date: str, row: dict[str, Any]) -> None:
        self.cache.put(self._key(intent, date), row)
