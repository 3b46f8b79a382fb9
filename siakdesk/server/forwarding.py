"""Forwarding encoded media from one publisher to many subscribers.

The server is a selective forwarding unit: it never decodes a participant's
audio or video.  aiortc has no public hook for that, so this module uses two
narrow seams of aiortc 1.16, both checked by tests that would break loudly if
an upgrade moved them:

* **receive side**: :func:`siakdesk.media.encodedtap.tap_receiver` hands each
  encoded frame a publisher's receiver reassembles to its :class:`Publication`,
  instead of to aiortc's decoder thread.  Audio does not even go through
  aiortc's jitter buffer (:func:`siakdesk.media.playout.tap_rtp`): that buffer
  holds every packet until four more have come (80 ms at 20 ms a packet, 240
  at 60) and, after a loss, holds everything until sixteen have (up to a
  second), which the office's playout then saw as a link that jumps by that
  much.  One audio packet is one frame, so each goes on as it comes, in order
  (one that comes after a later one is dropped: its turn has gone);
* **send side**: an ``RTCRtpSender`` whose track returns ``av.Packet`` objects
  packetizes them as they are (``Encoder.pack``) instead of encoding.  A
  :class:`SlotTrack` is such a track; it rewrites timestamps so that a slot
  stays monotonic when the participant in it changes, and holds back video
  until a keyframe so a new subscriber's decoder never starts mid-picture.

Keyframe requests (PLI/FIR) a subscriber sends arrive at the server's sender
for that slot; :func:`route_keyframe_requests` sends them on to the publisher,
at most one per :data:`KEYFRAME_REQUEST_INTERVAL` per publisher.  A slot held
back for a keyframe asks again every :data:`KEYFRAME_RETRY_S` while the
publisher's frames keep coming without one: a request or a keyframe lost on a
lossy link must not leave a subscriber without a picture until the publisher's
next rung change.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCRtpReceiver, RTCRtpSender
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtcpSrPacket

from siakdesk.media import videojitter
from siakdesk.media.encodedtap import tap_receiver
from siakdesk.media.opuspacket import OpusPacker
from siakdesk.media.playout import tap_rtp
from siakdesk.media.vp8 import is_vp8_keyframe, vp8_keyframe_size

logger = logging.getLogger(__name__)

CLOCK_RATES = {"audio": 48000, "video": 90000}
#: Timestamp step put between two sources in one slot (one 20 ms audio frame, one 30 fps picture).
SWITCH_STEP = {"audio": 960, "video": 3000}
#: Frames a slot holds for a subscriber that does not keep up; then the oldest go.
SLOT_QUEUE_FRAMES = {"audio": 10, "video": 30}
#: Shortest time between two keyframe requests to one publisher, in seconds.
KEYFRAME_REQUEST_INTERVAL = 0.3
#: A slot still waiting for a keyframe this long after asking asks again: the request
#: (or the keyframe) may have been lost on the publisher's lossy link.
KEYFRAME_RETRY_S = 1.0
#: Seconds over which a publication's rate is measured.
RATE_WINDOW_S = 2.0
#: Audio packets in a row "older" than the last forwarded: the sender started afresh.
LATE_RUN_RESTART = 25
#: Bytes of IP, UDP, RTP and SRTP headers per forwarded packet.
WIRE_OVERHEAD = 62
#: Audio to a thin downlink goes in packets of this many samples (60 ms at 48 kHz) ...
PACKED_AUDIO_SAMPLES = 2880
#: ... and a packet being filled goes out after this long even if not full (DTX, a gap).
PACKING_WAIT_S = 0.07


def route_keyframe_requests(sender: RTCRtpSender, on_request: Callable[[], None]) -> None:
    """Call ``on_request`` when the subscriber behind ``sender`` asks for a keyframe.

    aiortc's sender answers PLI/FIR by asking its own encoder for a keyframe,
    which a forwarding sender does not have.
    """
    if not callable(getattr(sender, "_send_keyframe", None)):
        raise RuntimeError("this aiortc version has no keyframe hook on RTCRtpSender")
    sender._send_keyframe = on_request  # type: ignore[method-assign]


#: An idle slot's report still goes out when no slot of the same subscriber has sent one
#: for this long: the office takes 4 s without a packet for a dead media path.
KEEPALIVE_REPORT_S = 1.0


class ReportBudget:
    """When the slots of one subscriber's peer connection last sent a report."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.last_sent = float("-inf")


