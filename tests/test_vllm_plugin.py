"""The plugin chooses the profile: the marker's `profile=` / `reasoning_field=`, the
`--mockserver-profile` option, a scenario file's `profile:`; bad values are usage errors."""

from __future__ import annotations

import pytest

from tests.test_plugin import _everything_imported, make, run  # noqa: F401 (the module fixture)

BODY = """
def reasoning(**kwargs):
    reply = ask("hi", **kwargs)
    return reply.choices[0].message.model_extra


@pytest.mark.mockserver(profile="vllm", reasoning_field="both")
def test_marker(mockserver):
    mockserver.add(reply={"content": "Hello!", "reasoning": "hmm"})
    assert reasoning() == {"reasoning": "hmm", "reasoning_content": "hmm"}


def test_option_or_default(mockserver):
    mockserver.add(reply={"content": "Hello!", "reasoning": "hmm"})
    assert reasoning() == ({"reasoning": "hmm"} if mockserver.engine.profile.name == "vllm" else {})


@pytest.mark.mockserver("vllm.yaml")
def test_file(mockserver):
    assert reasoning() == {"reasoning": "from the file"}


@pytest.mark.mockserver(profile="tgi")
def test_bad_profile(mockserver):
    pass


@pytest.mark.mockserver(reasoning_field="thoughts")
def test_bad_field(mockserver):
    pass
"""
FILE = """
version: 1
profile: vllm
scenarios:
  - reply: {content: "x", reasoning: "from the file"}
"""


@pytest.mark.parametrize("option", [(), ("--mockserver-profile", "vllm")])
def test_plugin_profile_settings(pytester: pytest.Pytester, option: tuple[str, ...]) -> None:
    make(pytester, BODY, **{"vllm.yaml": FILE})
    result = run(pytester, *option)
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*mockserver profile must be one of openai, vllm, got 'tgi'*",
            "*mockserver reasoning_field must be one of reasoning, reasoning_content, both, got*",
        ]
    )
