"""The forwarding unit's pure logic: keyframes, slot timestamps, gating, overflow."""

from __future__ import annotations

import fractions
from collections.abc import AsyncIterator

import pytest
from aiortc import RTCPeerConnection
from aiortc.jitterbuffer import JitterFrame

from siakdesk.media.encodedtap import EncodedFrameTap
from siakdesk.server.forwarding import (
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
