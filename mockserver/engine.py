"""`MockEngine`: a request in, an `Outcome` out. Holds the scenarios, their state, the journal.

No I/O happens here: the shells (Starlette app, in-process transports) read requests, sleep
between frames and write bytes. The clock and the random stream are injected (seeded runs give
identical bytes).
"""

from __future__ import annotations

import copy
import functools
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from mockserver import completions, journal, memo, profiles, templates, trouble
from mockserver.completions import Stamp
from mockserver.errors import ApiError, Problem, ScenarioError
from mockserver.faults import Fault
from mockserver.ids import Clock, IdFactory, clock_for
from mockserver.matching import HeaderIs, Matcher, ModelIs
from mockserver.outcome import Outcome
from mockserver.ratelimit import RateLimit
from mockserver.request import ChatRequest, lazy, with_headers
from mockserver.responses import (
    JSON_TYPE,
    SSE_TYPE,
    error_from_spec,
    error_outcome,
    frames,
    json_outcome,
    replay,
    reply_headers,
    reply_too_large,
    unknown_url,
)
from mockserver.responses_api import ResponsesApi, parse_responses_request
from mockserver.scenarios import Reply, Scenario, ScenarioSet
from mockserver.validation import decode_body, parse_chat_request
from mockserver.validation.strict import check_strict
from mockserver.wire import JSON, Model

_now = time.time
_meter = journal.METER.get
NO_MATCH = "mockserver_no_match"
SEQUENCE_USED_UP = "mockserver_sequence_exhausted"
DEFAULT_MAX_BODY = 64 * 1024 * 1024
MODEL_CREATED = 1_700_000_000
DEFAULT_MAX_REPLY = 32 * 1024 * 1024
"""The largest reply rendered, by default (about, as `completions.reply_size` reckons it)."""
RENDER_INLINE = 256 * 1024
"""Replies estimated larger than this render in a worker thread when served over HTTP."""
DEFAULT_JOURNAL_BYTES = 64 * 1024 * 1024
"""What the journal's entries may hold in all (request bodies and headers), by default."""


Parse = Callable[[bytes, tuple[tuple[bytes, bytes], ...]], ChatRequest]
"""An API's reader: a request body (and its headers) into the typed view matching reads."""
Render = Callable[[ChatRequest, "Scenario", "Reply", str, bytes], Outcome]
"""An API's encoder: the request, the scenario and reply picked, the request id and body, into
the response."""
Deferred = Callable[[], Outcome]
"""A reply still to render (see `MockEngine.respond`)."""

READERS: dict[str, Callable[[dict[str, JSON], tuple[tuple[bytes, bytes], ...]], ChatRequest]] = {
    "responses": parse_responses_request
}
"""The reader of each API besides chat completions, for the journal's `request` view."""

OnMiss = Callable[[bytes, tuple[tuple[bytes, bytes], ...]], Iterable[Scenario]]
"""Called with a valid chat request's body and headers when no scenario matched it: returns
scenarios to add before one more try (none: the request is answered as unmatched), or raises
`ApiError` to answer with that error. The pytest record modes record through it. A hook with
an `apis` attribute naming other APIs (`("chat", "responses")`) is asked about their requests
too, with the API as a keyword: `hook(raw, headers, api="responses")`."""


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
    faults: tuple[Fault, ...] = ()
    """Server-wide faults (`--faults FILE`), after each scenario's own."""
    timing: str = "instant"
    """`realistic`: replies without waits of their own get `timing.REALISTIC`."""
    rate_limits: tuple[RateLimit, ...] = ()
    profile: str | None = None
    """The server the mock speaks as (`mockserver.profiles`); None: the one the scenario
    files declare, else `openai`."""
    reasoning_field: str = "reasoning"
    """Where the `vllm` profile sends reasoning: `reasoning`, `reasoning_content` or `both`."""


_ENTRY_FIELDS = (
    "raw",
    "headers",
    "status",
    "scenario",
    "reply_index",
    "error",
    "api",
    "omitted",
    "fault",
    "notes",
    "profile",
    "at",
    "meter",
)


