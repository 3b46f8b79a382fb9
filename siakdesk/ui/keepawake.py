"""Keep the PC and its screen awake while a meeting runs.

A meeting-room PC that goes to sleep in the middle of the regent's meeting drops
the whole room; a staff PC that blanks its screen hides the agenda.  Conferencing
apps ask the OS not to, for as long as a meeting runs:

* Windows: ``SetThreadExecutionState(ES_CONTINUOUS | ES_SYSTEM_REQUIRED |
  ES_DISPLAY_REQUIRED)`` from the GUI thread, cleared on release;
* Linux: ``systemd-inhibit --what=idle:sleep`` holding a lock while a child
  process lives (nothing happens where systemd-logind is absent);
* macOS: ``caffeinate -d -i``.

If the PC sleeps anyway (a closed laptop lid, a power cut), the session notices
the wake and reconnects at once (:mod:`siakdesk.core.meetingsession`).
"""

from __future__ import annotations

import ctypes
import logging
import shutil
import subprocess
import sys

logger = logging.getLogger(__name__)

ES_CONTINUOUS = 0x80000000
ES_SYSTEM_REQUIRED = 0x00000001
ES_DISPLAY_REQUIRED = 0x00000002


class KeepAwake:
    """``acquire()`` when a meeting starts, ``release()`` when it ends; both idempotent."""

    def __init__(self, reason: str = "SiakDesk meeting in progress") -> None:
        self.reason = reason
        self.active = False
        self._child: subprocess.Popen[bytes] | None = None

    def acquire(self) -> bool:
        """True if the OS was asked (and agreed, where it says)."""
        if self.active:
            return True
        if sys.platform == "win32":
            flags = ES_CONTINUOUS | ES_SYSTEM_REQUIRED | ES_DISPLAY_REQUIRED
            self.active = bool(ctypes.windll.kernel32.SetThreadExecutionState(flags))  # type: ignore[attr-defined]
        else:
            command = self._command()
            if command is None:
                logger.info("cannot keep the PC awake here: no systemd-inhibit or caffeinate")
                return False
            try:
                self._child = subprocess.Popen(
                    command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
            except OSError as exc:
                logger.info("cannot keep the PC awake: %s", exc)
                return False
            self.active = True
        return self.active

    def _command(self) -> list[str] | None:
        if sys.platform == "darwin" and shutil.which("caffeinate"):
            return ["caffeinate", "-d", "-i"]
        inhibit = shutil.which("systemd-inhibit")
        sleeper = shutil.which("sleep")
        if inhibit and sleeper:
            return [
                inhibit,
                "--what=idle:sleep",
                "--who=SiakDesk",
                f"--why={self.reason}",
                "--mode=block",
                sleeper,
                "infinity",
            ]
        return None

    def release(self) -> None:
        if not self.active:
            return
        self.active = False
        if sys.platform == "win32":
            ctypes.windll.kernel32.SetThreadExecutionState(ES_CONTINUOUS)  # type: ignore[attr-defined]
        elif self._child is not None:
            self._child.terminate()
            try:
                self._child.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._child.kill()
                self._child.wait()
            self._child = None
