"""Synthetic media a receiver can attribute: a name card per participant, a tone per name.

The video shows the participant's name on a background colour derived from the
name, a moving bar (so the encoder has real work) and an identity stripe: 16
black or white cells at the bottom spelling a 16-bit code derived from the name.
:func:`frame_identity_matches` checks a *decoded* frame against a name, so a
test can prove that what a subscriber decoded really is that sender's stream.
"""

from __future__ import annotations

import asyncio
import colorsys
import fractions
import hashlib
import math
import time
from dataclasses import dataclass

import av
import cv2
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from siakdesk.media.resampling import AUDIO_RATE, MonoResampler

AUDIO_FRAME_SAMPLES = 960  # 20 ms
STRIPE_BITS = 16
#: Largest difference per colour channel still taken as the same colour after VP8.
COLOUR_TOLERANCE = 40


@dataclass(frozen=True)
class Identity:
    colour: tuple[int, int, int]  # RGB
    code: int  # STRIPE_BITS bits
    tone_hz: float


def identity_of(name: str) -> Identity:
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    hue = int.from_bytes(digest[0:2], "big") / 65536
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 0.8)
    code = int.from_bytes(digest[2:4], "big")
    tone = 300 + (int.from_bytes(digest[4:6], "big") % 600)
    return Identity((round(r * 255), round(g * 255), round(b * 255)), code, float(tone))


