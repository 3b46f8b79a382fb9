"""Small real media made on the fly for tests (no recordings in the repository)."""

from __future__ import annotations

import fractions

import av
import numpy as np


def vp8_frames(count: int, width: int = 320, height: int = 180) -> list[bytes]:
    """Real VP8 frames from libvpx: a keyframe, then inter frames."""
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height = width, height
    codec.pix_fmt = "yuv420p"
    codec.time_base = fractions.Fraction(1, 15)
    codec.gop_size = 1000
    codec.options = {"deadline": "realtime", "lag-in-frames": "0"}
    frames: list[bytes] = []
    for i in range(count):
        image = np.full((height, width, 3), (i * 7) % 255, dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = i
        frames.extend(bytes(p) for p in codec.encode(frame))
    return frames


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    """The strongest frequency in ``samples`` (mono), in Hz."""
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[int(np.argmax(spectrum))])


def write_tone_wav(path: str, frequency: float, rate: int = 16000, seconds: float = 2.0) -> None:
    """A mono 16-bit WAV file holding a sine tone."""
    import wave

    t = np.arange(int(rate * seconds)) / rate
    data = (np.sin(2 * np.pi * frequency * t) * 12000).astype(np.int16)
    with wave.open(path, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(data.tobytes())
