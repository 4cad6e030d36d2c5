"""Faults on demand: what can go wrong with a response, when it does, and how it looks.

A fault is read from a `faults:` list (a scenario's, or the `--faults FILE` of the server):

    - fault: http          # or error_event, reset, stall, malformed, split_utf8, split_json,
      status: 429          #    no_done, duplicate, dribble, or one of `wrong.KINDS`
      first: 2             # when: probability, every, first or on_requests (else always)

Which requests a fault fires on is decided by `Dice` from the server's seeded random stream
and per-fault counts, so a seeded run fails the same requests in the same way. The functions
at the end turn a response into its faulty form; they run only when a fault fires.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mockserver import completions, wrong
from mockserver.errors import Problem, ScenarioError
from mockserver.outcome import Frame, Outcome
from mockserver.request import ChatRequest
from mockserver.responses import error_from_spec
from mockserver.scenarios import ERROR_KEYS, ErrorSpec, _error
from mockserver.timing import Delay, coalesce, events_of, parse_delay
from mockserver.yamlsource import Node, describe, parse_yaml

HTTP = "http"
STREAM_ONLY = ("error_event", "malformed", "split_utf8", "split_json", "no_done", "duplicate")
ANY_BODY = ("reset", "stall", "dribble")
KINDS = (HTTP, *STREAM_ONLY, *ANY_BODY, *wrong.KINDS)
WHEN_KEYS = ("probability", "every", "first", "on_requests")
FAULT_KEYS = (
    "fault",
    "name",
    *WHEN_KEYS,
    *(k for k in ERROR_KEYS if k != "status"),
    "status",
    "delay_ms",
    "after_chunks",
    "stall_ms",
    "then",
    "bytes_per_second",
    "finish_reason",
)
OPTIONS: dict[str, tuple[str, ...]] = {
    HTTP: ("status", "message", "type", "code", "param", "headers", "delay_ms"),
    "error_event": ("status", "message", "type", "code", "param", "after_chunks"),
    "reset": ("after_chunks",),
    "stall": ("after_chunks", "stall_ms", "then"),
    "malformed": ("after_chunks",),
    "split_utf8": ("after_chunks",),
    "split_json": ("after_chunks",),
    "no_done": (),
    "duplicate": ("after_chunks",),
    "dribble": ("bytes_per_second",),
    **dict.fromkeys(wrong.KINDS, ()),
    "wrong_finish_reason": ("finish_reason",),
}
ANY, OK, STREAM = 0, 1, 2
MAX_REQUEST_NUMBER = 10**9
MAX_DRIBBLE_FRAMES = 2000
SPLIT_GAP = 0.005
"""Seconds between the two halves of a split chunk, so they reach the client as two reads."""
DONE = completions.DONE.encode()
DEFAULT_STALL = Delay("fixed", 10_000.0)


@dataclass(frozen=True, slots=True)
class When:
    """Which of the requests a fault sees it fires on (request numbers count from 1)."""

    probability: float = 1.0
    every: int = 0
    first: int = 0
    on_requests: frozenset[int] = frozenset()

    @property
    def counted(self) -> bool:
        """Whether firing depends on the request's number (else on a draw alone)."""
        return bool(self.every or self.first or self.on_requests)

    def fires(self, n: int, rng: random.Random) -> bool:
        """Whether the fault fires on the `n`th request it sees (`Dice.pick` inlines this)."""
        if self.every:
            return n % self.every == 0
        if self.first:
            return n <= self.first
        if self.on_requests:
            return n in self.on_requests
        p = self.probability
        return p >= 1.0 or (p > 0.0 and rng.random() < p)


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """One fault: its kind, when it fires, and the kind's options."""

    kind: str
    name: str
    when: When = When()
    error: ErrorSpec | None = None
    delay: Delay | None = None
    after_chunks: int | None = None
    """None: a random point of the stream."""
    stall: Delay = DEFAULT_STALL
    then: Literal["continue", "drop"] = "continue"
    bytes_per_second: int = 1000
    finish_reason: str | None = None
    """wrong_finish_reason: the one to send (None: the one the reply contradicts)."""

    @property
    def needs(self) -> int:
        """What a response must be for the fault to apply: `ANY`, `OK` or `STREAM` (and for
        the kinds of `wrong.CHECKS`, what they check)."""
        if self.kind == HTTP:
            return ANY
        return STREAM if self.kind in STREAM_ONLY else OK


# -- reading ----------------------------------------------------------------------------------


def _probability(node: Node) -> When:
    value = node.value
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        node.fail(f"expected a probability from 0 to 1, got {describe(value)}")
        return When()
    return When(probability=float(value))


