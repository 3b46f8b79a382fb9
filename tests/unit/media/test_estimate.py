"""The hop estimate on scripted receiver reports: down at once on congestion, up when clear."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

from siakdesk.media.estimate import LinkEstimate, LoopLag, Reading, Report, RttMeter, SenderReports


def clear_link(seconds: int, sent_kbps: float, rtt: float, start_kbps: float = 800) -> LinkEstimate:
    """An estimate after ``seconds`` of one clear report a second."""
    estimate = LinkEstimate(start_kbps=start_kbps)
    for t in range(seconds):
        estimate.update(float(t), sent_kbps=sent_kbps, loss=0.0, rtt=rtt)
    return estimate


def test_heavy_loss_cuts_to_what_got_through_and_holds() -> None:
    estimate = LinkEstimate(start_kbps=800)
    for t in range(3):  # past the start
        estimate.update(t * 0.5, sent_kbps=600, loss=0.0, rtt=0.05)
    before = estimate.kbps
    # the link became 256 kbit/s: 600 sent, 57 % lost; one report could be a blackout
    assert estimate.update(1.5, sent_kbps=600, loss=0.57, rtt=0.05) == before
    # two in a row: congestion, down to what got through
    assert estimate.update(2.0, sent_kbps=600, loss=0.57, rtt=0.05) < 256
    low = estimate.kbps
    # a report right after still measured the time before the senders slowed: no cut
    assert estimate.update(2.5, sent_kbps=600, loss=0.57, rtt=0.05) == low
    assert estimate.update(3.5, sent_kbps=200, loss=0.0, rtt=0.05) == low  # held for 2 s
    assert estimate.update(4.5, sent_kbps=200, loss=0.0, rtt=0.05) > low  # then grows


def test_a_flooded_start_is_taken_at_once() -> None:
    estimate = LinkEstimate(start_kbps=800)
    # the first report of a new stream on a 64 kbit/s link: no second report to wait for
    assert estimate.update(1.0, sent_kbps=600, loss=0.85, rtt=0.05) < 80


def test_a_queue_building_is_congestion_before_any_loss() -> None:
    estimate = clear_link(5, sent_kbps=500, rtt=0.06)
    estimate.update(5.0, sent_kbps=500, loss=0.0, rtt=0.30)  # 240 ms of queue, once
    assert estimate.kbps > 500  # one late report: a busy computer as often as a queue
    estimate.update(6.0, sent_kbps=500, loss=0.0, rtt=0.32)  # and again: a queue
    assert estimate.kbps <= 0.85 * 500


def test_a_few_percent_loss_holds_while_a_queue_builds_and_clear_grows_8_percent() -> None:
    estimate = LinkEstimate(start_kbps=300)
    estimate.update(0.0, sent_kbps=250, loss=0.0, rtt=0.15)
    for t in range(1, 10):  # 3 % loss and 100 ms of queue: the link is filling up
        estimate.update(float(t), sent_kbps=250, loss=0.03, rtt=0.25)
    assert estimate.kbps == 300
    for t in range(10, 21):
        estimate.update(float(t), sent_kbps=250, loss=0.0, rtt=0.15)
    assert abs(estimate.kbps - 300 * 1.08**11) < 1  # 11 s clear since the last lossy report


def test_bounds() -> None:
    estimate = LinkEstimate(start_kbps=100, min_kbps=24, max_kbps=2500)
    for t in range(8):
        estimate.update(float(t), sent_kbps=10, loss=0.9, rtt=None)
    assert estimate.kbps == 24
    for t in range(1, 200):
        estimate.update(float(t), sent_kbps=10, loss=0.0, rtt=None)
    assert estimate.kbps == 2500


def test_the_loss_of_an_outage_is_not_taken_for_congestion() -> None:
    estimate = LinkEstimate(start_kbps=800)
    estimate.update(0.0, sent_kbps=500, loss=0.0, rtt=0.05)
    # 8 s without reports (the link was down); the first ones after it carry its loss
    estimate.update(8.0, sent_kbps=100, loss=0.9, rtt=0.05)
    estimate.update(9.0, sent_kbps=500, loss=0.4, rtt=0.05)
    assert estimate.kbps == 800
    estimate.update(10.5, sent_kbps=500, loss=0.5, rtt=0.05)  # still losing: congestion
    estimate.update(11.0, sent_kbps=500, loss=0.5, rtt=0.05)
    assert estimate.kbps <= 0.85 * 250


def test_our_own_busy_loop_is_not_taken_for_a_queue() -> None:
    estimate = clear_link(5, sent_kbps=500, rtt=0.06)
    # the reports waited 400 ms for our loop: the RTT reads 460 ms, the link has no queue
    for t in range(5, 8):
        estimate.update(float(t), sent_kbps=500, loss=0.0, rtt=0.46, busy_s=0.4)
    assert estimate.kbps > 800
    # the same rise with the loop on time is a queue
    estimate.update(8.0, sent_kbps=500, loss=0.0, rtt=0.46)
    estimate.update(9.0, sent_kbps=500, loss=0.0, rtt=0.46)
    assert estimate.kbps <= 0.85 * 500


def test_loop_lag_keeps_the_worst_lateness_of_its_window() -> None:
    lag = LoopLag(window_s=3.0)
    lag.note(10.0, 0.005)  # timer noise
    assert lag.recent(10.0) == 0.0
    lag.note(10.5, 0.4)
    lag.note(11.0, 0.1)
    assert lag.recent(12.0) == 0.4
    assert lag.recent(13.6) == 0.1  # the 400 ms hold-up is over 3 s ago
    lag.note(20.0, 0.0)
    assert lag.recent(20.0) == 0.0


async def test_loop_lag_measures_a_blocked_loop() -> None:
    lag = LoopLag()
    task = asyncio.ensure_future(lag.run())
    await asyncio.sleep(0.15)
    time.sleep(0.3)  # noqa: ASYNC251 - on purpose: a callback that holds the loop
    await asyncio.sleep(0.15)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert 0.15 < lag.recent(time.monotonic()) < 1.0


def test_rtt_is_taken_from_any_answered_sender_report() -> None:
    meter = RttMeter()
    meter.sent(lsr=1000, at=10.0)
    meter.sent(lsr=2000, at=11.0)
    # the answer to the older report comes after the newer one went out (a queue):
    # aiortc drops it; it is the sample that shows the queue
    meter.answered(lsr=1000, dlsr=int(0.2 * 65536), at=11.5)
    assert abs((meter.take() or 0) - 1.3) < 0.001
    assert meter.take() is None  # taken once
    meter.answered(lsr=999, dlsr=100, at=12.0)  # an unknown report: nothing
    meter.answered(lsr=2000, dlsr=0, at=12.0)  # no delay given: not an answer
    assert meter.take() is None


def test_random_loss_with_no_queue_is_a_lossy_radio_and_the_estimate_grows() -> None:
    estimate = LinkEstimate(start_kbps=60)
    for t in range(20):  # 3 % loss, the round trip steady at 300 ms: random loss
        estimate.update(float(t), sent_kbps=50, loss=0.03, rtt=0.30 + 0.01 * (t % 3))
    assert estimate.kbps > 60 * 1.08**15


def test_reports_slowed_by_a_full_link_are_not_an_outage() -> None:
    estimate = clear_link(4, sent_kbps=80, rtt=0.05, start_kbps=1500)
    # the link fell to 64 kbit/s: reports come 2.5 s apart, lossy, the RTT up
    estimate.update(5.5, sent_kbps=80, loss=0.6, rtt=0.7)
    estimate.update(8.0, sent_kbps=80, loss=0.2, rtt=1.2)
    assert estimate.kbps < 64


def test_a_queue_draining_after_a_cut_is_not_cut_again() -> None:
    estimate = clear_link(5, sent_kbps=600, rtt=0.05)
    estimate.update(5.0, sent_kbps=600, loss=0.0, rtt=0.40)
    estimate.update(6.0, sent_kbps=600, loss=0.0, rtt=0.45)  # a queue: cut
    cut = estimate.kbps
    assert cut <= 0.85 * 600
    # the senders slowed down; the queue is still there but going: no second cut on
    # what was sent while it drained
    estimate.update(7.5, sent_kbps=300, loss=0.0, rtt=0.35)
    estimate.update(8.5, sent_kbps=300, loss=0.0, rtt=0.25)
    assert estimate.kbps == cut


def test_loss_over_a_few_packets_is_not_a_loss_rate() -> None:
    # one packet of a 160x90 picture's five in a second: not 20 % loss
    assert Reading(60.0, [Report("video", 0.2, 0.05, 5)]).loss == 1 / 20
    # with the audio's 50 packets of the same second beside it
    assert Reading(60.0, [Report("video", 0.2, 0.05, 5), Report("audio", 0.0, 0.05, 50)]).loss == (
        1 / 55
    )
    # a flooded link loses as many of many
    assert Reading(600.0, [Report("audio", 0.6, 0.05, 50)]).loss == 0.6


class _Sender:
    """What :class:`SenderReports` reads of an aiortc sender."""

    def __init__(self) -> None:
        self.track = SimpleNamespace(kind="audio")
        self._ssrc = 1
        self.stats: list[Any] = []

    async def _send_rtcp(self, packets: list[Any]) -> None:
        pass

    async def _handle_rtcp_packet(self, packet: Any) -> None:
        pass

    async def getStats(self) -> dict[str, Any]:
        return {str(i): stat for i, stat in enumerate(self.stats)}


def test_sender_reports_count_the_packets_each_report_covers() -> None:
    sender = _Sender()
    reports = SenderReports()

    def report(at: int, sent: int, lost: int, fraction: float) -> list[Any]:
        return [
            SimpleNamespace(type="outbound-rtp", bytesSent=100 * sent, packetsSent=sent),
            SimpleNamespace(
                type="remote-inbound-rtp",
                timestamp=at,
                fractionLost=int(256 * fraction),
                packetsReceived=sent - lost,
                packetsLost=lost,
            ),
        ]

    async def run() -> list[Reading | None]:
        readings = []
        for at, sent, lost, fraction in ((1, 50, 0, 0.0), (2, 100, 10, 0.2), (2, 100, 10, 0.2)):
            sender.stats = report(at, sent, lost, fraction)
            readings.append(await reports.read([sender], float(at)))
        return readings

    first, second, third = asyncio.run(run())
    assert first is None  # no window yet to measure a rate over
    assert second is not None and second.reports[0].packets == 50
    assert abs(second.loss - 0.2) < 0.01
    assert third is None  # the same report again: nothing new


def test_after_a_cut_the_flood_s_late_reports_do_not_cut_again() -> None:
    estimate = LinkEstimate(start_kbps=800)
    # a 256 kbit/s link flooded at the start: 600 sent, 56 % lost
    assert 200 < estimate.update(1.0, sent_kbps=600, loss=0.56, rtt=0.66) < 256
    cut = estimate.kbps
    # the senders complied; the flood's late reports still read lossy: what they say
    # applies to what was sent then, not to the little sent now
    estimate.update(2.0, sent_kbps=124, loss=0.19, rtt=0.66)
    estimate.update(3.0, sent_kbps=54, loss=0.33, rtt=0.65)
    assert estimate.kbps == cut
    # once the flood is 4 s past, a sender over the link is cut again
    estimate.update(5.5, sent_kbps=400, loss=0.5, rtt=0.66)
    estimate.update(6.5, sent_kbps=400, loss=0.5, rtt=0.66)
    assert estimate.kbps < cut


def test_mid_meeting_a_cut_that_was_not_enough_is_followed_by_another() -> None:
    estimate = clear_link(6, sent_kbps=550, rtt=0.002)
    # the link fell to 256 kbit/s; the queue had not overflowed yet when the report was made
    estimate.update(6.0, sent_kbps=530, loss=0.2, rtt=0.2)
    estimate.update(6.5, sent_kbps=530, loss=0.2, rtt=0.2)
    first = estimate.kbps
    assert 300 < first < 400
    # the senders came under it, and still lose half: that is the link, cut again
    estimate.update(8.0, sent_kbps=340, loss=0.48, rtt=0.35)
    assert estimate.kbps < 0.7 * first


def test_a_link_whose_reports_alternate_between_light_and_heavy_loss_is_congested() -> None:
    estimate = clear_link(6, sent_kbps=160, rtt=1.6)
    before = estimate.kbps
    # a 64 kbit/s link under 160 kbit/s: never two heavy reports in a row
    for t, loss in ((6.0, 0.17), (7.0, 0.1), (8.0, 0.7), (9.0, 0.05), (10.0, 0.5)):
        estimate.update(t, sent_kbps=160, loss=loss, rtt=1.8)
    assert estimate.kbps < 0.5 * before
    # one heavy report among clear ones is still no congestion (a blackout, a handover)
    other = clear_link(6, sent_kbps=160, rtt=0.05)
    other.update(6.0, sent_kbps=160, loss=0.6, rtt=0.05)
    assert other.kbps >= before


def test_right_after_a_step_up_one_congested_report_is_enough() -> None:
    steady = clear_link(8, sent_kbps=200, rtt=0.3)
    probe = clear_link(8, sent_kbps=200, rtt=0.3)
    before = steady.kbps
    for estimate, probing in ((steady, False), (probe, True)):
        estimate.update(8.0, sent_kbps=400, loss=0.04, rtt=0.3, probing=probing)
        estimate.update(9.0, sent_kbps=400, loss=0.38, rtt=0.65, probing=probing)
    assert steady.kbps >= before  # one heavy report: a blackout as often as a full link
    assert probe.kbps < 0.85 * 400 * 0.62 + 1  # the probe flooded the link: back at once