def quiet_when_idle(sender: RTCRtpSender, budget: ReportBudget) -> None:
    """Keep ``sender`` from sending RTCP sender reports while it sends no media.

    aiortc's sender sends a report (SR and SDES, 124 bytes on the wire) every
    0.5-1.5 s whether it has sent anything or not; RFC 3550 has a member that
    does not send media send none, and keeps all RTCP to 5 % of the session.
    A subscriber has one slot of each kind for everyone else in the room (19 of
    each in a room of 20), most of them empty: measured in the namespace lab
    (``tcpdump`` on the 64 kbit/s link to an office), the reports of empty slots
    were 25 of the 35 packets a second the server sent it, some 40 kbit/s; the
    link's queue stayed full, the office's round trip read 1.2 s instead of 0.6,
    and it lost 10 % of the speech it heard.  A report goes out when the sender
    has sent media since its last one, or when no slot of this subscriber has
    reported for :data:`KEEPALIVE_REPORT_S`: the office counts packets to tell a
    live media path from a dead one, and one alone in a room gets nothing else.
    """
    send = sender._send_rtcp
    reported = 0  # the packet count the last report went out with

    async def send_rtcp(packets: list[Any]) -> None:
        nonlocal reported
        report = next((p for p in packets if isinstance(p, RtcpSrPacket)), None)
        if report is not None:
            count = report.sender_info.packet_count
            now = budget.clock()
            if count == reported and now - budget.last_sent < KEEPALIVE_REPORT_S:
                return  # nothing sent since the last report, and others keep the path alive
            reported, budget.last_sent = count, now
        await send(packets)

    sender._send_rtcp = send_rtcp  # type: ignore[method-assign]


