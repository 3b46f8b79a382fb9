"""Room mode: full screen on the chosen display, and the PC kept awake during a meeting."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Coroutine
from typing import Any

from PySide6.QtWidgets import QApplication

from siakdesk.ui.application import show_full_screen_on
from siakdesk.ui.keepawake import KeepAwake
from tests.ui.conftest import UiMeeting

RunUi = Callable[[Coroutine[Any, Any, None]], None]


class SleepInhibitor(KeepAwake):
    """The real class with a stand-in command (CI has no systemd-logind to ask)."""

    def _command(self) -> list[str] | None:
        return ["sleep", "infinity"]


def test_keep_awake_holds_its_lock_while_acquired() -> None:
    lock = SleepInhibitor()
    assert lock.acquire() and lock.active
    child = lock._child
    assert child is not None and child.poll() is None
    assert lock.acquire()  # idempotent
    lock.release()
    assert not lock.active and child.poll() is not None
    lock.release()  # idempotent


def test_the_linux_command_asks_logind_for_idle_and_sleep() -> None:
    command = KeepAwake()._command()
    if command is None:  # no systemd-inhibit on this machine
        return
    assert "--what=idle:sleep" in command and "--mode=block" in command
    subprocess.run([command[0], "--version"], capture_output=True, check=False)


def test_meeting_keeps_the_pc_awake_until_leaving(run_ui: RunUi) -> None:
    async def body() -> None:
        async with UiMeeting() as meeting:
            window = meeting.window(room_mode=True)
            window.keep_awake = SleepInhibitor()
            assert await window.join(window.request_from_settings())
            assert window.keep_awake.active
            await window.leave()
            assert not window.keep_awake.active

    run_ui(body())


def test_room_mode_opens_full_screen_on_the_chosen_display(
    qapp: QApplication, run_ui: RunUi
) -> None:
    async def body() -> None:
        async with UiMeeting() as meeting:
            window = meeting.window(room_mode=True)
            screens = qapp.screens()
            # a display that is not there (the projector is off): the primary screen
            show_full_screen_on(window, qapp, display=len(screens) + 3)
            assert window.isFullScreen()
            assert window.screen() is qapp.primaryScreen()

    run_ui(body())
