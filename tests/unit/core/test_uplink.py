"""The uplink's part in probing: a failed probe's answer becomes the estimate, and what
audio is told the link carries."""

from __future__ import annotations

from siakdesk.core.uplink import Uplink
from siakdesk.media.videoladder import VideoLadder


def uplink_with_probe_out(ladder: VideoLadder) -> Uplink:
    uplink = Uplink()
    uplink._ladder = ladder
    ladder.can_probe = True
    ladder.start_low()
    ladder.update(None, 0.0)  # asks for a probe of the top rung
    assert ladder.probe_wanted is not None
    return uplink


def test_a_failed_probe_brings_the_estimate_and_audio_s_link_down_to_what_arrived() -> None:
    ladder = VideoLadder()
    uplink = uplink_with_probe_out(ladder)
    assert uplink.estimate.kbps == 800
    uplink.probe_result(242.0, now=1.0)
    assert uplink.estimate.kbps == 242.0
    assert [(received, wanted) for _, received, wanted in uplink.probes] == [(242.0, 665.0)]
    # the estimate may grow again later; audio goes by the measurement for a minute
    assert uplink._audio_link(900.0, now=30.0) == 242.0
    assert uplink._audio_link(900.0, now=62.0) == 900.0


def test_a_passed_probe_leaves_the_estimate_alone() -> None:
    ladder = VideoLadder()
    uplink = uplink_with_probe_out(ladder)
    uplink.probe_result(700.0, now=1.0)
    assert uplink.estimate.kbps == 800 and ladder.probes_passed == 1
    assert uplink._audio_link(800.0, now=2.0) == 800.0


def test_an_answer_nobody_waits_for_is_ignored() -> None:
    uplink = Uplink()
    uplink.probe_result(100.0, now=1.0)  # no ladder yet (an old answer after a reconnect)
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
