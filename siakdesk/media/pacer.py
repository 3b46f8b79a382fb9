"""The office's video goes out paced, so its bursts queue here and not ahead of its audio.

What it fixes, measured on the benchmark's 3g link (256 kbit/s, 3 % loss):
after a keyframe, aiortc's VP8 settings (its temporal denoiser,
``noise-sensitivity 4``) make the next picture 6-8 times the size of a
normal one (9.6 KB at 320x180, 150 kbit/s, from a noisy camera), and aiortc's
sender hands every packet of a picture to the network at once.  On a 256
kbit/s link that is 0.3 s of queue, and the office's audio waits in it: the
regent's playout had to grow its delay by 300 ms in the middle of a sentence
(each time, a speech loop scored 2.9-3.0 where the others scored 4.1).
Keyframes come on every rung change and whenever the server loses a video
packet for good; a camera makes the same bursts when someone walks past it.

libwebrtc's answer is a pacer: media goes out at a pacing rate from a queue
in the sender, and audio is not queued behind video.  :class:`VideoPacer` is
that, in little: it wraps the send path of the peer connection's (bundled)
DTLS transport; the video sender's media packets wait for tokens of a bucket
filled at :attr:`rate_kbps`, its retransmissions take their bytes from the
bucket without waiting (see :meth:`VideoPacer.role`), and audio, RTCP and
probe padding go at once (a probe measures the link as it is,
see :mod:`siakdesk.media.probe`).  Waiting is the sender's own ``await`` of
its send, so a burst holds the video sender's loop back (its next frames wait
behind it), never the event loop or the audio.

The rate is :data:`PACE_FACTOR` times the video rung's bitrate (read from the
uplink's ladder at each packet, so a rung change paces its keyframe at once):
enough that the encoder's average drains quickly, little enough that a burst
on a link with room for only the rung and audio spills over by a few kbit/s,
not by the whole picture.  The
bucket holds :data:`BURST_S` of the rate (at least :data:`BURST_MIN_BYTES`),
so an ordinary picture goes out in one piece.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc.rtp import is_rtcp

from siakdesk.media.probe import is_padding_only
from siakdesk.media.videoladder import VideoLadder

logger = logging.getLogger(__name__)

#: Video goes out at up to this many times its rung's bitrate.
PACE_FACTOR = 1.5
#: The bucket's depth, in seconds of the rate, and at least this many bytes.
BURST_S = 0.02
BURST_MIN_BYTES = 3000
#: A video packet never waits longer than this (a rate set too low must not stall video).
MAX_WAIT_S = 1.0
#: Bytes each packet costs on the wire besides what aiortc hands over (SRTP tag, UDP, IP).
WIRE_OVERHEAD = 10 + 8 + 20


def _ssrc(data: bytes) -> int | None:
    return struct.unpack_from("!I", data, 8)[0] if len(data) >= 12 else None


class VideoPacer:
    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        #: the video ladder whose rung sets the rate (the uplink's); without one, the
        #: rate is :attr:`fixed_kbps` (None: video goes out as it comes)
        self.ladder: VideoLadder | None = None
        self.fixed_kbps: float | None = None
        self._media_ssrc: int | None = None
        self._rtx_ssrc: int | None = None
        self._tokens = float(BURST_MIN_BYTES)
        self._filled_at = clock()
        self._lock = asyncio.Lock()
        #: video packets that had to wait, and the longest wait (seconds)
        self.delayed = 0
        self.longest_wait_s = 0.0

    @property
    def rate_kbps(self) -> float | None:
        """What video may go out at now: :data:`PACE_FACTOR` x the rung's bitrate."""
        if self.ladder is None:
            return self.fixed_kbps
        video = self.ladder.rung.kbps
        return PACE_FACTOR * video if video else None

    @property
    def depth(self) -> float:
        rate = self.rate_kbps or 0.0
        return max(float(BURST_MIN_BYTES), rate * 125 * BURST_S)

    def role(self, data: bytes) -> str | None:
        """What ``data`` (an RTP or RTCP packet, unencrypted) is to the pacer: "media"
        (the video sender's packets: they wait their turn), "retransmission" (its RTX
        packets: they go at once but take their bytes from the bucket), or None (audio,
        RTCP, probe padding, or nothing paced now: they go at once).

        Retransmissions do not wait because aiortc sends them from inside its RTCP
        handling, which runs in the transport's one receive loop: a retransmission that
        waited held up everything the office receives (measured on the drop benchmark:
        round trips of 3-6 s, the estimate cut 4-8 s late)."""
        if self.rate_kbps is None or is_rtcp(data):
            return None
        ssrc = _ssrc(data)
        if ssrc == self._media_ssrc:
            return "media"
        if ssrc == self._rtx_ssrc and not is_padding_only(data):
            return "retransmission"
        return None

    def _fill(self, now: float) -> None:
        rate = (self.rate_kbps or 0.0) * 125  # bytes a second
        self._tokens = min(self.depth, self._tokens + (now - self._filled_at) * rate)
        self._filled_at = now

    async def wait(self, size: int) -> None:
        """Return when a packet of ``size`` bytes (on the wire) may go."""
        start = self._clock()
        async with self._lock:  # one at a time, in the order they came
            self._fill(self._clock())
            while self._tokens < size and (rate := self.rate_kbps):
                wait = (size - self._tokens) / (rate * 125)
                if self._clock() - start + wait > MAX_WAIT_S:
                    break
                await self._sleep(wait)
                self._fill(self._clock())
            waited = self._clock() - start
            if waited > 0.001:
                self.delayed += 1
                self.longest_wait_s = max(self.longest_wait_s, waited)
            self._tokens -= size

    def take_longest_wait(self) -> float:
        """The longest wait of a video packet since the last call (seconds)."""
        longest, self.longest_wait_s = self.longest_wait_s, 0.0
        return longest

    def install(self, transport: Any, media_ssrc: int, rtx_ssrc: int | None) -> bool:
        """Pace what ``transport`` (an aiortc ``RTCDtlsTransport``) sends for the video
        sender with these SSRCs.  False where this aiortc has no ``_send_rtp`` to wrap
        (video then goes out unpaced)."""
        send = getattr(transport, "_send_rtp", None)
        if not callable(send):
            logger.warning("this aiortc has no RTP send hook on its DTLS transport: no pacing")
            return False
        self._media_ssrc, self._rtx_ssrc = media_ssrc, rtx_ssrc

        async def send_rtp(data: bytes) -> None:
            role = self.role(data)
            if role == "media":
                await self.wait(len(data) + WIRE_OVERHEAD)
            elif role == "retransmission":
                self._fill(self._clock())
                self._tokens -= len(data) + WIRE_OVERHEAD
            await send(data)

        transport._send_rtp = send_rtp
        return True