class JournalEntry(tuple[Any, ...]):
    """One request the engine answered, and how: an immutable record of the fields below.

    It keeps the request's bytes and headers, and parses them again only when `body` or
    `request` is read: a server journal of thousands of parsed requests kept the garbage
    collector busy enough to halve the server's throughput. A body larger than the journal's
    whole budget is not kept: `raw` is empty and `omitted` says how many bytes it had.

    It is one tuple, not a dataclass with an instance dictionary: a journal keeps thousands,
    each freed long after it was made, out of the processor's caches, and under load every
    object an entry held cost the server a fraction of a microsecond a request (the
    dictionary, and the pair the journal kept it in, 5 us of a 75 us request). Built by
    position from `_ENTRY_FIELDS` on the hot path; compared and hashed as the tuple of its
    fields, as the frozen dataclass it was (its headers packed however they were given, so
    equal headers make equal entries).
    """

    def __new__(
        cls,
        raw: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        status: int,
        *,
        scenario: str | None = None,
        reply_index: int | None = None,
        error: ApiError | None = None,
        api: str = "chat",
        omitted: int = 0,
        fault: str | None = None,
        notes: tuple[str, ...] = (),
        profile: str = "openai",
        at: float = 0.0,
        meter: journal.Meter | None = None,
    ) -> JournalEntry:
        kept = journal.pack_headers(headers)
        fields = (
            raw,
            kept,
            status,
            scenario,
            reply_index,
            error,
            api,
            omitted,
            fault,
            notes,
            profile,
            at,
            meter,
        )
        return _new_entry(cls, fields)

    def __reduce__(self) -> tuple[Callable[..., JournalEntry], tuple[Any, ...]]:
        return _new_entry, (JournalEntry, tuple(self))  # copy and pickle: the fields by position

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"JournalEntry is immutable: cannot set {name!r}")

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in _ENTRY_FIELDS)
        return f"JournalEntry({shown})"

    @property
    def raw(self) -> bytes:
        return self[0]  # type: ignore[no-any-return]

    @property
    def headers(self) -> Sequence[tuple[bytes, bytes]]:
        """The request's headers (kept packed: `journal.pack_headers`)."""
        return journal.unpack(self[1])

    @property
    def status(self) -> int:
        return self[2]  # type: ignore[no-any-return]

    @property
    def scenario(self) -> str | None:
        return self[3]  # type: ignore[no-any-return]

    @property
    def reply_index(self) -> int | None:
        return self[4]  # type: ignore[no-any-return]

    @property
    def error(self) -> ApiError | None:
        return self[5]  # type: ignore[no-any-return]

    @property
    def api(self) -> str:
        """The API the request came through (`chat`, `responses`)."""
        return self[6]  # type: ignore[no-any-return]

    @property
    def omitted(self) -> int:
        return self[7]  # type: ignore[no-any-return]

    @property
    def fault(self) -> str | None:
        """The fault applied to this request (its name), or `rate_limit`."""
        return self[8]  # type: ignore[no-any-return]

    @property
    def notes(self) -> tuple[str, ...]:
        """What the profile said about the request (e.g. vLLM's ignored `guided_*` fields)."""
        return self[9]  # type: ignore[no-any-return]

    @property
    def profile(self) -> str:
        """The profile that read the request (it reads it again for `request`)."""
        return self[10]  # type: ignore[no-any-return]

    @property
    def at(self) -> float:
        """When the request was answered (seconds since the epoch)."""
        return self[11]  # type: ignore[no-any-return]

    @property
    def meter(self) -> journal.Meter | None:
        """What was measured sending the answer (`journal.Meter`): by the ASGI app or in
        process."""
        return self[12]  # type: ignore[no-any-return]

    def cost(self) -> int:
        """The bytes it counts for in its journal (`journal.cost` of its body and headers)."""
        return journal.cost(self[0], self[1])

    @lazy
    def body(self) -> JSON:
        """The decoded request body, or None when it was not a JSON object."""
        try:
            return decode_body(self.raw)
        except ApiError:
            return None

    @lazy
    def request(self) -> ChatRequest | None:
        """The validated request, or None when it was refused before matching (another API's
        request is read by its reader, without the state it may have read then, such as the
        earlier turns a `previous_response_id` brought in)."""
        if self.body is None:
            return None
        try:
            return read_again(self, self.body)
        except ApiError:
            return None


