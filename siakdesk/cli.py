"""``siakdesk``: the desktop app's command line.

``siakdesk demo`` runs a whole meeting in one process: the embedded server on a
free loopback port, three simulated kecamatan offices (bots with synthetic
video and a tone each) and a fourth participant for the person at the keyboard.
Until the desktop window lands (the desktop-app issue), that fourth participant
is headless too, and the demo prints what it receives.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from siakdesk import __version__
from siakdesk.bot import Bot, BotConfig
from siakdesk.core import config
from siakdesk.core.events import ParticipantJoined, ParticipantLeft, SessionEvent
from siakdesk.core.meetingsession import JoinError, SessionConfig
from siakdesk.core.signaling import ServerEndpoint
from siakdesk.logsetup import configure_logging
from siakdesk.server.app import app_factory
from siakdesk.server.config import RoomConfig, ServerConfig

DEMO_OFFICES = [
    ("Camat Minas", "Kecamatan Minas"),
    ("Camat Kandis", "Kecamatan Kandis"),
    ("Camat Sungai Apit", "Kecamatan Sungai Apit"),
]
YOU = ("Bupati Siak", "Kantor Bupati Siak")


async def run_demo(duration: float) -> int:
    config = ServerConfig(host="127.0.0.1", port=0, rooms=(RoomConfig("siak", passcode="1234"),))
    runner = web.AppRunner(app_factory(config), access_log=None)
    await runner.setup()
    bots: list[Bot] = []
    try:
        site = web.TCPSite(runner, config.host, config.port)
        await site.start()
        host, port = runner.addresses[0][:2]
        url = f"http://{host}:{port}"
        print(f"SiakDesk {__version__} demo: meeting server on {url}, room 'siak', passcode 1234")

        def session(name: str, office: str) -> BotConfig:
            return BotConfig(
                SessionConfig(ServerEndpoint(url), "siak", name, office, passcode="1234")
            )

        you = Bot(session(*YOU))

        def on_event(event: SessionEvent) -> None:
            if isinstance(event, ParticipantJoined):
                print(f"  + {event.participant.name} ({event.participant.office}) joined")
            elif isinstance(event, ParticipantLeft):
                print(f"  - {event.participant.name} left ({event.reason})")

        you.session.add_listener(on_event)
        for name, office in DEMO_OFFICES:
            bot = Bot(session(name, office))
            bots.append(bot)
            await bot.start()
        bots.append(you)
        await you.start()
        print(f"You are in the meeting as {YOU[0]}; receiving for {duration:.0f} s...")
        await asyncio.sleep(duration)

        print(f"\nWhat {YOU[0]} received:")
        print(
            f"  {'participant':<20} {'audio frames':>12} {'video frames':>12} "
            f"{'size':>9}  own picture"
        )
        ok = True
        for remote, figures in you.stats()["received"].items():
            size = f"{figures['video_width']}x{figures['video_height']}"
            ident = "yes" if figures["video_ident_ok"] else "NO"
            ok = ok and bool(figures["video_ident_ok"]) and figures["audio_frames"] > 0
            print(
                f"  {remote:<20} {figures['audio_frames']:>12} {figures['video_frames']:>12} "
                f"{size:>9}  {ident}"
            )
        return 0 if ok else 1
    except JoinError as exc:
        print(f"siakdesk demo: could not join: {exc.message}", file=sys.stderr)
        return 1
    finally:
        for bot in bots:
            await bot.close()
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="siakdesk",
        description="SiakDesk conferencing. Options come from the configuration files "
        "(see --print-config) and may be overridden here.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="show every option's effective value and where it came from, then exit",
    )
    parser.add_argument(
        "--config-template",
        action="store_true",
        help="print a configuration file with every option at its default, then exit",
    )
    config.add_arguments(parser)
    commands = parser.add_subparsers(dest="command")
    demo = commands.add_parser("demo", help="a meeting with three simulated offices")
    demo.add_argument(
        "--duration",
        type=float,
        help="seconds in the meeting (default: until the window is closed; 10 headless)",
    )
    demo.add_argument(
        "--screenshot", type=Path, help="save a picture of the window here at the end"
    )
    demo.add_argument(
        "--headless",
        action="store_true",
        help="no window: print what the fourth participant received",
    )
    args = parser.parse_args(argv)

    if args.config_template:
        print(config.default_toml())
        return 0
    try:
        settings = config.load(config.command_line_values(args))
    except config.ConfigError as exc:
        print(f"siakdesk: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.print_config:
        print(config.format_settings(settings, config.locations()))
        return 0
    configure_logging(settings["log_level"])
    if args.command == "demo" and args.headless:
        return asyncio.run(run_demo(args.duration or 10.0))
    if args.command == "demo":
        from siakdesk.ui.demo import run_window_demo

        return run_window_demo(settings, args.duration, args.screenshot)
    from siakdesk.ui.application import run_app

    return run_app(settings)


if __name__ == "__main__":
    sys.exit(main())
