"""examples/node: a Node script with the `openai` npm package uses a session and verify."""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from mockserver.app import create_app
from mockserver.engine import MockEngine
from mockserver.scenarios import load_text
from mockserver.server import BackgroundServer

EXAMPLE = Path(__file__).parent.parent / "examples" / "node"
NODE = shutil.which("node")
IN_CI = os.environ.get("CI") == "true"


def _needs(ready: bool, reason: str) -> None:
    if not ready:
        if IN_CI:
            pytest.fail(f"CI=true: {reason} (.ci/run installs it)")
        pytest.skip(reason)


def test_the_node_example_runs_in_its_own_session_and_verifies():
    _needs(NODE is not None, "node is not installed")
    _needs(
        (EXAMPLE / "node_modules" / "openai").is_dir(),
        "examples/node has no node_modules (npm ci --prefix examples/node)",
    )
    # the shared scenarios have a `plan` of their own: the session's must win inside it
    shared = load_text(
        textwrap.dedent(
            """
            scenarios:
              - name: shared-plan
                reply: {content: the shared plan}
            """
        )
    )
    engine = MockEngine(shared)
    with BackgroundServer(create_app(engine)) as server:
        done = subprocess.run(
            [str(NODE), "sessions.mjs"],
            cwd=EXAMPLE,
            env={**os.environ, "MOCKSERVER_URL": server.url},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.splitlines() == [
            "Step 1: read the ticket",
            "Step 2: write the fix",
            "verify: 200; a wrong count: 409 expectations[0]: scenario 'plan' answered "
            "2 requests; expected exactly 3",
        ]
        assert engine.journal == []  # the session kept it all to itself
        assert len(server.app.sessions) == 1
