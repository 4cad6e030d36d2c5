"""The `mockserver` command: `serve` scenarios, `check` scenario files, `record` an upstream,
`import-vcr` cassettes."""

from __future__ import annotations

import argparse
import difflib
import os
import re
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from mockserver import __version__
from mockserver.errors import ScenarioError

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


class _Parser(argparse.ArgumentParser):
    """argparse, but an unknown flag gets a "did you mean" and the flags that are allowed."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments:"):
            flags = [o for a in self._actions for o in a.option_strings if o.startswith("--")]
            unknown = message.split(":", 1)[1].split()
            for word in unknown:
                close = difflib.get_close_matches(word.split("=")[0], flags, n=1)
                if close:
                    message += f" (did you mean {close[0]}?)"
                    break
            message += f"; allowed flags: {', '.join(sorted(set(flags)))}"
        super().error(message)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {port}")
    return port


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def _size(text: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    raw = text.strip().lower().removesuffix("b").removesuffix("i")
    factor = units.get(raw[-1:], 1)
    number = raw[:-1] if raw[-1:] in units else raw
    try:
        value = int(float(number) * factor)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a size in bytes such as 1048576, 512k or 64m, got {text!r}"
        ) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a size > 0, got {text!r}")
    return value


def _match_on(text: str) -> tuple[str, ...]:
    from mockserver.recording.match_on import MatchOnError, parse_match_on

    try:
        return parse_match_on(text)
    except MatchOnError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _regex(text: str) -> str:
    try:
        re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(
            f"expected a Python regular expression, got {text!r}: {exc}"
        ) from None
    return text


def _upstream(text: str) -> str:
    from mockserver.recording.upstream import check_upstream

    try:
        return check_upstream(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _env_name(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text):
        raise argparse.ArgumentTypeError(
            f"expected the name of an environment variable (such as OPENAI_API_KEY), got {text!r}"
        )
    return text


def _add_recording_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--match-on",
        type=_match_on,
        metavar="FIELDS",
        help="comma-separated request fields the recorded match compares (default "
        "model,stream,messages,tools,response_format,params; also last_user_message or any "
        "request field)",
    )
    parser.add_argument(
        "--scrub",
        type=_regex,
        action="append",
        default=[],
        metavar="REGEX",
        help="also scrub what this regular expression matches (only its groups, if it has "
        "any); repeatable",
    )


def _add_record(commands: argparse._SubParsersAction[_Parser]) -> None:
    record = commands.add_parser(
        "record", help="proxy an OpenAI-compatible upstream and record its replies as scenarios"
    )
    record.add_argument(
        "--upstream",
        type=_upstream,
        required=True,
        metavar="URL",
        help="the upstream's base URL, as clients use it (e.g. https://api.openai.com/v1)",
    )
    record.add_argument(
        "--out", required=True, metavar="DIR", help="folder for the scenario files written"
    )
    record.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    record.add_argument(
        "--port", type=_port, default=8000, help="port (default 8000; 0 = a free port)"
    )
    record.add_argument(
        "--api-key-env",
        type=_env_name,
        metavar="NAME",
        help="send the key in this environment variable upstream instead of the client's "
        "credentials",
    )
    _add_recording_options(record)
    record.add_argument(
        "--seed", type=int, help="fix recorded_at and the recorder's own ids (identical files)"
    )
    record.add_argument(
        "--log-level", choices=LOG_LEVELS, default="warning", help="default warning"
    )


def _add_import_vcr(commands: argparse._SubParsersAction[_Parser]) -> None:
    convert = commands.add_parser(
        "import-vcr", help="convert vcrpy / pytest-recording cassettes into scenario files"
    )
    convert.add_argument("cassettes", nargs="+", metavar="CASSETTE", help="cassette files")
    convert.add_argument(
        "--out", required=True, metavar="DIR", help="folder for the scenario files written"
    )
    _add_recording_options(convert)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mockserver",
        description="A local mock of OpenAI's chat completions API, scripted by YAML scenarios.",
    )
    parser.add_argument("--version", action="version", version=f"mockserver {__version__}")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )

    serve = commands.add_parser("serve", help="serve scenario files over HTTP")
    serve.add_argument("paths", nargs="+", metavar="PATH", help="scenario files or folders")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    serve.add_argument(
        "--port", type=_port, default=8000, help="port (default 8000; 0 = a free port)"
    )
    serve.add_argument(
        "--seed", type=int, help="fix ids, timestamps and generated data (identical bytes per run)"
    )
    serve.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME",
        help="also list this model in /v1/models (repeatable)",
    )
    serve.add_argument(
        "--strict",
        action="store_true",
        help="reject unknown request fields and model-specific misuse",
    )
    serve.add_argument(
        "--max-body-size",
        type=_size,
        default=64 * 1024 * 1024,
        metavar="SIZE",
        help="largest request body accepted (default 64m); larger gets a 413",
    )
    serve.add_argument(
        "--no-admin",
        action="store_true",
        help="turn off the /_mockserver/ control API and journal page (403)",
    )
    serve.add_argument(
        "--max-sessions",
        type=_positive,
        default=100,
        metavar="N",
        help="sessions kept at once (default 100); the least recently used is dropped",
    )
    serve.add_argument("--log-level", choices=LOG_LEVELS, default="warning", help="default warning")
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.add_argument(
        "--recorded-timing",
        action="store_true",
        help="replay recorded streams with their recorded waits between events",
    )

    check = commands.add_parser("check", help="validate scenario files and exit")
    check.add_argument("paths", nargs="+", metavar="PATH", help="scenario files or folders")
    _add_record(commands)
    _add_import_vcr(commands)
    return parser


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _listen(host: str, port: int) -> socket.socket | None:
    """The listening socket, or None after saying why there is none."""
    from mockserver.server import bind

    try:
        return bind(host, port)
    except OSError as exc:
        print(f"mockserver: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return None


def _serve(args: argparse.Namespace) -> int:
    from mockserver.app import create_app
    from mockserver.engine import EngineConfig, MockEngine
    from mockserver.scenarios import load_scenarios
    from mockserver.server import base_url, serve

    scenarios = load_scenarios(args.paths)
    config = EngineConfig(
        seed=args.seed,
        models=tuple(args.model),
        strict=args.strict,
        max_body_size=args.max_body_size,
        recorded_timing=args.recorded_timing,
    )
    from mockserver.control import Admin

    app = create_app(
        MockEngine(scenarios, config),
        Admin(enabled=not args.no_admin),
        max_sessions=args.max_sessions,
    )
    sock = _listen(args.host, args.port)
    if sock is None:
        return 1
    url = base_url(sock)
    count = len(scenarios.scenarios)
    files = len(scenarios.files)

    def ready() -> None:
        print(
            f"mockserver: listening on {url} ({_count(count, 'scenario')} from "
            f"{_count(files, 'file')})",
            flush=True,
        )

    serve(app, sock, on_ready=ready, log_level=args.log_level, access_log=args.access_log)
    print("mockserver: stopped", file=sys.stderr, flush=True)
    return 0


def _check(args: argparse.Namespace) -> int:
    from mockserver.scenarios import load_scenarios

    scenarios = load_scenarios(args.paths)
    print(
        f"ok: {_count(len(scenarios.scenarios), 'scenario')} in "
        f"{_count(len(scenarios.files), 'file')}"
    )
    return 0


def _out_dir(text: str) -> Path | None:
    out = Path(text)
    if out.exists() and not out.is_dir():
        print(f"mockserver: --out {text}: not a folder", file=sys.stderr)
        return None
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"mockserver: --out {text}: cannot create it: {exc.strerror or exc}", file=sys.stderr)
        return None
    return out


def _record(args: argparse.Namespace) -> int:
    from mockserver.ids import clock_for
    from mockserver.recording.cassette import Writer
    from mockserver.recording.match_on import DEFAULT
    from mockserver.recording.proxy import ProxySettings, RecordingProxy
    from mockserver.recording.scrub import Scrubber
    from mockserver.server import base_url, serve

    key = None
    if args.api_key_env is not None:
        key = os.environ.get(args.api_key_env, "").strip()
        if not key:
            print(
                f"mockserver: --api-key-env {args.api_key_env}: that environment variable is "
                "not set or empty",
                file=sys.stderr,
            )
            return 2
    out = _out_dir(args.out)
    if out is None:
        return 2
    writer = Writer(
        out,
        scrubber=Scrubber(args.scrub),
        match_on=args.match_on or DEFAULT,
        origin=f"Recorded by `mockserver record` from {args.upstream}",
        clock=clock_for(args.seed),
    )

    def report(line: str) -> None:
        print(f"mockserver: {line}", flush=True)

    proxy = RecordingProxy(
        ProxySettings(upstream=args.upstream, api_key=key), writer, report=report, seed=args.seed
    )
    sock = _listen(args.host, args.port)
    if sock is None:
        return 1
    url = base_url(sock)

    def ready() -> None:
        print(f"mockserver: recording on {url} -> {args.upstream} into {out}", flush=True)

    serve(proxy, sock, on_ready=ready, log_level=args.log_level)
    print(f"mockserver: stopped ({len(writer.written)} exchanges recorded)", file=sys.stderr)
    return 0


def _import_vcr(args: argparse.Namespace) -> int:
    from mockserver.recording.match_on import DEFAULT
    from mockserver.recording.vcr import CassetteError, import_cassettes

    out = _out_dir(args.out)
    if out is None:
        return 2
    try:
        results = import_cassettes(
            [Path(c) for c in args.cassettes],
            out,
            match_on=args.match_on or DEFAULT,
            scrub=args.scrub,
        )
    except CassetteError as exc:
        print(f"mockserver: {exc}", file=sys.stderr)
        return 2
    for result in results:
        line = f"{result.cassette}: " + (
            f"{_count(result.exchanges, 'chat completion')} -> {result.out} "
            f"({_count(result.scenarios, 'scenario')})"
            if result.out is not None
            else "no chat completions, nothing written"
        )
        print(line)
        for reason in result.skipped:
            print(f"  skipped {reason}")
    return 0


def _command_parser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found: argparse.ArgumentParser = action.choices[name]
            return found
    return parser  # pragma: no cover - every command has a parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # reported by the command's parser, which knows the command's flags
        _command_parser(parser, args.command).error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "record":
            return _record(args)
        if args.command == "import-vcr":
            return _import_vcr(args)
        return _check(args)
    except ScenarioError as exc:
        print(str(exc), file=sys.stderr)
        count = len(exc.problems)
        print(
            f"mockserver: {count} problem{'s' if count != 1 else ''} in the scenario files",
            file=sys.stderr,
        )
        return 2
