"""openai 2.x (httpx, respx) through the plugin, in a second virtualenv: `.venv-openai2`.

openai 2.x cannot be installed beside the 3.x the project's venv holds, so this test runs
tests/test_inprocess_sdk.py with `.venv-openai2/bin/python` (the plugin loaded from this
checkout with `-p pytest_plugin.plugin`; the package is not installed there). The test itself
touches no network: `.ci/run` builds the venv from tests/requirements-openai2.txt before the
tests run, and locally

    python tests/test_inprocess_openai2.py --build

does the same. Without the venv the test is skipped, unless MOCKSERVER_OPENAI2=1 (as CI sets)
says it must run: then a missing venv is a failure.

The same venv holds `openai-responses`, which bench/inprocess.py compares against.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-openai2"
PYTHON = VENV / "bin" / "python"
REQUIREMENTS = ROOT / "tests" / "requirements-openai2.txt"


def build() -> None:
    """Create `.venv-openai2` with openai 2.x and what the plugin needs (not the package)."""
    if not PYTHON.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run(
        [str(PYTHON), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)],
        check=True,
        cwd=ROOT,
    )


def test_openai2_through_the_plugin():
    if not PYTHON.exists():
        how = f"build it with `python {Path(__file__).relative_to(ROOT)} --build`"
        if os.environ.get("MOCKSERVER_OPENAI2") == "1":
            pytest.fail(f"{VENV.name} not found, and MOCKSERVER_OPENAI2=1 needs it: {how}")
        pytest.skip(f"{VENV.name} not found: {how} to test openai 2.x")
    done = subprocess.run(
        [
            str(PYTHON),
            "-m",
            "pytest",
            "-q",
            "-p",
            "pytest_plugin.plugin",
            "-p",
            "anyio.pytest_plugin",
            "--noconftest",
            "-p",
            "no:cacheprovider",
            "tests/test_inprocess_sdk.py",
        ],
        cwd=ROOT,
        # Entry points found through PYTHONPATH (an egg-info) would load the plugin twice.
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    version = subprocess.run(
        [str(PYTHON), "-c", "import openai; print(openai.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert version.startswith("2."), version
    assert " passed" in done.stdout


if __name__ == "__main__":
    if sys.argv[1:] != ["--build"]:
        sys.exit(f"usage: python {sys.argv[0]} --build")
    build()
    print(f"built {VENV}")
