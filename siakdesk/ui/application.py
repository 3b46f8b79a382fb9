"""Starting the desktop app: one QApplication, one qasync event loop, one window."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import qasync
from PySide6.QtWidgets import QApplication

from siakdesk.core.config import Settings
from siakdesk.media.devices import DeviceProvider
from siakdesk.ui.i18n import install_translator
from siakdesk.ui.mainwindow import MainWindow
from siakdesk.ui.qtlog import route_qt_messages


def run_app(
    settings: Settings,
    devices: DeviceProvider | None = None,
    after_start: Callable[[MainWindow], Coroutine[Any, Any, None]] | None = None,
) -> int:
    """Show the window (joining at once when configured) until it is closed."""
    route_qt_messages()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("SiakDesk")
    install_translator(app, settings["language"])

    # the window says when it has released everything; only then does the loop end
    app.setQuitOnLastWindowClosed(False)

    async def main() -> None:
        closed = asyncio.Event()
        window = MainWindow(
            settings,
            devices
            or DeviceProvider(settings["camera"], settings["microphone"], settings["speaker"]),
        )
        window.closed.connect(closed.set)
        if settings["room_mode"]:
            show_full_screen_on(window, app, settings["display"])
        else:
            window.show()
        if window.configured:
            await window.join(window.request_from_settings())
        if after_start is not None:
            await after_start(window)
            window.close()
        await closed.wait()

    qasync.run(main())
    return 0


def show_full_screen_on(window: MainWindow, app: QApplication, display: int) -> None:
    """Full screen on the chosen display (a meeting room's big screen); the primary if
    there is no such display."""
    screens = app.screens()
    primary = app.primaryScreen()
    others = [s for s in screens if s is not primary]
    ordered = [primary, *others]
    screen = ordered[display] if 0 <= display < len(ordered) else primary
    window.setScreen(screen)
    window.move(screen.geometry().topLeft())
    window.showFullScreen()
