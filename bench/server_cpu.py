"""The server's CPU time a request under load, for variants of one server run alternately.

`load.py` gives requests a second against the bare stack. This script answers a narrower
question: how much of the server's CPU does one change cost or save? It starts mockserver on
one scenario set of `load_sets.py` (or the 100 equalities), loads it with wrk and the set's
request, every body different (`load_payloads.distinct`), and reads the server's own CPU time
from `/proc/PID/stat` around the run: microseconds of CPU a request, which do not depend on how
fast the load generator is. Variants alternate run by run, so a drift of the machine lands on
all of them; each prints its runs, median and minimum.

A variant is a Python prelude run in the server's process before `mockserver serve`:

- `as-is`: nothing.
- `no-journal`: `MockEngine._record` a no-op (a measurement, not a mode: nothing is journaled).
- `journal-16`: a journal of 16 entries instead of 10,000.
- `NAME=FILE`: the Python file FILE (e.g. a monkeypatch to try an idea before writing it).

    python bench/server_cpu.py --set recording-1000 --runs 6 --seconds 4 \\
        --variant as-is --variant no-journal --variant journal-16

Linux only (`/proc`); pins the server and wrk to two CPUs when `taskset` exists.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import load_payloads as payloads
import load_procs as procs
import load_sets as sets
import load_wrk as wrk

_PRELUDES = {
    "as-is": "",
    "no-journal": (
        "import mockserver.engine as e\ne.MockEngine._record = lambda self, *a, **k: None\n"
    ),
    "journal-16": (
        "import dataclasses, mockserver.engine as e\n"
        "_init = e.MockEngine.__init__\n"
        "def _small(self, scenarios, config=None, *a, **k):\n"
        "    config = dataclasses.replace(config or e.EngineConfig(), journal_size=16)\n"
        "    _init(self, scenarios, config, *a, **k)\n"
        "e.MockEngine.__init__ = _small\n"
    ),
}
_SERVE = "import sys\nfrom mockserver.cli import main\nsys.exit(main(sys.argv[1:]))\n"
_TICKS = os.sysconf("SC_CLK_TCK")


def _prelude(variant: str) -> tuple[str, str]:
    """(name, Python source) of a `--variant`."""
    if variant in _PRELUDES:
        return variant, _PRELUDES[variant]
    name, sep, file = variant.partition("=")
    if not sep:
        known = ", ".join(_PRELUDES)
        raise SystemExit(f"--variant {variant!r}: use one of {known}, or NAME=FILE")
    return name, Path(file).read_text()


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (`/proc/PID/stat` fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _one_run(
    name: str, source: str, where: Path, body: Path, args: argparse.Namespace, logs: Path
) -> float:
    """One server, warmed up, then measured: its CPU microseconds a request."""
    cpus = procs.default_cpus()
    server_cpu, load_cpu = cpus if cpus else (None, None)
    command = [sys.executable, "-c", source + _SERVE, "serve", str(where), "--port", "0"]
    server = procs.spawn(name, [*procs.pin_prefix(server_cpu), *command, "--seed", "1"], logs)
    try:
        base = procs.wait_for_url(server, 60)
        procs.wait_for_health(server, base.removesuffix("/v1") + "/health", 60)
        url = base + "/chat/completions"
        settings = wrk.WrkSettings(threads=1, connections=32, duration_s=args.seconds, timeout_s=5)
        script = wrk.DISTINCT_LUA_SCRIPT
        wrk.run_wrk(url, body, settings, args.warmup, load_cpu, script)
        before = _cpu_seconds(server.proc.pid)
        result = wrk.run_wrk(url, body, settings, args.seconds, load_cpu, script)
        spent = _cpu_seconds(server.proc.pid) - before
    finally:
        procs.stop(server.proc)
    if result.non_2xx or not result.requests:
        raise procs.BenchError(f"{name}: {result.non_2xx} of {result.requests} answers not 2xx")
    return spent / result.requests * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    choices = ["equalities-100", *sets.SETS]
    parser.add_argument("--set", default="recording-1000", choices=choices)
    parser.add_argument("--runs", type=int, default=6, help="runs of each variant")
    parser.add_argument("--seconds", type=int, default=4, help="each measured run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds before each run")
    parser.add_argument(
        "--variant",
        action="append",
        help=f"{', '.join(_PRELUDES)}, or NAME=FILE (default: as-is); repeat to compare",
    )
    args = parser.parse_args(argv)
    if (missing := wrk.wrk_missing()) is not None:
        raise SystemExit(missing)
    variants = [_prelude(v) for v in args.variant or ["as-is"]]
    procs.install_cleanup()
    with tempfile.TemporaryDirectory(prefix="server-cpu-") as tmp:
        folder = Path(tmp) / "set"
        folder.mkdir()
        if args.set == "equalities-100":
            (folder / "bench.yaml").write_text(payloads.scenario_yaml())
            request = payloads.non_stream_request()
        else:
            request = sets.SETS[args.set](folder).body
        body = Path(tmp) / "body.json"
        body.write_bytes(payloads.distinct(request))
        found: dict[str, list[float]] = {name: [] for name, _ in variants}
        for run in range(args.runs):
            for name, source in variants:
                found[name].append(_one_run(name, source, folder, body, args, Path(tmp)))
                print(f"run {run + 1}/{args.runs} {name}: {found[name][-1]:.1f} us", flush=True)
    print(f"\nserver CPU a request, {args.set}, every body different:")
    for name, runs in found.items():
        shown = ", ".join(f"{r:.1f}" for r in runs)
        print(
            f"  {name:16} median {statistics.median(runs):6.1f} us"
            f"  min {min(runs):6.1f}  runs: {shown}"
        )


if __name__ == "__main__":
    main()
