"""The `mockserver` command: `serve` scenarios, `check` scenario files."""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence
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
    serve.add_argument("--log-level", choices=LOG_LEVELS, default="warning", help="default warning")
    serve.add_argument("--access-log", action="store_true", help="log every request")

    check = commands.add_parser("check", help="validate scenario files and exit")
    check.add_argument("paths", nargs="+", metavar="PATH", help="scenario files or folders")
    return parser


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _serve(args: argparse.Namespace) -> int:
    from mockserver.app import create_app
    from mockserver.engine import EngineConfig, MockEngine
    from mockserver.scenarios import load_scenarios
    from mockserver.server import base_url, bind, serve

    scenarios = load_scenarios(args.paths)
    config = EngineConfig(
        seed=args.seed,
        models=tuple(args.model),
        strict=args.strict,
        max_body_size=args.max_body_size,
    )
    app = create_app(MockEngine(scenarios, config))
    try:
        sock = bind(args.host, args.port)
    except OSError as exc:
        print(
            f"mockserver: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
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
        return _check(args)
    except ScenarioError as exc:
        print(str(exc), file=sys.stderr)
        count = len(exc.problems)
        print(
            f"mockserver: {count} problem{'s' if count != 1 else ''} in the scenario files",
            file=sys.stderr,
        )
        return 2
