"""The uplink's part in probing: a failed probe's answer becomes the estimate, and what
audio is told the link carries."""

from __future__ import annotations

import asyncio
import time
import types

import pytest

from siakdesk.core import uplink as uplink_module
from siakdesk.core.uplink import Uplink
from siakdesk.media.probe import Sent
from siakdesk.media.videoladder import LadderVp8Encoder, VideoLadder

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


def test_the_video_encoder_gets_the_estimate_a_probe_left_at_once() -> None:
    ladder = VideoLadder()
    uplink = uplink_with_probe_out(ladder)
    video = LadderVp8Encoder()
    video.ladder = ladder
    video.set_estimate(300.0)  # the last report's
    uplink._video = video
    uplink.estimate.kbps = 300.0
    uplink.probe_result(700.0, packets=30, span_s=0.3, now=1.0)  # the top passed
    # not 300 until the next report: with it the ladder would go straight back down
    assert video.estimate_kbps == 700.0
    assert str(ladder.update(video.estimate_kbps, 1.1)) == "640x360@15"


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


async def test_a_probe_goes_out_in_the_next_pause_of_the_office_s_speech(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent_at: list[float] = []

    async def send_padding(sender: object, kbps: float, seconds: float | None = None) -> Sent:
        sent_at.append(time.monotonic())
        return SENT

    monkeypatch.setattr(uplink_module.probe, "send_padding", send_padding)
    ladder = VideoLadder()
    ladder.can_probe = True
    ladder.start_low()
    ladder.update(None, 0.0)
    wanted = ladder.probe_wanted
    assert wanted is not None
    voice = types.SimpleNamespace(quiet_for=0.0)  # the office is talking
    uplink = Uplink()
    asked = time.monotonic()
    task = asyncio.ensure_future(uplink._send_probe(None, ladder, wanted, 300.0, voice))  # type: ignore[arg-type]
    await asyncio.sleep(0.3)
    assert not sent_at  # held while the office talks
    voice.quiet_for = 0.06  # a pause
    assert await task == SENT and len(sent_at) == 1
    assert sent_at[0] - asked >= 0.3
    # the answer is waited for from when it went out, not from when it was asked for
    assert ladder._probe_asked_at == pytest.approx(sent_at[0], abs=0.02)
    # no pause comes (one who talks on): it goes out all the same, after a while
    monkeypatch.setattr(uplink_module, "PROBE_PAUSE_WAIT_S", 0.2)
    voice.quiet_for = 0.0
    await uplink._send_probe(None, ladder, wanted, 300.0, voice)  # type: ignore[arg-type]
    assert len(sent_at) == 2 and sent_at[1] - sent_at[0] >= 0.15
    # a follow-up (a probe passed a moment ago: the link is likely back from a drop)
    # waits for a pause FOLLOW_UP_PAUSE_WAIT_S at most, not PROBE_PAUSE_WAIT_S
    monkeypatch.setattr(uplink_module, "PROBE_PAUSE_WAIT_S", 3.0)
    monkeypatch.setattr(uplink_module, "FOLLOW_UP_PAUSE_WAIT_S", 0.1)
    ladder._passed_at = time.monotonic()
    assert ladder.following_up(time.monotonic())
    before = time.monotonic()
    await uplink._send_probe(None, ladder, wanted, 300.0, voice)  # type: ignore[arg-type]
    assert len(sent_at) == 3 and 0.08 <= sent_at[2] - before < 1.0


async def test_a_probe_waiting_for_a_pause_stops_with_its_connection() -> None:
    ladder = VideoLadder()
    ladder.can_probe = True
    ladder.start_low()
    ladder.update(None, 0.0)
    uplink = Uplink()
    voice = types.SimpleNamespace(quiet_for=0.0)  # talking: the probe waits
    uplink._probe(object(), ladder, voice)  # type: ignore[arg-type]
    await asyncio.sleep(0)  # the task starts waiting
    assert uplink._probe_task is not None and not uplink._probe_task.done()
    await uplink.stop_probe()  # the session closes its media
    assert uplink._probe_task is None
