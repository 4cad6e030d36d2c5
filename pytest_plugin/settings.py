"""The plugin's options: marker arguments over CLI options over ini options over defaults."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

from mockserver.profiles.base import PROFILES, REASONING_FIELDS

if TYPE_CHECKING:
    from mockserver.inprocess import Unmatched
    from mockserver.scenarios import ScenarioSet


MARKER = "mockserver"
MARKER_HELP = (
    "mockserver(*scenario_paths, seed=None, models=(), strict=False, profile=None, "
    "reasoning_field='reasoning', "
    "assert_all_matched=True, assert_all_used=True, base_url=None, unmatched_hosts=None, "
    "faults=None, timing='instant', rate_limits=()): "
    "scenario files or folders for this test (relative to the test file's folder, else to "
    "mockserver_scenarios_dir) and the mock's settings. See the README, 'pytest plugin'."
)
MARKER_KEYS = (
    "seed",
    "models",
    "strict",
    "profile",
    "reasoning_field",
    "assert_all_matched",
    "assert_all_used",
    "base_url",
    "unmatched_hosts",
    "faults",
    "timing",
    "rate_limits",
)
STRICTNESS_DOC = 'README, section "Opting out of strictness"'

INI: tuple[tuple[str, str, str, Any], ...] = (
    (
        "mockserver_scenarios_dir",
        "scenario folder loaded for every test that names no scenario files (relative to the "
        "ini file); marker paths are also looked up there",
        "string",
        None,
    ),
    (
        "mockserver_assert_all_matched",
        "fail a test whose requests matched no scenario (default true)",
        "bool",
        True,
    ),
    (
        "mockserver_assert_all_used",
        "fail a test that never used a scenario it set up (default true)",
        "bool",
        True,
    ),
    (
        "mockserver_base_urls",
        "extra base URLs the in-process mock answers (one per line), besides "
        "https://api.openai.com/v1 and $OPENAI_BASE_URL",
        "linelist",
        [],
    ),
    (
        "mockserver_unmatched_hosts",
        "what the in-process mock does with requests to other URLs: passthrough (default) or "
        "refuse",
        "string",
        "passthrough",
    ),
    ("mockserver_seed", "seed for ids and timestamps (identical bytes per run)", "string", None),
)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("mockserver", "mockserver: mock OpenAI chat completions")
    group.addoption(
        "--mockserver-scenarios-dir",
        metavar="DIR",
        help="scenario folder for tests that name no scenario files (overrides the ini option)",
    )
    group.addoption(
        "--mockserver-seed",
        type=int,
        metavar="N",
        help="seed ids and timestamps of every mock (identical bytes per run)",
    )
    group.addoption(
        "--mockserver-profile",
        choices=PROFILES,
        help="the server every mock speaks as (default: what the scenario files declare, "
        "else openai)",
    )
    group.addoption(
        "--mockserver-lenient",
        action="store_true",
        default=False,
        help="turn off the teardown checks for unmatched requests and unused scenarios",
    )
    for name, help_, kind, default in INI:
        parser.addini(name, help_, type=kind, default=default)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Settings:
    """What one test's mock is made of."""

    shared_paths: tuple[Path, ...] = ()
    own_paths: tuple[Path, ...] = ()
    seed: int | None = None
    models: tuple[str, ...] = ()
    strict: bool = False
    """Unknown request parameters get a 400: `--strict`, a file's `strict: true`, the config's
    `strict` (the marker's former `strict_params` still works, with a DeprecationWarning)."""
    profile: str | None = None
    """The server the mock speaks as (`openai`, `vllm`); None: what the files declare."""
    reasoning_field: str = "reasoning"
    assert_all_matched: bool = True
    assert_all_used: bool = True
    base_urls: tuple[str, ...] = ()
    unmatched_hosts: Unmatched = "passthrough"
    faults: Path | None = None
    """A `--faults` file: faults for every request of the test."""
    timing: str = "instant"
    rate_limits: tuple[str, ...] = ()
    """`--rate-limit` rules, as the flag writes them (checked when the settings are read)."""


class SettingsError(Exception):
    """A marker or option the plugin cannot use (the test errors with this message)."""


def _ini_dir(config: pytest.Config) -> Path:
    return config.inipath.parent if config.inipath is not None else config.rootpath


def scenarios_dir(config: pytest.Config) -> Path | None:
    option = config.getoption("mockserver_scenarios_dir")
    if option:
        return Path(option).resolve()
    value = config.getini("mockserver_scenarios_dir")
    return (_ini_dir(config) / value).resolve() if value else None


def _resolve(raw: str | os.PathLike[str], item: pytest.Item, folder: Path | None) -> Path:
    path = Path(raw)
    if path.is_absolute():
        return path
    tried = [item.path.parent / path]
    if folder is not None:
        tried.append(folder / path)
    for candidate in tried:
        if candidate.exists():
            return candidate.resolve()
    raise SettingsError(
        f"@pytest.mark.mockserver: scenario path {str(raw)!r} not found "
        f"(looked in {', '.join(str(t.parent) for t in tried)})"
    )


