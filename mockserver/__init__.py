"""mockserver: a local mock of OpenAI's chat completions API, scripted by YAML scenarios.

The public face is `__all__`: what a test or a tool needs, importable from `mockserver` itself.

- `Mockserver`, `Call`: what the pytest fixtures give a test, and one request it sent (for
  type hints; the fixtures come from the plugin, `mockserver.pytest_plugin`).
- `scenario`, `reply`, `choice`, `tool_call`, `error`, `stream`, `interrupt`: scenarios written in
  Python (`mockserver.builder`, which also has `audio`, holds them).
- `load_scenarios`, `load_text`, `Scenario`, `ScenarioSet`: scenarios from files or YAML text.
- `MockEngine`, `EngineConfig`: a request in, a response out, without a server.
- `InProcessMock`: an engine answering httpx and httpx2 clients inside the process.
- `ApiError`, `ScenarioError`, `Problem`: the errors.

Every other module is internal: its names may change without notice. `import mockserver` stays
light: pytest, uvicorn, starlette and respx are imported only when `Mockserver`, `Call` or
`InProcessMock` is first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mockserver.builder import choice, error, interrupt, reply, scenario, stream, tool_call
from mockserver.engine import EngineConfig, MockEngine
from mockserver.errors import ApiError, Problem, ScenarioError
from mockserver.scenarios import Scenario, ScenarioSet, load_scenarios, load_text

if TYPE_CHECKING:
    from mockserver.inprocess import InProcessMock
    from mockserver.pytest_plugin.journal import Call
    from mockserver.pytest_plugin.mock import Mockserver

__version__ = "0.1.0"

__all__ = (
    "ApiError",
    "Call",
    "EngineConfig",
    "InProcessMock",
    "MockEngine",
    "Mockserver",
    "Problem",
    "Scenario",
    "ScenarioError",
    "ScenarioSet",
    "__version__",
    "choice",
    "error",
    "interrupt",
    "load_scenarios",
    "load_text",
    "reply",
    "scenario",
    "stream",
    "tool_call",
)

_LAZY = {
    "InProcessMock": "mockserver.inprocess",  # imports respx
    "Mockserver": "mockserver.pytest_plugin.mock",  # imports respx (through InProcessMock)
    "Call": "mockserver.pytest_plugin.journal",
}


def __getattr__(name: str) -> Any:
    """The names whose modules import heavy dependencies, imported when first used."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mockserver' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
