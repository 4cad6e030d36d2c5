"""The `mockserver` command: `serve` scenarios, `check` scenario files, `record` an upstream,
`import-vcr` cassettes."""

from __future__ import annotations

import argparse
import difflib
import ipaddress
import os
import re
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from mockserver import __version__
from mockserver.errors import Problem, ScenarioError

if TYPE_CHECKING:
    from mockserver.protocol import Limits

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


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def _count_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a whole number > 0, got {text!r}")
    return value


def _upstream_timeout(text: str) -> tuple[float, float]:
    """`READ` or `CONNECT,READ` seconds; the connect timeout is at most 10 s unless given."""
    parts = text.split(",")
    if len(parts) > 2:
        raise argparse.ArgumentTypeError(
            f"expected READ or CONNECT,READ seconds (such as 120 or 5,120), got {text!r}"
        )
    try:
        values = [_seconds(p.strip()) for p in parts]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected READ or CONNECT,READ seconds > 0 (such as 120 or 5,120), got {text!r}"
        ) from None
    if len(values) == 1:
        return min(10.0, values[0]), values[0]
    return values[0], values[1]


def _add_connection_options(parser: argparse.ArgumentParser) -> None:
    """The limits on what a client connection may send (mockserver.protocol.Limits, and the
    body size the app reads)."""
    parser.add_argument(
        "--max-body-size",
        type=_size,
        default=64 * 1024 * 1024,
        metavar="SIZE",
        help="largest request body accepted (default 64m); larger gets a 413",
    )
    parser.add_argument(
        "--max-header-size",
        type=_size,
        default=64 * 1024,
        metavar="SIZE",
        help="largest request line and headers accepted (default 64k); larger gets a 431",
    )
    parser.add_argument(
        "--max-headers",
        type=_count_arg,
        default=100,
        metavar="N",
        help="most header fields accepted in a request (default 100); more gets a 431",
    )
    parser.add_argument(
        "--read-timeout",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="a request (headers and body) must arrive within this (default 30); else a 408",
    )
    parser.add_argument(
        "--idle-timeout",
        type=_seconds,
        default=5.0,
        metavar="SECONDS",
        help="close a connection with no request in progress after this (default 5)",
    )


def _limits(args: argparse.Namespace) -> Limits:
    from mockserver.protocol import Limits

    return Limits(
        max_header_size=args.max_header_size,
        max_headers=args.max_headers,
        read_timeout=args.read_timeout,
        idle_timeout=args.idle_timeout,
    )


def _is_loopback(sock: socket.socket) -> bool:
    try:
        return ipaddress.ip_address(sock.getsockname()[0]).is_loopback
    except ValueError:  # pragma: no cover - an address family without an IP
        return False


def _warn_exposed(sock: socket.socket, what: str) -> None:
    if not _is_loopback(sock):
        host = sock.getsockname()[0]
        print(
            f"mockserver: warning: listening on {host}, which other machines can reach; {what}",
            file=sys.stderr,
            flush=True,
        )


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


