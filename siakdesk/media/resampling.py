"""Audio in the one format SiakDesk handles internally: mono, int16, 48 kHz."""

from __future__ import annotations

import av
import numpy as np

AUDIO_RATE = 48000


class MonoResampler:
    """Turns frames of any layout and rate into mono int16 samples at 48 kHz.

    One per stream: the resampler keeps state between frames.
    """

    def __init__(self) -> None:
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=AUDIO_RATE)

    def samples(self, frame: av.AudioFrame | None) -> np.ndarray:
        """The samples ``frame`` yields (``None`` flushes what the resampler holds)."""
        parts = [out.to_ndarray().reshape(-1) for out in self._resampler.resample(frame)]
        if not parts:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(parts).astype(np.int16, copy=False)
