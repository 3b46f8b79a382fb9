"""The demo meeting without a window: ``siakdesk demo --headless``.

An embedded server, three simulated kecamatan offices and a fourth participant
(headless), printing what that fourth participant received. The window demo
(:mod:`siakdesk.ui.demo`) uses the same offices.
"""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web

from siakdesk import __version__
from siakdesk.bot import Bot, BotConfig
from siakdesk.core.events import ParticipantJoined, ParticipantLeft, SessionEvent
from siakdesk.core.meetingsession import JoinError, SessionConfig
from siakdesk.core.signaling import ServerEndpoint
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