def _requests(node: Node) -> When:
    if not isinstance(node.value, list) or not node.value:
        node.fail(f"expected a non-empty list of request numbers, got {describe(node.value)}")
        return When()
    numbers = {n.integer(1, MAX_REQUEST_NUMBER) for n in node.elements()}
    return When(on_requests=frozenset(n for n in numbers if n is not None))


_WHEN: dict[str, Callable[[Node], When]] = {
    "probability": _probability,
    "every": lambda n: When(every=n.integer(1, MAX_REQUEST_NUMBER) or 1),
    "first": lambda n: When(first=n.integer(1, MAX_REQUEST_NUMBER) or 1),
    "on_requests": _requests,
}


def _when(node: Node) -> When:
    given = [k for k in WHEN_KEYS if k in node.value]
    if len(given) > 1:
        node.child(given[1]).fail(f"give one of {', '.join(WHEN_KEYS)}, not {' and '.join(given)}")
        return When()
    return _WHEN[given[0]](node.child(given[0])) if given else When()


def parse_fault(node: Node) -> Fault | None:
    """One fault mapping; None (with the problems recorded) when it is not one."""
    if not node.is_mapping("a fault mapping") or not node.check_keys(FAULT_KEYS, ("fault",)):
        return None
    kind = node.child("fault").choice(KINDS)
    if kind is None:
        return None
    allowed = (*OPTIONS[kind], "fault", "name", *WHEN_KEYS)
    for key, child in node.items():
        if key not in allowed:
            child.fail(f"`{key}` does not apply to fault {kind} (it takes {', '.join(allowed)})")
    when = _when(node)
    name = node.get("name")
    label = (name.string() if name is not None else None) or kind
    error = None
    if kind == HTTP:
        if "status" not in node.value:
            node.fail("missing required key 'status' (fault http answers with an HTTP error)")
            return None
        error = _error(_error_node(node))
    elif kind == "error_event" and any(k in node.value for k in ERROR_KEYS):
        error = _error(_error_node(node, default_status=500))
    delay = parse_delay(d) if (d := node.get("delay_ms")) is not None else None
    after = (
        a.integer(0, MAX_REQUEST_NUMBER) if (a := node.get("after_chunks")) is not None else None
    )
    stall = parse_delay(s) if (s := node.get("stall_ms")) is not None else None
    then = t.choice(("continue", "drop")) if (t := node.get("then")) is not None else None
    rate = b.integer(1, 10**9) if (b := node.get("bytes_per_second")) is not None else None
    reason = (
        r.choice(wrong.FINISH_REASONS) if (r := node.get("finish_reason")) is not None else None
    )
    return Fault(
        kind=kind,
        name=label,
        when=when,
        error=error,
        delay=delay,
        after_chunks=after,
        stall=stall or DEFAULT_STALL,
        then="drop" if then == "drop" else "continue",
        bytes_per_second=rate or 1000,
        finish_reason=reason,
    )


def _error_node(node: Node, default_status: int | None = None) -> Node:
    """The fault's error keys as the mapping `error:` reads (lines and paths kept)."""
    value = {k: v for k, v in node.value.items() if k in ERROR_KEYS}
    if default_status is not None:
        value.setdefault("status", default_status)
    node.doc.key_lines[id(value)] = node.doc.key_lines.get(id(node.value), {})
    node.doc.keep.append(value)
    return Node(value, node.doc, node.line, node.path)


def parse_faults(node: Node) -> tuple[Fault, ...]:
    """A `faults:` list."""
    if not isinstance(node.value, list):
        node.fail(f"expected a list of faults, got {describe(node.value)}")
        return ()
    return tuple(f for element in node.elements() if (f := parse_fault(element)) is not None)


