"""`MockEngine`: a request in, an `Outcome` out. Holds the scenarios, their state, the journal.

No I/O happens here: the shells (Starlette app, in-process transports) read requests, sleep
between frames and write bytes. The clock and the random stream are injected (seeded runs give
identical bytes).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import unquote

from mockserver import completions, journal, memo, sse
from mockserver.completions import Envelope, Stamp
from mockserver.errors import ApiError
from mockserver.ids import Clock, IdFactory, clock_for
from mockserver.matching import HeaderIs, Matcher, ModelIs
from mockserver.outcome import Frame, Headers, Outcome
from mockserver.request import ChatRequest, lazy, with_headers
from mockserver.scenarios import ErrorSpec, RawReply, Reply, Scenario, ScenarioSet
from mockserver.validation import decode_body, parse_chat_request
from mockserver.validation.strict import check_strict
from mockserver.wire import JSON, Model

_new = object.__new__
_set = object.__setattr__
NO_MATCH = "mockserver_no_match"
SEQUENCE_USED_UP = "mockserver_sequence_exhausted"
DEFAULT_MAX_BODY = 64 * 1024 * 1024
DEFAULT_MAX_REPLY = 32 * 1024 * 1024
"""The largest reply rendered, by default (about, as `completions.reply_size` reckons it)."""
RENDER_INLINE = 256 * 1024
"""Replies estimated larger than this render in a worker thread when served over HTTP."""
DEFAULT_JOURNAL_BYTES = 64 * 1024 * 1024
"""What the journal's entries may hold in all (request bodies and headers), by default."""
MODEL_CREATED = 1_700_000_000
Deferred = Callable[[], Outcome]
"""A reply still to render (see `MockEngine.answer`)."""

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


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """How the engine behaves; the CLI flags and fixture options map onto it."""

    seed: int | None = None
    models: tuple[str, ...] = ()
    strict: bool = False
    max_body_size: int = DEFAULT_MAX_BODY
    max_reply_size: int = DEFAULT_MAX_REPLY
    """The largest reply rendered; a request whose reply would be larger gets a 400 naming
    the limit (`--max-reply-size`)."""
    journal_size: int = 10_000
    """The most entries the journal keeps (the oldest go first)."""
    journal_bytes: int = DEFAULT_JOURNAL_BYTES
    """The most bytes of requests the journal keeps (the oldest go first); a request larger
    than this is journaled without its body."""
    recorded_timing: bool = False
    """Replay every recorded (`raw`) stream with its recorded waits, as `timing: true` does."""


@dataclass(frozen=True)
class JournalEntry:
    """One request the engine answered, and how.

    It keeps the request's bytes and headers, and parses them again only when `body` or
    `request` is read: a server journal of thousands of parsed requests kept the garbage
    collector busy enough to halve the server's throughput. A body larger than the journal's
    whole budget is not kept: `raw` is empty and `omitted` says how many bytes it had.
    """

    raw: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    status: int
    scenario: str | None = None
    reply_index: int | None = None
    error: ApiError | None = None
    omitted: int = 0

    @lazy
    def body(self) -> JSON:
        """The decoded request body, or None when it was not a JSON object."""
        try:
            return decode_body(self.raw)
        except ApiError:
            return None

    @lazy
    def request(self) -> ChatRequest | None:
        """The validated request, or None when it was refused before matching."""
        if self.body is None:
            return None
        try:
            return parse_chat_request(self.body, self.headers)
        except ApiError:
            return None


@dataclass
class _State:
    used: list[int]
    journal: journal.Journal


