"""``emoji-batch app``: the demo page (emoji_batch/demo_page.py), served by Streamlit.

Streamlit runs in a child process, so this process keeps the CLI's signal handling: a
Ctrl-C or SIGTERM stops the page and ends with the usual exit code. Streamlit is only
imported by the child.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from emoji_batch.bundle import resolve_model
from emoji_batch.cli._shared_flags import ModelOption, ModelsDirOption
from emoji_batch.errors import InputError, ModelError, Stopped
from emoji_batch.manifests import POSITION, manifest_kind

PAGE = Path(__file__).resolve().parent.parent / "demo_page.py"
# The upload bound the server enforces and the page states: scoring big files is `score`'s job.
MAX_UPLOAD_MB = 20
# How long a stopped page may take to shut down before it is killed.
STOP_SECONDS = 10


def streamlit_command(
    model: str | None, models_dir: Path | None, port: int, host: str
) -> list[str]:
    """``streamlit run`` on the page, headless, with the page's own options after ``--``."""
    page_args = []
    if model is not None:
        page_args += ["--model", model]
    if models_dir is not None:
        page_args += ["--models-dir", str(models_dir)]
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(PAGE),
        "--server.port",
        str(port),
        "--server.address",
        host,
        "--server.headless",
        "true",
        "--server.maxUploadSize",
        str(MAX_UPLOAD_MB),
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
        "--",
        *page_args,
    ]


def app_cli(
    model: ModelOption = None,
    models_dir: ModelsDirOption = None,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port the page is served on.")] = 8501,
    host: Annotated[
        str,
        typer.Option(
            metavar="<address>", help="Address to bind; 0.0.0.0 shows the page to the network."
        ),
    ] = "127.0.0.1",
) -> int:
    """Serve the demo page: type a tweet to see its emoji placed and the top 5 as a chart,
    or upload a small file (up to 20 MB) to score. For trying models by hand, not for
    serving: one process, on 127.0.0.1 unless --host says otherwise. Needs the app extra."""
    if importlib.util.find_spec("streamlit") is None:
        raise InputError('the demo page needs streamlit: pip install "emoji-batch[app]"')
    # An unknown model, or one that does not score tweets, fails here, not in the browser.
    path = resolve_model(model, models_dir)
    if manifest_kind(path) == POSITION:
        raise ModelError(
            f"{path.name} places emoji in a tweet, it does not predict them: --model takes "
            "a bundle that scores tweets (see `emoji-batch models list`); the page uses the "
            "position model by itself"
        )
    child = subprocess.Popen(streamlit_command(model, models_dir, port, host))
    try:
        return child.wait()
    except Stopped:
        # Ctrl-C reached the child too, SIGTERM only us: either way, stop it and wait.
        child.terminate()
        try:
            child.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        raise