def load_faults(path: str | Path) -> tuple[Fault, ...]:
    """The server-wide faults of a `--faults` file (`faults:` at its top); raises ScenarioError."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError((Problem(str(path), None, "", f"cannot read: {exc}"),)) from None
    root, doc = parse_yaml(text, str(path))
    faults: tuple[Fault, ...] = ()
    if (
        root is not None
        and root.is_mapping("a mapping with `faults:`")
        and root.check_keys(("faults",), required=("faults",))
    ):
        faults = parse_faults(root.child("faults"))
    if doc.problems:
        raise ScenarioError(tuple(doc.problems))
    return faults


# -- deciding ---------------------------------------------------------------------------------


_Check = Callable[[Outcome, ChatRequest | None], bool]
_Plan = tuple[Fault, "Iterator[int] | None", float, int, int, frozenset[int], _Check | None]
"""What `Dice.pick` reads of a fault: the fault, its counter (None: drawn), its probability,
`every`, `first`, `on_requests`, and which replies it applies to if not all (`wrong.CHECKS`)."""
_REQUEST, _FAILED, _PLAIN, _STREAMED = 0, 1, 2, 3
"""What a fault is asked about: a request not yet answered, or an answer (error, plain, stream).
A fault applies (and counts the request) when its `needs` fit: `http` every request, `reset`,
`stall` and `dribble` every 200, stream faults streams, `wrong.KINDS` the 200s they check."""


def _kind_of(outcome: Outcome | None) -> int:
    if outcome is None:
        return _REQUEST
    if outcome.status != 200:
        return _FAILED
    return _PLAIN if outcome.frames is None else _STREAMED


def _applies(need: int, kind: int) -> bool:
    """Whether a fault needing `need` applies to a request or answer of `kind`."""
    if kind == _REQUEST or need == ANY:
        return True
    if kind == _FAILED:
        return False
    return need != STREAM or kind == _STREAMED


class Dice:
    """Which fault fires on a request: counts per fault, draws from one seeded stream."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._lock = threading.Lock()
        self._counters: dict[int, Iterator[int]] = {}
        self._plans: tuple[dict[int, tuple[_Plan, ...]], ...] = ({}, {}, {}, {})
        """By kind of answer, then by the id of a list of faults."""
        self._keep: list[tuple[Fault, ...]] = []

    def reset(self) -> None:
        """Every fault counts its requests from 1 again."""
        with self._lock:
            self._counters.clear()
            for plans in self._plans:
                plans.clear()

    def _plan(self, faults: tuple[Fault, ...], kind: int) -> tuple[_Plan, ...]:
        """The faults of a list that apply to a `kind` of answer, as `pick` reads them; built
        once a list and kind (a probability of 0 never fires, so it is left out)."""
        with self._lock:
            plan = tuple(
                (
                    f,
                    self._counters.setdefault(id(f), itertools.count(1))
                    if f.when.counted
                    else None,
                    f.when.probability,
                    f.when.every,
                    f.when.first,
                    f.when.on_requests,
                    wrong.CHECKS.get(f.kind) if kind != _REQUEST else None,
                )
                for f in faults
                if (f.when.counted or f.when.probability > 0.0) and _applies(f.needs, kind)
            )
            self._plans[kind][id(faults)] = plan
            self._keep.append(faults)  # the id stays theirs
        return plan

    def pick(
        self,
        faults: tuple[Fault, ...],
        outcome: Outcome | None = None,
        request: ChatRequest | None = None,
    ) -> Fault | None:
        """The first of `faults` that fires on this response (or, with no `outcome`, on this
        request); every fault that applies counts the request and draws, so one fault firing
        does not shift the others' schedules.

        The hot path of a server with faults: which faults apply to which kind of answer is
        worked out once, `When.fires` is inlined, and neither a count (`next` of an
        `itertools.count`) nor a draw (`random()`) takes a lock, each being one call the GIL
        keeps whole.
        """
        kind = _kind_of(outcome)
        plan = self._plans[kind].get(id(faults))
        if plan is None:
            plan = self._plan(faults, kind)
        chosen = None
        random = self.rng.random
        for fault, counter, p, every, first, on_requests, check in plan:
            if check is not None and not check(outcome, request):  # type: ignore[arg-type]
                continue
            if counter is None:
                fires = p >= 1.0 or random() < p
            else:
                n = next(counter)
                fires = n % every == 0 if every else n <= first if first else n in on_requests
            if fires and chosen is None:
                chosen = fault
        return chosen


# -- breaking ---------------------------------------------------------------------------------


def _chunk_count(events: list[Frame]) -> int:
    """How many events come before the stream's end ([DONE], or an abort)."""
    count = 0
    for event in events:
        if event.abort or event.data == DONE:
            break
        count += 1
    return count


def _point(fault: Fault, chunks: int, rng: random.Random) -> int:
    if fault.after_chunks is not None:
        return min(fault.after_chunks, chunks)
    return rng.randint(0, chunks)