class MockEngine:
    """Plays back scenarios: validation, matching (with sequence state), replies."""

    def __init__(self, scenarios: ScenarioSet, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.scenarios = scenarios
        self._list: Sequence[Scenario] = scenarios.scenarios
        self._matcher = Matcher(self._list)
        self._has_next = any(s.after == "next" for s in self._list)
        self._lock = threading.Lock()
        self._ids = IdFactory(self.config.seed)
        self._clock: Clock = clock_for(self.config.seed)
        self._fingerprint = self._ids.fingerprint()
        self._padding = self._ids.padding_pool(64)
        self._state = self._fresh_state()
        self._needs_headers = _needs_headers(self._list)
        self._parsed: memo.Bounded[bytes, ChatRequest | object] = memo.Bounded(
            1024, weigh=memo.body_weight
        )
        self._templates: memo.Bounded[tuple[bytes, int, int], memo.Template | object] = (
            memo.Bounded(1024, weigh=memo.template_weight)
        )

    # -- state -------------------------------------------------------------------------------

    def _fresh_state(self) -> _State:
        return _State(
            used=[0] * len(self._list),
            journal=journal.Journal(self.config.journal_size, self.config.journal_bytes),
        )

    def reset(self) -> None:
        """Forget sequence positions and the journal (a test starts clean)."""
        with self._lock:
            self._state = self._fresh_state()

    def add_scenarios(self, scenarios: Iterable[Scenario]) -> None:
        """Append scenarios while serving (a test adds inline ones after its first requests).

        Sequence positions and the journal are kept; the caller keeps names unique.
        """
        added = tuple(scenarios)
        with self._lock:
            self._list = (*self._list, *added)
            self.scenarios = ScenarioSet(tuple(self._list), self.scenarios.files)
            self._matcher = Matcher(self._list)
            self._has_next = any(s.after == "next" for s in self._list)
            self._needs_headers = _needs_headers(self._list)
            self._state.used.extend(0 for _ in added)

    @property
    def journal(self) -> list[JournalEntry]:
        with self._lock:
            return self._state.journal.entries()

    @property
    def journal_dropped(self) -> int:
        """How many entries the journal dropped (oldest first) to stay within its limits."""
        with self._lock:
            return self._state.journal.dropped

    def journal_json(self) -> Iterator[bytes]:
        """`GET /_mockserver/journal`: the journal as JSON, a piece at a time (see
        `journal.journal_json`: writing it never holds more than a piece in memory)."""
        with self._lock:
            entries = self._state.journal.entries()
            dropped = self._state.journal.dropped
        return journal.journal_json(entries, dropped, self.config.journal_bytes)

    def uses(self) -> dict[str, int]:
        """How many requests each scenario has answered, by name."""
        with self._lock:
            return {s.name: n for s, n in zip(self._list, self._state.used, strict=True)}

    # -- routing -----------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, body: bytes = b"", headers: Iterable[tuple[bytes, bytes]] = ()
    ) -> Outcome:
        """Answer any request to the API (`/v1/...`, or the same paths without `/v1`)."""
        answer = self.answer(method, path, body, headers)
        return answer if isinstance(answer, Outcome) else answer()

    def answer(
        self, method: str, path: str, body: bytes = b"", headers: Iterable[tuple[bytes, bytes]] = ()
    ) -> Outcome | Deferred:
        """As `handle`, but a reply that takes long to render (`RENDER_INLINE`) comes back as
        a function that renders it: the server calls that in a worker thread, so that other
        requests are answered meanwhile. Small replies come back rendered."""
        route = path[3:] if path.startswith("/v1/") else path
        if route == "/chat/completions" and method == "POST":
            if type(self).handle_chat is not MockEngine.handle_chat:
                return self.handle_chat(body, headers)  # a subclass's own way (the recorder's)
            return self._chat(body, tuple(headers), defer=True)
        if route == "/models" and method == "GET":
            return self.list_models()
        if route.startswith("/models/") and method == "GET":
            return self.get_model(unquote(route[len("/models/") :]))
        return self.error_outcome(unknown_url(method, path))

    # -- chat completions --------------------------------------------------------------------

    def handle_chat(self, raw: bytes, headers: Iterable[tuple[bytes, bytes]] = ()) -> Outcome:
        """Answer one `POST /v1/chat/completions` body."""
        answer = self._chat(raw, tuple(headers), defer=False)
        return answer if isinstance(answer, Outcome) else answer()

    def _chat(
        self, raw: bytes, headers: tuple[tuple[bytes, bytes], ...], *, defer: bool
    ) -> Outcome | Deferred:
        request_id = self._ids.request()
        scenario = None
        turn = None
        delay = 0.0
        try:
            request = self._parse(raw, headers)
            if self.config.strict:
                check_strict(request)
            scenario, turn = self._match(request)
            reply = self._pick(scenario, turn)
            delay = reply.delay_ms / 1000
            if reply.raw is not None:
                outcome = replay(reply.raw, reply.delay_ms, timing=self.config.recorded_timing)
            elif reply.error is not None:
                raise error_from_spec(reply.error, request.model)
            else:
                size = completions.reply_size(request, reply)
                if size > self.config.max_reply_size:
                    raise reply_too_large(size, self.config.max_reply_size)
                if defer and size > RENDER_INLINE:
                    return functools.partial(
                        self._rendered,
                        request=request,
                        scenario=scenario,
                        reply=reply,
                        turn=turn,
                        request_id=request_id,
                        raw=raw,
                        headers=headers,
                    )
                outcome = self._reply(request, scenario, reply, request_id, raw)
        except ApiError as error:
            name = scenario.name if scenario else None
            self._record(raw, headers, error.status, scenario=name, reply_index=turn, error=error)
            return self.error_outcome(error, request_id, delay)
        index = min(turn, len(scenario.replies) - 1)
        self._record(raw, headers, outcome.status, scenario=scenario.name, reply_index=index)
        return outcome

    def _rendered(
        self,
        *,
        request: ChatRequest,
        scenario: Scenario,
        reply: Reply,
        turn: int,
        request_id: str,
        raw: bytes,
        headers: tuple[tuple[bytes, bytes], ...],
    ) -> Outcome:
        """A large reply, rendered (in a worker thread) and journaled."""
        try:
            outcome = self._reply(request, scenario, reply, request_id, raw)
        except ApiError as error:
            self._record(
                raw, headers, error.status, scenario=scenario.name, reply_index=turn, error=error
            )
            return self.error_outcome(error, request_id, reply.delay_ms / 1000)
        index = min(turn, len(scenario.replies) - 1)
        self._record(raw, headers, outcome.status, scenario=scenario.name, reply_index=index)
        return outcome

    def answers(self, raw: bytes, headers: Iterable[tuple[bytes, bytes]] = ()) -> bool:
        """Whether this chat request would be answered by a scenario, or refused as invalid,
        rather than missed (state unchanged). The recorder forwards only the misses."""
        try:
            request = parse_chat_request(decode_body(raw), tuple(headers))
        except ApiError:
            return True
        with self._lock:
            skip = self._exhausted if self._has_next else None
            return self._matcher.find(request, skip) is not None

    def _parse(self, raw: bytes, headers: tuple[tuple[bytes, bytes], ...]) -> ChatRequest:
        """The request a body holds; a body seen before is parsed only once (see `memo`)."""
        request = self._parsed.get(raw)
        if not isinstance(request, ChatRequest):
            parsed = parse_chat_request(decode_body(raw), ())
            if len(raw) <= memo.MAX_BODY:
                # Kept from the second sighting: a stream of distinct bodies keeps nothing alive.
                self._parsed.put(raw, parsed if request is memo.SEEN else memo.SEEN)
            request = parsed
        if self._needs_headers and headers:
            return with_headers(request, headers)
        return request

    def _record(
        self,
        raw: bytes,
        headers: tuple[tuple[bytes, bytes], ...],
        status: int,
        *,
        scenario: str | None,
        reply_index: int | None,
        error: ApiError | None = None,
    ) -> None:
        size = journal.cost(raw, headers)
        omitted = 0
        if size > self.config.journal_bytes:
            size, omitted, raw = size - len(raw), len(raw), b""
        entry = _new(JournalEntry)  # as build_request does: a frozen __init__ costs a microsecond
        _set(
            entry,
            "__dict__",
            {
                "raw": raw,
                "headers": headers,
                "status": status,
                "scenario": scenario,
                "reply_index": reply_index,
                "error": error,
                "omitted": omitted,
            },
        )
        with self._lock:
            self._state.journal.add(entry, size)

    def _exhausted(self, position: int) -> bool:
        scenario = self._list[position]
        return scenario.after == "next" and self._state.used[position] >= len(scenario.replies)

    def _match(self, request: ChatRequest) -> tuple[Scenario, int]:
        """The scenario that answers, and how many requests it answered before this one.

        A strict file's rules are checked before the scenario's turn is used up, so a request
        it refuses does not move its sequence on.
        """
        with self._lock:
            position = self._matcher.find(request, self._exhausted if self._has_next else None)
            if position is not None:
                scenario = self._list[position]
                if scenario.strict and not self.config.strict:
                    check_strict(request)
                turn = self._state.used[position]
                self._state.used[position] = turn + 1
        if position is None:
            raise self._no_match(request)
        return scenario, turn

    @staticmethod
    def _pick(scenario: Scenario, turn: int) -> Reply:
        """The reply for the scenario's `turn`-th request, following `after` once used up."""
        if turn < len(scenario.replies):
            return scenario.replies[turn]
        if scenario.after == "error":
            raise ApiError(
                status=404,
                type=SEQUENCE_USED_UP,
                message=(
                    f"Scenario {scenario.name!r} ({scenario.where}) has given all "
                    f"{len(scenario.replies)} replies of its sequence, and its `after: error` "
                    f"refuses more (this was request {turn + 1})."
                ),
                headers=(("x-should-retry", "false"),),
            )
        return scenario.replies[-1]

    def _no_match(self, request: ChatRequest) -> ApiError:
        count = len(self._list)
        if not count:
            message = "No scenario matched this request: no scenarios are loaded."
        else:
            miss = self._matcher.explain(request)
            closest = self._list[miss.scenario] if miss.scenario is not None else None
            message = f"No scenario matched this request ({count} loaded)."
            if closest is not None and miss.condition is not None:
                key = "match." + miss.condition.rsplit("match.", 1)[-1]
                message += (
                    f" Closest: {closest.name!r} ({closest.where}), which failed {key}: "
                    f"{miss.reason}."
                )
            elif closest is not None:
                message += (
                    f" Closest: {closest.name!r} ({closest.where}), whose sequence is used up."
                )
        return ApiError(
            status=404,
            type=NO_MATCH,
            message=message,
            headers=(("x-should-retry", "false"),),
        )

    def _stamp(self, request: ChatRequest, reply: Reply, completion_id: str, created: int) -> Stamp:
        tier = reply.service_tier or request.service_tier or "default"
        if tier == "auto":
            tier = "default"
        elif tier == "fast":
            tier = "priority"
        return Stamp(
            id=completion_id,
            created=created,
            model=reply.model or request.model,
            fingerprint=reply.system_fingerprint or self._fingerprint,
            service_tier=tier,
        )

    def _reply(
        self,
        request: ChatRequest,
        scenario: Scenario,
        reply: Reply,
        request_id: str,
        raw: bytes | None = None,
    ) -> Outcome:
        completion_id, created = self._ids.completion(), self._clock()
        offset = self._ids.below(64) if request.stream else 0
        key = (raw or b"", id(reply), offset)
        template = self._templates.get(key) if raw is not None else None
        if not isinstance(template, memo.Template):
            if template is None or raw is None or not _templatable(request, reply):
                # Seen for the first time (or not worth it): render; a template comes next time.
                if raw is not None and len(raw) <= memo.MAX_BODY:
                    self._templates.put(key, memo.SEEN)
                stamp = self._stamp(request, reply, completion_id, created)
                return self._render(
                    request, scenario, reply, stamp=stamp, request_id=request_id, offset=offset
                )
            marked = self._stamp(request, reply, memo.TEMPLATE_ID, memo.TEMPLATE_CREATED)
            rendered = self._render(
                request,
                scenario,
                reply,
                stamp=marked,
                request_id=memo.TEMPLATE_REQUEST_ID,
                offset=offset,
            )
            template = memo.Template.of(rendered)
            self._templates.put(key, template)
        return template.fill(completion_id, created, request_id)

    def _render(
        self,
        request: ChatRequest,
        scenario: Scenario,
        reply: Reply,
        *,
        stamp: Stamp,
        request_id: str,
        offset: int,
    ) -> Outcome:
        turns = completions.resolve(
            request,
            reply,
            created=stamp.created,
            tool_call_id=self._ids.tool_call,
            audio_id=self._ids.audio,
            where=f"{scenario.name!r} ({scenario.where})",
        )
        usage = completions.usage(request, turns, reply.usage)
        delay = reply.delay_ms / 1000
        headers = self._headers(SSE_TYPE if request.stream else JSON_TYPE, request_id, reply)
        if not request.stream:
            body = completions.completion_body(request, stamp, turns, usage)
            return Outcome(200, headers, body, delay=delay)
        envelope = Envelope.for_stream(request, stamp, self._padding, offset)
        events = completions.chunk_events(
            request,
            turns,
            envelope,
            chunk_size=reply.stream.chunk_size,
            usage_=usage if request.include_usage else None,
        )
        return Outcome(200, headers, frames=self._frames(reply, events, stamp.model), delay=delay)

    def _frames(self, reply: Reply, events: list[str], model: str) -> tuple[Frame, ...]:
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

    def _headers(self, content_type: tuple[bytes, bytes], request_id: str, reply: Reply) -> Headers:
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
        self, error: ApiError, request_id: str | None = None, delay: float = 0.0
    ) -> Outcome:
        """The JSON error response for `error` (sent after `delay` seconds)."""
        headers: Headers = [
            JSON_TYPE,
            (b"x-request-id", (request_id or self._ids.request()).encode()),
            *STATIC_HEADERS,
        ]
        if error.headers:
            headers = merge_headers(headers, error.headers)
        return Outcome(error.status, headers, error.encode(), delay=delay)

    # -- models ------------------------------------------------------------------------------

    def model_names(self) -> tuple[str, ...]:
        names = dict.fromkeys(self.scenarios.model_names())
        names.update(dict.fromkeys(self.config.models))
        return tuple(names)

    def _model(self, name: str) -> Model:
        return {"id": name, "object": "model", "created": MODEL_CREATED, "owned_by": "mockserver"}

    def list_models(self) -> Outcome:
        body = {"object": "list", "data": [self._model(n) for n in self.model_names()]}
        return self.json_outcome(body)

    def answers_model(self, name: str) -> bool:
        """Whether `GET /v1/models/{name}` finds the model: it is listed (`model_names`), or
        some scenario's `model` condition takes it (a glob), or some scenario has no `model`
        condition (it answers any model). Other conditions are not considered: a model is
        retrievable when some request for it could be answered."""
        if name in self.model_names():
            return True
        for scenario in self._list:
            models = [c for c in scenario.conditions if isinstance(c, ModelIs)]
            if all(c.glob.fullmatch(name) if c.glob else c.name == name for c in models):
                return True
        return False

    def get_model(self, name: str) -> Outcome:
        if not self.answers_model(name):
            error = ApiError(
                status=404,
                message=f"The model `{name}` does not exist or you do not have access to it.",
                code="model_not_found",
            )
            return self.error_outcome(error)
        return self.json_outcome(self._model(name))

    def json_outcome(self, body: JSON, status: int = 200) -> Outcome:
        headers: Headers = [
            JSON_TYPE,
            (b"x-request-id", self._ids.request().encode()),
            *STATIC_HEADERS,
        ]
        return Outcome(status, headers, completions.encode(body).encode())


