"""Probe padding and the server's measurement of a probe train."""

from __future__ import annotations

import asyncio
from typing import Any

from aiortc.rtp import RtpPacket

from siakdesk.media import probe
from siakdesk.media.probe import ArrivalMeter, is_padding_only, padding_packet


class FakeTransport:
    def __init__(self) -> None:
        self.sent: list[tuple[float, bytes]] = []

    async def _send_rtp(self, data: bytes) -> None:
        self.sent.append((asyncio.get_running_loop().time(), data))


class FakeSender:
    """The three private fields of aiortc's sender a probe uses, and a transport."""

    def __init__(self) -> None:
        self._RTCRtpSender__rtx_payload_type = 97
        self._RTCRtpSender__rtx_sequence_number = 65534
        self._rtx_ssrc = 1234
        self.transport: Any = FakeTransport()


def test_padding_packets_are_rtx_padding_only_and_count_on() -> None:
    sender = FakeSender()
    first, second, third = (padding_packet(sender) for _ in range(3))
    parsed = [RtpPacket.parse(p) for p in (first, second, third)]
    assert [p.sequence_number for p in parsed] == [65534, 65535, 0]
    assert {(p.payload_type, p.ssrc, p.payload, p.padding_size) for p in parsed} == {
        (97, 1234, b"", probe.PADDING_BYTES)
    }
    assert all(is_padding_only(p) for p in (first, second, third))


def test_media_with_padding_or_extensions_is_not_taken_for_a_probe() -> None:
    media = RtpPacket(payload_type=96, sequence_number=1, timestamp=2, ssrc=3, payload=b"x" * 50)
    assert not is_padding_only(media.serialize())
    media.padding_size = 20  # our Opus copies ride in RTP padding of real packets
    assert not is_padding_only(media.serialize())
    assert not is_padding_only(b"\xa0" + b"\x00" * 5)  # too short to be anything
    # a padding-only packet with a header extension is still one
    data = bytearray(b"\xb0\x61\x00\x01" + b"\x00" * 8 + b"\xbe\xde\x00\x01" + b"\x10\xff\x00\x00")
    data += b"\x00" * 9 + b"\x0a"
    assert is_padding_only(bytes(data))


def test_no_rtx_no_probe() -> None:
    sender = FakeSender()
    sender._RTCRtpSender__rtx_payload_type = None  # type: ignore[assignment]
    assert not probe.can_probe(sender)
    assert asyncio.run(probe.send_padding(sender, 500)) == probe.Sent()


def test_padding_goes_out_paced_at_the_asked_rate() -> None:
    sender = FakeSender()
    sent = asyncio.run(probe.send_padding(sender, 400, seconds=0.3))
    times = [at for at, _ in sender.transport.sent]
    wire = sent.packets * (probe.PADDING_BYTES + probe.PADDING_OVERHEAD)
    assert 0.9 * 400 * 0.3 * 1000 / 8 <= wire <= 1.05 * 400 * 0.3 * 1000 / 8
    assert sent.packets == len(times) and abs(sent.span_s - (times[-1] - times[0])) < 0.01
    assert times[-1] - times[0] >= 0.25  # spread over the probe, not one burst
    first_tenth = [t for t in times if t - times[0] < 0.1]
    assert len(first_tenth) <= 0.45 * len(times)


def arrivals_through(capacity_kbps: float, send: list[tuple[float, int, bool]]) -> list:
    """When each packet comes out of a token bucket of ``capacity_kbps`` with a 3000-byte
    burst (what the namespace lab's ``tbf`` does), given (send time, bytes, probe)."""
    out, free_at, tokens, last = [], 0.0, 3000.0, 0.0
    rate = capacity_kbps * 1000 / 8
    for at, rtp_size, padding in send:
        size = rtp_size + probe.WIRE_OVERHEAD  # tbf counts IP packets
        tokens = min(3000.0, tokens + (at - last) * rate)
        last = at
        if tokens >= size and free_at <= at:
            tokens -= size
            out.append((at, rtp_size, padding))
        else:
            free_at = max(free_at, at) + size / rate
            out.append((free_at, rtp_size, padding))
    return out


def train(media_kbps: float, padding_kbps: float, seconds: float = 0.3) -> list:
    """Media in 1000-byte packets and padding in probe-sized packets, evenly sent."""
    send = []
    pad = probe.PADDING_BYTES + 12
    for rate, size, padding in ((media_kbps, 1000, False), (padding_kbps, pad, True)):
        gap = size * 8 / (rate * 1000)
        t = 0.0
        while t < seconds:
            send.append((t, size, padding))
            t += gap
    return sorted(send)


