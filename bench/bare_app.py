"""Bare Starlette + uvicorn app: the throughput ceiling of mockserver's stack (owned by bench/).

It serves `POST /v1/chat/completions` with one fixed, pre-encoded chat.completion and
`GET /health`, nothing else: no parsing, no matching, no middleware. Run it the way mockserver
runs uvicorn (one process, access log off, log level warning); `--loop`/`--http` pick the
uvloop+httptools stack (the default, same as mockserver) or asyncio+h11 for context.
Its uvicorn settings and listening socket mirror mockserver/server.py.

    python bench/bare_app.py --port 0 [--loop asyncio --http h11]

Like `mockserver serve`, it prints one line holding the base URL (http://HOST:PORT/v1).
"""

from __future__ import annotations

import argparse
import socket

import load_payloads as payloads
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

BODY = payloads.chat_completion_body()
HEALTH_BODY = b'{"status":"ok"}'


async def chat_completions(request: Request) -> Response:
    await request.body()  # consume the request as any real handler must
    return Response(BODY, media_type="application/json")


async def health(request: Request) -> Response:
    return Response(HEALTH_BODY, media_type="application/json")


app = Starlette(
    routes=[
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
    ]
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    parser.add_argument("--http", choices=["httptools", "h11"], default="httptools")
    return parser.parse_args(argv)


def listening_socket(host: str, port: int) -> socket.socket:
    """Bind and listen before uvicorn starts, so the printed URL is connectable at once.

    TCP_NODELAY on the listener is inherited by accepted sockets. uvicorn only sets it on
    sockets it creates itself; without it asyncio+h11 (headers and body written separately)
    stalls on Nagle + delayed ACK: ~40 ms per request. mockserver/server.py does the same.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sock = listening_socket(args.host, args.port)
    host, port = sock.getsockname()[:2]
    # The uvicorn settings of mockserver/server.py (bar the loop/http choice for context runs).
    config = uvicorn.Config(
        app,
        loop=args.loop,
        http=args.http,
        lifespan="off",
        log_level="warning",
        access_log=False,
        server_header=False,
        proxy_headers=False,
    )
    print(f"bare_app: listening on http://{host}:{port}/v1 ({args.loop}+{args.http})", flush=True)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
