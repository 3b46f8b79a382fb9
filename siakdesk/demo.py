"""The demo meeting without a window: ``siakdesk demo --headless``.

An embedded server, three simulated kecamatan offices and a fourth participant
(headless), printing what that fourth participant received. The window demo
(:mod:`siakdesk.ui.demo`) uses the same offices.
"""

from __future__ import annotations

import asyncio
import sys
import uuid

from aiohttp import web

from siakdesk import __version__
from siakdesk.bot import Bot, BotConfig
from siakdesk.core.events import ParticipantJoined, ParticipantLeft, SessionEvent
from siakdesk.core.meetingsession import JoinError, SessionConfig
from siakdesk.core.protocol import ChatSend
from siakdesk.core.signaling import ServerEndpoint
from siakdesk.server.app import app_factory
from siakdesk.server.config import RoomConfig, ServerConfig

DEMO_OFFICES = [
    ("Camat Minas", "Kecamatan Minas"),
    ("Camat Kandis", "Kecamatan Kandis"),
    ("Camat Sungai Apit", "Kecamatan Sungai Apit"),
]
YOU = ("Bupati Siak", "Kantor Bupati Siak")


class DemoMeeting:
    """The embedded server on a free loopback port, with the three offices already in it.

    ``async with DemoMeeting() as meeting``; every bot in ``meeting.bots`` and the server
    are closed on exit.
    """

    ROOM = "siak"
    PASSCODE = "1234"
    HOST_PASSCODE = "bupati"
    #: what the offices say in the chat when the meeting starts
    GREETINGS = (
        "Selamat pagi, Pak Bupati. Kecamatan Minas hadir.",
        "Kandis hadir, Pak. Sinyal agak lemah hari ini.",
        "Sungai Apit siap melapor.",
    )

    def __init__(self) -> None:
        room = RoomConfig(self.ROOM, passcode=self.PASSCODE, host_passcode=self.HOST_PASSCODE)
        config = ServerConfig(port=0, rooms=(room,))
        self._runner = web.AppRunner(app_factory(config), access_log=None)
        self.bots: list[Bot] = []
        self.url = ""

    def bot_config(self, name: str, office: str) -> BotConfig:
        endpoint = ServerEndpoint(self.url)
        return BotConfig(SessionConfig(endpoint, self.ROOM, name, office, passcode=self.PASSCODE))

    async def __aenter__(self) -> DemoMeeting:
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, "127.0.0.1", 0).start()
            host, port = self._runner.addresses[0][:2]
            self.url = f"http://{host}:{port}"
            print(
                f"SiakDesk {__version__} demo: meeting server on {self.url}, "
                f"room '{self.ROOM}', passcode {self.PASSCODE}"
            )
            for name, office in DEMO_OFFICES:
                bot = Bot(self.bot_config(name, office))
                self.bots.append(bot)
                await bot.start()
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def chatter(self) -> None:
        """Each office greets the meeting in the chat."""
        for bot, text in zip(self.bots, self.GREETINGS, strict=False):
            await bot.session.send(ChatSend(id=uuid.uuid4().hex, text=text))

    async def __aexit__(self, *exc_info: object) -> None:
        for bot in self.bots:
            await bot.close()
        await self._runner.cleanup()


async def run_demo(duration: float) -> int:
    try:
        async with DemoMeeting() as meeting:
            you = Bot(meeting.bot_config(*YOU))

            def on_event(event: SessionEvent) -> None:
                if isinstance(event, ParticipantJoined):
                    print(f"  + {event.participant.name} ({event.participant.office}) joined")
                elif isinstance(event, ParticipantLeft):
                    print(f"  - {event.participant.name} left ({event.reason})")

            you.session.add_listener(on_event)
            meeting.bots.append(you)
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
