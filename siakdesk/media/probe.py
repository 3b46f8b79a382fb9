"""Probing the uplink before a rung up: padding, not a keyframe, measured by the server.

Why: the uplink estimate (:mod:`siakdesk.media.estimate`) has to grow through
random loss while the round trip is calm, or a lossy link with room could
never climb back; so on the benchmark's 3g link (256 kbit/s, 3 % loss) it grew
to 0.6-1.2 Mbit/s while the office sent 200.  The ladder then tried 480x270:
a new codec, a keyframe, 300 kbit/s more than the link, and 3-4 s of a full
``tbf`` queue in front of the speech before the reports brought it down again.
One such try cost a whole 15 s loop of the benchmark's speech (PESQ-WB 1.3-1.4
against 3.1-4.0 for the loops around it).  A bitrate-only try at the same
picture size is not possible with aiortc and FFmpeg's libvpx (a bitrate set
after the codec opened is ignored; aiortc's only way is a new codec).

So, as libwebrtc does before it raises its estimate (its ``ProbeController``):
when the ladder has seen room for the next rung long enough, the office first
sends :data:`PROBE_S` (or more, :func:`duration`) of padding on top of its
media, at the rate the next rung would need (:func:`send_padding`).  Padding
is RTP packets of the video sender's retransmission (RTX) stream that carry no
payload, only RTP padding:
aiortc's receiver counts them and drops them (an RTX packet with no original
sequence number in it), so they never reach a decoder.  The server sees them
arrive (:class:`ArrivalMeter`, on the DTLS transport of the publisher's peer
connection) and measures the rate at which *everything* from that office
arrived in the second half of the train (the first half can pass at the line's
speed while a token bucket's burst lasts), and tells the office in a
``probe_result`` message, with how many padding packets came and over how
long.  If (nearly) all came, over (nearly) the time they were sent in
(:func:`passed`), the ladder goes up; if not, the link has told us its
capacity: the estimate comes down to the rate measured and that rung waits
twice as long before the next probe.  A probe that
fails costs about :data:`PROBE_S` of a queue, not seconds of one, and no
keyframe.  No answer (an old server) within the ladder's wait means a plain try
of the rung, as before.

aiortc has no padding of its own: :func:`send_padding` uses the sender's RTX
payload type, SSRC and sequence counter (private in aiortc 1.16, guarded by
:func:`can_probe` and a test).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import struct
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from aiortc.rtp import RtpPacket
from aiortc.utils import uint16_add

logger = logging.getLogger(__name__)

#: How long a probe's padding is sent for.  Long enough for a queue to show (a link
#: that carries 80 % of the probe's rate adds 40 ms to its arrival); short, because
#: on a thin link the probe is a queue in front of the speech: on the benchmark's 3g
#: link, 0.3 s probes for 640x360 queued 370 ms and moved the playout's delay by as
#: much in the middle of a sentence (PESQ-WB of that half-loop 1.58).
PROBE_S = 0.2
#: ... but at least this much padding, however long it takes (up to
#: :data:`PROBE_MAX_S`): a token bucket lets a burst through at the line's speed
#: (``tbf``'s is 3000 bytes in the namespace lab), and a probe smaller than a couple
#: of bursts shows no queue at all.  Measured on the four-office run's 128 kbit/s
#: link: probes of 6 and 13 padding packets (2-4 KB) for 186 and 237 kbit/s passed,
#: and the rungs they let through lasted 3-6 s; one of 26 (8 KB) that overfilled it
#: by a fifth passed too.
MIN_PROBE_BYTES = 12000
PROBE_MAX_S = 1.2
#: RTP padding is counted in one byte: a padding-only packet carries at most this much.
PADDING_BYTES = 255
#: Headers of a padding packet on the wire: RTP 12, SRTP tag 10, UDP and IPv4 28.
PADDING_OVERHEAD = 50
#: RTP header, SRTP tag, UDP and IPv4 on top of what the server's DTLS transport hands on.
WIRE_OVERHEAD = 38
#: The train is over when no padding came for this long.
TRAIN_END_S = 0.2
#: Arrivals kept (a train and a margin).
KEEP_S = 2.0
#: Fewer padding packets than this, or a shorter span, is no measurement.
MIN_PACKETS = 5
MIN_SPAN_S = 0.05
#: Pacing tick of the padding.
TICK_S = 0.01
#: A probe passes when this share of its padding arrived ... (not 0.9: on the benchmark's
#: 3 % loss link a probe of 39 packets lost 4 of them at random, arrived at 195 of the
#: 186 kbit/s wanted over its own span, and failed; 3 % loss takes 4 of 39 from one probe
#: in 35, 5 % from one in 8; 6 of 39, what fails now, one in 1000 and one in 80)
PASS_PACKETS = 0.85
#: ... over no more than this much longer than it was sent over (and a bit: the
#: server's own loop stamps the arrivals).  0.2 s sent arriving over 0.25 s means the
#: link carried ~80 % of the probe's rate: a queue grew by 50 ms in 0.2 s.  Measured:
#: a clear link 0-4 ms longer (five processes on two cores too); the 128 kbit/s link of
#: the four-office run 0.27 -> 0.37 s with all 19 packets (1.25x and 40 ms let it pass).
#: Mostly absolute: a long probe on a thin link shows a small excess as a small queue.
PASS_SPAN = 1.05
PASS_SPAN_SLACK_S = 0.04

_SEQUENCE = "_RTCRtpSender__rtx_sequence_number"
_PAYLOAD_TYPE = "_RTCRtpSender__rtx_payload_type"


def can_probe(sender: Any) -> bool:
    """``sender`` sends RTX (negotiated) and aiortc keeps it where this module looks."""
    return (
        isinstance(getattr(sender, _PAYLOAD_TYPE, None), int)
        and isinstance(getattr(sender, _SEQUENCE, None), int)
        and isinstance(getattr(sender, "_rtx_ssrc", None), int)
        and getattr(sender, "transport", None) is not None
    )


def duration(kbps: float) -> float:
    """How long a probe with ``kbps`` of padding lasts (see :data:`MIN_PROBE_BYTES`)."""
    if kbps <= 0:
        return 0.0
    return min(PROBE_MAX_S, max(PROBE_S, MIN_PROBE_BYTES * 8 / (kbps * 1000)))


def padding_packet(sender: Any) -> bytes:
    """The next padding-only packet of ``sender``'s RTX stream (advances its counter)."""
    sequence = getattr(sender, _SEQUENCE)
    packet = RtpPacket(
        payload_type=getattr(sender, _PAYLOAD_TYPE),
        sequence_number=sequence,
        timestamp=0,
        ssrc=sender._rtx_ssrc,
    )
    packet.padding_size = PADDING_BYTES
    setattr(sender, _SEQUENCE, uint16_add(sequence, 1))
    return packet.serialize()


