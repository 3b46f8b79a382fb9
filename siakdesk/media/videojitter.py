"""aiortc's video jitter buffer, with a lost packet given up on after a while.

aiortc's receiver reassembles video frames in a ``JitterBuffer(capacity=512)``
that hands a frame on only when every packet before it is there.  A packet
that is lost, and whose NACK or retransmission is lost too (likely on a link
that loses a few percent each way), holds every later frame back until 512
more packets have come: measured on the benchmark's 256 kbit/s, 3 % loss
link, the regent saw no picture from the far office for 30 s while it sent
240x136 at 10 fps (some 20 packets a second).

:class:`HoleSkippingJitterBuffer` gives a missing packet :data:`HOLE_TIMEOUT_S`
(time for a NACK and its retransmission on a slow link), then drops what is
before it (every older hole with it) and the rest of the broken frame, asks
for a keyframe (aiortc's receiver sends a PLI when ``add`` says so), and
passes no frame on until a keyframe comes: the frames in between refer to the
lost one and would decode to a smeared picture.  While it waits, it asks again every
:data:`PLI_REPEAT_S` (the keyframe can be lost too).

A seam of aiortc 1.16 (the receiver's private ``__jitter_buffer``), guarded like
:mod:`siakdesk.media.encodedtap`: :func:`install` raises if it moved.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from aiortc import RTCRtpReceiver
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.utils import uint16_add

from siakdesk.media.vp8 import is_vp8_keyframe

logger = logging.getLogger(__name__)

#: How long a missing packet is waited for (a NACK and the retransmission, on a
#: link with 300 ms of round trip and a queue).
HOLE_TIMEOUT_S = 0.6
#: While waiting for a keyframe after a hole, ask again this often.
PLI_REPEAT_S = 1.0
CAPACITY = 512


class HoleSkippingJitterBuffer(JitterBuffer):
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(CAPACITY, is_video=True)
        self._clock = clock
        #: each missing packet and when it was first missed
        self._missing: dict[int, float] = {}
        self._awaiting_keyframe = False
        self._last_pli = float("-inf")
        self._newest: int | None = None
        self.holes_skipped = 0

    def add(self, packet: Any) -> tuple[bool, JitterFrame | None]:
        pli, frame = super().add(packet)
        now = self._clock()
        seq = packet.sequence_number
        self._missing.pop(seq, None)
        if self._newest is None:
            self._newest = seq
        elif 0 < uint16_add(seq, -self._newest) < 0x8000:
            gap = uint16_add(seq, -self._newest)
            if gap <= CAPACITY:
                for step in range(1, gap):
                    self._missing.setdefault(uint16_add(self._newest, step), now)
            self._newest = seq
        expired = self._expired(now)
        if expired is not None and frame is None:
            self._skip_past(expired)
            if not self._awaiting_keyframe:
                logger.info("video: a packet lost for good; waiting for a keyframe")
            self._awaiting_keyframe = True
            self.holes_skipped += 1
            frame = self._remove_frame(seq)
        if self._awaiting_keyframe:
            # the buffer hands on one frame per packet: drop every one before the keyframe
            while frame is not None and not is_vp8_keyframe(frame.data):
                frame = self._remove_frame(seq)
            if frame is not None:
                self._awaiting_keyframe = False
            elif now - self._last_pli >= PLI_REPEAT_S:
                pli = True
        if pli:
            self._last_pli = now
        return pli, frame

    def _slots(self) -> list[Any]:
        assert self._origin is not None
        return [self._packets[(self._origin + i) % self._capacity] for i in range(self._capacity)]

    def _expired(self, now: float) -> int | None:
        """How far into the buffer the last packet missed for :data:`HOLE_TIMEOUT_S` sits
        (None: no such packet).  Packets the buffer has already gone past are forgotten
        (one that comes after all is taken off the list in :meth:`add`)."""
        if self._origin is None or not self._missing:
            self._missing.clear()
            return None
        last = None
        for missed, since in list(self._missing.items()):
            offset = uint16_add(missed, -self._origin)
            if offset >= self._capacity:
                del self._missing[missed]  # behind the buffer
            elif now - since >= HOLE_TIMEOUT_S and (last is None or offset > last):
                last = offset
        return last

    def _skip_past(self, gap: int) -> None:
        """Drop everything up to the first packet after the missing one ``gap`` packets
        into the buffer, then up to the start of the next frame (the rest of a frame with a
        hole in it is no use).  All the holes before it go too: each would otherwise wait
        its own timeout (measured in the namespace lab after a start that flooded a 256
        kbit/s link: 70 holes, one given up every 0.65 s, a keyframe asked for each time,
        for 16 s)."""
        slots = self._slots()
        after = gap + 1
        while after < len(slots) and slots[after] is None:
            after += 1
        before = next((slots[i] for i in range(gap - 1, -1, -1) if slots[i] is not None), None)
        broken = before.timestamp if before is not None else None
        while after < len(slots) and slots[after] is not None and slots[after].timestamp == broken:
            after += 1
        while after < len(slots) and slots[after] is None:
            after += 1
        self.remove(min(after, self._capacity))


def install(receiver: RTCRtpReceiver) -> HoleSkippingJitterBuffer:
    """Give ``receiver`` (video) a :class:`HoleSkippingJitterBuffer`; before packets flow."""
    attribute = "_RTCRtpReceiver__jitter_buffer"
    current = getattr(receiver, attribute, None)
    if not isinstance(current, JitterBuffer) or not current._is_video:
        raise RuntimeError("this aiortc version has no video jitter buffer to replace")
    buffer = HoleSkippingJitterBuffer()
    setattr(receiver, attribute, buffer)
    return buffer
