"""The README's examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)


def test_the_pytest_example_passes(pytester):
    (example,) = [block for block in python_blocks() if "def test_" in block]
    pytester.makepyfile(test_example=example)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_the_scenario_reference_names_every_key():
    from mockserver import matching, scenarios

    keys = (
        *scenarios.FILE_KEYS,
        *scenarios.SCENARIO_KEYS,
        *matching.MATCH_KEYS,
        *scenarios.REPLY_KEYS,
        *scenarios.STREAM_KEYS,
        *scenarios.RAW_KEYS,
    )
    for key in keys:
        documented = re.search(rf"`(?:[\w\[\]]+\.)*{key}`", README)
        assert documented, f"README does not document the scenario key {key!r}"
