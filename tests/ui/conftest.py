"""GUI tests: the real window, offscreen, in a qasync event loop, against the real server.

Fake only the edge of the world: the camera and microphone are synthetic tracks and the
speaker is a sink nobody listens to, each a subclass of the real device classes.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import numpy as np
import pytest
import qasync
from PySide6.QtWidgets import QApplication

from siakdesk.bot import Bot, BotConfig
from siakdesk.core import config
from siakdesk.core.link import LinkTap
from siakdesk.core.meetingsession import SessionConfig
from siakdesk.core.signaling import ServerEndpoint
from siakdesk.media.devices import AudioSink, DeviceProvider, SyntheticDevices
from siakdesk.server.config import RoomConfig, ServerConfig
from siakdesk.ui.i18n import install_translator
from siakdesk.ui.mainwindow import MainWindow
from tests.conftest import RunningServer, start_server


class SilentSink(AudioSink):
    """A speaker nobody hears: pulls nothing by itself; a test may call ``pull``."""

    def __init__(self) -> None:
        self.pull: Callable[[int], np.ndarray] | None = None

    def start(self, pull: Callable[[int], np.ndarray]) -> None:
        self.pull = pull

    def stop(self) -> None:
        self.pull = None


class FakeDevices(SyntheticDevices):
    """The window's devices in GUI tests: synthetic, and a speaker nobody hears."""

    def __init__(
        self, name: str = "Bupati Siak", camera: bool = True, microphone: bool = True
    ) -> None:
        super().__init__(name, camera, microphone, speaker=SilentSink())


class UiMeeting:
    """The real server on 127.0.0.1:0, bots, and windows; everything closed on exit."""

    def __init__(self) -> None:
        self.server: RunningServer | None = None
        self.bots: list[Bot] = []
        self.windows: list[MainWindow] = []

    async def __aenter__(self) -> UiMeeting:
        self.server = await start_server(
            ServerConfig(
                port=0,
                rooms=(RoomConfig("siak", passcode="1234", host_passcode="bupati"),),
                heartbeat_timeout=2.0,
            )
        )
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    async def bot(self, name: str, link: LinkTap | None = None, **options: Any) -> Bot:
        session = SessionConfig(
            ServerEndpoint(self.url), "siak", name, f"Kecamatan {name}", "1234", link=link
        )
        bot = Bot(BotConfig(session=session, **options))
        self.bots.append(bot)
        await bot.start()
        return bot

    def window(self, devices: DeviceProvider | None = None, **options: Any) -> MainWindow:
        values = {"server_url": self.url, "passcode": "1234", "display_name": "Bupati Siak"}
        values |= options
        settings = config.resolve([config.Layer("test", values)])
        window = MainWindow(settings, devices or FakeDevices(), remember=False)
        window.show()
        self.windows.append(window)
        return window

    async def __aexit__(self, *exc_info: object) -> None:
        for window in self.windows:
            await window.leave()
            window.hide()
            window.deleteLater()
        for bot in self.bots:
            await bot.close()
        if self.server is not None:
            await self.server.runner.cleanup()


@pytest.fixture(scope="session")
def qt_loop(qapp: QApplication) -> Iterator[qasync.QEventLoop]:
    """One qasync loop for every GUI test; closed (with its executor threads) at the end."""
    # the app ends when a test says so, not when a window closes
    qapp.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(qapp)
    yield loop
    loop.close()


@pytest.fixture
def run_ui(qt_loop: qasync.QEventLoop) -> Iterator[Callable[[Coroutine[Any, Any, None]], None]]:
    """Run a GUI test's coroutine in the qasync loop (Qt events and asyncio tasks both run
    there); any unretrieved task error fails the test."""
    loop = qt_loop
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    asyncio.set_event_loop(loop)

    def run(coroutine: Coroutine[Any, Any, None]) -> None:
        loop.run_until_complete(asyncio.wait_for(coroutine, 120))

    yield run
    loop.run_until_complete(asyncio.sleep(0))
    loop.set_exception_handler(None)
    asyncio.set_event_loop(None)
    assert not errors, f"unhandled errors in the event loop: {errors}"


@pytest.fixture
def indonesian(qapp: QApplication) -> Any:
    translator = install_translator(qapp, "id")
    yield
    if translator is not None:
        qapp.removeTranslator(translator)
