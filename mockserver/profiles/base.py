"""The profile interface: what the engine asks, and the options profiles render with."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:  # the pytest plugin reads the names below without loading the engine
    from mockserver.completions import ResolvedChoice, Stamp
    from mockserver.errors import ApiError
    from mockserver.ids import IdFactory
    from mockserver.request import ChatRequest
    from mockserver.wire import Model, Usage

ProfileName = Literal["openai", "vllm"]
PROFILES: tuple[ProfileName, ...] = ("openai", "vllm")
REASONING_FIELDS = ("reasoning", "reasoning_content", "both")
"""`--reasoning-field`: the name(s) vLLM-profile replies carry reasoning under."""


@dataclass(frozen=True, slots=True)
class Options:
    """How a profile renders, from the CLI flags and fixture options."""

    reasoning_field: str = "reasoning"


class Profile(Protocol):
    """What the engine asks of a profile."""

    @property
    def name(self) -> str: ...

    def parse(self, raw: bytes) -> ChatRequest:
        """The request a body holds, or an `ApiError` refusing it."""
        ...

    def error_body(self, error: ApiError) -> bytes: ...

    def tool_call_ids(self, ids: IdFactory) -> Callable[[], str]:
        """What makes the id of a tool call the scenario gives none (from the engine's ids)."""
        ...

    def model(self, name: str, created: int) -> Model: ...

    def completion_body(
        self, request: ChatRequest, stamp: Stamp, choices: Sequence[ResolvedChoice], usage: Usage
    ) -> bytes: ...

    # openai.py and vllm.py repeat this signature: a protocol and its implementations (an
    # intentional mirror, as the duplicate search finds it).
    def chunk_events(
        self,
        request: ChatRequest,
        stamp: Stamp,
        choices: Sequence[ResolvedChoice],
        usage: Usage,
        *,
        padding: Sequence[str],
        offset: int,
        chunk_size: int | None,
    ) -> list[str]:
        """Every `data:` event up to (not including) `[DONE]`."""
        ...
