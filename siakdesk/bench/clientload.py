"""The desktop client's CPU and memory in a meeting: sending 640x360, showing four remote tiles.

The client is this process: the real window (offscreen), the real session, a synthetic
640x360 15 fps camera and a tone for the microphone, and a speaker that pulls mixed
audio every 20 ms on its own thread as a sound card would. The meeting server and the
four remote offices (``siakdesk-bot --no-decode``, 320x180 at 15 fps) are separate
processes, so their CPU is not counted. CPU is user + system time of this process
over the measured window; memory is its resident set at the start and end of it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from siakdesk.bench.processes import LISTENING, start_server, wait_for_line
from siakdesk.media.devices import AudioSink, SyntheticDevices
from siakdesk.media.synthetic import AUDIO_FRAME_SAMPLES

BIN = Path(sys.executable).parent


class ClockedSink(AudioSink):
    """Pulls 20 ms of mixed audio every 20 ms on a thread, as a sound card's callback does."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.pulled = 0

    def start(self, pull: Callable[[int], np.ndarray]) -> None:
        def run() -> None:
            next_at = time.monotonic()
            while not self._stop.is_set():
                pull(AUDIO_FRAME_SAMPLES)
                self.pulled += 1
                next_at += AUDIO_FRAME_SAMPLES / 48000
                self._stop.wait(max(0.0, next_at - time.monotonic()))

        self._thread = threading.Thread(target=run, name="clocked-sink", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


@dataclasses.dataclass
class ClientResult:
    seconds: float
    cpu_percent: float
    rss_start_mb: float
    rss_end_mb: float
    tiles: int
    shown_fps: list[float]
    sent_video: str


def run_client_load(duration: float = 60.0, warmup: float = 5.0) -> ClientResult:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import qasync
    from PySide6.QtWidgets import QApplication

    from siakdesk.core import config
    from siakdesk.ui.mainwindow import MainWindow

    server = start_server("siak")
    bots: list[subprocess.Popen[bytes]] = []
    app = QApplication.instance() or QApplication([])
    assert isinstance(app, QApplication)
    app.setQuitOnLastWindowClosed(False)
    result: dict[str, Any] = {}
    try:
        url = wait_for_line(server, LISTENING, 30).group(1)
        for name in ("Minas", "Kandis", "Kerinci Kanan", "Sungai Apit"):
            bots.append(
                subprocess.Popen(
                    [
                        str(BIN / "siakdesk-bot"),
                        "--server",
                        url,
                        "--name",
                        name,
                        "--no-decode",
                        "--duration",
                        str(duration + warmup + 30),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )

        async def main() -> None:
            settings = config.resolve(
                [config.Layer("bench", {"server_url": url, "display_name": "Kantor Bupati"})]
            )
            window = MainWindow(
                settings,
                SyntheticDevices("Kantor Bupati", video_size=(640, 360), speaker=ClockedSink()),
                remember=False,
            )
            window.show()
            try:
                if not await window.join(window.request_from_settings()):
                    raise RuntimeError(window.join_screen.error.text())
                view = window.meeting_view
                async with asyncio.timeout(60):
                    while len(view.tiles) < 4:  # noqa: ASYNC110 (the offices join by themselves)
                        await asyncio.sleep(0.2)
                await asyncio.sleep(warmup)
                me = psutil.Process()
                shown = {pid: t.frames_shown for pid, t in view.tiles.items()}
                cpu0, rss0, t0 = me.cpu_times(), me.memory_info().rss, time.monotonic()
                await asyncio.sleep(duration)
                cpu1, rss1, t1 = me.cpu_times(), me.memory_info().rss, time.monotonic()
                elapsed = t1 - t0
                result.update(
                    seconds=round(elapsed, 1),
                    cpu_percent=round(
                        100 * ((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)) / elapsed, 1
                    ),
                    rss_start_mb=round(rss0 / 2**20, 1),
                    rss_end_mb=round(rss1 / 2**20, 1),
                    tiles=len(view.tiles),
                    shown_fps=[
                        round((t.frames_shown - shown.get(pid, 0)) / elapsed, 1)
                        for pid, t in view.tiles.items()
                    ],
                    sent_video="640x360 at 15 fps",
                )
            finally:
                await window.leave()
                window.hide()

        qasync.run(main())
    finally:
        for bot in bots:
            bot.terminate()
        for bot in bots:
            bot.wait(timeout=30)
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        if server.stdout is not None:
            server.stdout.close()
    return ClientResult(**result)
