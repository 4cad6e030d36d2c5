"""Run the app under uvicorn: in the foreground for the CLI, or in a background thread.

Both run uvicorn's `startup()` and a shutdown of their own: stop listening, close idle
connections, give responses in progress `grace` seconds, then close their connections (the
client sees the connection drop) and cancel their tasks, without a traceback each.
Connections are bounded by `Limits` (mockserver.protocol).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import gc
import logging
import signal
import socket
import threading
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from typing import Any

import uvicorn

from mockserver.app import MockApp, Receive, Scope, Send, StreamAborted
from mockserver.protocol import Limits, limited_protocol

# uvloop and httptools, when installed, make uvicorn about three times faster. They are
# imported with this module, so the first server start does not pay for them.
try:
    import uvloop

    LOOP = "uvloop"
except ImportError:  # pragma: no cover - uvicorn[standard] brings it
    LOOP = "asyncio"
try:
    import httptools  # noqa: F401 - loaded once, here

    HTTP = "httptools"
except ImportError:  # pragma: no cover - uvicorn[standard] brings it
    HTTP = "h11"

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
"""Any ASGI app: the mock's `MockApp`, or the recorder's proxy."""


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket with TCP_NODELAY (uvicorn sets it only on sockets it creates)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/v1"


def _log_config(log_level: str) -> dict[str, Any]:
    """uvicorn's logging, but every line on stderr (stdout carries the "listening on" line that
    scripts read), and the access log at INFO whatever the level: `access_log` decides it."""
    settings: dict[str, Any] = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    settings["handlers"]["access"]["stream"] = "ext://sys.stderr"
    settings["loggers"]["uvicorn"]["level"] = log_level.upper()
    settings["loggers"]["uvicorn.error"]["level"] = log_level.upper()
    settings["loggers"]["uvicorn.access"]["level"] = "INFO"
    return settings


class _Quiet(logging.Filter):
    """Drops uvicorn's traceback for streams a scenario interrupts on purpose, and for the
    responses a shutdown cuts (their tasks are cancelled)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.exc_info
            and isinstance(record.exc_info[1], StreamAborted | asyncio.CancelledError)
        )


def config(
    app: ASGIApp,
    *,
    log_level: str = "warning",
    access_log: bool = False,
    limits: Limits = Limits(),  # noqa: B008 - frozen
    date: int | None = None,
) -> uvicorn.Config:
    """uvicorn settings: uvloop + httptools when installed (about three times faster).

    `date` fixes the `date` header at that Unix time (a seeded run); else it is the time now.
    """
    logging.getLogger("uvicorn.error").addFilter(_Quiet())
    fixed = [] if date is None else [("date", formatdate(date, usegmt=True))]
    return uvicorn.Config(
        app,
        log_config=_log_config(log_level),
        loop=LOOP,
        http=limited_protocol(limits) if HTTP == "httptools" else "h11",
        h11_max_incomplete_event_size=limits.max_header_size,
        timeout_keep_alive=limits.idle_timeout,  # type: ignore[arg-type] # a float works
        lifespan="off",
        access_log=access_log,
        server_header=False,
        date_header=date is None,
        headers=fixed,
        proxy_headers=False,  # a local mock trusts no X-Forwarded-*; uvicorn's middleware costs
    )


def _new_server(cfg: uvicorn.Config) -> uvicorn.Server:
    server = uvicorn.Server(cfg)
    if not cfg.loaded:
        cfg.load()
    server.lifespan = cfg.lifespan_class(cfg)
    return server


async def shutdown(server: uvicorn.Server, grace: float) -> int:
    """Stop listening, close idle connections, let responses in progress finish for up to
    `grace` seconds, then close their connections and cancel them. Returns how many were cut."""
    loop = asyncio.get_running_loop()
    for listener in server.servers:
        listener.close()
    state = server.server_state
    for connection in list(state.connections):
        connection.shutdown()  # closes idle keep-alive connections right away
    deadline = loop.time() + grace
    while (state.connections or state.tasks) and loop.time() < deadline:
        await asyncio.sleep(0 if not state.tasks else 0.001)
    cut = len(state.tasks)
    for connection in list(state.connections):
        transport = getattr(connection, "transport", None)
        if transport is not None:
            transport.abort()  # the app's sends become no-ops, its receive() a disconnect
    for task in list(state.tasks):
        task.cancel()
    if state.tasks:
        await asyncio.gather(*state.tasks, return_exceptions=True)
    for _ in range(2):  # let connection_lost() callbacks run before the loop closes
        await asyncio.sleep(0)
    return cut


