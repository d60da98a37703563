"""The scripts in training/ and benchmarks/ import what they use from emoji_batch: no test
runs them whole (they train on the real data for minutes or hours), so a name moved
inside the package would otherwise break them unseen."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
SCRIPTS = sorted(p for d in ("training", "benchmarks") for p in (ROOT / d).glob("*.py"))

LOAD = """
import importlib.util, sys
path = sys.argv[1]
sys.path.insert(0, path.rsplit("/", 1)[0])
spec = importlib.util.spec_from_file_location("script", path)
spec.loader.exec_module(importlib.util.module_from_spec(spec))
"""


def test_there_are_scripts() -> None:
    assert len(SCRIPTS) >= 10


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_script_imports(script: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", LOAD, str(script)], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-2000:]
