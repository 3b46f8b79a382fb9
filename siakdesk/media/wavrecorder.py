"""Writes received audio frames to a 48 kHz mono 16-bit WAV file."""

from __future__ import annotations

import wave
from pathlib import Path

import av

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
