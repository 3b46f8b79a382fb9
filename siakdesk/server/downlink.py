"""Per subscriber: what its downlink can carry, and which videos it gets.

A weak office must not drag down what everyone else receives.  The server
forwards, it never re-encodes, and each publisher sends one layer, so what the
server can choose per subscriber is *which* videos to forward: Jitsi's last-N.

Every :data:`STEER_INTERVAL` the room asks each subscriber's :class:`Downlink`
to read what the server sent on that subscriber's slots (``outbound-rtp``) and
the subscriber's receiver reports of them (loss, RTT), into the same
:class:`~siakdesk.media.estimate.LinkEstimate` the offices use for their uplink.
:func:`plan_videos` then lets through, in order of priority, the videos that
fit in what is left after *all* the audio (audio is never paused): first whoever
spoke last (the active speaker), then the others by how recently they spoke,
then by when they joined.  The rest are paused: the slot stays assigned (the
office shows the participant, with "video dijeda"), no frames are sent, and a
keyframe is asked for when it resumes.

Audio to a thin downlink (estimated under 80 kbit/s, back over 120, the
thresholds at which an office's own encoder goes to 60 ms packets) is joined
into 60 ms packets (:class:`~siakdesk.media.opuspacket.OpusPacker`): a 20 ms
packet of 24 kbit/s Opus costs 49 kbit/s on the wire, three joined cost 32.

Hysteresis, as the office's ladder: a video is paused as soon as it no longer
fits; one more is let through only when it has fitted with a 25 % margin for
:data:`ADD_AFTER_S`, and a video that has to be paused again within 10 s of
being added doubles that wait (up to 2 min).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

from siakdesk.media.estimate import LinkEstimate, SenderReports
from siakdesk.media.opusprofile import THIN_LINK_KBPS, WIDE_LINK_KBPS

STEER_INTERVAL = 0.5
ADD_AFTER_S = 5.0
ADD_MARGIN = 1.25
FAILED_WITHIN_S = 10.0
BACKOFF_MAX_S = 120.0
#: What a video is counted as at least (kbit/s), before its rate is known.
MIN_VIDEO_KBPS = 60.0


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A publisher's video as one subscriber could get it."""

    publisher_id: str
    kbps: float
    #: when the publisher last spoke (monotonic), ``None``: not since joining
    spoke_at: float | None
    joined: int


def priority(candidates: Sequence[Candidate]) -> list[Candidate]:
    """Active speaker first, then by how recently they spoke, then by joining order."""
    return sorted(
        candidates,
        key=lambda c: (c.spoke_at is None, -(c.spoke_at or 0.0), c.joined),
    )


def plan_videos(
    budget_kbps: float, candidates: Sequence[Candidate], current: set[str], add_allowed: bool
) -> tuple[set[str], str | None]:
    """Which videos fit ``budget_kbps`` (kbit/s after audio), in priority order.

    A video forwarded now (``current``) stays while it fits.  Another one is
    taken when it fits in what the current ones use (a new active speaker takes
    the place of a quieter one: no more bandwidth), or, one per call, when
    ``add_allowed`` (the hysteresis said so) and it fits with the margin.
    Returns the chosen set and the first candidate left out (for the hysteresis).
    """
    cost = {c.publisher_id: max(MIN_VIDEO_KBPS, c.kbps) for c in candidates}
    in_use = sum(cost[p] for p in current if p in cost)
    chosen: set[str] = set()
    used = 0.0
    next_up: str | None = None
    probed = False
    for candidate in priority(candidates):
        pid, kbps = candidate.publisher_id, cost[candidate.publisher_id]
        if pid in current:
            take = used + kbps <= budget_kbps
        else:
            swap = used + kbps <= min(budget_kbps, in_use)
            probe = add_allowed and not probed and used + kbps * ADD_MARGIN <= budget_kbps
            take = swap or probe
            probed = probed or (probe and not swap)
        if not take and next_up is None:
            next_up = pid
        if take:
            chosen.add(pid)
            used += kbps
    return chosen, next_up


class Downlink:
    """One subscriber's downlink estimate and the videos it is sent."""

    def __init__(self) -> None:
        # start with everything (the way last-N does), take away when the link says so
        self.estimate = LinkEstimate(start_kbps=2500.0)
        self.forwarded: set[str] = set()
        self.paused: set[str] = set()
        self.add_after = ADD_AFTER_S
        self._room_since: float | None = None
        self._added_at: float | None = None
        self._reports = SenderReports()
        self.loss = 0.0
        #: audio goes in 60 ms packets (see the module's docstring)
        self.thin = False

    async def measure(
        self, senders: Sequence[Any], now: float | None = None, busy_s: float = 0.0
    ) -> bool:
        """Read the slot senders' statistics; True when a new receiver report came in.

        ``busy_s``: the server's own recent loop lag (:class:`~siakdesk.media.estimate.LoopLag`).
        """
        now = time.monotonic() if now is None else now
        reading = await self._reports.read(senders, now)
        if reading is None:
            return False
        self.loss = reading.loss
        probing = self._added_at is not None and now - self._added_at < FAILED_WITHIN_S
        self.estimate.update(
            now, reading.sent_kbps, reading.loss, reading.rtt, busy_s, probing=probing
        )
        if self.estimate.kbps < THIN_LINK_KBPS:
            self.thin = True
        elif self.estimate.kbps > WIDE_LINK_KBPS:
            self.thin = False
        return True

    def steer(self, audio_kbps: float, candidates: Sequence[Candidate], now: float) -> set[str]:
        """The publishers whose video this subscriber gets from now on."""
        everyone = {c.publisher_id for c in candidates}
        # a publisher is forwarded unless it was paused: a newcomer, or one back from a
        # reconnect, starts forwarded (the way a join does) and is paused if it does not fit
        current = everyone - self.paused
        budget = self.estimate.kbps - audio_kbps
        waited = self._room_since is not None and now - self._room_since >= self.add_after
        chosen, next_up = plan_videos(budget, candidates, current, add_allowed=waited)
        if chosen < current and self._added_at is not None:
            if now - self._added_at < FAILED_WITHIN_S:
                self.add_after = min(BACKOFF_MAX_S, self.add_after * 2)
            self._added_at = None
        if chosen - current:
            self._added_at = now
            self._room_since = None
        if next_up is not None:
            fits = _fits_with_margin(budget, candidates, chosen, next_up)
            if fits and self._room_since is None:
                self._room_since = now
            elif not fits:
                self._room_since = None
        if self._added_at is not None and now - self._added_at > 30:
            self.add_after = ADD_AFTER_S
        self.forwarded = chosen
        self.paused = everyone - chosen
        return chosen


def _fits_with_margin(
    budget: float, candidates: Sequence[Candidate], chosen: set[str], next_up: str
) -> bool:
    used = sum(max(MIN_VIDEO_KBPS, c.kbps) for c in candidates if c.publisher_id in chosen)
    cost = next(max(MIN_VIDEO_KBPS, c.kbps) for c in candidates if c.publisher_id == next_up)
    return used + cost * ADD_MARGIN <= budget
