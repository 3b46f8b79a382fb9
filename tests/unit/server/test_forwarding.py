"""The forwarding unit's pure logic: keyframes, slot timestamps, gating, overflow."""

from __future__ import annotations

import asyncio
import fractions
import types
from collections.abc import AsyncIterator

import pytest
from aiortc import RTCPeerConnection
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtp import RtpPacket

from siakdesk.media.encodedtap import EncodedFrameTap
from siakdesk.server import forwarding
from siakdesk.server.forwarding import (
    PACKING_WAIT_S,
    SLOT_QUEUE_FRAMES,
    SWITCH_STEP,
    Publication,
    SlotTrack,
)
from tests.mediasamples import vp8_frames


@pytest.fixture
async def pc() -> AsyncIterator[RTCPeerConnection]:
    connection = RTCPeerConnection()
    yield connection
    await connection.close()


def publication(pc: RTCPeerConnection, kind: str, publisher: str) -> Publication:
    receiver = pc.addTransceiver(kind, direction="recvonly").receiver
    return Publication(kind, publisher, receiver)


async def test_tap_replaces_the_decoder_queue(pc: RTCPeerConnection) -> None:
    pub = publication(pc, "audio", "p1")
    tap = pc.getTransceivers()[0].receiver._RTCRtpReceiver__decoder_queue  # type: ignore[attr-defined]
    assert isinstance(tap, EncodedFrameTap)
    tap.put((None, JitterFrame(b"opus", 960)))
    assert (pub.frames, pub.bytes, tap.qsize()) == (1, 4, 0)
    tap.put(None)  # the receiver's stop sentinel still reaches the decoder thread
    assert tap.get_nowait() is None


async def test_video_slot_waits_for_a_keyframe_and_keeps_timestamps(pc: RTCPeerConnection) -> None:
    key, *inter = vp8_frames(3)
    pub = publication(pc, "video", "p1")
    slot = SlotTrack("video", "5")
    slot.assign(pub)
    pub._on_frame(JitterFrame(inter[0], 1000))
    assert slot.dropped == 1 and slot.forwarded == 0
    pub._on_frame(JitterFrame(key, 7000))
    pub._on_frame(JitterFrame(inter[1], 13000))
    first, second = await slot.recv(), await slot.recv()
    assert bytes(first) == key and bytes(second) == inter[1]
    assert first.time_base == fractions.Fraction(1, 90000)
    assert (second.pts or 0) - (first.pts or 0) == 6000
    assert pub.width == 320


