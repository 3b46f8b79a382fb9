"""libopus's decoder through ctypes: in-band FEC and packet loss concealment.

FFmpeg's ``libopus`` decoder (all PyAV offers) decodes a packet and nothing
else: it cannot decode the forward error correction (LBRR) a packet carries for
the one before it, and it cannot conceal a packet that never came.  libopus
itself can (``opus_decode`` with ``decode_fec=1``, or with no data for PLC), and
PyAV's wheels ship libopus as a shared library of its own.  This module loads
that library (or the system's ``libopus``) and wraps the four calls needed.

:func:`load` returns ``None`` when no libopus can be found; the playout buffer
then decodes with PyAV and conceals by fading the last frame out, and says so
in the log once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import glob
import logging
import os
from pathlib import Path

import av
import numpy as np

logger = logging.getLogger(__name__)

SAMPLE_RATE = 48000
#: The longest Opus packet is 120 ms.
MAX_FRAME_SAMPLES = SAMPLE_RATE * 120 // 1000
OPUS_OK = 0


def _candidates() -> list[str]:
    found = []
    wheel_libs = Path(av.__file__).resolve().parent.parent / "av.libs"
    for pattern in ("libopus*.so*", "libopus*.dylib", "opus*.dll", "libopus*.dll"):
        found.extend(sorted(glob.glob(os.fspath(wheel_libs / pattern))))
    system = ctypes.util.find_library("opus")
    if system:
        found.append(system)
    return found


@functools.cache
def load() -> ctypes.CDLL | None:
    """libopus, or None when neither PyAV's wheel nor the system has it."""
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        if not hasattr(lib, "opus_decode"):
            continue
        lib.opus_decoder_create.restype = ctypes.c_void_p
        lib.opus_decoder_create.argtypes = [
            ctypes.c_int32,
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_int),
        ]
        lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
        lib.opus_decode.restype = ctypes.c_int
        lib.opus_decode.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_int32,
            ctypes.POINTER(ctypes.c_int16),
            ctypes.c_int,
            ctypes.c_int,
        ]
        logger.debug("libopus loaded from %s", path)
        return lib
    logger.warning("libopus not found: received audio is concealed without Opus FEC and PLC")
    return None


class OpusError(ValueError):
    """A packet libopus cannot decode."""


class OpusDecoder:
    """A mono 48 kHz libopus decoder (one per received stream)."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self._lib = lib
        error = ctypes.c_int(0)
        handle = lib.opus_decoder_create(SAMPLE_RATE, 1, ctypes.byref(error))
        if error.value != OPUS_OK or not handle:
            raise RuntimeError(f"opus_decoder_create failed ({error.value})")
        self._handle: int | None = handle
        self._pcm = (ctypes.c_int16 * MAX_FRAME_SAMPLES)()

    def _run(self, packet: bytes | None, samples: int, fec: bool) -> np.ndarray:
        if self._handle is None:
            raise RuntimeError("decoder closed")
        samples = min(samples, MAX_FRAME_SAMPLES)
        got = self._lib.opus_decode(
            self._handle, packet, len(packet) if packet else 0, self._pcm, samples, int(fec)
        )
        if got < 0:
            raise OpusError(f"opus_decode failed ({got})")
        return np.ctypeslib.as_array(self._pcm)[:got].copy()

    def decode(self, packet: bytes) -> np.ndarray:
        return self._run(packet, MAX_FRAME_SAMPLES, fec=False)

    def recover(self, next_packet: bytes, samples: int) -> np.ndarray:
        """The lost ``samples`` before ``next_packet``, from the FEC it carries
        (libopus falls back to PLC when it carries none)."""
        return self._run(next_packet, samples, fec=True)

    def conceal(self, samples: int) -> np.ndarray:
        """``samples`` of packet loss concealment (fades out over a long gap)."""
        return self._run(None, samples, fec=False)

    def close(self) -> None:
        if self._handle is not None:
            self._lib.opus_decoder_destroy(self._handle)
            self._handle = None

    def __del__(self) -> None:
        self.close()
