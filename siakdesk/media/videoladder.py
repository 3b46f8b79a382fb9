"""The video ladder: from 640x360 at 15 fps down to 160x90 at 5 fps, then video off.

aiortc's VP8 encoder clamps its bitrate to 250 kbit/s at least
(``aiortc/codecs/vpx.py: MIN_BITRATE``) and rebuilds its codec, a keyframe,
whenever the REMB estimate moves by more than 10 %.  On a 256 kbit/s link that
is more than the whole link, and a keyframe every few seconds.

:class:`VideoLadder` chooses a rung from the uplink estimate
(:class:`siakdesk.media.estimate.LinkEstimate`, fed by the session from the
server's receiver reports) with hysteresis: audio's share comes off first;
down to the best rung that fits as soon as the estimate says so (it falls only
on real congestion), up one rung at a time once the next has fitted with a 25 %
margin for ``up_after`` seconds.  Going up is a probe: a rung that has to be
left again within 10 s doubles the wait before the next try of *that* rung
(up to 2 min), so a thin link is not hit every few seconds; a try of it that
holds 10 s (or a climb past it) brings its wait back to 5 s, and so do 30 s on
any rung with every report clear (under 2 % loss).  Staying on a rung says
nothing of the room above it: when 30 s on any rung reset every wait, the
benchmark's 3 % loss link, whose estimate grows through random loss, tried
480x270 every ~35 s, each a keyframe into a full queue and a second or two of
speech held back.  The clear reports are what tells a link that lost nothing
for half a minute (a link that was down again and again, say) from one that is
lossy and full.
"Hemat data" (data saver) caps it at 320x180.

:class:`LadderVp8Encoder` is aiortc's VP8 encoder run at the rung: it ignores
the REMB value aiortc gives it (kept for the record), scales and thins the
frames to the rung and encodes at the rung's bitrate, so the codec (and a
keyframe) changes only on a rung change, where the picture size changes and a
keyframe is needed anyway.  The top rung never scales a smaller camera up.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

import av
from aiortc.codecs.vpx import Vp8Encoder
from av.frame import Frame

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Rung:
    width: int
    height: int
    fps: int
    kbps: int

    @property
    def off(self) -> bool:
        return self.kbps == 0

    def __str__(self) -> str:
        return "video off" if self.off else f"{self.width}x{self.height}@{self.fps}"


LADDER = (
    Rung(640, 360, 15, 500),
    Rung(480, 270, 15, 300),
    Rung(320, 180, 12, 150),
    Rung(240, 136, 10, 90),
    Rung(160, 90, 5, 40),
    Rung(0, 0, 0, 0),
)
#: What audio keeps before video gets anything (Opus 24 kbit/s and its packet headers),
#: until the uplink tells the ladder what the Opus encoder really costs (``audio_kbps``).
AUDIO_SHARE_KBPS = 40
#: A rung left within this long after going up to it was a failed probe.
PROBE_FAILED_WITHIN_S = 10.0
PROBE_BACKOFF_MAX_S = 120.0
STABLE_AFTER_S = 30.0
#: The highest rung with "hemat data" on.
DATA_SAVER_TOP = 2


class VideoLadder:
    def __init__(
        self, data_saver: bool = False, up_after: float = 5.0, up_margin: float = 1.25
    ) -> None:
        self.top = DATA_SAVER_TOP if data_saver else 0
        self.index = self.top
        #: audio's share of the link, kbit/s on the wire (a copy of each packet on a
        #: lossy link nearly doubles it)
        self.audio_kbps: float = AUDIO_SHARE_KBPS
        self.base_up_after = up_after
        self.up_margin = up_margin
        #: the wait before trying each rung (index) again, where a try of it failed
        self._waits: dict[int, float] = {}
        self._unclear_at = float("-inf")
        self._room_since: float | None = None
        self._moved_up_at: float | None = None
        self._moved_at = 0.0
        self.changes = 0

    @property
    def rung(self) -> Rung:
        return LADDER[self.index]

    @property
    def up_after(self) -> float:
        """How long the rung above must fit before it is tried (its failed tries double it)."""
        return self.up_after_for(self.index - 1)

    def note_report(self, now: float, clear: bool) -> None:
        """A receiver report of the link came in; ``clear``: it says under 2 % loss."""
        if not clear:
            self._unclear_at = now

    def probing(self, now: float) -> bool:
        """The last move was a rung up, less than :data:`PROBE_FAILED_WITHIN_S` ago."""
        return self._moved_up_at is not None and now - self._moved_up_at < PROBE_FAILED_WITHIN_S

    def set_data_saver(self, on: bool) -> None:
        self.top = DATA_SAVER_TOP if on else 0
        self.index = max(self.index, self.top)

    def fitting(self, available_kbps: float) -> int:
        """The index of the best rung that fits ``available_kbps`` of video."""
        for index in range(self.top, len(LADDER)):
            if LADDER[index].kbps <= available_kbps:
                return index
        return len(LADDER) - 1

    def update(self, estimate_kbps: float | None, now: float) -> Rung:
        """The rung for an estimate of the link (kbit/s, all media); None: no estimate yet."""
        if estimate_kbps is None:
            return self.rung
        available = estimate_kbps - self.audio_kbps
        target = self.fitting(available)
        if target > self.index:  # worse: down at once (the estimate falls only on congestion)
            self._room_since = None
            if self._moved_up_at is not None and now - self._moved_up_at < PROBE_FAILED_WITHIN_S:
                failed = self.index  # the rung just tried did not hold
                self._waits[failed] = min(PROBE_BACKOFF_MAX_S, 2 * self.up_after_for(failed))
            self._move(target, now, estimate_kbps)
        elif self.index > self.top and available >= LADDER[self.index - 1].kbps * self.up_margin:
            if self._room_since is None:
                self._room_since = now
            if now - self._room_since >= self.up_after:
                self._waits.pop(self.index, None)  # this rung held: on to the next
                self._move(self.index - 1, now, estimate_kbps)
                self._moved_up_at = now
        else:
            self._room_since = None
        if self._moved_up_at is not None and now - self._moved_up_at >= PROBE_FAILED_WITHIN_S:
            self._waits.pop(self.index, None)  # the try held: the link had that room
            self._moved_up_at = None
        if now - max(self._moved_at, self._unclear_at) >= STABLE_AFTER_S:
            self._waits.clear()
        return self.rung

    def up_after_for(self, index: int) -> float:
        """How long rung ``index`` must fit before it is tried."""
        return self._waits.get(index, self.base_up_after)

    def _move(self, index: int, now: float, estimate_kbps: float) -> None:
        logger.info("video: %s -> %s (%.0f kbit/s)", self.rung, LADDER[index], estimate_kbps)
        self.index = index
        self.changes += 1
        self._moved_at = now
        self._moved_up_at = None
        self._room_since = None


class LadderVp8Encoder(Vp8Encoder):
    """aiortc's VP8 encoder, run at the ladder's rung (see the module's notes)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.ladder = VideoLadder()
        self.estimate_kbps: float | None = None
        self.remb_kbps: float | None = None
        self._clock = clock
        self._next_due: float | None = None
        self.frames_in = 0
        self.frames_encoded = 0

    # aiortc's sender sets this from each REMB: kept for the record, not followed
    @property
    def target_bitrate(self) -> int:
        return max(1, self.ladder.rung.kbps) * 1000

    @target_bitrate.setter
    def target_bitrate(self, bitrate: int) -> None:
        self.remb_kbps = bitrate / 1000

    def set_estimate(self, kbps: float) -> None:
        """The session's uplink estimate (called on the event loop; read when encoding)."""
        self.estimate_kbps = kbps

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        assert isinstance(frame, av.VideoFrame)
        self.frames_in += 1
        rung = self.ladder.update(self.estimate_kbps, self._clock())
        if rung.off:
            return [], 0
        base = frame.time_base
        seconds = float(frame.pts * base) if frame.pts is not None and base is not None else 0.0
        if self._next_due is not None and seconds < self._next_due - 0.002:
            return [], 0  # thinned to the rung's frame rate
        step = 1 / rung.fps
        due = seconds if self._next_due is None else self._next_due
        self._next_due = max(due + step, seconds - step)  # keeps the rate, never bunches up
        if frame.width > rung.width or frame.height > rung.height:
            scaled = frame.reformat(width=rung.width, height=rung.height, format="yuv420p")
            scaled.pts, scaled.time_base = frame.pts, frame.time_base
            frame = scaled
        self.frames_encoded += 1
        # aiortc sizes the rate-control buffer from its private copy of the target
        self._Vp8Encoder__target_bitrate = self.target_bitrate
        return super().encode(frame, force_keyframe)
