"""The Vendi score over embeddings, always through the d x d dual (never the n x n kernel)."""

from __future__ import annotations

import numpy as np
from vendi_score import vendi


def vendi_score(emb: np.ndarray, q: float = 1.0) -> float:
    """Vendi score with a cosine kernel: exp of the order-q entropy of the kernel's eigenvalues.

    `score_dual` normalises the rows, so X^T X / n has the same non-zero spectrum as the
    n x n cosine kernel / n, at O(n d^2) instead of O(n^2 d).
    """
    if len(emb) == 0:
        return 0.0
    return float(vendi.score_dual(np.asarray(emb, dtype=np.float64), q=q))
