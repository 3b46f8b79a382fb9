"""Received audio to 48 kHz mono 16-bit WAV files: frame by frame, or as a speaker would play it."""

from __future__ import annotations

import threading
import time
import wave
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

from siakdesk.media.devices import AudioSink
from siakdesk.media.resampling import AUDIO_RATE, MonoResampler

RATE = AUDIO_RATE


class WavRecorder:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._resampler = MonoResampler()
        self._file: wave.Wave_write | None = wave.open(str(path), "wb")  # noqa: SIM115 (closed in close())
        self._file.setnchannels(1)
        self._file.setsampwidth(2)
        self._file.setframerate(RATE)
        self.samples = 0

    def write(self, frame: av.AudioFrame) -> None:
        if self._file is None:
            return
        samples = self._resampler.samples(frame)
        self._file.writeframes(samples.tobytes())
        self.samples += samples.size

    def close(self) -> None:
        """Finish the file; idempotent."""
        if self._file is not None:
            self._file.close()
            self._file = None


class WavSpeaker(AudioSink):
    """A speaker that is a WAV file: pulls 20 ms of the mix every 20 ms of real time.

    What a person at the PC would hear, with the playout and the mixer in the path,
    for the benchmark's speech quality and one-way delay.  ``started_at`` is the
    ``time.monotonic()`` of the file's first sample (the clock is system-wide, so
    another process on the same machine can compare its own send times to it).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.started_at: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, pull: Callable[[int], np.ndarray]) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(pull,), daemon=True)
        self._thread.start()

    def _run(self, pull: Callable[[int], np.ndarray]) -> None:
        block = RATE // 50
        with wave.open(str(self.path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(RATE)
            self.started_at = due = time.monotonic()
            while not self._stop.is_set():
                out.writeframes(np.asarray(pull(block), dtype=np.int16).tobytes())
                due += block / RATE
                delay = due - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
