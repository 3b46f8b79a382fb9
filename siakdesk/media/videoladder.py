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
any rung with every report clear (under 2 % loss) and no probe failed.  Staying on a rung says
nothing of the room above it: when 30 s on any rung reset every wait, the
benchmark's 3 % loss link, whose estimate grows through random loss, tried
480x270 every ~35 s, each a keyframe into a full queue and a second or two of
speech held back.  The clear reports are what tells a link that lost nothing
for half a minute (a link that was down again and again, say) from one that is
lossy and full.
"Hemat data" (data saver) caps it at 320x180.

Where the uplink can probe (:mod:`siakdesk.media.probe`; ``can_probe``), a
rung up is asked for first (:attr:`VideoLadder.probe_wanted`, the total kbit/s
the rung and audio need) and taken only once a probe has passed
(:meth:`VideoLadder.probe_done`): padding on top of the media tells whether the
link carries that much, without a keyframe.  A failed probe counts as a
failed try of that rung, of those above it, and of those between that need more
than arrived during it (their waits grow, as below).  No answer
within :data:`PROBE_ANSWER_S` is a failed probe where the server has answered
one before (nothing of it got through), and a plain try, as without probes,
where it never has (a server that does not measure probes).

How soon a failed probe is tried again depends on whether the link has carried
that much lately (a probe that passed with as much in the last
:data:`CARRIED_MEMORY_S`, or a rung held for :data:`PROBE_FAILED_WITHIN_S` before
the estimate took it down).  If it has, the link dropped and should come back:
the wait doubles but stays within :data:`CARRIED_WAIT_MAX_S`, so a link back
from a drop is found within seconds (it is probed for whatever the estimate
says, see :meth:`VideoLadder._room`), and a probe that passes clears the waits
the drop's failed probes left on the rungs above it the link carried, so the
follow-up probes climb to the top in seconds.  If it never has, the link is thin: the
wait is a minute, then doubles up to five (:data:`THIN_WAIT_FIRST_S`,
:data:`THIN_WAIT_MAX_S`), since every such probe overfills the link for a moment
and holds the office's speech up behind its padding: each failed probe on the
benchmark's 3g link is a 250-300 ms queue, a jump of the regent's playout delay,
and the half-loop of speech it falls in scored 2.6-2.9 where the others scored
4.1-4.2.  (Before: 480x270 probes every 10-40 s; then waits of 20, 80, 120 s,
still a failed probe in every minute of the benchmark.)  What that costs: a link
that grows past what it measured finds its better rung a minute or more later,
video only; the office's voice is what the meeting is for.

