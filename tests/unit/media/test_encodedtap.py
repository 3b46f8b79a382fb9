"""The seam in aiortc's receiver that the forwarding unit and load-test bots rely on."""

from __future__ import annotations

import queue

import pytest
from aiortc import RTCPeerConnection
from aiortc.jitterbuffer import JitterFrame

from siakdesk.media.encodedtap import EncodedFrameTap, tap_receiver


async def test_tap_diverts_frames_and_passes_the_stop_sentinel() -> None:
    pc = RTCPeerConnection()
    try:
        receiver = pc.addTransceiver("video", direction="recvonly").receiver
        seen: list[JitterFrame] = []
        tap_receiver(receiver, seen.append)
        tap = receiver._RTCRtpReceiver__decoder_queue  # type: ignore[attr-defined]
        assert isinstance(tap, EncodedFrameTap)
        frame = JitterFrame(b"\x00" * 10, 3000)
        tap.put((None, frame))
        assert seen == [frame] and tap.qsize() == 0
        tap.put(None)
        assert tap.get_nowait() is None
    finally:
        await pc.close()


def test_tap_refuses_what_it_cannot_tap() -> None:
    class NotAReceiver:
        pass

    with pytest.raises(RuntimeError, match="no decoder queue"):
        tap_receiver(NotAReceiver(), lambda frame: None)  # type: ignore[arg-type]
    assert issubclass(EncodedFrameTap, queue.Queue)
