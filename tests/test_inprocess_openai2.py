"""openai 2.x (httpx, respx) through the plugin, in a second virtualenv: `.venv-openai2`.

openai 2.x cannot be installed beside the 3.x the project's venv holds, so this test runs
tests/test_inprocess_sdk.py with `.venv-openai2/bin/python` (the plugin loaded from this
checkout with `-p pytest_plugin.plugin`; the package is not installed there). The venv is optional: without it the test is skipped,
unless MOCKSERVER_OPENAI2=1 asks to build it first (pip, about 10-30 s):

    python tests/test_inprocess_openai2.py --build     # or MOCKSERVER_OPENAI2=1 pytest ...

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
REQUIREMENTS = [
    "openai>=2,<3",
    "openai-responses==0.13.1",  # pins respx < 0.23: the oldest respx we support is tested too
    "pytest>=8",
    "anyio>=4",
    "httpx>=0.27",
    "respx>=0.22",
    "starlette>=0.40",
    "uvicorn[standard]>=0.30",
    "pyyaml>=6.0",
]


def build() -> None:
    """Create `.venv-openai2` with openai 2.x and what the plugin needs (not the package)."""
    if not PYTHON.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run(
        [str(PYTHON), "-m", "pip", "install", "--quiet", *REQUIREMENTS], check=True, cwd=ROOT
    )


def test_openai2_through_the_plugin():
    if not PYTHON.exists():
        if os.environ.get("MOCKSERVER_OPENAI2") != "1":
            pytest.skip(
                f"{VENV.name} not found: build it with `python {Path(__file__).relative_to(ROOT)}"
                " --build` (or set MOCKSERVER_OPENAI2=1) to test openai 2.x"
            )
        build()
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
