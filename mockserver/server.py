"""Run the app under uvicorn: in the foreground for the CLI, or in a background thread."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Callable
from types import FrameType

import uvicorn

from mockserver.app import MockApp, StreamAborted

LOOP = "uvloop"
HTTP = "httptools"


def _have(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


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


class _Quiet(logging.Filter):
    """Drops uvicorn's traceback for streams a scenario interrupts on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], StreamAborted))


def config(app: MockApp, *, log_level: str = "warning", access_log: bool = False) -> uvicorn.Config:
    """uvicorn settings: uvloop + httptools when installed (about three times faster)."""
    logging.getLogger("uvicorn.error").addFilter(_Quiet())
    return uvicorn.Config(
        app,
        loop=LOOP if _have("uvloop") else "asyncio",
        http=HTTP if _have("httptools") else "h11",
        lifespan="off",
        log_level=log_level,
        access_log=access_log,
        server_header=False,
        timeout_graceful_shutdown=2,
    )


class _Server(uvicorn.Server):
    def __init__(self, cfg: uvicorn.Config, on_ready: Callable[[], None] | None) -> None:
        super().__init__(cfg)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self._on_ready is not None:
            self._on_ready()


def serve(
    app: MockApp,
    sock: socket.socket,
    *,
    on_ready: Callable[[], None] | None = None,
    log_level: str = "warning",
    access_log: bool = False,
) -> None:
    """Serve until SIGINT or SIGTERM, then shut down gracefully and return."""
    cfg = config(app, log_level=log_level, access_log=access_log)
    server = _Server(cfg, on_ready)

    # uvicorn re-raises the signal it caught once it has shut down; these handlers absorb it,
    # so a stopped server exits with status 0 instead of dying of the signal.
    def absorb(signum: int, frame: FrameType | None) -> None:
        return None

    previous = {sig: signal.signal(sig, absorb) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class BackgroundServer:
    """The app served from a thread of this process (the pytest fixture's server).

    Startup and shutdown drive uvicorn's `startup()` / `shutdown()` directly: `Server.run()`
    spends about 200 ms in its polling loop on the way out.
    """

    def __init__(self, app: MockApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self._sock = bind(host, port)
        self.url = base_url(self._sock)
        self._loop = asyncio.new_event_loop()
        self._server = uvicorn.Server(config(app))
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="mockserver", daemon=True
        )

    def start(self) -> BackgroundServer:
        cfg = self._server.config
        if not cfg.loaded:
            cfg.load()
        self._server.lifespan = cfg.lifespan_class(cfg)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(
            self._server.startup(sockets=[self._sock]), self._loop
        ).result()
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            future = asyncio.run_coroutine_threadsafe(self._server.shutdown(), self._loop)
            future.result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()
        self._sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