def _halves(data: bytes, utf8: bool) -> tuple[bytes, bytes] | None:
    """`data` cut inside a UTF-8 character (or None without one), or in the middle."""
    if utf8:
        for at, byte in enumerate(data):
            if 0x80 <= byte < 0xC0:  # a continuation byte: the character began before it
                return data[:at], data[at:]
        return None
    middle = max(len(data) // 2, 1)
    return data[:middle], data[middle:]


def break_stream(
    outcome: Outcome,
    fault: Fault,
    rng: random.Random,
    error: ErrorSpec | None,
    model: str,
    *,
    request: ChatRequest | None = None,
) -> Outcome:
    """The outcome with `fault` applied to its frames (or its body, sent as frames)."""
    if fault.kind in wrong.KINDS:
        return wrong.apply(outcome, fault.kind, request, fault.finish_reason)
    if fault.kind == "dribble":
        return dribble(outcome, fault.bytes_per_second)
    if outcome.frames is None:
        return _break_body(outcome, fault, rng)
    events = events_of(outcome)
    chunks = _chunk_count(events)
    kind = fault.kind
    if kind == "no_done":
        out = [e for e in events if e.data != DONE]
    else:
        at = _point(fault, chunks, rng)
        head, rest = events[:at], events[at:]
        out = head + _broken_rest(
            fault, rest, rng=rng, error=error, model=model, chunks_left=chunks - at
        )
    return Outcome(outcome.status, outcome.headers, frames=coalesce(out), delay=outcome.delay)


def _broken_rest(
    fault: Fault,
    rest: list[Frame],
    *,
    rng: random.Random,
    error: ErrorSpec | None,
    model: str,
    chunks_left: int,
) -> list[Frame]:
    """The events from the fault's point on, broken as `fault` says."""
    kind = fault.kind
    if kind == "reset":
        return [Frame(0.0, abort=True)]
    if kind == "error_event":  # the stream ends with the error (no [DONE])
        event = completions.error_event(error_from_spec(error or ErrorSpec(status=500), model))
        return [Frame(0.0, event.encode())]
    if kind == "stall":
        return _stalled(fault, rest, rng)
    if not chunks_left:  # the point is past the last chunk: nothing left to break
        return rest
    target = rest[0]
    if kind in ("duplicate", "malformed"):
        return [*_damaged(kind, target), *rest[1:]]
    return _split(rest, chunks_left, utf8=kind == "split_utf8")


def _damaged(kind: str, target: Frame) -> list[Frame]:
    """A chunk sent twice, or cut short (the JSON in its `data:` does not parse)."""
    if kind == "duplicate":
        return [target, Frame(0.0, target.data)]
    body = target.data.rstrip(b"\n")
    return [Frame(target.delay, body[: max(len(body) // 2, len(b"data: {"))] + b"\n\n")]


def _stalled(fault: Fault, rest: list[Frame], rng: random.Random) -> list[Frame]:
    wait = fault.stall.draw(rng)
    if fault.then == "drop":
        return [Frame(wait, abort=True)]
    if not rest:
        return [Frame(wait, b"")]
    return [Frame(rest[0].delay + wait, rest[0].data, rest[0].abort), *rest[1:]]


def _split(rest: list[Frame], chunks_left: int, *, utf8: bool) -> list[Frame]:
    """The first chunk (with a multi-byte character, for `utf8`) sent in two writes; a stream
    with no such character is split in the middle of its first chunk's JSON instead."""
    for index in range(chunks_left):
        halves = _halves(rest[index].data, utf8)
        if halves is not None:
            break
    else:
        index, halves = 0, _halves(rest[0].data, False)
    assert halves is not None
    event = rest[index]
    return [
        *rest[:index],
        Frame(event.delay, halves[0]),
        Frame(SPLIT_GAP, halves[1]),
        *rest[index + 1 :],
    ]


def _break_body(outcome: Outcome, fault: Fault, rng: random.Random) -> Outcome:
    body = outcome.body
    kind = fault.kind
    frames: tuple[Frame, ...]
    if kind == "reset":
        frames = (Frame(0.0, body[: len(body) // 2]), Frame(0.0, abort=True))
    elif kind == "stall":
        wait = fault.stall.draw(rng)
        frames = (Frame(wait, abort=True),) if fault.then == "drop" else (Frame(wait, body),)
    else:  # pragma: no cover - the only faults a plain reply takes are above and in `wrong`
        raise AssertionError(kind)
    return Outcome(outcome.status, outcome.headers, frames=frames, delay=outcome.delay)


def dribble(outcome: Outcome, rate: int) -> Outcome:
    """Everything after the headers at `rate` bytes a second (in at most 2000 writes)."""
    data = outcome.content()
    size = max(rate // 20, -(-len(data) // MAX_DRIBBLE_FRAMES), 1)
    frames = [Frame(size / rate, data[i : i + size]) for i in range(0, len(data), size)]
    if outcome.frames and outcome.frames[-1].abort:
        frames.append(Frame(0.0, abort=True))
    return Outcome(outcome.status, outcome.headers, frames=tuple(frames), delay=outcome.delay)
