"""How much a hop can carry, from what its receiver reports: loss, round-trip time, rate.

Used on both hops: the office estimates its uplink to the server (from the
server's RTCP receiver reports of our streams) and the server estimates each
subscriber's downlink (from that subscriber's receiver reports of the slots it
is sent).  Same signals, same rules:

* **congested** when the receiver reports more than 10 % loss in this report
  and in the median of the last three (two in a row, or a link so full that
  its reports alternate between light and heavy loss), or, in two reports in a
  row, the round-trip time has grown 150 ms over the lowest of the last
  30 s and is not falling (one report is enough in the first three; a queue is
  building in front of a thin link, as ``tc tbf`` or a 3G cell does before it
  drops; a queue that drains after a cut is not congestion any more, and the
  estimate holds while it drains): the estimate falls at once to 85 % of what
  got through, ``sent x (1 - loss)``, and does not grow for 2 s.  Loss is
  counted over the packets the reports cover, 20 at least
  (:attr:`Reading.loss`): one lost packet of a 5-packet report is no 20 % loss.
  "Sent" is the most we sent over the last 4 s: a report covers what was sent
  a while before it came, and a flood's reports come late (measured on the
  benchmark's 256 kbit/s link before this: a right first cut was followed by
  two more on the flood's late reports, down to 37 kbit/s);
* **clear** (loss under 2 %, no queue): it grows 8 % a second, as GCC's loss
  controller does, up to ``max_kbps``;
* between the two (2-10 % loss) it holds while the round-trip time is up (a
  link filling up), and grows as when clear while it is within 50 ms of its
  lowest: loss with no queue is a lossy radio, not a full link (GCC's loss
  controller holds there for good: measured on the benchmark's 3 % loss
  link, an estimate cut at the start never got back over 220 kbit/s);
* **a probe**: for a few seconds after the ladder has gone a rung up (or the
  server has let one more video through), the caller says so (``probing``) and
  one congested report is enough, as at the start.  A rung up doubles the rate
  into a link that may not have it: measured on the benchmark's 3g link, the
  median-of-three rule let a failed probe flood the link for 3.5 s, most of a
  second of it after the first report of 38 % loss;
* after reports stopped for 3.5 s (an outage, a reconnect) it holds for 2.5 s:
  the loss the first reports carry is the outage's, not the link's;
* while the ladder's probe (:mod:`siakdesk.media.probe`) overfills the link on
  purpose, and for 2 s after, it holds too (:meth:`LinkEstimate.settle`); a
  failed probe's answer, what the server saw arrive, is the new estimate
  (:meth:`LinkEstimate.measured`), and a passed one's is its floor
  (:meth:`LinkEstimate.carried`).

The round-trip time aiortc measures includes the time the report waited for
our own event loop: a busy loop (a server forwarding to many, an office PC
encoding on two cores) reads as a queue on every link at once.  A measured
loop hold-up (:class:`LoopLag`, the worst lateness of a 100 ms timer over
the last 3 s) is therefore added to the 150 ms before a rise counts as a
queue.  Measured before this: with the four offices of a test and the server
in one busy process, RTTs on loopback read 340-830 ms and the server paused
the videos of offices whose links were perfect.

Why not aiortc's REMB: aiortc's receiver-side estimator never estimates above
1.5x the rate it receives, so a sender that has stepped down (or turned video
off) can never learn that the link has room again: measured on loopback, the
server's REMB read 9-66 kbit/s for a link of gigabits.  Growing the estimate is
what lets the ladder probe a rung up; the ladder's hysteresis and back-off keep
those probes rare on a link that really is thin.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from aiortc.rtp import RtcpRrPacket, RtcpSrPacket

CONGESTED_LOSS = 0.10
CLEAR_LOSS = 0.02
QUEUE_RTT_S = 0.15
#: Loss with the RTT this close to its lowest is random loss, not a full link.
CALM_RTT_S = 0.05
RTT_WINDOW_S = 30.0
BACKOFF = 0.85
GROWTH_PER_S = 1.08
HOLD_AFTER_DROP_S = 2.0
#: Reports further apart than this mean the stream stopped (an outage, a new connection):
#: what the next ones say of loss is about the outage, not about the link's capacity.
#: Not less: a full link delays and drops receiver reports too (aiortc sends one every
#: 0.5-1.5 s); at 2.0 s, measured in the namespace lab after a 2 Mbit/s -> 64 kbit/s drop,
#: reports 2 s apart kept the estimate "settling" through 9 s of 20-66 % loss.
STALE_GAP_S = 3.5
SETTLE_S = 2.5
#: After a cut, the next report still measures the time before the senders slowed down.
CUT_INTERVAL_S = 1.0
#: A cut takes the most we sent over this long as what the report's loss applies to: a
#: receiver report covers the second or so before it was sent, and under a full queue it
#: comes late or not at all (measured on the benchmark's 256 kbit/s link: a report of 60 %
#: loss came 3.5 s into a start at 670 kbit/s, when we sent 290; 290 x 0.4 cut the
#: estimate to 96, then on to 33, and the video took 40 s to come back).
SENT_PEAK_S = 4.0
#: Reports of a new estimate on which one congested report is enough.
STARTUP_REPORTS = 3
#: An RTT this much below the previous one, and still over calm: a queue draining.
DRAINING_S = 0.02


@dataclasses.dataclass(frozen=True)
class Sample:
    at: float
    sent_kbps: float
    loss: float
    rtt: float | None
    estimate_kbps: float
    busy_s: float = 0.0


class LinkEstimate:
    def __init__(
        self, start_kbps: float = 800.0, min_kbps: float = 24.0, max_kbps: float = 2500.0
    ) -> None:
        self.kbps = start_kbps
        self.min_kbps = min_kbps
        self.max_kbps = max_kbps
        self._rtts: deque[tuple[float, float]] = deque()
        self._hold_until = float("-inf")
        self._last: float | None = None
        self._queue_seen = False
        self._losses: deque[float] = deque(maxlen=3)
        self._reports = 0
        self._settle_until = float("-inf")
        self._cut_again_at = float("-inf")
        self._sent: deque[tuple[float, float]] = deque()
        self._last_rtt: float | None = None
        self.history: deque[Sample] = deque(maxlen=2400)

    def min_rtt(self) -> float | None:
        return min((r for _, r in self._rtts), default=None)

    def update(
        self,
        now: float,
        sent_kbps: float,
        loss: float,
        rtt: float | None,
        busy_s: float = 0.0,
        probing: bool = False,
    ) -> float:
        """One receiver report's worth: what was sent since the last, its loss, the RTT.

        ``busy_s``: how long our own loop held things up lately (:class:`LoopLag`);
        that much of an RTT rise may be ours, not the link's.  ``probing``: the
        sender has just stepped up (see the module's notes).
        """
        dt = 0.0 if self._last is None else max(0.0, now - self._last)
        if self._last is not None and dt > STALE_GAP_S:
            self._settle_until = now + SETTLE_S
            dt = 0.0
        self._last = now
        settling = now < self._settle_until
        queue = calm = draining = False
        if rtt is not None and rtt > 0 and not settling:
            self._rtts.append((now, rtt))
            while self._rtts and self._rtts[0][0] < now - RTT_WINDOW_S:
                self._rtts.popleft()
            lowest = self.min_rtt()
            calm = lowest is not None and rtt - lowest < CALM_RTT_S + busy_s
            falling = self._last_rtt is not None and rtt < self._last_rtt - DRAINING_S
            draining = falling and not calm
            queue = lowest is not None and rtt - lowest > QUEUE_RTT_S + busy_s and not draining
            self._last_rtt = rtt
        # two reports in a row: one late or lossy report is a busy computer or a moment's
        # blackout (a cell handover) more often than a link that shrank; but the first
        # reports of a stream are taken at once: a thin link flooded by a start at full
        # rate would otherwise stall the signaling too (a join on 64 kbit/s)
        self._losses.append(loss)
        # heavy loss counts when it is the median of the last three reports too: two in a
        # row, or a link so full that its reports alternate between 5 % and 70 % (measured
        # on the benchmark's 64 kbit/s link: no two heavy reports in a row in 30 s)
        lossy = loss > CONGESTED_LOSS and sorted(self._losses)[len(self._losses) // 2] > (
            CONGESTED_LOSS
        )
        starting = self._reports < STARTUP_REPORTS or probing
        self._reports += 1
        queued = queue and (self._queue_seen or starting)
        self._queue_seen = queue
        congested = lossy or queued or (loss > CONGESTED_LOSS and starting)
        self._sent.append((now, sent_kbps))
        while self._sent[0][0] < now - SENT_PEAK_S:
            self._sent.popleft()
        if settling:
            pass  # just back from an outage: neither congestion nor room can be told yet
        elif congested and now >= self._cut_again_at:
            delivered = self.sent_peak() * (1 - loss)
            self.kbps = max(self.min_kbps, min(self.kbps, BACKOFF * delivered))
            self._hold_until = now + HOLD_AFTER_DROP_S
            self._cut_again_at = now + CUT_INTERVAL_S
        elif draining or now < self._hold_until:
            pass  # a queue going down (GCC's "underuse"): the link is busy draining it
        elif loss < CLEAR_LOSS or (loss <= CONGESTED_LOSS and calm):
            self.kbps = min(self.max_kbps, self.kbps * GROWTH_PER_S**dt)
        self.history.append(Sample(now, sent_kbps, loss, rtt, self.kbps, busy_s))
        return self.kbps

    def sent_peak(self) -> float:
        """The most we sent over the last :data:`SENT_PEAK_S` (kbit/s; 0 before a report)."""
        return max((rate for _, rate in self._sent), default=0.0)

    def measured(self, now: float, kbps: float) -> float:
        """A probe (:mod:`siakdesk.media.probe`) saw the link carry only ``kbps``: the
        estimate is no more than that, and holds for a while before it grows again."""
        if kbps < self.kbps:
            self.kbps = max(self.min_kbps, kbps)
            self._hold_until = max(self._hold_until, now + HOLD_AFTER_DROP_S)
        return self.kbps

    def carried(self, kbps: float) -> float:
        """A probe saw the link carry ``kbps``: the estimate is at least that (it grows
        only 8 % a second; a rung a passed probe let through must not be left at once
        for an estimate that has not caught up)."""
        self.kbps = min(self.max_kbps, max(self.kbps, kbps))
        return self.kbps

    def settle(self, until: float) -> None:
        """Reports until then are no measure of the link: a probe is overfilling it on
        purpose (its own answer says what the link carries; a cut on the loss and queue
        it made would take the estimate far under that, measured on the benchmark's 3g
        link: a start probe's loss cut the estimate to 163 kbit/s, and the video to
        160x90, right after the probe had measured 242)."""
        self._settle_until = max(self._settle_until, until)


class LoopLag:
    """How late this process's event loop has run a timer lately.

    A 100 ms ticker; :meth:`recent` is the worst lateness over the last
    :attr:`window_s` (a receiver report's RTT includes up to that much of ours).
    """

    TICK_S = 0.1

    def __init__(self, window_s: float = 3.0) -> None:
        self.window_s = window_s
        self._late: deque[tuple[float, float]] = deque()

    def note(self, now: float, late_s: float) -> None:
        if late_s > 0.01:
            self._late.append((now, late_s))
        while self._late and self._late[0][0] < now - self.window_s:
            self._late.popleft()

    def recent(self, now: float) -> float:
        return max((late for at, late in self._late if at >= now - self.window_s), default=0.0)

    async def run(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(self.TICK_S)
            now = time.monotonic()
            self.note(now, now - before - self.TICK_S)


class RttMeter:
    """Round-trip times of one aiortc sender, from its own sender reports and the
    receiver reports that answer them (RFC 3550 6.4.1: now - LSR's send time - DLSR).

    aiortc computes an RTT only from a receiver report that answers the very last
    sender report it sent, and smooths it (0.85): a queue delays the answer past
    the next sender report, so exactly the samples that show a queue are dropped.
    Measured through a full 300 ms ``tbf`` queue: aiortc read 1-40 ms for seconds.
    This meter remembers the last :data:`KEEP` sender reports' send times and
    takes every answer as it comes.

    It wraps two methods of the one sender it watches (``_send_rtcp`` and
    ``_handle_rtcp_packet``, aiortc 1.16), checked by a test.
    """

    KEEP = 32

    def __init__(self) -> None:
        self._sent: dict[int, float] = {}
        self._latest: float | None = None

    def sent(self, lsr: int, at: float) -> None:
        self._sent[lsr] = at
        while len(self._sent) > self.KEEP:
            del self._sent[next(iter(self._sent))]

    def answered(self, lsr: int, dlsr: int, at: float) -> None:
        sent_at = self._sent.get(lsr)
        if sent_at is None or not dlsr:
            return
        rtt = at - sent_at - dlsr / 65536
        if rtt >= 0:
            self._latest = rtt

    def take(self) -> float | None:
        """The newest RTT since the last call (None: no new answer)."""
        rtt, self._latest = self._latest, None
        return rtt

    @classmethod
    def of(cls, sender: Any) -> RttMeter:
        """The meter of ``sender``, attached on first use."""
        meter: RttMeter | None = getattr(sender, "_siakdesk_rtt", None)
        if meter is not None:
            return meter
        meter = sender._siakdesk_rtt = cls()
        send, handle = sender._send_rtcp, sender._handle_rtcp_packet

        async def send_rtcp(packets: list[Any]) -> None:
            for packet in packets:
                if isinstance(packet, RtcpSrPacket):
                    # LSR: the middle 32 bits of the report's NTP timestamp
                    meter.sent((packet.sender_info.ntp_timestamp >> 16) & 0xFFFFFFFF, time.time())
            await send(packets)

        async def handle_rtcp(packet: Any) -> None:
            if isinstance(packet, RtcpRrPacket | RtcpSrPacket):
                for report in packet.reports:
                    if report.ssrc == sender._ssrc:
                        meter.answered(report.lsr, report.dlsr, time.time())
            await handle(packet)

        sender._send_rtcp, sender._handle_rtcp_packet = send_rtcp, handle_rtcp
        return meter


#: A report's loss over fewer packets than this is counted as over this many.
MIN_LOSS_PACKETS = 20
#: IPv4 20 + UDP 8 + RTP 12 + SRTP tag 10 + aiortc's header extensions ~12 bytes a packet.
PACKET_OVERHEAD = 62


@dataclasses.dataclass(frozen=True)
class Report:
    """One new receiver report of one stream."""

    kind: str
    loss: float  # 0..1
    rtt: float | None
    #: packets sent in the interval this report covers
    packets: int


@dataclasses.dataclass(frozen=True)
class Reading:
    """What a hop's senders sent since the last reading (kbit/s on the wire) and the new reports."""

    sent_kbps: float
    reports: list[Report]

    @property
    def loss(self) -> float:
        """Loss over the reported streams, weighted by the packets each report covers.

        Over fewer than :data:`MIN_LOSS_PACKETS` packets one loss is no rate: a
        160x90 picture at 5 fps sends 5 packets a second, and its report alone
        read 20 % for the one packet 1 % random loss took (measured in the
        namespace lab: that cut a 512 kbit/s link's estimate to 34 kbit/s).
        """
        lost = sum(r.loss * r.packets for r in self.reports)
        return lost / max(MIN_LOSS_PACKETS, sum(r.packets for r in self.reports))

    @property
    def rtt(self) -> float | None:
        rtts = [r.rtt for r in self.reports if r.rtt is not None and r.rtt > 0]
        return max(rtts) if rtts else None


class SenderReports:
    """Reads a hop's aiortc senders: bytes out (``outbound-rtp``) and each new receiver
    report (``remote-inbound-rtp``; aiortc keeps the last one, so repeats are skipped)."""

    def __init__(self) -> None:
        self._sent: dict[int, int] = {}
        self._seen: dict[int, object] = {}
        self._reported: dict[int, int] = {}
        self._window_start: float | None = None
        self._window_bytes = 0

    async def read(self, senders: Sequence[Any], now: float) -> Reading | None:
        """A reading when a new report came in since the last one, else None."""
        fresh: list[Report] = []
        for sender in senders:
            meter = RttMeter.of(sender)  # from the first reading on
            key = id(sender)
            kind = sender.track.kind if getattr(sender, "track", None) is not None else ""
            for stats in (await sender.getStats()).values():
                what = getattr(stats, "type", "")
                if what == "outbound-rtp":
                    wire = stats.bytesSent + PACKET_OVERHEAD * stats.packetsSent
                    self._window_bytes += max(0, wire - self._sent.get(key, wire))
                    self._sent[key] = wire
                elif what == "remote-inbound-rtp" and self._seen.get(key) != stats.timestamp:
                    self._seen[key] = stats.timestamp
                    # aiortc passes RTCP's 8-bit fraction on as it is
                    loss = stats.fractionLost / 256
                    rtt = meter.take()
                    # received + lost: what we had sent when the report came in
                    reported = stats.packetsReceived + stats.packetsLost
                    packets = max(0, reported - self._reported.get(key, 0))
                    self._reported[key] = reported
                    fresh.append(Report(kind, loss, rtt, packets))
        if self._window_start is None:
            self._window_start = now
        elapsed = now - self._window_start
        if not fresh or elapsed <= 0:
            return None
        sent_kbps = self._window_bytes * 8 / elapsed / 1000
        self._window_start, self._window_bytes = now, 0
        return Reading(sent_kbps, fresh)
