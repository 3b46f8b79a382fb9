"""``siakdesk-server``: run a meeting server until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sqlite3
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import platformdirs
from aiohttp import web

from siakdesk import __version__
from siakdesk.logsetup import configure_logging
from siakdesk.server.app import app_factory
from siakdesk.server.config import DEFAULT_MAX_PARTICIPANTS, RoomConfig, ServerConfig

logger = logging.getLogger("siakdesk.server")


class _RoomAction(argparse.Action):
    """``--room NAME`` starts a room; ``--passcode`` and ``--max-participants`` refine the last."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        rooms: list[dict[str, Any]] = getattr(namespace, "rooms", None) or []
        if self.dest == "room":
            rooms.append({"name": values})
        elif not rooms:
            parser.error(f"{option_string} must follow the --room it belongs to")
        else:
            rooms[-1][self.dest] = values
        namespace.rooms = rooms


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="siakdesk-server",
        description="SiakDesk meeting server: signaling and media forwarding for regency meetings.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8443, help="port to listen on (0: any free)")
    parser.add_argument(
        "--room",
        action=_RoomAction,
        dest="room",
        metavar="NAME",
        help="a meeting room; repeat for several (default: one open room 'siak')",
    )
    parser.add_argument(
        "--passcode",
        action=_RoomAction,
        dest="passcode",
        help="passcode of the room named just before (a room without one is open)",
    )
    parser.add_argument(
        "--host-passcode",
        action=_RoomAction,
        dest="host_passcode",
        help="host passcode of the room named just before: who joins with it runs the agenda",
    )
    parser.add_argument(
        "--max-participants",
        action=_RoomAction,
        dest="max_participants",
        type=int,
        metavar="N",
        help=f"capacity of the room named just before (default {DEFAULT_MAX_PARTICIPANTS})",
    )
    parser.add_argument(
        "--media-address",
        action="append",
        default=[],
        metavar="IP",
        help="address to offer for media (ICE host candidate); default: the listen address",
    )
    parser.add_argument("--stun", action="append", default=[], metavar="URL", help="STUN server")
    parser.add_argument("--tls-cert", help="PEM certificate: serve HTTPS/WSS")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    parser.add_argument(
        "--database",
        default=str(default_database()),
        metavar="FILE",
        help="SQLite file with the meetings' record: attendance, chat, agenda, resume tokens"
        " (default: %(default)s; ':memory:' keeps nothing)",
    )
    parser.add_argument(
        "--reconnect-grace",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="how long a participant who lost its connection keeps its place (default 300)",
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.set_defaults(rooms=None)
    return parser


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    rooms = tuple(RoomConfig(**room) for room in (args.rooms or [{"name": "siak"}]))
    return ServerConfig(
        host=args.host,
        port=args.port,
        rooms=rooms,
        media_addresses=tuple(args.media_address),
        stun_urls=tuple(args.stun),
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        database=args.database,
        reconnect_grace=args.reconnect_grace,
    )


def default_database() -> Path:
    return Path(platformdirs.user_data_dir("siakdesk-server", appauthor=False)) / "meetings.sqlite3"


async def serve(config: ServerConfig, stop: asyncio.Event) -> None:
    ssl_context = None
    if config.tls_cert and config.tls_key:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(config.tls_cert, config.tls_key)
    runner = web.AppRunner(app_factory(config), handle_signals=False, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port, ssl_context=ssl_context)
        await site.start()
        scheme = "https" if ssl_context else "http"
        for address in runner.addresses:
            host, port = address[0], address[1]
            shown = f"[{host}]" if ":" in host else host
            print(
                f"siakdesk-server {__version__} listening on {scheme}://{shown}:{port}", flush=True
            )
        rooms = ", ".join(
            f"{r.name} ({'passcode' if r.passcode else 'open'})" for r in config.rooms
        )
        logger.info("rooms: %s", rooms)
        await stop.wait()
        logger.info("shutting down")
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        configure_logging(args.log_level)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await serve(config, stop)

    try:
        asyncio.run(run())
    except OSError as exc:
        print(
            f"siakdesk-server: cannot listen on {config.host}:{config.port}: {exc}", file=sys.stderr
        )
        return 1
    except ssl.SSLError as exc:
        print(f"siakdesk-server: bad TLS certificate or key: {exc}", file=sys.stderr)
        return 1
    except (sqlite3.Error, RuntimeError) as exc:
        print(f"siakdesk-server: cannot use the database {config.database}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
