"""A remote participant's decoded audio or video, as one track per participant and kind.

The peer connection has a fixed set of receive slots (see
:mod:`siakdesk.core.protocol`); the session reads every slot and hands each
frame to the :class:`RemoteTrack` of whoever the server says is in that slot.
Consumers (the bot, the desktop UI) just ``await track.recv()``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

from aiortc import MediaStreamTrack
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError
from av.audio.frame import AudioFrame
from av.frame import Frame

from siakdesk.core.protocol import ParticipantInfo
from siakdesk.media.vp8 import is_vp8_keyframe, vp8_keyframe_size

#: Frames kept for a consumer that does not keep up (1 s of audio, a few pictures).
BUFFER_FRAMES = {"audio": 50, "video": 4}
OPUS_CLOCK = 48000
OPUS_MAX_PACKET = 120 * OPUS_CLOCK // 1000


class RemoteTrack(MediaStreamTrack):
    def __init__(self, kind: str, participant: ParticipantInfo) -> None:
        super().__init__()
        self.kind = kind
        self.participant = participant
        self._frames: deque[Frame] = deque(maxlen=BUFFER_FRAMES[kind])
        self._ready = asyncio.Event()
        self.frames_received = 0
        #: audio only: seconds of sound received (a frame is 20 ms, or 60 ms on a thin link)
        self.seconds_received = 0.0
        self.frames_dropped = 0
        self.first_frame_at: float | None = None
        self.last_frame_at: float | None = None
        #: picture size read from VP8 keyframes, when frames are counted but not decoded
        self.encoded_size: tuple[int, int] | None = None
        self._last_timestamp: int | None = None
        #: video the server does not forward now: this office's link has no room for it
        self.paused = False

    def _arrived(self) -> None:
        self.frames_received += 1
        self.last_frame_at = time.monotonic()
        if self.first_frame_at is None:
            self.first_frame_at = self.last_frame_at

    def feed(self, frame: Frame) -> None:
        """Called by the session for every decoded frame of this participant."""
        if self.readyState != "live":
            return
        if len(self._frames) == self._frames.maxlen:
            self.frames_dropped += 1
        self._frames.append(frame)
        if isinstance(frame, AudioFrame) and frame.sample_rate:
            self.seconds_received += frame.samples / frame.sample_rate
        self._arrived()
        self._ready.set()

    def count_encoded(self, frame: JitterFrame) -> None:
        """Called instead of :meth:`feed` when the session does not decode (load tests)."""
        if self.readyState != "live":
            return
        self._arrived()
        if self.kind == "audio":
            # Opus's RTP clock runs at 48 kHz; one packet holds at most 120 ms
            last, self._last_timestamp = self._last_timestamp, frame.timestamp
            gap = 960 if last is None else (frame.timestamp - last) % 2**32
            self.seconds_received += min(gap, OPUS_MAX_PACKET) / OPUS_CLOCK
        if self.kind == "video" and is_vp8_keyframe(frame.data):
            self.encoded_size = vp8_keyframe_size(frame.data)

    async def recv(self) -> Frame:
        while not self._frames:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        return self._frames.popleft()

    def stop(self) -> None:
        super().stop()
        self._ready.set()