@dataclasses.dataclass(frozen=True)
class Sent:
    """What :func:`send_padding` sent: padding packets, and from the first to the last."""

    packets: int = 0
    span_s: float = 0.0


async def send_padding(sender: Any, kbps: float, seconds: float | None = None) -> Sent:
    """Send padding at ``kbps`` (on the wire) for ``seconds`` (:func:`duration`), paced."""
    seconds = duration(kbps) if seconds is None else seconds
    if not can_probe(sender) or kbps <= 0:
        return Sent()
    wire = PADDING_BYTES + PADDING_OVERHEAD
    start = time.monotonic()
    first = last = start
    sent = packets = 0
    while True:
        elapsed = time.monotonic() - start
        # a late wake-up (a busy loop) sends what is due at once, the last one too
        due = kbps * 1000 / 8 * min(seconds, elapsed + TICK_S)
        while sent + wire <= due:
            try:
                await sender.transport._send_rtp(padding_packet(sender))
            except ConnectionError:
                return Sent(packets, last - first)
            last = time.monotonic()
            if not packets:
                first = last
            sent += wire
            packets += 1
        if elapsed >= seconds:
            return Sent(packets, last - first)
        await asyncio.sleep(TICK_S)


def passed(sent: Sent, received_packets: int, received_span_s: float) -> bool:
    """Whether the link carried a probe: (nearly) all of its padding arrived, and over
    (nearly) the time it was sent in.  A link without the room queues the probe (its
    arrival stretches out, measured on the benchmark's 256 kbit/s link: 0.3 s sent,
    0.5 s and more arriving) or drops it.  This, not the rate measured, decides: that
    rate carries the media's own bursts (a 1.5 KB picture every 83 ms) and a busy
    server's lateness, and a probe on a clear link measured 280-360 of 425 kbit/s on
    the benchmark's four-office run, where five processes share two cores."""
    if sent.packets < MIN_PACKETS:
        return False
    arrived = received_packets >= PASS_PACKETS * sent.packets
    return arrived and received_span_s <= PASS_SPAN * sent.span_s + PASS_SPAN_SLACK_S