A first connection (nothing known of the link) starts at 320x180
(:data:`START_INDEX`) and probes for the top rung at once: the top if it
passes, else the rung the server's measurement allows.  It used to start at
the top, and on a thin link that was a second or two of a 640x360 keyframe and
its stream in a full queue, then a fall to 160x90 and a slow climb back.

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
#: A probe that passed shows for this long what the link can carry (see the notes).
CARRIED_MEMORY_S = 300.0
#: The longest wait before probing again for a rung the link has carried lately.
CARRIED_WAIT_MAX_S = 10.0
#: The wait after a failed probe for more than the link carried lately, doubling with
#: each failed probe up to THIN_WAIT_MAX_S (see the notes).
THIN_WAIT_FIRST_S = 60.0
THIN_WAIT_MAX_S = 300.0
#: A failed probe counts against the rungs below the one probed that need more than
#: this many times what arrived during it.
MEASURED_MARGIN = 1.1
STABLE_AFTER_S = 30.0
#: Where a first connection starts while its probe for the top rung is out (320x180).
START_INDEX = 2
#: A probe's answer is waited for this long before the rung is tried without one.
PROBE_ANSWER_S = 4.0
#: After a probe passed, for this long the next one may come after
#: :data:`FOLLOW_UP_WAIT_S` of room, for up to :data:`FOLLOW_UP_FACTOR` x what arrived
#: (libwebrtc probes again at twice the rate after a probe that passed).  1 s, not 2:
#: of a drop's return found in 15.1 s, 3.9 s went from the pass to the follow-up probe
#: (2 s of this wait, a pause of speech, a poll).
FOLLOW_UP_S = 10.0
FOLLOW_UP_WAIT_S = 1.0
FOLLOW_UP_FACTOR = 2.0
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
        #: rungs whose wait a failed probe for more than the link ever carried set: only
        #: a probe (or a try) that holds brings it back, not 30 s of clear reports
        self._thin: set[int] = set()
        self._unclear_at = float("-inf")
        #: when a probe last failed: the link said no, which is not "stable" either
        self._failed_at = float("-inf")
        self._room_since: float | None = None
        self._moved_up_at: float | None = None
        #: when the rung last changed (or the ladder first ran): the start of "stable"
        self._moved_at: float | None = None
        self.changes = 0
        #: the uplink can probe before a rung up (see the module's notes)
        self.can_probe = False
        #: total kbit/s (video and audio) a probe should show the link carries; None: no
        #: probe wanted
        self.probe_wanted: float | None = None
        self._probe_asked_at = 0.0
        self._probe_passed = False
        self._probe_for = self.index
        self._starting = False
        #: when a probe last passed, and what arrived during it
        self._passed_at: float | None = None
        self._passed_kbps = 0.0
        #: (when, kbit/s arrived) of the probes that passed, for CARRIED_MEMORY_S
        self._carried: list[tuple[float, float]] = []
        #: how many probes were asked for (the uplink sends one per ask)
        self.probe_asks = 0
        self.probes_passed = 0
        self.probes_failed = 0

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

    def start_low(self) -> None:
        """A first connection, nothing known of the link: start at :data:`START_INDEX`
        and probe for the top rung at once (see the module's notes)."""
        if self.index < START_INDEX:
            self.index = START_INDEX
            self._starting = True

    def update(self, estimate_kbps: float | None, now: float) -> Rung:
        """The rung for an estimate of the link (kbit/s, all media); None: no estimate yet."""
        if self._moved_at is None:
            self._moved_at = now
        if self._starting:
            if self.can_probe and self._probed(now, self.top):
                self._starting = False
                if self._probe_passed:
                    self._move(self.top, now, estimate_kbps)
                    return self.rung
            elif not self.can_probe and estimate_kbps is not None:
                # no probes: the first estimate decides, as it did before probes
                self._starting = False
                best = self.fitting(estimate_kbps - self.audio_kbps)
                if best < self.index:
                    self._move(best, now, estimate_kbps)
        if estimate_kbps is None:
            return self.rung
        available = estimate_kbps - self.audio_kbps
        target = self.fitting(available)
        if target > self.index:  # worse: down at once (the estimate falls only on congestion)
            self._room_since = None
            self._starting = False
            if self._moved_up_at is not None and now - self._moved_up_at < PROBE_FAILED_WITHIN_S:
                self._back_off(self.index)  # the rung just tried did not hold
            self._move(target, now, estimate_kbps)
        elif self._starting:
            pass  # the start's probe decides
        elif self.index > self.top and (room := self._room(available, now)) >= (
            LADDER[self.index - 1].kbps * self.up_margin
        ):
            if self._room_since is None:
                self._room_since = now
            goal = self._goal(room, now - self._room_since, self.following_up(now))
            if goal is not None and self._probed(now, goal):
                self._forget_wait(self.index)  # this rung held: on to the next
                # a probe that passed shows its rung fits; a plain try is one rung up
                up = self._probe_for if self._probe_passed else self.index - 1
                self._move(up, now, estimate_kbps)
                self._moved_up_at = now
        else:
            self._room_since = None
            self.probe_wanted = None
        if self._moved_up_at is not None and now - self._moved_up_at >= PROBE_FAILED_WITHIN_S:
            self._forget_wait(self.index)  # the try held: the link had that room
            self._moved_up_at = None
        if now - max(self._moved_at, self._unclear_at, self._failed_at) >= STABLE_AFTER_S:
            # but not the waits of probes for more than the link ever carried: a thin
            # link with every report clear (a 128 kbit/s office) was probed every 5-15 s
            self._waits = {i: w for i, w in self._waits.items() if i in self._thin}
        return self.rung

    def following_up(self, now: float) -> bool:
        """A probe passed lately: the link may have much more room (it came back)."""
        return self._passed_at is not None and now - self._passed_at < FOLLOW_UP_S

    def _room(self, available: float, now: float) -> float:
        """What there is room for going up (kbit/s of video): what the estimate leaves,
        or, following up a probe that passed, up to twice what arrived then (probes show
        it; the estimate only grows 8 % a second, and a link back at 2 Mbit/s after a
        drop took 18-23 s to be climbed rung by rung, as the estimate grew).  Where
        probes can tell, a link that carried the rung above lately has room for it: a
        probe for it goes out as soon as its wait allows, whatever the estimate (which
        a failed probe brought down to the drop's capacity, and which then took 7 s
        to grow back before each probe)."""
        room = available
        if self.following_up(now):
            room = max(room, FOLLOW_UP_FACTOR * self._passed_kbps - self.audio_kbps)
        if self.can_probe and self.index > self.top:
            above = LADDER[self.index - 1].kbps * self.up_margin
            if self.carried_lately(now) >= above + self.audio_kbps:
                room = max(room, above)
        return room

    def _goal(self, available: float, room_for: float, quick: bool = False) -> int | None:
        """The rung to go up to after ``room_for`` seconds with ``available`` kbit/s for
        video: the one above, once it has waited its wait (:data:`FOLLOW_UP_WAIT_S`
        after a probe passed, ``quick``); with probes, the highest that has (a probe
        shows the link carries it before the ladder goes there, so a link back from a
        drop climbs in one step, not one rung per 5 s)."""
        above = self.index - 1
        wait = self.up_after_for(above)
        if quick and above not in self._waits:
            wait = min(wait, FOLLOW_UP_WAIT_S)
        if room_for < wait:
            return None
        goal = above
        # past rungs that have not failed lately: where one did, the next probe is for
        # it alone (a probe for more overfills the link the more)
        while self.can_probe and goal > self.top and goal not in self._waits:
            higher = goal - 1
            fits = available >= LADDER[higher].kbps * self.up_margin
            if not fits or (room_for < self.up_after_for(higher) and not quick):
                break
            goal = higher
        return goal

    def _probed(self, now: float, index: int) -> bool:
        """Whether rung ``index`` may be tried now: a probe for it passed, none can be
        sent, or one was asked for and no answer came (a plain try, as without probes)."""
        if not self.can_probe or self._probe_passed:
            return True
        if self.probe_wanted is not None and index < self._probe_for:
            self.probe_wanted = None  # more room since it was asked: ask for more
        if self.probe_wanted is None:
            self.probe_wanted = LADDER[index].kbps * self.up_margin + self.audio_kbps
            self._probe_for = index
            self._probe_asked_at = now
            self.probe_asks += 1
            return False
        if now - self._probe_asked_at >= PROBE_ANSWER_S:
            if self.probes_passed or self.probes_failed:
                # the server answers probes: none of this one's padding got through a
                # link already full (measured on 64 kbit/s), so the probe failed
                self.probe_done(now, 0.0, passed=False)
                return False
            logger.info("video: no answer to the probe for %s; the estimate decides", LADDER[index])
            self.probe_wanted = None
            return True
        return False

    def probe_sent(self, now: float) -> None:
        """The uplink sent the probe asked for (it waits for a pause in the office's
        speech first): its answer is waited for from now."""
        if self.probe_wanted is not None:
            self._probe_asked_at = now

    def probe_done(self, now: float, received_kbps: float, passed: bool) -> bool:
        """The server saw ``received_kbps`` arrive during the probe asked for, and the
        uplink says whether it ``passed`` (:func:`siakdesk.media.probe.passed`).  True:
        it passed, and its rung is taken at the next frame."""
        wanted = self.probe_wanted
        if wanted is None:
            return False  # no longer wanted (the room went): nothing to decide
        logger.info(
            "video: probe for %s %s: %.0f of %.0f kbit/s arrived",
            LADDER[self._probe_for],
            "passed" if passed else "failed",
            received_kbps,
            wanted,
        )
        if passed:
            self._probe_passed = True
            self.probes_passed += 1
            self._passed_at, self._passed_kbps = now, received_kbps
            self._carried.append((now, received_kbps))
            # the link is back from a drop: the rungs above that it carried lately may
            # be followed up at once, not after the waits their probes in the drop left
            carried = self.carried_lately(now)
            for index in range(self.top, self._probe_for):
                if LADDER[index].kbps + self.audio_kbps <= carried:
                    self._forget_wait(index)
        else:
            # a link that does not carry this rung does not carry those above it either,
            # nor those below it that need more than arrived (the start's probe for the
            # top measured a 256 kbit/s link: 480x270 needs 449, and was tried next)
            carried = self.carried_lately(now)
            for failed in range(self.top, self.index):
                need = LADDER[failed].kbps + self.audio_kbps
                if failed > self._probe_for and need <= MEASURED_MARGIN * received_kbps:
                    continue
                if need <= carried:
                    self._back_off(failed, cap=CARRIED_WAIT_MAX_S)
                else:
                    self._back_off(failed, floor=THIN_WAIT_FIRST_S, cap=THIN_WAIT_MAX_S)
                    self._thin.add(failed)
            self.probe_wanted = None
            self._room_since = None
            self._starting = False
            self._failed_at = now
            self.probes_failed += 1
        return passed

    def carried_lately(self, now: float) -> float:
        """The most a probe that passed in the last :data:`CARRIED_MEMORY_S` saw arrive
        (kbit/s, all media); 0 if none did."""
        self._carried = [(at, kbps) for at, kbps in self._carried if now - at < CARRIED_MEMORY_S]
        return max((kbps for _, kbps in self._carried), default=0.0)

    def _forget_wait(self, index: int) -> None:
        self._waits.pop(index, None)
        self._thin.discard(index)

    def _back_off(self, index: int, floor: float = 0.0, cap: float = PROBE_BACKOFF_MAX_S) -> None:
        """A try (or a probe) of rung ``index`` failed: its wait doubles, to at least
        ``floor`` and at most ``cap`` (2 min)."""
        self._waits[index] = min(cap, max(floor, 2.0 * self.up_after_for(index)))

    def up_after_for(self, index: int) -> float:
        """How long rung ``index`` must fit before it is tried."""
        return self._waits.get(index, self.base_up_after)

    def _move(self, index: int, now: float, estimate_kbps: float | None) -> None:
        known = "no estimate yet" if estimate_kbps is None else f"{estimate_kbps:.0f} kbit/s"
        logger.info("video: %s -> %s (%s)", self.rung, LADDER[index], known)
        held = self._moved_at is not None and now - self._moved_at >= PROBE_FAILED_WITHIN_S
        if index > self.index and held and not self.rung.off:
            # the link carried the rung it leaves for a while, as a passed probe shows
            # (a 3g link taken down from 320x180 by a burst of loss is probed for it again
            # in seconds, not after a thin link's minute)
            self._carried.append((now, self.rung.kbps + self.audio_kbps))
        self.index = index
        self.changes += 1
        self._moved_at = now
        self._moved_up_at = None
        self._room_since = None
        self.probe_wanted = None
        self._probe_passed = False


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
        #: a keyframe was asked for on a frame that was not encoded (thinned, video off)
        self._keyframe_owed = False

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
        if self.frames_in == 1 and self.estimate_kbps is None:
            self.ladder.start_low()  # nothing known of the link yet: probe before the top
        rung = self.ladder.update(self.estimate_kbps, self._clock())
        # aiortc's sender forgets a keyframe request once it has handed it to us: one
        # made on a frame we skip is kept for the next one we encode
        force_keyframe = self._keyframe_owed = self._keyframe_owed or force_keyframe
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
        self._keyframe_owed = False
        return super().encode(frame, force_keyframe)
