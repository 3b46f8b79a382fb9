"""``siakdesk demo`` with the window: an embedded server, three simulated offices, and you.

On a machine without a display it runs offscreen for a few seconds, saves a
screenshot of the window and says where.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from siakdesk.core import config
from siakdesk.demo import YOU, DemoMeeting


def has_display() -> bool:
    if sys.platform != "linux":
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run_window_demo(
    settings: config.Settings, duration: float | None, screenshot: Path | None
) -> int:
    offscreen = not has_display()
    if offscreen:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        duration = duration or 6.0
        screenshot = screenshot or Path("siakdesk-demo.png").resolve()

    # imported here: QT_QPA_PLATFORM must be set before Qt starts
    import qasync
    from PySide6.QtWidgets import QApplication

    from siakdesk.media.devices import DeviceProvider
    from siakdesk.ui.i18n import install_translator
    from siakdesk.ui.mainwindow import MainWindow
    from siakdesk.ui.qtlog import route_qt_messages

    route_qt_messages()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    install_translator(app, settings["language"])
    app.setQuitOnLastWindowClosed(False)  # the demo ends when its meeting is cleaned up
    status = 0

    async def main() -> None:
        nonlocal status
        async with DemoMeeting() as meeting:
            demo_settings = config.resolve(
                [
                    config.Layer("settings", dict(settings.values)),
                    config.Layer(
                        "demo",
                        {
                            "server_url": meeting.url,
                            "room": meeting.ROOM,
                            "passcode": meeting.PASSCODE,
                            "host_passcode": meeting.HOST_PASSCODE,
                            "display_name": YOU[0],
                            "office": YOU[1],
                        },
                    ),
                ]
            )
            window = MainWindow(demo_settings, DeviceProvider(), remember=False)
            try:
                closed = asyncio.Event()
                window.closed.connect(closed.set)
                window.show()
                if not await window.join(window.request_from_settings()):
                    print(f"siakdesk demo: {window.join_screen.error.text()}", file=sys.stderr)
                    status = 1
                    return
                if window.agenda is not None:
                    # the regent runs the roll call: opening done, Minas reporting
                    await window.agenda.use_template()
                    await window.agenda.move("kec-minas", -7)
                    await window.agenda.next_item()
                    await window.agenda.next_item()
                await meeting.chatter()
                if duration is None:
                    await closed.wait()
                    return
                await asyncio.sleep(duration)
                if screenshot is not None:
                    window.grab().save(str(screenshot))
                    print(f"screenshot of the meeting window: {screenshot}")
            finally:
                await window.leave()
                window.hide()

    qasync.run(main())
    return status