def _rate_limit(text: str) -> object:
    from mockserver.ratelimit import parse_rate_limit

    try:
        return parse_rate_limit(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_trouble_options(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--faults",
        metavar="FILE",
        help="a YAML file whose `faults:` apply to every chat completion (README, 'Faults')",
    )
    serve.add_argument(
        "--timing",
        choices=("instant", "realistic"),
        default="instant",
        help="instant (default): replies wait only what their scenario says; realistic: "
        "replies without waits of their own stream like a model (ttft ~400 ms, 50 tokens/s)",
    )
    serve.add_argument(
        "--rate-limit",
        type=_rate_limit,
        action="append",
        default=[],
        metavar="RULE",
        help="rpm=N,tpm=N[,per=model|key|key+model|server][,model=NAME]: OpenAI-style limits "
        "over a sliding minute (repeatable; per model by default)",
    )


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
    record.add_argument(
        "--upstream-timeout",
        type=_upstream_timeout,
        default=(10.0, 120.0),
        metavar="[CONNECT,]READ",
        help="seconds to wait for the upstream: to connect (default 10) and for each read, "
        "including the wait for its reply (default 120); a timeout is answered 504",
    )
    record.add_argument(
        "--max-record-size",
        type=_size,
        default=4 * 1024 * 1024,
        metavar="SIZE",
        help="largest response recorded (default 4m); a larger one is passed through, not recorded",
    )
    _add_connection_options(record)
    _add_recording_options(record)
    record.add_argument(
        "--seed",
        type=int,
        help="fix recorded_at, the date header and the recorder's own ids (identical files)",
    )
    record.add_argument(
        "--profile",
        choices=("openai", "vllm"),
        help="write `profile:` into the files recorded, so replay speaks as that server "
        "(default: vllm when the upstream's replies carry vLLM's stop_reason, else none)",
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


def _add_files_outside(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-files-outside",
        action="store_true",
        help="let scenarios name files (audio) outside their scenario file's folder tree",
    )


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
    _add_connection_options(serve)
    serve.add_argument(
        "--admin-token",
        metavar="TOKEN",
        help="require Authorization: Bearer TOKEN on the /_mockserver/ admin routes (which a "
        "non-loopback --host serves only with a token)",
    )
    serve.add_argument(
        "--max-reply-size",
        type=_size,
        default=32 * 1024 * 1024,
        metavar="SIZE",
        help="largest reply rendered (default 32m); a request for a larger one gets a 400",
    )
    serve.add_argument(
        "--journal-bytes",
        type=_size,
        default=64 * 1024 * 1024,
        metavar="SIZE",
        help="request bytes the journal keeps (default 64m); the oldest entries go first",
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
    _add_trouble_options(serve)
    serve.add_argument(
        "--profile",
        choices=("openai", "vllm"),
        help="the server to speak as (default: what the scenario files declare, else openai)",
    )
    serve.add_argument(
        "--reasoning-field",
        choices=("reasoning", "reasoning_content", "both"),
        default="reasoning",
        help="where the vllm profile sends reasoning (default reasoning)",
    )

    _add_files_outside(serve)

    check = commands.add_parser("check", help="validate scenario and faults files and exit")
    check.add_argument("paths", nargs="*", metavar="PATH", help="scenario files or folders")
    check.add_argument("--faults", metavar="FILE", help="a faults file, as `serve --faults` reads")
    _add_files_outside(check)
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
    from mockserver.control import Admin
    from mockserver.engine import EngineConfig, MockEngine
    from mockserver.faults import load_faults
    from mockserver.ids import SEEDED_EPOCH
    from mockserver.scenarios import load_scenarios
    from mockserver.server import base_url, serve

    scenarios = load_scenarios(args.paths, allow_files_outside=args.allow_files_outside)
    faults = load_faults(args.faults) if args.faults else ()
    config = EngineConfig(
        seed=args.seed,
        models=tuple(args.model),
        strict=args.strict,
        max_body_size=args.max_body_size,
        max_reply_size=args.max_reply_size,
        journal_bytes=args.journal_bytes,
        recorded_timing=args.recorded_timing,
        faults=faults,
        timing=args.timing,
        rate_limits=tuple(args.rate_limit),
        profile=args.profile,
        reasoning_field=args.reasoning_field,
    )
    engine = MockEngine(scenarios, config)
    sock = _listen(args.host, args.port)
    if sock is None:
        return 1
    loopback = _is_loopback(sock)
    admin = Admin(
        enabled=not args.no_admin and (loopback or args.admin_token is not None),
        token=args.admin_token,
    )
    app = create_app(engine, admin, max_sessions=args.max_sessions)
    if args.no_admin:
        pass  # nothing exposed: the control routes are off
    elif args.admin_token is None:
        _warn_exposed(sock, "its /_mockserver/ admin routes are off (see --admin-token)")
    else:
        _warn_exposed(sock, "its /_mockserver/ admin routes need the --admin-token")
    url = base_url(sock)
    count = len(scenarios.scenarios)
    files = len(scenarios.files)

    def ready() -> None:
        print(
            f"mockserver: listening on {url} ({_count(count, 'scenario')} from "
            f"{_count(files, 'file')})",
            flush=True,
        )

    cut = serve(
        app,
        sock,
        on_ready=ready,
        log_level=args.log_level,
        access_log=args.access_log,
        limits=_limits(args),
        date=None if args.seed is None else SEEDED_EPOCH,
    )
    print(f"mockserver: stopped{_cut(cut, '')}", file=sys.stderr, flush=True)
    return 0


def _cut(n: int, before: str) -> str:
    """How many responses in progress a shutdown cut, as the end of the "stopped" line."""
    if not n:
        return f" ({before})" if before else ""
    cut = f"cut {_count(n, 'open response')}"
    return f" ({before}; {cut})" if before else f" ({cut})"


def _check(args: argparse.Namespace) -> int:
    from mockserver.faults import load_faults
    from mockserver.scenarios import load_scenarios

    if not args.paths and not args.faults:
        _command_parser(build_parser(), "check").error("give scenario PATHs, --faults FILE or both")
    problems: tuple[Problem, ...] = ()
    said = []
    if args.paths:
        try:
            scenarios = load_scenarios(args.paths, allow_files_outside=args.allow_files_outside)
            files = _count(len(scenarios.files), "file")
            said.append(f"{_count(len(scenarios.scenarios), 'scenario')} in {files}")
        except ScenarioError as exc:
            problems = exc.problems
    if args.faults:
        try:
            said.append(f"{_count(len(load_faults(args.faults)), 'fault')} in {args.faults}")
        except ScenarioError as exc:
            problems += exc.problems
    if problems:
        raise ScenarioError(problems)
    print(f"ok: {', '.join(said)}")
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
    from mockserver.ids import SEEDED_EPOCH, clock_for
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
        profile=args.profile,
    )

    def report(line: str) -> None:
        print(f"mockserver: {line}", flush=True)

    connect, read = args.upstream_timeout
    settings = ProxySettings(
        upstream=args.upstream,
        api_key=key,
        connect_timeout=connect,
        read_timeout=read,
        max_record_size=args.max_record_size,
        max_body_size=args.max_body_size,
    )
    proxy = RecordingProxy(settings, writer, report=report, seed=args.seed)
    sock = _listen(args.host, args.port)
    if sock is None:
        return 1
    _warn_exposed(
        sock,
        "anyone who reaches it can send requests upstream"
        + (" with the key in --api-key-env" if key else ""),
    )
    url = base_url(sock)

    def ready() -> None:
        print(f"mockserver: recording on {url} -> {args.upstream} into {out}", flush=True)

    cut = serve(
        proxy,
        sock,
        on_ready=ready,
        log_level=args.log_level,
        limits=_limits(args),
        date=None if args.seed is None else SEEDED_EPOCH,
    )
    recorded = f"{len(writer.written)} exchanges recorded"
    print(f"mockserver: stopped{_cut(cut, recorded)}", file=sys.stderr, flush=True)
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
            f"{_count(result.exchanges, 'exchange')} -> {result.out} "
            f"({_count(result.scenarios, 'scenario')})"
            if result.out is not None
            else "no chat completion or Responses exchange, nothing written"
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
