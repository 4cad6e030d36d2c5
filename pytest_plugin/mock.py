"""`Mockserver`: what the `mockserver` and `mockserver_server` fixtures give a test."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from mockserver import builder
from mockserver.engine import EngineConfig, JournalEntry, MockEngine, OnMiss
from mockserver.faults import load_faults
from mockserver.inprocess import InProcessMock
from mockserver.ratelimit import parse_rate_limit
from mockserver.scenarios import Scenario, ScenarioSet, load_scenarios, load_text

from .journal import Call, calls_of
from .remote import RemoteEngine, Sent, builder_source, file_sources
from .settings import STRICTNESS_DOC, Settings

Serving = Literal["inprocess", "server"]


class Mockserver:
    """One test's mock: its scenarios, what its client sent, and the checks at teardown.

    `url` is the base URL to give a client (in process: `https://api.openai.com/v1`, which is
    also the SDK's default; with the server fixture: the local server's `http://127.0.0.1:PORT/v1`).
    """

    def __init__(
        self,
        mode: Serving,
        url: str,
        settings: Settings,
        shared: ScenarioSet,
        own: ScenarioSet,
        *,
        cassette: ScenarioSet | None = None,
        on_miss: OnMiss | None = None,
    ) -> None:
        self.mode: Serving = mode
        self.url = url
        self.settings = settings
        self._checked: set[str] = {s.name for s in own.scenarios}
        self.inprocess: InProcessMock | None = None
        self.engine = MockEngine(
            shared.extend(own).extend(cassette or ScenarioSet()),
            EngineConfig(
                seed=settings.seed,
                models=settings.models,
                strict=settings.strict,
                faults=load_faults(settings.faults) if settings.faults is not None else (),
                timing=settings.timing,
                rate_limits=tuple(parse_rate_limit(r) for r in settings.rate_limits),
                profile=settings.profile,
                reasoning_field=settings.reasoning_field,
            ),
            on_miss=on_miss,
        )

    def __repr__(self) -> str:
        where = "in process" if self.mode == "inprocess" else "server"
        return (
            f"<Mockserver {where} {self.url}: {len(self.engine.scenarios.scenarios)} scenarios, "
            f"{len(self.engine.journal)} requests>"
        )

    def add_base_url(self, url: str) -> None:
        """In process: answer requests under this base URL too (e.g. a client's `base_url`)."""
        if self.inprocess is None:
            raise RuntimeError(
                "add_base_url is for the in-process `mockserver` fixture; clients of "
                "`mockserver_server` use its `url`"
            )
        self.inprocess.add_base_url(url)

    # -- scenarios --------------------------------------------------------------------------

    def add(
        self,
        name: str | Scenario | None = None,
        *,
        match: Mapping[str, Any] | None = None,
        reply: builder.ReplyLike | None = None,
        sequence: Sequence[builder.ReplyLike] | None = None,
        after: str | None = None,
        priority: int | None = None,
        optional: bool | None = None,
        strict: bool | None = None,
    ) -> Scenario:
        """Add one scenario (the YAML keys as arguments, or a `builder.scenario(...)`).

        `reply` may be a string (the reply's content), a `builder.reply(...)` or a mapping of
        the YAML reply keys. Scenarios added here must be used before the test ends, unless
        `optional=True`.
        """
        if isinstance(name, Scenario):
            given = (match, reply, sequence, after, priority, optional, strict)
            if any(value is not None for value in given):
                raise TypeError("add(scenario) takes no other arguments: set them on the scenario")
            scenario = name
        else:
            scenario = builder.scenario(
                name,
                match=match,
                reply=reply,
                sequence=sequence,
                after=after,
                priority=priority,
                optional=optional,
                strict=strict,
                where=builder.caller(),
            )
        self._extend((scenario,), lambda: [builder_source(scenario)])
        return scenario

    def load(self, *paths: str | Path) -> ScenarioSet:
        """Add scenario files or folders (relative to the current directory) to this test."""
        loaded = load_scenarios(paths)
        self._extend(loaded.scenarios, lambda: file_sources(paths))
        return loaded

    def load_text(self, yaml_text: str) -> ScenarioSet:
        """Add scenarios written as YAML text (a whole file: `version: 1`, `scenarios: ...`)."""
        file, line, base = builder.caller()
        loaded = load_text(yaml_text, f"{file}:{line}", base)
        self._extend(loaded.scenarios, lambda: [Sent(yaml_text, base, f"{file}:{line}")])
        return loaded

    def _extend(self, scenarios: Iterable[Scenario], sources: Callable[[], list[Sent]]) -> None:
        """Add scenarios (raising ScenarioError on a name already in use); on a shared server
        (`--mockserver-url`), `sources` gives what to send it."""
        added = tuple(scenarios)
        if isinstance(self.engine, RemoteEngine):
            self.engine.add_sent(added, sources())
        else:
            self.engine.add_scenarios(added)
        self._checked.update(s.name for s in added)

    @property
    def scenarios(self) -> tuple[Scenario, ...]:
        return tuple(self.engine.scenarios.scenarios)

    # -- the journal ------------------------------------------------------------------------

    @property
    def journal(self) -> list[JournalEntry]:
        """The engine's own record of each chat completion request (see `calls`)."""
        return self.engine.journal

    @property
    def calls(self) -> list[Call]:
        """Each request of this test (chat completions and Responses), in order."""
        return calls_of(self.engine.journal)

    @property
    def last_call(self) -> Call:
        calls = self.calls
        if not calls:
            raise AssertionError("mockserver: the client sent no chat completion request")
        return calls[-1]

    def uses(self) -> dict[str, int]:
        """How many requests each scenario answered, by name."""
        return self.engine.uses()

    def reset(self) -> None:
        """Forget the requests so far and restart every sequence."""
        self.engine.reset()

    def assert_called(self, times: int | None = None, *, scenario: str | None = None) -> None:
        """Fail unless the client sent requests (exactly `times`, when given), all or those
        answered by `scenario`."""
        __tracebackhide__ = True
        calls = self.calls
        picked = [c for c in calls if scenario is None or c.scenario == scenario]
        what = "requests" if scenario is None else f"requests answered by scenario {scenario!r}"
        if (times is None and not picked) or (times is not None and len(picked) != times):
            expected = "at least 1" if times is None else str(times)
            lines = [f"mockserver: expected {expected} {what}, got {len(picked)}"]
            lines += ["  " + c.describe() for c in calls] or ["  (no requests at all)"]
            raise AssertionError("\n".join(lines))

    def assert_not_called(self) -> None:
        __tracebackhide__ = True
        self.assert_called(0)

    def assert_last_request(self, **expected: Any) -> None:
        """`last_call.assert_matches(...)`: model, messages, last_user_message, tools, params,
        headers, scenario, status, stream."""
        __tracebackhide__ = True
        self.last_call.assert_matches(**expected)

    # -- teardown ---------------------------------------------------------------------------

    def unmatched(self) -> list[Call]:
        return [c for c in self.calls if c.unmatched]

    def unused(self) -> list[Scenario]:
        """Scenarios this test set up (its own marker, `add`, `load`) and never used."""
        uses = self.uses()
        return [
            s
            for s in self.engine.scenarios.scenarios
            if s.name in self._checked and not s.optional and not uses.get(s.name)
        ]

    def strictness_failures(self) -> str | None:
        """The teardown report, or None when the test passes the checks it has on."""
        sections: list[str] = []
        if self.settings.assert_all_matched and (unmatched := self.unmatched()):
            noun = "request" if len(unmatched) == 1 else "requests"
            lines = [f"{len(unmatched)} {noun} matched no scenario:"]
            for call in unmatched:
                lines.append(f"  {call.describe()}")
                if call.error:
                    lines.append(f"      {call.error}")
            lines.append(
                "  (to allow it: @pytest.mark.mockserver(assert_all_matched=False), "
                "or ini mockserver_assert_all_matched = false)"
            )
            sections.append("\n".join(lines))
        if self.settings.assert_all_used and (unused := self.unused()):
            noun = "scenario was" if len(unused) == 1 else "scenarios were"
            lines = [f"{len(unused)} {noun} never used:"]
            lines += [f"  {s.name!r} ({s.where})" for s in unused]
            lines.append(
                "  (to allow it: `optional: true` on the scenario, "
                "@pytest.mark.mockserver(assert_all_used=False), "
                "or ini mockserver_assert_all_used = false)"
            )
            sections.append("\n".join(lines))
        if not sections:
            return None
        return (
            "mockserver: strict checks failed at teardown\n\n"
            + "\n\n".join(sections)
            + f"\n\nSee the {STRICTNESS_DOC}; --mockserver-lenient turns both checks off."
        )
