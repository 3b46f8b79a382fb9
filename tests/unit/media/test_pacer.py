"""The video pacer: video bursts leave at the pacing rate, audio, RTCP and probes at once."""

from __future__ import annotations

import asyncio

import pytest
from aiortc.rtp import RtpPacket

from siakdesk.media import probe
from siakdesk.media.pacer import BURST_MIN_BYTES, PACE_FACTOR, WIRE_OVERHEAD, VideoPacer
from siakdesk.media.videoladder import LADDER, VideoLadder

VIDEO, RTX, AUDIO = 1111, 2222, 3333


def rtp(ssrc: int, size: int = 1000, padding_only: bool = False) -> bytes:
    packet = RtpPacket(payload_type=96, sequence_number=1, timestamp=0, ssrc=ssrc)
    if padding_only:
        packet.padding_size = probe.PADDING_BYTES
    else:
        packet.payload = b"x" * (size - 12)
    return packet.serialize()


class Transport:
    """An aiortc DTLS transport's send path, as far as the pacer sees it."""

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.sent: list[tuple[float, int]] = []  # (when, ssrc)

    async def _send_rtp(self, data: bytes) -> None:
        self.sent.append((self.clock[0], int.from_bytes(data[8:12], "big")))


def paced(rate_kbps: float | None) -> tuple[VideoPacer, Transport, list[float]]:
    clock = [0.0]

    async def sleep(seconds: float) -> None:
        # what else is ready runs first, now; then the pacer's wait has passed
        for _ in range(3):
            await asyncio.sleep(0)
        clock[0] += seconds

    pacer = VideoPacer(clock=lambda: clock[0], sleep=sleep)
    pacer.fixed_kbps = rate_kbps
    transport = Transport(clock)
    assert pacer.install(transport, VIDEO, RTX)
    return pacer, transport, clock


async def test_a_video_burst_leaves_at_the_rate_and_audio_does_not_wait_behind_it() -> None:
    pacer, transport, _ = paced(200.0)  # 25 000 bytes a second
    video = [transport._send_rtp(rtp(VIDEO)) for _ in range(10)]  # a 10 KB picture
    audio = [transport._send_rtp(rtp(AUDIO, 100)) for _ in range(3)]
    await asyncio.gather(*video, *audio)
    audio_at = [at for at, ssrc in transport.sent if ssrc == AUDIO]
    video_at = [at for at, ssrc in transport.sent if ssrc == VIDEO]
    assert audio_at == [0.0, 0.0, 0.0]  # at once, though 10 KB of video came first
    assert len(video_at) == 10
    # what the bucket holds goes at once, the rest at 25 000 bytes a second
    wire = 10 * (1000 + WIRE_OVERHEAD)
    assert abs(video_at[-1] - (wire - BURST_MIN_BYTES) / 25_000) < 0.01, video_at
    assert pacer.delayed >= 6 and pacer.longest_wait_s == video_at[-1]


async def test_a_retransmission_never_waits_but_takes_its_bytes_from_the_bucket() -> None:
    # aiortc retransmits from inside its RTCP handling, the transport's receive loop
    pacer, transport, clock = paced(200.0)
    for _ in range(5):
        await transport._send_rtp(rtp(RTX))
    assert clock[0] == 0.0 and len(transport.sent) == 5 and pacer.delayed == 0
    await transport._send_rtp(rtp(VIDEO))  # the media after them waits for their bytes
    assert clock[0] == pytest.approx((6 * (1000 + WIRE_OVERHEAD) - BURST_MIN_BYTES) / 25_000)


async def test_rtcp_probes_and_an_unpaced_pacer_send_at_once() -> None:
    pacer, transport, clock = paced(100.0)
    report = bytes([0x80, 201]) + bytes(30)  # an RTCP receiver report
    padding = rtp(RTX, padding_only=True)
    for _ in range(20):
        await transport._send_rtp(padding)  # a probe measures the link as it is
        await transport._send_rtp(report)
    assert {at for at, _ in transport.sent} == {0.0} and pacer.delayed == 0
    pacer.fixed_kbps = None  # video off, or no rung yet: nothing is paced
    await asyncio.gather(*[transport._send_rtp(rtp(VIDEO)) for _ in range(20)])
    assert clock[0] == 0.0 and len(transport.sent) == 60


def test_the_rate_follows_the_rung_and_a_transport_without_the_hook_is_left_alone() -> None:
    pacer = VideoPacer()
    ladder = VideoLadder()
    pacer.ladder = ladder
    ladder.index = 2  # 320x180 at 150 kbit/s
    assert pacer.rate_kbps == PACE_FACTOR * 150
    ladder.index = len(LADDER) - 1  # video off
    assert pacer.rate_kbps is None
    assert not pacer.install(object(), VIDEO, None)