async def _keep_date(server: uvicorn.Server) -> None:
    """uvicorn's `date` header, refreshed every second (uvicorn's main loop is not run)."""
    while True:
        await server.on_tick(0)
        await asyncio.sleep(1)


async def _serve_until_signal(
    server: uvicorn.Server, sock: socket.socket, on_ready: Callable[[], None] | None, grace: float
) -> int:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        try:
            loop.add_signal_handler(sig, stopping.set)
        except NotImplementedError:  # pragma: no cover - Windows
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stopping.set))
    try:
        await server.startup(sockets=[sock])
        await server.on_tick(0)  # the default headers (a fixed `date` under --seed)
        dates = asyncio.ensure_future(_keep_date(server)) if server.config.date_header else None
        if on_ready is not None:
            on_ready()
        await stopping.wait()
        if dates is not None:
            dates.cancel()
        return await shutdown(server, grace)
    finally:
        for sig in signals:
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(sig)


def serve(
    app: ASGIApp,
    sock: socket.socket,
    *,
    on_ready: Callable[[], None] | None = None,
    log_level: str = "warning",
    access_log: bool = False,
    limits: Limits = Limits(),  # noqa: B008 - frozen
    date: int | None = None,
    grace: float = 0.1,
) -> int:
    """Serve until SIGINT or SIGTERM, then shut down (see `shutdown`); returns how many
    responses in progress the shutdown cut. A signal ends the server, not the process."""
    cfg = config(app, log_level=log_level, access_log=access_log, limits=limits, date=date)
    server = _new_server(cfg)
    loop = _new_loop(cfg)
    # What exists now (modules, scenarios, indexes: most of the heap) lives until the end: the
    # collector need not walk it again on every full collection (27 ms each, seen as p99 under
    # load, with 10,000 scenarios loaded much more).
    gc.freeze()
    try:
        return loop.run_until_complete(_serve_until_signal(server, sock, on_ready, grace))
    finally:
        loop.close()


class _Current:
    """The ASGI app the background server runs now (the fixture swaps it per test)."""

    def __init__(self, app: MockApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def _new_loop(cfg: uvicorn.Config) -> asyncio.AbstractEventLoop:
    if cfg.loop == "uvloop":
        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        return loop
    return asyncio.new_event_loop()


class BackgroundServer:
    """The app served from a thread of this process (the pytest fixture's server).

    The thread runs its own event loop and drives uvicorn's `startup()` itself; `stop()` closes
    the listener and idle keep-alive connections at once and waits only for responses still being
    written (up to `grace` seconds, then they are cancelled). `Server.run()` and uvicorn's own
    `shutdown()` poll every 100 ms, which made each stop take at least that long.

    `app` can be replaced while the server runs; requests already in flight finish on the old one.
    """

    def __init__(
        self,
        app: MockApp,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        grace: float = 1.0,
        limits: Limits = Limits(),  # noqa: B008 - frozen
    ) -> None:
        self._current = _Current(app)
        self.grace = grace
        self._sock = bind(host, port)
        self.url = base_url(self._sock)
        cfg = config(app, limits=limits)
        cfg.app = self._current
        cfg.ws = "none"  # no websocket routes; importing them costs ~15 ms
        self._server = uvicorn.Server(cfg)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._failed: BaseException | None = None

    @property
    def app(self) -> MockApp:
        return self._current.app

    @app.setter
    def app(self, app: MockApp) -> None:
        self._current.app = app

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> BackgroundServer:
        if self._thread is not None:
            raise RuntimeError("this BackgroundServer was started already")
        cfg = self._server.config
        self._server = _new_server(cfg)
        self._loop = _new_loop(cfg)
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(self._loop, ready), name="mockserver", daemon=True
        )
        self._thread.start()
        ready.wait()
        if self._failed is not None:
            self._thread.join()
            self._sock.close()
            raise RuntimeError("the mockserver background server failed to start") from (
                self._failed
            )
        return self

    def _run(self, loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        try:
            try:
                loop.run_until_complete(self._startup())
            except BaseException as exc:  # handed to start(), which raises it
                self._failed = exc
                return
            finally:
                ready.set()
            loop.run_until_complete(self._serve_until_stopped())
        finally:
            loop.close()

    async def _startup(self) -> None:
        self._stopping = asyncio.Event()
        await self._server.startup(sockets=[self._sock])

    async def _serve_until_stopped(self) -> None:
        assert self._stopping is not None
        await self._stopping.wait()
        await self._shutdown()

    async def _shutdown(self) -> None:
        await shutdown(self._server, self.grace)

    def stop(self) -> None:
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None or loop is None or not thread.is_alive():
            return
        if stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed already
                loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout=self.grace + 5)
        self._sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