def measure(capacity: float, media: float, padding: float) -> float:
    results: list[float] = []
    meter = ArrivalMeter(lambda kbps, n, span: results.append(kbps))
    for at, size, padding_only in arrivals_through(capacity, train(media, padding)):
        packet = RtpPacket(payload_type=97, sequence_number=0, timestamp=0, ssrc=1)
        if padding_only:
            packet.padding_size = probe.PADDING_BYTES
        else:
            packet.payload = b"x" * (size - 12)
        meter.note(packet.serialize(), at=at)
    meter.finish()
    assert len(results) == 1
    return results[0]


def test_the_server_measures_what_the_link_carries_not_what_was_sent() -> None:
    # 200 kbit/s of media plus 250 of padding: a 256 kbit/s link carries 256 of it
    thin = measure(256, 200, 250)
    assert 230 <= thin <= 300, thin
    # a 2 Mbit/s link carries all of it (and the headers the server adds to each packet)
    wide = measure(2000, 200, 250)
    assert 420 <= wide <= 560, wide


def test_a_train_too_short_to_measure_is_not_reported() -> None:
    results: list[float] = []
    meter = ArrivalMeter(lambda kbps, n, span: results.append(kbps))
    packet = RtpPacket(payload_type=97, sequence_number=0, timestamp=0, ssrc=1)
    packet.padding_size = probe.PADDING_BYTES
    for n in range(3):
        meter.note(packet.serialize(), at=n * 0.01)
    meter.finish()
    assert results == [] and meter.trains == 0


def test_the_meter_wraps_the_transport_s_rtp_hook_or_says_it_cannot() -> None:
    class Transport:
        def __init__(self) -> None:
            self.handed: list[bytes] = []

        async def _handle_rtp_data(self, data: bytes, arrival_time_ms: int) -> None:
            self.handed.append(data)

    seen: list[bytes] = []
    meter = ArrivalMeter(lambda kbps, n, span: None)
    meter.note = lambda data, at=None: seen.append(data)  # type: ignore[method-assign]
    transport = Transport()
    assert ArrivalMeter.install(transport, meter)
    asyncio.run(transport._handle_rtp_data(b"rtp", 0))
    assert seen == [b"rtp"] and transport.handed == [b"rtp"]  # seen, and handed on
    # an aiortc without the hook: no meter (probes go unanswered), no crash
    assert not ArrivalMeter.install(object(), meter)


def test_a_late_loop_still_sends_the_whole_probe() -> None:
    sender = FakeSender()

    async def late() -> probe.Sent:
        real_sleep = asyncio.sleep

        async def slow(seconds: float) -> None:  # a busy loop wakes 80 ms late
            await real_sleep(seconds + 0.08)

        probe.asyncio.sleep = slow  # type: ignore[assignment]
        try:
            return await probe.send_padding(sender, 400, seconds=0.3)
        finally:
            probe.asyncio.sleep = real_sleep

    sent = asyncio.run(late())
    wire = sent.packets * (probe.PADDING_BYTES + probe.PADDING_OVERHEAD)
    assert wire >= 0.9 * 400 * 0.3 * 1000 / 8


def test_a_probe_passes_when_its_padding_came_whole_and_on_time() -> None:
    sent = probe.Sent(packets=30, span_s=0.29)
    assert probe.passed(sent, 30, 0.30)
    assert probe.passed(sent, 28, 0.34)  # a lost packet or two, a busy server
    # four of 39 lost at random on a 3 % loss link, the rest over the time sent in
    assert probe.passed(probe.Sent(packets=39, span_s=0.743), 35, 0.744)
    assert not probe.passed(probe.Sent(packets=39, span_s=0.743), 33, 0.744)
    assert not probe.passed(probe.Sent(packets=19, span_s=0.27), 19, 0.37)  # 128 kbit/s
    assert not probe.passed(sent, 20, 0.30)  # the link dropped a third of it
    assert not probe.passed(sent, 30, 0.55)  # it all came, through a queue
    assert not probe.passed(probe.Sent(packets=3, span_s=0.01), 3, 0.01)  # too little


def test_a_small_probe_lasts_long_enough_to_be_more_than_a_burst() -> None:
    assert probe.duration(600) == probe.PROBE_S  # 15 KB in 0.2 s
    assert 0.85 < probe.duration(106) < 0.95  # 12 KB: four of tbf's bursts
    assert probe.duration(20) == probe.PROBE_MAX_S
    assert probe.duration(0) == 0.0