def _seed(value: Any, where: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{where}: expected an integer seed, got {value!r}") from None


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def _timing(value: Any) -> str:
    if value not in ("instant", "realistic"):
        raise SettingsError(f"mockserver timing must be instant or realistic, got {value!r}")
    return str(value)


def _rate_limits(value: Any) -> tuple[str, ...]:
    from mockserver.ratelimit import parse_rate_limit

    rules = _as_tuple(value)
    for rule in rules:
        try:
            parse_rate_limit(rule)
        except ValueError as exc:
            raise SettingsError(f"mockserver rate_limits: {exc}") from None
    return rules


def _renamed(kwargs: Mapping[str, Any]) -> Mapping[str, Any]:
    """Marker arguments under their current names (`strict_params` is now `strict`)."""
    if "strict_params" not in kwargs:
        return kwargs
    warnings.warn(
        "@pytest.mark.mockserver(strict_params=...) is now strict=... (the name the CLI flag "
        "--strict and a file's `strict:` use); strict_params goes in the next release",
        DeprecationWarning,
        stacklevel=1,
    )
    renamed = {k: v for k, v in kwargs.items() if k != "strict_params"}
    renamed.setdefault("strict", kwargs["strict_params"])
    return renamed


def settings_for(item: pytest.Item) -> Settings:
    """Marker arguments (closest wins) over CLI options over ini options."""
    config = item.config
    folder = scenarios_dir(config)
    lenient = bool(config.getoption("mockserver_lenient"))
    values: dict[str, Any] = {
        "seed": _seed(config.getoption("mockserver_seed"), "--mockserver-seed")
        if config.getoption("mockserver_seed") is not None
        else _seed(config.getini("mockserver_seed"), "ini mockserver_seed"),
        "models": (),
        "strict": False,
        "profile": config.getoption("mockserver_profile"),
        "reasoning_field": "reasoning",
        "assert_all_matched": bool(config.getini("mockserver_assert_all_matched")),
        "assert_all_used": bool(config.getini("mockserver_assert_all_used")),
        "base_url": tuple(config.getini("mockserver_base_urls")),
        "unmatched_hosts": config.getini("mockserver_unmatched_hosts") or "passthrough",
        "faults": None,
        "timing": "instant",
        "rate_limits": (),
    }
    shared: list[Path] = []
    own: list[Path] = []
    own_markers = {id(m) for m in item.own_markers if m.name == MARKER}
    markers = list(item.iter_markers(MARKER))  # closest first
    for marker in reversed(markers):
        kwargs = _renamed(marker.kwargs)
        unknown = sorted(set(kwargs) - set(MARKER_KEYS))
        if unknown:
            raise SettingsError(
                "@pytest.mark.mockserver got unknown argument(s) "
                f"{', '.join(unknown)} (allowed: {', '.join(MARKER_KEYS)})"
            )
        paths = [_resolve(a, item, folder) for a in marker.args]
        (own if id(marker) in own_markers else shared).extend(paths)
        values.update(kwargs)
    if not shared and not own and folder is not None:
        shared.append(folder)
    if values["unmatched_hosts"] not in ("passthrough", "refuse"):
        raise SettingsError(
            "mockserver unmatched_hosts must be passthrough or refuse, "
            f"got {values['unmatched_hosts']!r}"
        )
    if values["profile"] not in (None, *PROFILES):
        raise SettingsError(
            f"mockserver profile must be one of {', '.join(PROFILES)}, got {values['profile']!r}"
        )
    if values["reasoning_field"] not in REASONING_FIELDS:
        raise SettingsError(
            f"mockserver reasoning_field must be one of {', '.join(REASONING_FIELDS)}, "
            f"got {values['reasoning_field']!r}"
        )
    faults = values["faults"]
    return Settings(
        faults=_resolve(faults, item, folder) if faults is not None else None,
        timing=_timing(values["timing"]),
        rate_limits=_rate_limits(values["rate_limits"]),
        shared_paths=tuple(dict.fromkeys(shared)),
        own_paths=tuple(p for p in dict.fromkeys(own) if p not in shared),
        seed=_seed(values["seed"], "mockserver seed"),
        models=_as_tuple(values["models"]),
        strict=bool(values["strict"]),
        profile=values["profile"],
        reasoning_field=values["reasoning_field"],
        assert_all_matched=bool(values["assert_all_matched"]) and not lenient,
        assert_all_used=bool(values["assert_all_used"]) and not lenient,
        base_urls=_as_tuple(values["base_url"]),
        unmatched_hosts=cast("Unmatched", values["unmatched_hosts"]),
    )


_CACHE: dict[tuple[Path, ...], tuple[tuple[tuple[str, float], ...], ScenarioSet]] = {}


def load_cached(paths: Sequence[Path]) -> ScenarioSet:
    """Load scenario files once per process, again only when one of them changed."""
    from mockserver.scenarios import ScenarioSet, load_scenarios, scenario_files

    if not paths:
        return ScenarioSet()
    key = tuple(paths)
    files = scenario_files(paths)
    stamp = tuple((str(f), f.stat().st_mtime) for f in files)
    cached = _CACHE.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    loaded = load_scenarios(files)
    _CACHE[key] = (stamp, loaded)
    return loaded