_new_entry = tuple.__new__


@dataclass(slots=True)
class _Call:
    """One request on its way through `MockEngine.answer`: what the journal keeps of it."""

    raw: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    api: str
    request_id: str
    notes: tuple[str, ...] = ()


@dataclass
class _State:
    used: list[int]
    journal: journal.Journal


class MockEngine:
    """Plays back scenarios: validation, matching (with sequence state), replies."""

    def __init__(
        self,
        scenarios: ScenarioSet,
        config: EngineConfig | None = None,
        *,
        on_miss: OnMiss | None = None,
    ) -> None:
        self.config = config or EngineConfig()
        self.scenarios = scenarios
        declared = scenarios.profile
        if self.config.profile and declared and declared != self.config.profile:
            raise ScenarioError(profile_clash(scenarios, self.config.profile))
        self.profile = profiles.get(
            self.config.profile or declared or "openai",
            profiles.Options(reasoning_field=self.config.reasoning_field),
        )
        self.on_miss = on_miss
        self._list: Sequence[Scenario] = scenarios.scenarios
        self._matcher = Matcher(self._list)
        self._has_next = any(s.after == "next" for s in self._list)
        self._lock = threading.Lock()
        self._ids = IdFactory(self.config.seed)
        self._tool_call_id = self.profile.tool_call_ids(self._ids)
        self._clock: Clock = clock_for(self.config.seed)
        self._fingerprint = self._ids.fingerprint()
        self._padding = self._ids.padding_pool(64)
        self._state = self._fresh_state()
        self._needs_headers = _needs_headers(self._list)
        self._parsed: memo.Bounded[bytes, ChatRequest] = memo.Bounded(1024, weigh=memo.body_weight)
        self._templates = templates.Templates(self._marked)
        self.responses_api = ResponsesApi(self, self._ids, self._clock, self._padding)
        self._trouble = self._trouble_for(self._list)

    def _trouble_for(self, scenarios: Sequence[Scenario]) -> trouble.Trouble | None:
        c = self.config
        return trouble.for_engine(
            scenarios, seed=c.seed, faults=c.faults, timing=c.timing, rate_limits=c.rate_limits
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
        self.responses_api.reset()
        if self._trouble is not None:
            self._trouble.reset()

    def add_scenarios(self, scenarios: Iterable[Scenario]) -> None:
        """Append scenarios while serving (a test adds inline ones after its first requests).

        Sequence positions and the journal are kept; a name already in use raises
        `ScenarioError` (the `ScenarioSet` refuses it) and adds nothing.
        """
        added = tuple(scenarios)
        clash = ScenarioSet(tuple(s for s in added if s.profile not in (None, self.profile.name)))
        if clash.scenarios:
            raise ScenarioError(profile_clash(clash, self.profile.name))
        with self._lock:
            self.scenarios = self.scenarios.extend(added)
            self._list = self.scenarios.scenarios
            self._matcher = Matcher(self._list)
            self._has_next = any(s.after == "next" for s in self._list)
            self._needs_headers = _needs_headers(self._list)
            self._state.used.extend(0 for _ in added)
            if self._trouble is None:
                self._trouble = self._trouble_for(self._list)

    def replace_scenarios(self, scenarios: ScenarioSet) -> None:
        """Serve `scenarios` instead (the control API's PUT and DELETE); a scenario kept by name
        keeps its sequence position, and the journal is kept."""
        uses = self.uses()
        with self._lock:
            self.scenarios = scenarios
            self._list = scenarios.scenarios
            self._matcher = Matcher(self._list)
            self._has_next = any(s.after == "next" for s in self._list)
            self._needs_headers = _needs_headers(self._list)
            self._state.used = [uses.get(s.name, 0) for s in self._list]

    @property
    def needs_headers(self) -> bool:
        """Whether some scenario matches on headers (then a request is read with its own)."""
        return self._needs_headers

    def fork(self, config: EngineConfig | None = None) -> MockEngine:
        """An engine serving these scenarios, sharing their compiled matcher, ids and caches,
        with its own sequence positions and journal (a session's), and no `on_miss` hook."""
        other = copy.copy(self)
        other.config = config or self.config
        other.on_miss = None
        other._lock = threading.Lock()
        other._state = other._fresh_state()
        other.responses_api = ResponsesApi(other, other._ids, other._clock, other._padding)
        return other

    def take_state(self, old: MockEngine) -> None:
        """Continue where `old` was: its journal, and its positions for scenarios of the same
        name (a session rebuilt over a changed shared set)."""
        uses, entries = old.uses(), old.journal
        with self._lock:
            for entry in entries:
                self._state.journal.add(entry)
            self._state.used = [uses.get(s.name, 0) for s in self._list]

    def explain_miss(self, request: ChatRequest) -> tuple[Scenario | None, str | None, str | None]:
        """The closest scenario to an unmatched request, the key it failed and why."""
        miss = self._matcher.explain(request)
        closest = self._list[miss.scenario] if miss.scenario is not None else None
        return closest, miss.condition, miss.reason

    @property
    def journal(self) -> list[JournalEntry]:
        with self._lock:
            return self._state.journal.entries()

    @property
    def journal_dropped(self) -> int:
        """How many entries the journal dropped (oldest first) to stay within its limits."""
        with self._lock:
            return self._state.journal.dropped

    def unknown_fields(self, entry: JournalEntry) -> list[str]:
        """The fields of a journaled request mockserver does not know (read again, not kept)."""
        return journal.unknown_fields(entry, read_again)

    def uses(self) -> dict[str, int]:
        """How many requests each scenario has answered, by name."""
        with self._lock:
            return {s.name: n for s, n in zip(self._list, self._state.used, strict=True)}

    # -- routing -----------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, body: bytes = b"", headers: Iterable[tuple[bytes, bytes]] = ()
    ) -> Outcome:
        """Answer any request to the API (`/v1/...`, or the same paths without `/v1`)."""
        outcome = self.respond(method, path, body, headers)
        return outcome if isinstance(outcome, Outcome) else outcome()

    def respond(
        self, method: str, path: str, body: bytes = b"", headers: Iterable[tuple[bytes, bytes]] = ()
    ) -> Outcome | Deferred:
        """As `handle`, but a chat reply that takes long to render (`RENDER_INLINE`) comes back
        as a function that renders it: the server calls that in a worker thread, so that other
        requests are answered meanwhile. Small replies come back rendered."""
        route = path[3:] if path.startswith("/v1/") else path
        if route == "/chat/completions" and method == "POST":
            return self.answer(body, tuple(headers), self._parse, self._reply, defer=True)
        if route == "/responses" or route.startswith("/responses/"):
            return self.responses_api.handle(method, route, body, headers)
        if route == "/models" and method == "GET":
            return self.list_models()
        if route.startswith("/models/") and method == "GET":
            return self.get_model(unquote(route[len("/models/") :]))
        return self._error(unknown_url(method, path), self._ids.request())

    def _error(self, error: ApiError, request_id: str, delay: float = 0.0) -> Outcome:
        """An error response in the profile's error body."""
        return error_outcome(error, request_id, delay, body=self.profile.error_body(error))

    # -- chat completions --------------------------------------------------------------------

    def handle_chat(self, raw: bytes, headers: Iterable[tuple[bytes, bytes]] = ()) -> Outcome:
        """Answer one `POST /v1/chat/completions` body."""
        outcome = self.answer(raw, tuple(headers), self._parse, self._reply)
        return outcome if isinstance(outcome, Outcome) else outcome()

    def answer(
        self,
        raw: bytes,
        headers: tuple[tuple[bytes, bytes], ...],
        parse: Parse,
        render: Render,
        *,
        api: str = "chat",
        defer: bool = False,
    ) -> Outcome | Deferred:
        """The API-neutral core every API's route calls: `parse` (the API's reader) turns the
        body into the typed view, the engine matches it (sequence state, `on_miss` for chat),
        picks the reply (scripted errors and recordings answered as they are), and `render`
        (the API's encoder) turns it into the response; the journal records it.

        A reply over `max_reply_size` (estimated before rendering) is refused; with `defer`, one
        over `RENDER_INLINE` comes back as a function that renders and journals it."""
        call = _Call(raw, headers, api, self._ids.request())
        scenario = None
        reply_index = None
        delay = 0.0
        limits = fault = None
        try:
            request = parse(raw, headers)
            call.notes = request.notes
            if self.config.strict:
                check_strict(request)
            if self._trouble is not None:
                limits = self._trouble.admit(request, headers)
            scenario, reply_index = self._find(request, raw, headers, api)
            reply = self._pick(scenario, reply_index)
            delay = reply.delay_ms / 1000
            if reply.timing is not None and self._trouble is not None:
                delay = self._trouble.delay(reply, delay)
            if reply.raw is not None:
                outcome = replay(reply.raw, reply.delay_ms, timing=self.config.recorded_timing)
            elif reply.error is not None:
                raise error_from_spec(reply.error, request.model)
            else:
                size = completions.reply_size(request, reply)
                if size > self.config.max_reply_size:
                    raise reply_too_large(size, self.config.max_reply_size)
                step = functools.partial(
                    self._rendered, call, render, request, scenario, reply, reply_index, limits
                )
                return step if defer and size > RENDER_INLINE else step()
            if self._trouble is not None:
                outcome, fault = self._trouble.shape(
                    outcome, request=request, scenario=scenario, reply=reply, limits=limits
                )
        except ApiError as error:
            name = scenario.name if scenario else None
            return self._refused(call, error, name, reply_index, fault=fault, delay=delay)
        return self._answered(call, outcome, scenario, reply_index, fault)

    def _rendered(  # noqa: PLR0917 - bound by functools.partial in one place
        self,
        call: _Call,
        render: Render,
        request: ChatRequest,
        scenario: Scenario,
        reply: Reply,
        reply_index: int,
        limits: trouble.Limits | None,
    ) -> Outcome:
        """The reply rendered (for a large one in a worker thread), shaped by any trouble, and
        journaled."""
        fault = None
        try:
            outcome = render(request, scenario, reply, call.request_id, call.raw)
            if self._trouble is not None:
                outcome, fault = self._trouble.shape(
                    outcome, request=request, scenario=scenario, reply=reply, limits=limits
                )
        except ApiError as error:
            delay = reply.delay_ms / 1000
            return self._refused(call, error, scenario.name, reply_index, fault=fault, delay=delay)
        return self._answered(call, outcome, scenario, reply_index, fault)

    def _refused(
        self,
        call: _Call,
        error: ApiError,
        scenario: str | None,
        reply_index: int | None,
        *,
        fault: str | None,
        delay: float,
    ) -> Outcome:
        """An error answer, journaled (a fault's refusal says which fault, and its wait)."""
        if isinstance(error, trouble.Refusal):
            fault, delay = error.fault, error.delay
        self._record(call, error.status, scenario, reply_index, error=error, fault=fault)
        return self._error(error, call.request_id, delay)

    def _answered(
        self,
        call: _Call,
        outcome: Outcome,
        scenario: Scenario,
        reply_index: int,
        fault: str | None,
    ) -> Outcome:
        """An answer, journaled with the index of the reply given (the last one past the end)."""
        index = min(reply_index, len(scenario.replies) - 1)
        self._record(call, outcome.status, scenario.name, index, fault=fault)
        return outcome

    def _find(
        self, request: ChatRequest, raw: bytes, headers: tuple[tuple[bytes, bytes], ...], api: str
    ) -> tuple[Scenario, int]:
        """The scenario that answers and its reply index, asking `on_miss` on a miss (of chat, or
        of another API the hook names in `apis`);
        raises the no-match error when there is none."""
        found = self._match(request)
        if found is None and self.on_miss is not None:
            if api == "chat":
                found = self._retry(request, raw, headers)
            elif api in getattr(self.on_miss, "apis", ()):
                found = self._retry(request, raw, headers, api=api)
        if found is None:
            raise self._no_match(request)
        return found

    def _retry(
        self,
        request: ChatRequest,
        raw: bytes,
        headers: tuple[tuple[bytes, bytes], ...],
        **api: str,
    ) -> tuple[Scenario, int] | None:
        """Nothing matched: ask `on_miss` (outside the lock; it may take seconds, as a
        recorder's upstream does) for scenarios to add, and match once more if it gave any."""
        assert self.on_miss is not None
        added = tuple(self.on_miss(raw, headers, **api))
        if not added:
            return None
        try:
            self.add_scenarios(added)
        except ScenarioError as exc:  # e.g. a name in use: the hook's mistake, said as such
            raise ApiError(
                status=500,
                type="server_error",
                message=f"mockserver's on_miss hook gave scenarios it cannot add: {exc}",
                headers=(("x-should-retry", "false"),),
            ) from None
        return self._match(request)

    def _parse(self, raw: bytes, headers: tuple[tuple[bytes, bytes], ...]) -> ChatRequest:
        """The request a body holds; a body seen before is parsed only once (see `memo`)."""
        request = self._parsed.get(raw)
        if request is None:
            request = self.profile.parse(raw)
            if self._parsed.offer(raw, len(raw)):
                self._parsed.put(raw, request)
        if self._needs_headers and headers:
            return with_headers(request, headers)
        return request

    def _record(
        self,
        call: _Call,
        status: int,
        scenario: str | None,
        reply_index: int | None,
        *,
        error: ApiError | None = None,
        fault: str | None = None,
    ) -> None:
        raw, headers = call.raw, journal.pack_headers(call.headers)
        omitted = 0
        if journal.cost(raw, headers) > self.config.journal_bytes:
            omitted, raw = len(raw), b""
        entry = _new_entry(  # by position (see `_ENTRY_FIELDS`): no __new__ call in between
            JournalEntry,
            (
                raw,
                headers,
                status,
                scenario,
                reply_index,
                error,
                call.api,
                omitted,
                fault,
                call.notes,
                self.profile.name,
                _now(),
                _meter(),
            ),
        )
        with self._lock:
            self._state.journal.add(entry)

    def _exhausted(self, position: int) -> bool:
        scenario = self._list[position]
        return scenario.after == "next" and self._state.used[position] >= len(scenario.replies)

    def _match(self, request: ChatRequest) -> tuple[Scenario, int] | None:
        """The scenario that answers, and how many requests it answered before this one.

        A strict file's rules are checked before the scenario's reply index moves on, so a
        request it refuses does not move its sequence on.
        """
        with self._lock:
            position = self._matcher.find(request, self._exhausted if self._has_next else None)
            if position is not None:
                scenario = self._list[position]
                if scenario.strict and not self.config.strict:
                    check_strict(request)
                reply_index = self._state.used[position]
                self._state.used[position] = reply_index + 1
        if position is None:
            return None
        return scenario, reply_index

    @staticmethod
    def _pick(scenario: Scenario, reply_index: int) -> Reply:
        """The reply at `reply_index` (requests answered before), following `after` past the end."""
        if reply_index < len(scenario.replies):
            return scenario.replies[reply_index]
        if scenario.after == "error":
            raise ApiError(
                status=404,
                type=SEQUENCE_USED_UP,
                message=(
                    f"Scenario {scenario.name!r} ({scenario.where}) has given all "
                    f"{len(scenario.replies)} replies of its sequence, and its `after: error` "
                    f"refuses more (this was request {reply_index + 1})."
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
        reading = request
        if raw is not None:
            template = self._templates.find(request, scenario, reply, offset, raw)
            if template is not None:
                return template.fill(completion_id, created, request_id, request.prompt_tokens)
            reading = self._templates.reading(request, reply, offset)
        stamp = self._stamp(reading, reply, completion_id, created)
        outcome = self._render(
            reading, scenario, reply, stamp=stamp, request_id=request_id, offset=offset
        )
        if reading is not request and raw is not None:
            self._templates.learned(reading, reply, offset, raw)
        return outcome

    def _marked(
        self, scenario: Scenario, reply: Reply, offset: int, request: ChatRequest
    ) -> Outcome:
        """The reply rendered with a template's marked stamp and request id."""
        stamp = self._stamp(request, reply, memo.TEMPLATE_ID, memo.TEMPLATE_CREATED)
        return self._render(
            request,
            scenario,
            reply,
            stamp=stamp,
            request_id=memo.TEMPLATE_REQUEST_ID,
            offset=offset,
        )

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
        resolved_choices = completions.resolve(
            request,
            reply,
            created=stamp.created,
            tool_call_id=self._tool_call_id,
            audio_id=self._ids.audio,
            where=f"{scenario.name!r} ({scenario.where})",
        )
        usage = completions.usage(request, resolved_choices, reply.usage)
        delay = reply.delay_ms / 1000
        headers = reply_headers(SSE_TYPE if request.stream else JSON_TYPE, request_id, reply)
        if not request.stream:
            body = self.profile.completion_body(request, stamp, resolved_choices, usage)
            return Outcome(200, headers, body, delay=delay)
        events = self.profile.chunk_events(
            request,
            stamp,
            resolved_choices,
            usage,
            padding=self._padding,
            offset=offset,
            chunk_size=reply.stream.chunk_size,
        )
        return Outcome(200, headers, frames=frames(reply, events, stamp.model), delay=delay)

    # -- models ------------------------------------------------------------------------------

    def request_id(self) -> str:
        """A fresh `x-request-id` (from the engine's seeded stream), for the shells' own
        responses (413, 500) rendered by `responses.error_outcome`."""
        return self._ids.request()

    def model_names(self) -> tuple[str, ...]:
        names = dict.fromkeys(self.scenarios.model_names())
        names.update(dict.fromkeys(self.config.models))
        return tuple(names)

    def _model(self, name: str) -> Model:
        return self.profile.model(name, MODEL_CREATED)

    def list_models(self) -> Outcome:
        body = {"object": "list", "data": [self._model(n) for n in self.model_names()]}
        return json_outcome(body, self._ids.request())

    def answers_model(self, name: str) -> bool:
        """Whether `GET /v1/models/{name}` finds the model: it is listed (`model_names`), or
        some scenario's `model` condition takes it (a glob), or some scenario has no `model`
        condition (it answers any model). Other conditions are not considered: a model is
        retrievable when some request for it could be answered."""
        if name in self.model_names():
            return True
        for scenario in self._list:
            models = [c for c in scenario.conditions if isinstance(c, ModelIs)]
            if all(c.takes(name) for c in models):
                return True
        return False

    def get_model(self, name: str) -> Outcome:
        if not self.answers_model(name):
            error = ApiError(
                status=404,
                message=f"The model `{name}` does not exist or you do not have access to it.",
                code="model_not_found",
            )
            return self._error(error, self._ids.request())
        return json_outcome(self._model(name), self._ids.request())


def read_again(entry: JournalEntry, body: dict[str, JSON]) -> ChatRequest:
    """A journaled request's body read again as it was read then: by its API's reader, or for
    chat by the profile that read it (raises `ApiError` when it was refused)."""
    headers = tuple(entry.headers)
    if entry.api != "chat":
        return READERS[entry.api](body, headers)
    if entry.profile != "openai":
        return with_headers(profiles.get(entry.profile).parse(entry.raw), headers)
    return parse_chat_request(body, headers)


def profile_clash(scenarios: ScenarioSet, profile: str) -> tuple[Problem, ...]:
    """A problem for each scenario whose file declares another profile than the server's."""
    return tuple(
        Problem(
            s.file,
            s.line,
            "profile",
            f"this file declares profile {s.profile!r}, but the server runs profile {profile!r}",
        )
        for s in scenarios.scenarios
        if s.profile not in (None, profile)
    )


def _needs_headers(scenarios: Iterable[Scenario]) -> bool:
    """Whether any scenario matches on request headers (parsed requests are shared otherwise)."""
    return any(isinstance(c, HeaderIs) for s in scenarios for c in s.conditions)
