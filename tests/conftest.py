"""Shared fixtures: the real server on 127.0.0.1:0, real bots, and strictness.

Nothing of SiakDesk's own is faked here; the edge of the world (camera,
microphone) is the synthetic media the bots send.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from siakdesk.bot import Bot, BotConfig
from siakdesk.core import icepolicy
from siakdesk.core.meetingsession import ReconnectPolicy, SessionConfig
from siakdesk.core.signaling import ServerEndpoint
from siakdesk.server.app import SERVER, MeetingServer, app_factory
from siakdesk.server.config import RoomConfig, ServerConfig


class RunningServer:
    def __init__(self, runner: web.AppRunner, app: web.Application) -> None:
        self.runner = runner
        self.app = app
        host, port = runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    @property
    def meeting(self) -> MeetingServer:
        return self.app[SERVER]

    def endpoint(self) -> ServerEndpoint:
        return ServerEndpoint(self.url)


async def start_server(config: ServerConfig) -> RunningServer:
    app = app_factory(config)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    await site.start()
    return RunningServer(runner, app)


@pytest.fixture(autouse=True)
async def _loop_errors() -> AsyncIterator[None]:
    """An exception nobody retrieved from a task fails the test (as qasync's fixture does)."""
    errors: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    yield
    # let callbacks scheduled by closing peer connections run before judging
    await asyncio.sleep(0)
    loop.set_exception_handler(None)
    assert not errors, f"unhandled errors in the event loop: {errors}"


@pytest.fixture(autouse=True)
def _reset_ice_policy() -> Any:
    yield
    icepolicy.restrict_host_addresses(None)


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    running = await start_server(
        ServerConfig(port=0, rooms=(RoomConfig("siak", passcode="1234"), RoomConfig("open")))
    )
    yield running
    await running.runner.cleanup()


BotFactory = Callable[..., Awaitable[Bot]]


@pytest.fixture
async def make_bot(server: RunningServer) -> AsyncIterator[BotFactory]:
    """Start a bot in the server's ``siak`` room; every bot is closed after the test."""
    bots: list[Bot] = []

    async def make(name: str, **kwargs: Any) -> Bot:
        session = SessionConfig(
            endpoint=kwargs.pop("endpoint", server.endpoint()),
            room=kwargs.pop("room", "siak"),
            name=name,
            office=kwargs.pop("office", f"Kecamatan {name}"),
            passcode=kwargs.pop("passcode", "1234"),
            decode=kwargs.pop("decode", True),
            link=kwargs.pop("link", None),
            reconnect=kwargs.pop("reconnect", ReconnectPolicy()),
            media=kwargs.pop("media", "siakdesk"),
            data_saver=kwargs.pop("data_saver", False),
        )
        bot = Bot(BotConfig(session=session, **kwargs))
        bots.append(bot)
        await bot.start()
        return bot

    yield make
    for bot in bots:
        try:
            await asyncio.wait_for(asyncio.shield(bot.close()), 30)
        except TimeoutError:  # say what it waits for, instead of hanging the run
            for task in asyncio.all_tasks():
                task.print_stack(limit=12, file=sys.stderr)
            raise
