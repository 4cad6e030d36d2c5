"""Response building: how an answer looks on the wire, apart from deciding which answer.

The engine decides (validation, matching, sequence state); this module renders: OpenAI's
defaults for scripted errors, the static headers every response carries, a reply's headers
and stream frames, recorded replies replayed byte for byte, and JSON and error outcomes. The
app and the recorder use it for their own answers (413, 500, 502) without asking the engine.
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus

from mockserver import completions, sse
from mockserver.errors import ApiError
from mockserver.outcome import Frame, Headers, Outcome
from mockserver.scenarios import ErrorSpec, RawReply, Reply
from mockserver.wire import JSON

JSON_TYPE = (b"content-type", b"application/json")
SSE_TYPE = (b"content-type", b"text/event-stream; charset=utf-8")
STATIC_HEADERS: Headers = [
    (b"openai-version", b"2020-10-01"),
    (b"openai-organization", b"mockserver"),
    (b"openai-project", b"proj_mockserver"),
    (b"x-ratelimit-limit-requests", b"10000"),
    (b"x-ratelimit-limit-tokens", b"30000000"),
    (b"x-ratelimit-remaining-requests", b"9999"),
    (b"x-ratelimit-remaining-tokens", b"29999000"),
    (b"x-ratelimit-reset-requests", b"6ms"),
    (b"x-ratelimit-reset-tokens", b"2ms"),
    (b"access-control-expose-headers", b"X-Request-ID"),
]

_RETRYABLE = frozenset({408, 409, 429})
_ERROR_DEFAULTS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: (
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided: sk-mock***. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
    ),
    403: ("invalid_request_error", None, "You are not allowed to sample from this model."),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model `{model}` does not exist or you do not have access to it.",
    ),
    409: ("invalid_request_error", None, "The request conflicted with another request."),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for {model} in organization org-mockserver on requests per min "
        "(RPM): Limit 3, Used 3, Requested 1. Please try again in 20ms. Visit "
        "https://platform.openai.com/account/rate-limits to learn more.",
    ),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
    529: ("server_error", None, "The server is overloaded, please try again later."),
}


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"Request failed with status {status}"


def error_from_spec(spec: ErrorSpec, model: str) -> ApiError:
    """A scripted error with OpenAI's defaults for its status filled in.

    Errors the SDKs retry get `retry-after-ms: 10` (tests stay fast) unless the scenario sets
    `retry-after` or `retry-after-ms`, and quota errors `x-should-retry: false` unless it sets
    that (null removes a header).
    """
    default_type, default_code, default_message = _ERROR_DEFAULTS.get(
        spec.status,
        (
            "server_error" if spec.status >= 500 else "invalid_request_error",
            None,
            f"{_phrase(spec.status)}.",
        ),
    )
    code = spec.code if spec.code is not None or spec.type is not None else default_code
    headers: dict[str, str | None] = {}
    timed = any(name in ("retry-after", "retry-after-ms") for name, _ in spec.headers)
    if (spec.status in _RETRYABLE or spec.status >= 500) and not timed:
        headers["retry-after-ms"] = "10"  # the SDKs read it before a scenario's retry-after
    if code == "insufficient_quota":
        headers["x-should-retry"] = "false"
    headers.update(spec.headers)
    return ApiError(
        status=spec.status,
        message=(spec.message or default_message).replace("{model}", model),
        type=spec.type or default_type,
        param=spec.param,
        code=code,
        headers=tuple((k, v) for k, v in headers.items() if v is not None),
    )


def frames(reply: Reply, events: list[str], model: str) -> tuple[Frame, ...]:
    spec = reply.stream
    tail = completions.DONE
    abort = False
    if spec.interrupt is not None:
        events = events[: spec.interrupt.after_chunks]
        if spec.interrupt.error is not None:
            tail = completions.error_event(error_from_spec(spec.interrupt.error, model))
        else:
            tail, abort = "", True
    first = spec.first_chunk_delay_ms / 1000
    end = (Frame(0.0, abort=True),) if abort else ()
    if not spec.chunk_delay_ms:
        return (Frame(first, ("".join(events) + tail).encode()), *end)
    gap = spec.chunk_delay_ms / 1000
    frames = [Frame(first if n == 0 else gap, e.encode()) for n, e in enumerate(events)]
    if tail:
        frames.append(Frame(gap if frames else first, tail.encode()))
    return (*frames, *end)


def reply_headers(content_type: tuple[bytes, bytes], request_id: str, reply: Reply) -> Headers:
    processing = str(int(reply.delay_ms + reply.stream.first_chunk_delay_ms) + 1).encode()
    headers: Headers = [
        content_type,
        (b"x-request-id", request_id.encode()),
        (b"openai-processing-ms", processing),
        *STATIC_HEADERS,
    ]
    if reply.headers:
        headers = merge_headers(headers, reply.headers)
    return headers


def error_outcome(
    error: ApiError, request_id: str, delay: float = 0.0, *, body: bytes | None = None
) -> Outcome:
    """The JSON error response for `error` (sent after `delay` seconds); `body` replaces
    OpenAI's envelope (a profile's error body)."""
    headers: Headers = [
        JSON_TYPE,
        (b"x-request-id", request_id.encode()),
        *STATIC_HEADERS,
    ]
    if error.headers:
        headers = merge_headers(headers, error.headers)
    return Outcome(error.status, headers, error.encode() if body is None else body, delay=delay)


def json_outcome(body: JSON, request_id: str, status: int = 200) -> Outcome:
    """A JSON body with the API's headers."""
    headers: Headers = [
        JSON_TYPE,
        (b"x-request-id", request_id.encode()),
        *STATIC_HEADERS,
    ]
    return Outcome(status, headers, completions.encode(body).encode())