async def test_a_slot_waiting_for_a_keyframe_asks_again_while_frames_come_without_one(
    pc: RTCPeerConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, *inter = vp8_frames(3)
    pub = publication(pc, "video", "p1")
    clock, asked = [100.0], list[float]()
    monkeypatch.setattr(pub, "request_keyframe", lambda: asked.append(clock[0]))
    monkeypatch.setattr(forwarding, "time", types.SimpleNamespace(monotonic=lambda: clock[0]))
    slot = SlotTrack("video", "5")
    slot.assign(pub)  # asks once
    for step in range(25):  # 2.5 s of frames that cannot start a picture
        clock[0] = 100.0 + step * 0.1
        pub._on_frame(JitterFrame(inter[0], 1000 + step * 9000))
    assert asked == pytest.approx([100.0, 101.0, 102.0])  # the first ask, then each second
    pub._on_frame(JitterFrame(key, 300_000))
    clock[0] += 5
    pub._on_frame(JitterFrame(inter[1], 309_000))
    assert len(asked) == 3 and slot.forwarded == 2  # a picture started: nothing more asked


async def test_switching_source_keeps_the_slot_monotonic(pc: RTCPeerConnection) -> None:
    pub_a, pub_b = publication(pc, "audio", "a"), publication(pc, "audio", "b")
    slot = SlotTrack("audio", "2")
    slot.assign(pub_a)
    pub_a._on_frame(JitterFrame(b"a1", 500_000))
    pub_b._on_frame(JitterFrame(b"b0", 10))  # not in this slot: ignored
    slot.assign(pub_b)
    pub_a._on_frame(JitterFrame(b"a2", 500_960))  # no longer in this slot
    pub_b._on_frame(JitterFrame(b"b1", 20))
    pub_b._on_frame(JitterFrame(b"b2", 980))
    packets = [await slot.recv() for _ in range(3)]
    assert [bytes(p) for p in packets] == [b"a1", b"b1", b"b2"]
    pts = [p.pts or 0 for p in packets]
    assert pts[1] - pts[0] == SWITCH_STEP["audio"]
    assert pts[2] - pts[1] == 960
    assert slot.participant_id == "b"


async def test_overflow_drops_oldest_audio_and_restarts_video_at_a_keyframe(
    pc: RTCPeerConnection,
) -> None:
    audio_pub = publication(pc, "audio", "a")
    audio = SlotTrack("audio", "2")
    audio.assign(audio_pub)
    limit = SLOT_QUEUE_FRAMES["audio"]
    for i in range(limit + 3):
        audio_pub._on_frame(JitterFrame(bytes([i]), i * 960))
    assert audio.dropped == 3
    assert bytes(await audio.recv()) == bytes([3])

    key, *inter = vp8_frames(3)
    video_pub = publication(pc, "video", "v")
    video = SlotTrack("video", "3")
    video.assign(video_pub)
    video_pub._on_frame(JitterFrame(key, 0))
    for i in range(SLOT_QUEUE_FRAMES["video"]):
        video_pub._on_frame(JitterFrame(inter[0], 3000 * (i + 1)))
    # the queue was full: everything queued went, and an inter frame cannot restart it
    assert video._queue.qsize() == 0
    video_pub._on_frame(JitterFrame(key, 999_000))
    assert bytes(await video.recv()) == key


async def test_stopped_slot_forwards_nothing(pc: RTCPeerConnection) -> None:
    pub = publication(pc, "audio", "a")
    slot = SlotTrack("audio", "2")
    slot.assign(pub)
    slot.stop()
    pub._on_frame(JitterFrame(b"x", 0))
    assert slot.forwarded == 0 and slot.publication is None


async def test_audio_to_a_thin_downlink_goes_in_60_ms_packets(pc: RTCPeerConnection) -> None:
    pub = publication(pc, "audio", "a")
    slot = SlotTrack("audio", "2")
    slot.assign(pub)
    frame = bytes((9 << 3,))  # SILK wideband 20 ms, mono: the TOC byte, then the frame
    assert slot.set_packed(True) and not slot.set_packed(True)
    for i in range(4):
        pub._on_frame(JitterFrame(frame + bytes([i]), 48_000 + i * 960))
    joined = await slot.recv()
    assert bytes(joined) == bytes((9 << 3 | 3, 3)) + b"\0\1\2"  # one code 3 packet
    assert slot._queue.qsize() == 0 and slot.forwarded == 4
    # the fourth frame is not held back for long when nothing follows (DTX, a gap)
    late = await asyncio.wait_for(slot.recv(), PACKING_WAIT_S + 0.5)
    assert bytes(late) == frame + b"\3"
    assert (late.pts or 0) - (joined.pts or 0) == 2880
    # back to a wide link: what was held goes at once, then frames go as they came
    pub._on_frame(JitterFrame(frame + b"\4", 48_000 + 4 * 960))
    assert slot.set_packed(False)
    pub._on_frame(JitterFrame(frame + b"\5", 48_000 + 5 * 960))
    assert [bytes(await slot.recv()) for _ in range(2)] == [frame + b"\4", frame + b"\5"]
    assert not SlotTrack("video", "3").set_packed(True)  # video is never joined


async def test_audio_goes_on_packet_by_packet_not_through_aiortcs_jitter_buffer(
    pc: RTCPeerConnection,
) -> None:
    pub = publication(pc, "audio", "a")
    slot = SlotTrack("audio", "2")
    slot.assign(pub)
    tap = pc.getTransceivers()[0].receiver._RTCRtpReceiver__jitter_buffer  # type: ignore[attr-defined]

    def packet(seq: int) -> RtpPacket:
        rtp = RtpPacket(sequence_number=seq % 65536, timestamp=seq * 960)
        rtp._data = bytes([seq % 256])  # type: ignore[attr-defined]
        return rtp

    # a loss does not hold back what follows (aiortc's buffer waited for 16 packets)
    for seq in (65534, 65535, 1, 2):  # 0 lost, across the wrap
        assert tap.add(packet(seq)) == (False, None)
    assert [bytes(await slot.recv()) for _ in range(4)] == [b"\xfe", b"\xff", b"\1", b"\2"]
    # one that comes after a later one has had its turn: dropped, not sent out of order
    tap.add(packet(0))
    assert pub.late == 1 and slot._queue.qsize() == 0
    # a sender that starts its numbers afresh is followed after a while
    for seq in range(100, 100 + 30):
        tap.add(packet(seq + 40000))
    assert slot._queue.qsize() > 0
