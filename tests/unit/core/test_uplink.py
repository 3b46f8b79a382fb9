"""The uplink's part in probing: a failed probe's answer becomes the estimate, and what
audio is told the link carries."""

from __future__ import annotations

import asyncio

from siakdesk.core.uplink import Uplink
from siakdesk.media.probe import Sent
from siakdesk.media.videoladder import VideoLadder

#: what a probe sent: 30 padding packets over 0.29 s
SENT = Sent(packets=30, span_s=0.29)


def uplink_with_probe_out(ladder: VideoLadder) -> Uplink:
    uplink = Uplink()
    uplink._ladder = ladder
    ladder.can_probe = True
    ladder.start_low()
    ladder.update(None, 0.0)  # asks for a probe of the top rung
    assert ladder.probe_wanted is not None

    async def sent() -> Sent:
        return SENT

    loop = asyncio.new_event_loop()
    uplink._probe_task = loop.create_task(sent())
    loop.run_until_complete(uplink._probe_task)
    loop.close()
    return uplink


def test_a_failed_probe_brings_the_estimate_and_audio_s_link_down_to_what_arrived() -> None:
    ladder = VideoLadder()
    uplink = uplink_with_probe_out(ladder)
    assert uplink.estimate.kbps == 800
    uplink.probe_result(242.0, packets=22, span_s=0.55, now=1.0)  # queued and dropped
    assert uplink.estimate.kbps == 242.0 and ladder.probes_failed == 1
    assert [(received, wanted) for _, received, wanted in uplink.probes] == [(242.0, 665.0)]
    # the estimate may grow again later; audio goes by the measurement for a minute
    assert uplink._audio_link(900.0, now=30.0) == 242.0
    assert uplink._audio_link(900.0, now=62.0) == 900.0


def test_a_passed_probe_raises_the_estimate_to_what_arrived_if_it_was_under() -> None:
    ladder = VideoLadder()
    uplink = uplink_with_probe_out(ladder)
    # all of it, over about the time it was sent in: passed, whatever the rate read
    uplink.probe_result(600.0, packets=30, span_s=0.31, now=1.0)
    assert uplink.estimate.kbps == 800 and ladder.probes_passed == 1
    # and an estimate under what a passed probe carried comes up to it
    uplink.estimate.kbps = 300.0
    ladder.probe_wanted = 400.0
    uplink.probe_result(450.0, packets=30, span_s=0.3, now=2.0)
    assert uplink.estimate.kbps == 450.0
    assert uplink._audio_link(800.0, now=2.0) == 800.0


def test_an_answer_nobody_waits_for_is_ignored() -> None:
    uplink = Uplink()
    uplink.probe_result(
        100.0, packets=30, span_s=0.3, now=1.0
    )  # no ladder yet (an old answer after a reconnect)
    assert uplink.estimate.kbps == 800 and not uplink.probes


def test_with_video_off_audio_is_told_little_more_than_what_is_sent() -> None:
    ladder = VideoLadder()
    uplink = Uplink()
    uplink._ladder = ladder
    uplink.estimate.update(0.0, 49.0, 0.0, 0.3)  # 60 ms packets, nothing else
    assert uplink._audio_link(139.0, now=1.0) == 139.0  # video on: the estimate
    ladder.update(30.0, 1.0)
    assert ladder.rung.off
    assert 100 < uplink._audio_link(139.0, now=1.0) < 120  # stays a "thin" link