class Publication:
    """One participant's published audio or video, fanned out to slots."""

    def __init__(self, kind: str, publisher_id: str, receiver: RTCRtpReceiver) -> None:
        self.kind = kind
        self.publisher_id = publisher_id
        self._receiver = receiver
        self._slots: set[SlotTrack] = set()
        self._last_keyframe_request = -KEYFRAME_REQUEST_INTERVAL
        self._deferred: asyncio.TimerHandle | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self.frames = 0
        self.bytes = 0
        self.keyframes = 0
        self.keyframe_requests = 0
        self.width = 0
        self.height = 0
        self._recent: deque[tuple[float, int]] = deque()  # (arrival, bytes) of the last seconds
        tap_receiver(receiver, self._on_frame)
        self._last_seq: int | None = None
        self.late = 0
        self._late_run = 0
        if kind == "video":
            videojitter.install(receiver)
        else:
            tap_rtp(receiver, self._on_audio_packet)

    def _on_audio_packet(self, seq: int, timestamp: int, payload: bytes) -> None:
        older = self._last_seq is not None and not 0 < (seq - self._last_seq) % 65536 < 32768
        if older and self._late_run < LATE_RUN_RESTART:
            self.late += 1  # older than one already forwarded (or the same again)
            self._late_run += 1
            return
        self._last_seq, self._late_run = seq, 0
        if payload:
            self._on_frame(JitterFrame(payload, timestamp))

    def _on_frame(self, frame: JitterFrame) -> None:
        self.frames += 1
        self.bytes += len(frame.data)
        now = time.monotonic()
        self._recent.append((now, len(frame.data)))
        while self._recent and self._recent[0][0] < now - RATE_WINDOW_S:
            self._recent.popleft()
        keyframe = self.kind == "video" and is_vp8_keyframe(frame.data)
        if keyframe:
            self.keyframes += 1
            self.width, self.height = vp8_keyframe_size(frame.data)
        for slot in tuple(self._slots):
            slot.push(self, frame, keyframe)

    def rate_kbps(self, now: float | None = None, joined: int = 1) -> float:
        """What forwarding this costs a subscriber now, on the wire (kbit/s); ``joined``:
        frames per packet (audio packed for a thin downlink)."""
        now = time.monotonic() if now is None else now
        recent = [size for at, size in self._recent if at >= now - RATE_WINDOW_S]
        packets = sum(1 + size // 1100 for size in recent) / joined
        return (sum(recent) + WIRE_OVERHEAD * packets) * 8 / RATE_WINDOW_S / 1000

    def frames_in_last(self, seconds: float, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        return sum(1 for at, _ in self._recent if at >= now - seconds)

    def attach(self, slot: SlotTrack) -> None:
        self._slots.add(slot)
        self.request_keyframe()

    def detach(self, slot: SlotTrack) -> None:
        self._slots.discard(slot)

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe (a PLI).

        Requests closer together than :data:`KEYFRAME_REQUEST_INTERVAL` are merged
        into one sent at the end of the interval: a request is never dropped, or a
        subscriber that asked just after another would wait for the next natural
        keyframe, which may be minutes away.
        """
        if self.kind != "video" or self._deferred is not None:
            return
        wait = self._last_keyframe_request + KEYFRAME_REQUEST_INTERVAL - time.monotonic()
        if wait > 0:
            self._deferred = asyncio.get_running_loop().call_later(wait, self._send_pli)
        else:
            self._send_pli()

    def _send_pli(self) -> None:
        self._deferred = None
        sources = self._receiver.getSynchronizationSources()
        if not sources:
            return  # nothing received yet; the first frame of a stream is a keyframe
        self._last_keyframe_request = time.monotonic()
        self.keyframe_requests += 1
        task = asyncio.ensure_future(self._receiver._send_rtcp_pli(sources[0].source))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def close(self) -> None:
        if self._deferred is not None:
            self._deferred.cancel()
            self._deferred = None
        for slot in tuple(self._slots):
            slot.assign(None)
        for task in tuple(self._pending):
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)


class SlotTrack(MediaStreamTrack):
    """What the server sends on one of a subscriber's receive slots.

    ``recv()`` returns pre-encoded ``av.Packet`` objects, so aiortc's sender
    packetizes them without encoding.  It blocks while the slot is empty: an
    idle slot costs nothing.
    """

    def __init__(self, kind: str, mid: str) -> None:
        super().__init__()
        self.kind = kind
        self.mid = mid
        self._time_base = fractions.Fraction(1, CLOCK_RATES[kind])
        self._queue: asyncio.Queue[av.Packet] = asyncio.Queue()
        self._limit = SLOT_QUEUE_FRAMES[kind]
        self.publication: Publication | None = None
        self._offset: int | None = None
        self._last_out = -SWITCH_STEP[kind]
        self._need_keyframe = kind == "video"
        self._keyframe_asked = float("-inf")
        self.forwarded = 0
        self.forwarded_bytes = 0
        self.dropped = 0
        #: the subscriber's link has no room for this video now: nothing is forwarded
        self.paused = False
        self.paused_frames = 0
        #: audio to a thin downlink: Opus packets joined into 60 ms ones (None: as they come)
        self._packer: OpusPacker | None = None
        self._packing_timer: asyncio.TimerHandle | None = None

    @property
    def participant_id(self) -> str | None:
        return self.publication.publisher_id if self.publication else None

    def assign(self, publication: Publication | None) -> None:
        """Forward ``publication`` on this slot from now on (``None``: nothing)."""
        if publication is self.publication:
            return
        if self.publication is not None:
            self.publication.detach(self)
        self.publication = publication
        self._offset = None
        self._need_keyframe = self.kind == "video"
        if publication is not None:
            self._keyframe_asked = time.monotonic()
            publication.attach(self)

    def request_keyframe(self) -> None:
        if self.publication is not None:
            self._keyframe_asked = time.monotonic()
            self.publication.request_keyframe()

    def set_paused(self, paused: bool) -> bool:
        """Stop (or go on) forwarding; True when that changed.  Resuming waits for a keyframe."""
        if paused == self.paused:
            return False
        self.paused = paused
        if not paused:
            self._need_keyframe = self.kind == "video"
            self.request_keyframe()
        return True

    @property
    def packed(self) -> bool:
        return self._packer is not None

    def cost_kbps(self, now: float) -> float:
        """What this slot costs its subscriber's downlink now (kbit/s, on the wire)."""
        if self.publication is None or self.paused:
            return 0.0
        joined = PACKED_AUDIO_SAMPLES // SWITCH_STEP["audio"] if self.packed else 1
        return self.publication.rate_kbps(now, joined=joined)

    def set_packed(self, packed: bool) -> bool:
        """Join audio into 60 ms packets (a thin downlink) or not; True when that changed."""
        if self.kind != "audio" or packed == self.packed:
            return False
        if packed:
            self._packer = OpusPacker(PACKED_AUDIO_SAMPLES)
        else:
            self._flush_packer()
            self._packer = None
        return True

    def _flush_packer(self) -> None:
        if self._packing_timer is not None:
            self._packing_timer.cancel()
            self._packing_timer = None
        if self._packer is not None:
            for timestamp, data in self._packer.flush():
                self._enqueue(timestamp, data, keyframe=False)

    def push(self, source: Publication, frame: JitterFrame, keyframe: bool) -> None:
        if source is not self.publication or self.readyState != "live":
            return
        if self.paused:
            self.paused_frames += 1
            return
        if self._need_keyframe:
            if not keyframe:
                self.dropped += 1
                if time.monotonic() - self._keyframe_asked >= KEYFRAME_RETRY_S:
                    self.request_keyframe()
                return
            self._need_keyframe = False
        if self._offset is None:
            self._offset = self._last_out + SWITCH_STEP[self.kind] - frame.timestamp
        timestamp = frame.timestamp + self._offset
        self._last_out = timestamp
        if self._packer is None:
            self.forwarded += self._enqueue(timestamp, frame.data, keyframe)
            return
        self.forwarded += 1
        for start, data in self._packer.add(timestamp, frame.data):
            self._enqueue(start, data, keyframe=False)
        if self._packer.holding and self._packing_timer is None:
            self._packing_timer = asyncio.get_running_loop().call_later(
                PACKING_WAIT_S, self._flush_packer
            )
        elif not self._packer.holding and self._packing_timer is not None:
            self._packing_timer.cancel()
            self._packing_timer = None

    def _enqueue(self, timestamp: int, data: bytes, keyframe: bool) -> bool:
        if self._queue.qsize() >= self._limit:
            self._flush_for_overflow()
            if self._need_keyframe and not keyframe:
                return False
            self._need_keyframe = False
        packet = av.Packet(data)
        packet.pts = timestamp
        packet.time_base = self._time_base
        self._queue.put_nowait(packet)
        self.forwarded_bytes += len(data)
        return True

    def _flush_for_overflow(self) -> None:
        if self.kind == "audio":
            self._queue.get_nowait()
            self.dropped += 1
            return
        # a video frame cannot be dropped alone: the next ones refer to it
        while not self._queue.empty():
            self._queue.get_nowait()
            self.dropped += 1
        self._need_keyframe = True
        self.request_keyframe()

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        return await self._queue.get()

    def stop(self) -> None:
        if self._packing_timer is not None:
            self._packing_timer.cancel()
        self.assign(None)
        super().stop()
