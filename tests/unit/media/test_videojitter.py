"""The video jitter buffer gives up a packet lost for good and waits for a keyframe."""

from __future__ import annotations

import pytest
from aiortc import RTCPeerConnection
from aiortc.rtp import RtpPacket

from siakdesk.media.videojitter import HOLE_TIMEOUT_S, HoleSkippingJitterBuffer, install

KEY = b"\x00\x00\x00\x9d\x01\x2a\xa0\x00\x5a\x00" + b"k" * 20  # a 160x90 VP8 keyframe's header
DELTA = b"\x01" + b"d" * 30


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def packet(seq: int, frame: int, data: bytes) -> RtpPacket:
    p = RtpPacket(sequence_number=seq, timestamp=3000 * frame)
    p._data = data  # type: ignore[attr-defined]  # what aiortc's receiver depayloads
    return p


def test_frames_pass_while_nothing_is_lost() -> None:
    buffer = HoleSkippingJitterBuffer(Clock())
    out = [buffer.add(packet(seq, seq, KEY if seq == 0 else DELTA)) for seq in range(5)]
    frames = [frame for _pli, frame in out if frame is not None]
    assert len(frames) == 4 and not any(pli for pli, _ in out)  # the last waits for the next


def test_a_hole_is_given_up_a_keyframe_asked_for_and_awaited() -> None:
    clock = Clock()
    buffer = HoleSkippingJitterBuffer(clock)
    buffer.add(packet(0, 0, KEY))
    buffer.add(packet(1, 1, DELTA))  # frame 0 out
    # packet 2 (frame 2) is lost for good; frames 3.. come
    results = []
    for seq in range(3, 12):
        clock.now += 0.1
        results.append(buffer.add(packet(seq, seq, DELTA)))
    assert clock.now > HOLE_TIMEOUT_S
    # aiortc's buffer would hold them all back until 512 packets came: here a keyframe is
    # asked for once the hole is older than the timeout, and no broken frame goes out
    assert any(pli for pli, _ in results)
    assert all(frame is None for _, frame in results)
    assert buffer.holes_skipped == 1
    clock.now += 0.1
    assert buffer.add(packet(12, 12, KEY)) == (False, None)
    clock.now += 0.1
    _pli, frame = buffer.add(packet(13, 13, DELTA))  # the keyframe is complete: it goes out
    assert frame is not None and frame.data == KEY and frame.timestamp == 3000 * 12
    clock.now += 0.1
    _pli, frame = buffer.add(packet(14, 14, DELTA))
    assert frame is not None and frame.data == DELTA


def test_the_keyframe_is_asked_for_again_while_none_comes() -> None:
    clock = Clock()
    buffer = HoleSkippingJitterBuffer(clock)
    buffer.add(packet(0, 0, KEY))
    plis = 0
    for seq in range(2, 40):  # packet 1 never comes, nor a keyframe: 3.8 s
        clock.now += 0.1
        pli, frame = buffer.add(packet(seq, seq, DELTA))
        plis += pli
        assert frame is None
    assert 3 <= plis <= 5


def test_a_flood_s_holes_are_given_up_together_and_the_next_keyframe_shows() -> None:
    """A flood that lost every third packet for 1.8 s: once it is over, the picture is
    back at the next keyframe, not after each hole has waited its own timeout in turn."""
    clock = Clock()
    buffer = HoleSkippingJitterBuffer(clock)
    buffer.add(packet(0, 0, KEY))
    plis = 0
    for seq in range(1, 120):  # the flood, then 0.6 s of a clear link
        clock.now += 0.02
        if seq % 3 or seq >= 90:
            plis += buffer.add(packet(seq, seq, DELTA))[0]
    clock.now += 0.02
    plis += buffer.add(packet(120, 120, KEY))[0]
    clock.now += 0.02
    _pli, frame = buffer.add(packet(121, 121, DELTA))
    assert frame is not None and frame.data == KEY
    assert plis <= 3  # one a second while it waits, not one a hole


def test_a_late_retransmission_fills_its_hole_and_nothing_is_skipped() -> None:
    clock = Clock()
    buffer = HoleSkippingJitterBuffer(clock)
    buffer.add(packet(0, 0, KEY))
    for seq in range(2, 8):  # packet 1 is lost; its retransmission comes 0.5 s later
        clock.now += 0.1
        assert buffer.add(packet(seq, seq, DELTA)) == (False, None)
    _pli, frame = buffer.add(packet(1, 1, DELTA))
    assert frame is not None and buffer.holes_skipped == 0


async def test_it_replaces_the_video_receivers_buffer_and_nothing_else() -> None:
    pc = RTCPeerConnection()
    try:
        video = pc.addTransceiver("video", direction="recvonly").receiver
        buffer = install(video)
        assert video._RTCRtpReceiver__jitter_buffer is buffer  # type: ignore[attr-defined]
        audio = pc.addTransceiver("audio", direction="recvonly").receiver
        with pytest.raises(RuntimeError, match="no video jitter buffer"):
            install(audio)
    finally:
        await pc.close()
