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
