"""Error types, and their OpenAI error-envelope form."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from mockserver.wire import ErrorBody


@dataclass(eq=False, kw_only=True)
class ApiError(Exception):
    """An error answered to the client in OpenAI's envelope.

    `headers` are extra response headers (e.g. `retry-after-ms`, `x-should-retry`).
    """

    status: int
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        return f"{self.status} {self.type}: {self.message}"

    def body(self) -> ErrorBody:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def encode(self) -> bytes:
        return json.dumps(self.body(), ensure_ascii=False, separators=(",", ":")).encode()


def invalid(
    message: str, *, param: str | None, code: str | None = "invalid_value", status: int = 400
) -> ApiError:
    """A 400 `invalid_request_error`, as the API answers a request it refuses."""
    return ApiError(status=status, message=message, param=param, code=code)


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem found in a scenario file: where it is and what is wrong."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


@dataclass(eq=False)
class ScenarioError(Exception):
    """Scenario files that cannot be loaded, with every problem found in them."""

    problems: tuple[Problem, ...] = field(default=())

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)