def _needs_headers(scenarios: Iterable[Scenario]) -> bool:
    """Whether any scenario matches on request headers (parsed requests are shared otherwise)."""
    return any(isinstance(c, HeaderIs) for s in scenarios for c in s.conditions)


def _templatable(request: ChatRequest, reply: Reply) -> bool:
    """Whether the reply makes no ids of its own (tool calls, audio): then only the completion
    id, `created` and `x-request-id` differ between responses, and a template serves."""
    if "audio" in request.modalities:
        return False
    return all(
        choice.audio is None
        and choice.function_call is None
        and all(call.id for call in choice.tool_calls)
        for choice in reply.choices
    )


def replay(raw: RawReply, delay_ms: float = 0.0, *, timing: bool = False) -> Outcome:
    """A recorded response, byte for byte (with its recorded waits when `timing` is on here or
    in the reply)."""
    headers: Headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in raw.headers]
    if raw.events is None:
        return Outcome(raw.status, headers, raw.body or b"", delay=delay_ms / 1000)
    timed = timing or raw.timing
    frames = [
        Frame(
            e.delay_ms / 1000 if timed else 0.0,
            (f"event: {e.event}\n" if e.event is not None else "").encode()
            + sse.encode_event(e.data).encode(),
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


def unknown_url(method: str, path: str) -> ApiError:
    """OpenAI's answer to a route it does not have."""
    return ApiError(
        status=404,
        message=(
            f"Unknown request URL: {method} {path}. Please check the URL for typos, or see the "
            "docs at https://platform.openai.com/docs/api-reference/."
        ),
        code="unknown_url",
    )