def _layout(width: int, height: int) -> tuple[slice, slice, int, int]:
    """Where things are: rows and columns of the colour sample, top of the stripe, cell width."""
    sample = (slice(height // 20, height // 4), slice(width // 50, width // 6))
    stripe_top = height - max(8, height // 8)
    return sample[0], sample[1], stripe_top, width // STRIPE_BITS


def render_card(name: str, width: int, height: int) -> np.ndarray:
    """The static part of ``name``'s video: colour, name, identity stripe (RGB, uint8)."""
    identity = identity_of(name)
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = identity.colour
    _rows, _cols, stripe_top, cell = _layout(width, height)
    for bit in range(STRIPE_BITS):
        on = (identity.code >> (STRIPE_BITS - 1 - bit)) & 1
        image[stripe_top:, bit * cell : (bit + 1) * cell] = 255 if on else 0
    scale = max(0.4, height / 360)
    thickness = max(1, round(2 * scale))
    (text_w, text_h), _ = cv2.getTextSize(name, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    origin = (max(0, (width - text_w) // 2), height // 2 + text_h // 2)
    cv2.putText(
        image,
        name,
        origin,
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (255, 255, 255),
        thickness,
        cv2.LINE_AA,
    )
    return image


def frame_identity_matches(image: np.ndarray, name: str) -> bool:
    """True when a decoded RGB picture carries ``name``'s colour and identity stripe."""
    identity = identity_of(name)
    height, width = image.shape[:2]
    rows, cols, stripe_top, cell = _layout(width, height)
    colour = np.median(image[rows, cols].reshape(-1, 3), axis=0)
    if bool(np.any(np.abs(colour - np.array(identity.colour)) > COLOUR_TOLERANCE)):
        return False
    middle = (stripe_top + height) // 2
    luma = image[middle, :, :].mean(axis=1)
    errors = 0
    for bit in range(STRIPE_BITS):
        centre = bit * cell + cell // 2
        on = bool(luma[centre] > 128)
        expected = bool((identity.code >> (STRIPE_BITS - 1 - bit)) & 1)
        errors += on != expected
    return errors <= 1


class _Pacer:
    """Releases media in real time: the frame with timestamp ``pts`` not before its moment."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._start: float | None = None

    async def wait(self, pts: int) -> None:
        now = time.monotonic()
        if self._start is None:
            self._start = now
        delay = self._start + pts / self.rate - now
        if delay > 0:
            await asyncio.sleep(delay)


#: Noise pictures cycled by a noisy synthetic camera.
NOISE_POOL = 16


class SyntheticVideoTrack(MediaStreamTrack):
    """``name``'s card with a moving bar, at ``fps`` frames a second.

    ``noise`` (0-64): sensor noise of that amplitude on every picture, as a webcam in
    a dim office gives.  The clean card costs VP8 almost nothing (~50 kbit/s at
    640x360); a noisy one uses what the encoder is allowed, so a benchmark of the
    video ladder sees what a camera would make it do.
    """

    kind = "video"

    def __init__(
        self, name: str, width: int = 320, height: int = 180, fps: int = 15, noise: int = 0
    ) -> None:
        super().__init__()
        if width < 64 or height < 48 or width % 2 or height % 2:
            raise ValueError("video size must be even and at least 64x48")
        if not 1 <= fps <= 60:
            raise ValueError("fps must be 1 to 60")
        if not 0 <= noise <= 64:
            raise ValueError("noise must be 0 to 64")
        self._noise = (
            np.random.default_rng(0)
            .integers(-noise, noise + 1, size=(NOISE_POOL, height, width, 1))
            .astype(np.int16)
            if noise
            else None
        )
        self._card = render_card(name, width, height)
        self._fps = fps
        self._time_base = fractions.Fraction(1, 90000)
        self._pacer = _Pacer(90000)
        self._index = 0

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        pts = self._index * 90000 // self._fps
        await self._pacer.wait(pts)
        image = self._card.copy()
        height, width = image.shape[:2]
        bar = width // 20
        x = (self._index * 4) % (width - bar)
        image[height // 3 : height * 2 // 3, x : x + bar] = 240
        if self._noise is not None:
            noisy = image + self._noise[self._index % NOISE_POOL]
            image = np.clip(noisy, 0, 255).astype(np.uint8)
        self._index += 1
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = pts
        frame.time_base = self._time_base
        return frame


class _AudioTrack(MediaStreamTrack):
    """Plays ``samples`` (mono int16 at 48 kHz) in 20 ms frames, looping."""

    kind = "audio"

    def __init__(self, samples: np.ndarray) -> None:
        super().__init__()
        if samples.size < AUDIO_FRAME_SAMPLES:
            raise ValueError("audio is shorter than one frame")
        self._samples = samples.astype(np.int16)
        self._position = 0
        self._pts = 0
        self._time_base = fractions.Fraction(1, AUDIO_RATE)
        self._pacer = _Pacer(AUDIO_RATE)
        #: ``time.monotonic()`` when sample 0 went out (sample n: ``started_at + n / 48000``)
        self.started_at: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        await self._pacer.wait(self._pts)
        if self.started_at is None:
            self.started_at = time.monotonic()
        end = self._position + AUDIO_FRAME_SAMPLES
        chunk = self._samples[self._position : end]
        if chunk.size < AUDIO_FRAME_SAMPLES:
            end = AUDIO_FRAME_SAMPLES - chunk.size
            chunk = np.concatenate([chunk, self._samples[:end]])
        self._position = end % self._samples.size
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = self._pts
        frame.time_base = self._time_base
        self._pts += AUDIO_FRAME_SAMPLES
        return frame


class ToneTrack(_AudioTrack):
    """``name``'s own tone (300-900 Hz), one second on a loop, at -12 dBFS."""

    def __init__(self, name: str) -> None:
        tone = identity_of(name).tone_hz
        t = np.arange(AUDIO_RATE) / AUDIO_RATE
        # whole cycles per second, so the loop joins without a click
        wave = np.sin(2 * math.pi * round(tone) * t) * 0.25 * 32767
        super().__init__(wave.astype(np.int16))


def load_audio(path: str) -> np.ndarray:
    """Decode any audio file to mono int16 at 48 kHz."""
    resampler = MonoResampler()
    chunks = []
    try:
        with av.open(path) as container:
            if not container.streams.audio:
                raise ValueError(f"{path} has no audio stream")
            for frame in container.decode(audio=0):
                chunks.append(resampler.samples(frame))
            chunks.append(resampler.samples(None))
    except av.FFmpegError as exc:
        raise ValueError(f"cannot read audio from {path}: {exc}") from None
    samples = np.concatenate(chunks)
    if not samples.size:
        raise ValueError(f"{path} holds no audio")
    return samples


class FileAudioTrack(_AudioTrack):
    """An audio file (WAV or anything FFmpeg reads), on a loop."""

    def __init__(self, path: str) -> None:
        super().__init__(load_audio(path))