def is_padding_only(data: bytes) -> bool:
    """An RTP packet (decrypted) with the padding bit set and nothing but padding after
    its header: what :func:`send_padding` sends."""
    if len(data) < 13 or not data[0] & 0x20:
        return False
    header = 12 + 4 * (data[0] & 0x0F)
    if data[0] & 0x10:  # header extension: 4 bytes, then its length in 32-bit words
        if len(data) < header + 4:
            return False
        header += 4 + 4 * struct.unpack_from("!H", data, header + 2)[0]
    return header + data[-1] == len(data)


class ArrivalMeter:
    """The server's side: what arrives from one publisher, and the rate of each probe train.

    :meth:`note` is called for every RTP packet the publisher's DTLS transport
    hands on (:meth:`install`); ``on_result(kbps, packets, span_s)`` is called
    once per train, :data:`TRAIN_END_S` after its last padding packet.
    """

    def __init__(
        self,
        on_result: Callable[[float, int, float], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._on_result = on_result
        self._clock = clock
        self._arrivals: deque[tuple[float, int]] = deque()
        self._train: list[float] = []
        self._timer: asyncio.TimerHandle | None = None
        self.trains = 0

    def note(self, data: bytes, at: float | None = None) -> None:
        now = self._clock() if at is None else at
        self._arrivals.append((now, len(data) + WIRE_OVERHEAD))
        while self._arrivals[0][0] < now - KEEP_S:
            self._arrivals.popleft()
        if is_padding_only(data):
            self._train.append(now)
            if self._timer is None:
                self._arm()

    def _arm(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a unit test): finish() is called by hand
        self._timer = loop.call_later(TRAIN_END_S, self._check)

    def _check(self) -> None:
        self._timer = None
        if self._train and self._clock() - self._train[-1] < TRAIN_END_S:
            self._arm()
        else:
            self.finish()

    def finish(self) -> None:
        """Measure the train that has come (if any) and report it."""
        train, self._train = self._train, []
        if len(train) < MIN_PACKETS or train[-1] - train[0] < MIN_SPAN_S:
            return
        first, last = train[0], train[-1]
        # the second half: a token bucket lets the start of a train through at the
        # line's speed, which says nothing of the rate the link can keep up
        middle = first + (last - first) / 2
        got = sum(size for at, size in self._arrivals if middle < at <= last)
        kbps = got * 8 / (last - middle) / 1000
        self.trains += 1
        self._on_result(kbps, len(train), last - first)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    @classmethod
    def install(cls, transport: Any, meter: ArrivalMeter) -> bool:
        """Let ``meter`` see every RTP packet ``transport`` (an aiortc
        ``RTCDtlsTransport``) hands on, as it arrives.  False where this aiortc
        keeps no ``_handle_rtp_data`` to wrap: probes then go unanswered, and the
        offices' ladders go by their estimates (see :mod:`siakdesk.media.videoladder`)."""
        handle = getattr(transport, "_handle_rtp_data", None)
        if not callable(handle):
            logger.warning("this aiortc has no RTP hook on its DTLS transport: probes unanswered")
            return False

        async def handle_rtp_data(data: bytes, arrival_time_ms: int) -> None:
            meter.note(data)
            await handle(data, arrival_time_ms)

        transport._handle_rtp_data = handle_rtp_data
        return True