def replay(raw: RawReply, delay_ms: float = 0.0, *, timing: bool = False) -> Outcome:
    """A recorded response, byte for byte (with its recorded waits when `timing` is on here or
    in the reply)."""
    headers: Headers = list(raw.wire_headers)
    if raw.events is None:
        return Outcome(raw.status, headers, raw.body or b"", delay=delay_ms / 1000)
    timed = timing or raw.timing
    frames = [
        Frame(
            e.delay_ms / 1000 if timed else 0.0,
            (f"event: {e.event}\n" if e.event is not None else "").encode()
            + sse.encode_event(e.data).encode("utf-8", "surrogateescape"),  # \uDCxx: a byte
        )
        for e in raw.events
    ]
    if not timed and frames:
        frames = [Frame(0.0, b"".join(f.data for f in frames))]
    if raw.end == "abort":
        frames.append(Frame(0.0, abort=True))
    return Outcome(raw.status, headers, frames=tuple(frames), delay=delay_ms / 1000)


def merge_headers(headers: Headers, extra: Iterable[tuple[str, str | None]]) -> Headers:
    """Scenario headers replace defaults of the same name; a null value removes one."""
    overrides = {k.lower().encode("latin-1"): v for k, v in extra}
    kept = [(k, v) for k, v in headers if k not in overrides]
    kept.extend((k, v.encode("latin-1")) for k, v in overrides.items() if v is not None)
    return kept


def unknown_url(method: str, path: str) -> ApiError:
    """OpenAI's answer to a route it does not have (shaped like the app's `too_large` and
    `internal_error`: each names one error, and their likeness is only the envelope's)."""
    return ApiError(
        status=404,
        message=(
            f"Unknown request URL: {method} {path}. Please check the URL for typos, or see the "
            "docs at https://platform.openai.com/docs/api-reference/."
        ),
        code="unknown_url",
    )


def reply_too_large(size: int, limit: int) -> ApiError:
    """The answer to a request whose reply would pass the server's ceiling."""
    return ApiError(
        status=400,
        message=(
            f"The reply to this request would be about {_mb(size)}, more than the {_mb(limit)} "
            f"({limit} bytes) this server renders. Ask for less (n, logprobs, top_logprobs, "
            "max_completion_tokens) or raise the limit (mockserver serve --max-reply-size, "
            "EngineConfig(max_reply_size=...))."
        ),
        code="reply_too_large",
        headers=(("x-should-retry", "false"),),
    )


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MiB"
