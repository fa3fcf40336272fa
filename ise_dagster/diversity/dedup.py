"""Exact and near-duplicate detection over normalised embeddings."""

from __future__ import annotations

import re

import numpy as np

_PUNCT = re.compile(r"[^\w\s]")
_SPACE = re.compile(r"\s+")

BLOCK = 1024  # rows per matrix block: bounds memory at BLOCK x n floats


def normalise_text(text: str) -> str:
    """The key for exact-duplicate detection: case, punctuation and spacing ignored."""
    return _SPACE.sub(" ", _PUNCT.sub(" ", text.lower())).strip()


def greedy_near_dedup(
    emb: np.ndarray, threshold: float, kept: np.ndarray | None = None
) -> np.ndarray:
    """Keep rows in order, dropping any whose cosine to an already-kept row exceeds `threshold`.

    `kept` holds embeddings kept earlier (e.g. by a previous sampling round). Returns a
    boolean mask over `emb`.
    """
    n = len(emb)
    keep = np.zeros(n, dtype=bool)
    pool = kept if kept is not None else np.zeros((0, emb.shape[1]), emb.dtype)
    for start in range(0, n, BLOCK):
        block = emb[start : start + BLOCK]
        prior_max = (block @ pool.T).max(axis=1) if len(pool) else np.full(len(block), -1.0)
        within = block @ block.T
        chosen: list[int] = []
        for i in range(len(block)):
            if prior_max[i] > threshold:
                continue
            if chosen and within[i, chosen].max() > threshold:
                continue
            chosen.append(i)
        keep[start + np.asarray(chosen, dtype=int)] = True
        pool = np.vstack([pool, block[chosen]])
    return keep


def nearest_neighbour(emb: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """For each row, the highest cosine to any other row, or to any row of a different
    group when `groups` is given (-1 where there is none).

    Each block is compared only with itself and the rows after it; the column maxima carry
    the result back to the later rows, which halves the work of the full n x n product.
    """
    out = np.full(len(emb), -1.0, dtype=np.float32)
    for start in range(0, len(emb), BLOCK):
        sims = emb[start : start + BLOCK] @ emb[start:].T
        if groups is None:
            idx = np.arange(len(sims))
            sims[idx, idx] = -1.0
        else:
            sims[groups[start : start + BLOCK, None] == groups[None, start:]] = -1.0
        np.maximum(out[start : start + BLOCK], sims.max(axis=1), out=out[start : start + BLOCK])
        np.maximum(out[start:], sims.max(axis=0), out=out[start:])
    return out
