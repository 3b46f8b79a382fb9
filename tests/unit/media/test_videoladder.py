"""The video ladder: scripted estimates move it down fast and up slowly, without flapping;
the VP8 encoder on it sends the rung's size and rate and rebuilds its codec only on a rung
change."""

from __future__ import annotations

import fractions
import itertools

import av
import numpy as np
from aiortc.codecs.vpx import vp8_depayload

from siakdesk.media.videoladder import (
    AUDIO_SHARE_KBPS,
    FOLLOW_UP_WAIT_S,
    LADDER,
    PROBE_ANSWER_S,
    THIN_WAIT_FIRST_S,
    LadderVp8Encoder,
    Rung,
    VideoLadder,
)
from siakdesk.media.vp8 import is_vp8_keyframe


def run(ladder: VideoLadder, script: list[tuple[float, float]], step: float = 0.1) -> list[str]:
    """Feed (seconds, estimate kbit/s) segments; return the rung after each segment."""
    now, seen = 0.0, []
    for seconds, estimate in script:
        end = now + seconds
        while now < end:
            ladder.update(estimate, now)
            now += step
        seen.append(str(ladder.rung))
    return seen


def test_starts_at_the_top_and_holds_without_an_estimate() -> None:
    ladder = VideoLadder()
    assert str(ladder.update(None, 0.0)) == "640x360@15"


def test_a_first_connection_starts_low_and_a_passed_probe_takes_it_to_the_top() -> None:
    ladder = VideoLadder()
    ladder.can_probe = True
    ladder.start_low()
    assert str(ladder.update(None, 0.0)) == "320x180@12"
    # it asks at once for what the top rung and audio need, and holds until the answer
    assert ladder.probe_wanted == 500 * 1.25 + AUDIO_SHARE_KBPS and ladder.probe_asks == 1
    assert str(ladder.update(800.0, 0.5)) == "320x180@12"
    assert ladder.probe_done(1.0, 0.9 * ladder.probe_wanted, passed=True)
    assert str(ladder.update(800.0, 1.1)) == "640x360@15" and ladder.probe_wanted is None


def test_a_failed_start_probe_leaves_the_rung_to_the_estimate() -> None:
    ladder = VideoLadder()
    ladder.can_probe = True
    ladder.start_low()
    ladder.update(None, 0.0)
    assert not ladder.probe_done(1.0, 240.0, passed=False)  # a 256 kbit/s link
    # the uplink brings its estimate down to what arrived; 240 - 40 fits 320x180
    assert str(ladder.update(240.0, 1.1)) == "320x180@12"
    assert ladder.up_after_for(0) == THIN_WAIT_FIRST_S  # the top's wait: never carried
    # and 480x270's: it needs 340 kbit/s, and 240 arrived
    assert ladder.up_after_for(1) == THIN_WAIT_FIRST_S
    assert str(ladder.update(60.0, 1.2)) == "video off"  # and down at once as ever
    # a link that let 500 through has room for 480x270: only the top waits
    wider = VideoLadder()
    wider.can_probe = True
    wider.start_low()
    wider.update(None, 0.0)
    assert not wider.probe_done(1.0, 500.0, passed=False)
    assert (wider.up_after_for(0), wider.up_after_for(1)) == (
        THIN_WAIT_FIRST_S,
        wider.base_up_after,
    )


def test_the_waits_a_start_probe_left_hold_on_a_clock_that_did_not_start_at_zero() -> None:
    # time.monotonic() is the machine's uptime: "30 s stable" counts from the first update,
    # not from zero (every wait a failed start probe set was cleared at the next frame)
    ladder = VideoLadder()
    ladder.can_probe = True
    ladder.start_low()
    ladder.update(None, 1800.0)
    assert not ladder.probe_done(1801.0, 256.0, passed=False)
    ladder.update(256.0, 1801.1)
    assert ladder.up_after_for(1) == THIN_WAIT_FIRST_S
    ladder.update(256.0, 1831.1)
    # nor do 30 s of clear reports: the link never carried 480x270 (only a probe that
    # passes, or the wait, brings it back)
    assert ladder.up_after_for(1) == THIN_WAIT_FIRST_S


def test_probes_nobody_answers_leave_the_rung_to_the_estimate_and_plain_tries() -> None:
    ladder = VideoLadder()
    ladder.can_probe = True
    ladder.start_low()
    now, seen = 0.0, dict[str, float]()
    while now < 20:
        seen.setdefault(str(ladder.update(800.0, now)), now)
        now = round(now + 0.1, 1)
    # the start's probe unanswered for 4 s; then 5 s of room and another 4 s unanswered
    # before each plain try, one rung at a time
    assert seen == {"320x180@12": 0.0, "480x270@15": 13.0}, seen
    assert ladder.probe_asks == 3


def test_with_probes_a_rung_up_waits_for_a_passed_probe() -> None:
    ladder = VideoLadder()
    ladder.can_probe = True
    ladder.update(256.0, 0.0)  # down to 320x180
    for t in range(1, 12):  # room for 480x270: a probe is asked for after 5 s, not a try
        ladder.update(600.0, float(t))
        if ladder.probe_wanted is not None:
            break
    assert t == 6 and str(ladder.rung) == "320x180@12"
    assert ladder.probe_wanted == 300 * 1.25 + AUDIO_SHARE_KBPS
    assert not ladder.probe_done(6.5, 250.0, passed=False)  # the link carries 250: no try at all
    # nor above: a minute's wait each, the link never carried them
    assert ladder.up_after_for(1) == ladder.up_after_for(0) == THIN_WAIT_FIRST_S
    for t in range(7, 67):
        ladder.update(600.0, float(t))
    assert ladder.probe_wanted is None and str(ladder.rung) == "320x180@12"
    ladder.update(600.0, 67.0)  # 60 s of room again: the next probe
    assert ladder.probe_wanted is not None and ladder.probe_asks == 2
    assert not ladder.probe_done(67.5, 250.0, passed=False)  # again: twice as long
    assert ladder.up_after_for(1) == 2 * THIN_WAIT_FIRST_S
    for t in range(68, 188):
        ladder.update(600.0, float(t))
    assert ladder.probe_wanted is None
    ladder.update(600.0, 188.0)
    assert ladder.probe_wanted is not None and ladder.probe_asks == 3
    assert ladder.probe_done(188.5, 420.0, passed=True)
    assert str(ladder.update(600.0, 188.6)) == "480x270@15"


def test_capacity_drop_goes_down_at_once_and_back_up_one_rung_at_a_time() -> None:
    ladder = VideoLadder()
    seen = run(ladder, [(3, 2000), (0.1, 256), (3.0, 256), (4.0, 2000), (2.0, 2000), (10, 2000)])
    # 256 kbit/s: 256 - 40 for audio = 216 kbit/s for video -> 320x180@12 (150)
    assert seen[:3] == ["640x360@15", "320x180@12", "320x180@12"]
    # up again only after 5 s with room, one rung per 5 s
    assert seen[3] == "320x180@12" and seen[4] == "480x270@15"
    assert seen[5] == "640x360@15"


def test_a_rung_up_is_a_probe_for_10_s_a_rung_down_is_not() -> None:
    ladder = VideoLadder()
    ladder.update(256.0, 0.0)  # down to 320x180: not a probe
    assert not ladder.probing(0.0)
    for t in range(1, 7):  # room for 480x270 for 5 s: up
        ladder.update(600.0, float(t))
    assert str(ladder.rung) == "480x270@15"
    assert ladder.probing(6.0) and ladder.probing(15.5) and not ladder.probing(16.5)


def test_an_estimate_that_oscillates_around_a_rung_does_not_flap() -> None:
    ladder = VideoLadder()
    script: list[tuple[float, float]] = [(0.5, 520), (0.5, 700)] * 20  # around the top edge
    run(ladder, script)
    assert ladder.changes <= 2, ladder.changes


def test_failed_probes_back_off_and_a_stable_rung_resets_them() -> None:
    ladder = VideoLadder()
    run(ladder, [(1, 200)])  # down to 320x180
    # the estimate grows while clear; every try of the next rung congests the link at once
    ups = 0
    now = 1.0
    for _ in range(60 * 10):  # a minute
        before = ladder.index
        ladder.update(600.0, now)
        if ladder.index < before:
            ups += 1
            ladder.update(200.0, now + 0.5)  # the link says no
        now += 0.1
    # tries after 5, 10, 20 s (doubling), not every 5 s: at most 3 in the minute
    assert 2 <= ups <= 3, ups
    assert ladder.up_after >= 20
    for _ in range(310):  # 31 s on the rung the link allows
        ladder.update(200.0, now)
        now += 0.1
    assert ladder.up_after == ladder.base_up_after


def test_on_a_lossy_link_only_a_try_that_holds_brings_a_rung_s_wait_back() -> None:
    """3 % random loss: the estimate grows through it, the rung above never holds; staying
    on the rung below says nothing of the room above it."""
    ladder = VideoLadder()
    now, tries = 0.0, []
    run(ladder, [(1, 300)])  # 320x180 (150): fits 256 kbit/s with audio's share
    for _ in range(10 * 150):  # two and a half minutes
        ladder.note_report(now, clear=False)  # a few percent lost in every report
        before = ladder.index
        ladder.update(700.0, now)  # the estimate says 480x270 would fit
        if ladder.index < before:
            tries.append(now)
            ladder.update(250.0, now + 1.0)  # the queue fills: back down
        now += 0.1
    # 5, 10, 20, 40, 80 s apart: not every ~35 s as when 30 s on a rung reset the wait
    gaps = [b - a for a, b in itertools.pairwise(tries)]
    assert len(tries) <= 5 and all(b > a for a, b in itertools.pairwise(gaps)), tries
    assert ladder.up_after >= 80
    # the link got better: the next try of 480x270 holds, and its wait is 5 s again
    end = now + ladder.up_after + 10.5
    while now < end:
        ladder.update(700.0, now)
        now += 0.1
    assert str(ladder.rung) == "640x360@15"
    assert ladder.up_after_for(LADDER.index(Rung(480, 270, 15, 300))) == ladder.base_up_after


def test_a_failed_try_of_a_rung_does_not_slow_the_climb_to_the_one_below() -> None:
    ladder = VideoLadder()
    run(ladder, [(1, 150)])  # 240x136 (90)
    run(ladder, [(5.1, 300)])  # room for 320x180: up
    assert str(ladder.rung) == "320x180@12"
    run(ladder, [(5.1, 700), (0.2, 300)])  # tried 480x270, which failed at once
    assert str(ladder.rung) == "320x180@12" and ladder.up_after == 10
    run(ladder, [(0.2, 150)])  # the link got worse, then better again: 320x180 at 5 s
    assert str(ladder.rung) == "240x136@10" and ladder.up_after == ladder.base_up_after


def test_64_kbits_turns_video_off_and_data_saver_caps_at_180p() -> None:
    ladder = VideoLadder()
    assert run(ladder, [(2, 64)]) == ["video off"]
    saver = VideoLadder(data_saver=True)
    assert str(saver.rung) == "320x180@12"
    assert run(saver, [(20, 5000)]) == ["320x180@12"]
    ladder = VideoLadder()
    run(ladder, [(1, 5000)])
    ladder.set_data_saver(True)
    assert str(ladder.rung) == "320x180@12"
    ladder.set_data_saver(False)
    assert run(ladder, [(6, 5000)]) == ["480x270@15"]


def frames(count: int, start: int = 0, fps: int = 15) -> list[av.VideoFrame]:
    """``count`` 640x360 camera frames at ``fps``, numbered from ``start``."""
    size = (640, 360)
    out = []
    for n in range(start, start + count):
        image = np.full((size[1], size[0], 3), (n * 7) % 255, dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = n * 90000 // fps
        frame.time_base = fractions.Fraction(1, 90000)
        out.append(frame)
    return out


def test_encoder_follows_the_rung_and_rebuilds_only_on_a_change() -> None:
    clock = [0.0]
    encoder = LadderVp8Encoder(clock=lambda: clock[0])
    codecs: list[object] = []

    shot = [0]

    def feed(count: int) -> int:
        sent = 0
        for frame in frames(count, start=shot[0]):
            shot[0] += 1
            payloads, _ = encoder.encode(frame)
            sent += bool(payloads)
            clock[0] += 1 / 15
            if encoder.codec is not None and (not codecs or codecs[-1] is not encoder.codec):
                codecs.append(encoder.codec)
        return sent

    def codec() -> av.video.codeccontext.VideoCodecContext:
        assert encoder.codec is not None
        return encoder.codec

    # nothing known of the link: 320x180 until a probe or the first estimate says more
    assert 11 <= feed(15) <= 13 and codec().width == 320
    encoder.set_estimate(2000)  # no probes from this encoder's uplink: the estimate decides
    assert feed(15) == 15 and codec().width == 640
    codecs.clear()
    encoder.set_estimate(2000)
    encoder.target_bitrate = 30_000  # aiortc passes REMB on like this: recorded, not followed
    encoder.set_estimate(1800)  # wobbles within the rung: no new codec
    feed(15)
    assert len(codecs) == 1 and codec().bit_rate == 500_000
    assert encoder.remb_kbps == 30
    encoder.set_estimate(140)  # the link drops
    sent = feed(30)
    assert str(encoder.ladder.rung) == "240x136@10"
    assert (codec().width, codec().height) == (240, 136)
    assert codec().bit_rate == 90_000  # under aiortc's own floor of 250 kbit/s
    assert len(codecs) == 2  # one rebuild (a keyframe) for one rung change
    assert 18 <= sent <= 22  # 10 pictures a second at this rung
    encoder.set_estimate(40)
    feed(30)
    assert encoder.ladder.rung is LADDER[-1]
    payloads, _ = encoder.encode(frames(1, start=shot[0])[0])
    assert payloads == []  # video off: audio keeps the link


def test_a_keyframe_asked_for_on_a_skipped_frame_comes_with_the_next_one_sent() -> None:
    # aiortc's sender hands a keyframe request (PLI) to the very next frame and then
    # forgets it; at 320x180@12 from a 15 fps camera one frame in five is skipped, and
    # a request that met one was lost: a new subscriber saw no picture until the next
    # rung change
    clock = [0.0]
    encoder = LadderVp8Encoder(clock=lambda: clock[0])
    asked, keyframes_sent = 0, []
    for n, frame in enumerate(frames(60)):
        force = n >= 15 and n % 5 in (1, 3)  # those with 1 land on skipped frames
        asked += force
        payloads, _ = encoder.encode(frame, force_keyframe=force)
        clock[0] += 1 / 15
        if payloads and is_vp8_keyframe(vp8_depayload(payloads[0])):
            keyframes_sent.append(n)
    assert str(encoder.ladder.rung) == "320x180@12"
    assert encoder.frames_encoded < encoder.frames_in  # frames were skipped
    assert keyframes_sent[0] == 0 and len(keyframes_sent) == 1 + asked, keyframes_sent


def test_with_probes_a_link_back_from_a_drop_climbs_in_one_step() -> None:
    ladder = VideoLadder()
    ladder.can_probe = True
    ladder.update(60.0, 0.0)
    assert str(ladder.rung) == "video off"
    for t in range(1, 7):  # the link is back; the estimate has grown past the top
        ladder.update(2000.0, float(t))
    # one probe for the top rung, not one rung every 5 s
    assert ladder.probe_wanted == 500 * 1.25 + AUDIO_SHARE_KBPS
    assert ladder.probe_done(6.5, 700.0, passed=True)
    assert str(ladder.update(2000.0, 6.6)) == "640x360@15"


def test_a_link_that_carried_a_rung_lately_is_probed_again_soon_a_thin_one_rarely() -> None:
    def failures(ladder: VideoLadder, start: float, estimate: float) -> list[float]:
        """Fail every probe for 480x270 over 3 minutes of a lossy link (3 %); the waits
        after each failure."""
        waits, now = [], start
        while now < start + 180:
            ladder.note_report(now, clear=False)
            ladder.update(estimate, now)
            if ladder.probe_wanted is not None:
                assert ladder.probe_wanted == 300 * 1.25 + AUDIO_SHARE_KBPS  # one rung up
                ladder.probe_done(now, 250.0, passed=False)
                waits.append(ladder.up_after_for(1))
            now = round(now + 0.1, 1)
        return waits

    dropped = VideoLadder()
    dropped.can_probe = True
    dropped.start_low()
    dropped.update(None, 0.0)
    assert dropped.probe_done(0.5, 700.0, passed=True)  # 2 Mbit/s at the start
    dropped.update(2000.0, 0.6)
    dropped.update(256.0, 20.0)  # the drop: down to 320x180
    assert str(dropped.rung) == "320x180@12" and dropped.carried_lately(20.0) == 700.0
    # it carried 480x270 a moment ago: probed every 10 s, though the estimate (the
    # drop's 256 kbit/s) has no room for it, for as long as that is remembered
    waits = failures(dropped, 20.0, estimate=256.0)
    assert len(waits) == 18 and set(waits) == {10.0}  # at 25 s, then every 10 s
    # the link is back: a probe passes, and the next, for the rung above, follows 2 s
    # later (the wait the drop's failed probes left is gone)
    now = 200.0
    while dropped.probe_wanted is None:
        now = round(now + 0.1, 1)
        dropped.update(256.0, now)
    assert dropped.probe_done(now, 500.0, passed=True)
    dropped.update(500.0, now + 0.1)  # the uplink lifts its estimate to what arrived
    assert str(dropped.rung) == "480x270@15"
    asked = now + 0.1
    while dropped.probe_wanted is None:
        now = round(now + 0.1, 1)
        dropped.update(500.0, now)
    assert now - asked <= 2.1 and dropped.probe_wanted == 500 * 1.25 + AUDIO_SHARE_KBPS

    # a clear link (every report under 2 % loss) that is thin: a failed probe is not
    # "30 s stable", or its wait went at the next frame (a 128 kbit/s office probed
    # every 15 s)
    clear = VideoLadder()
    clear.can_probe = True
    clear.update(256.0, 0.0)
    now, waits = 0.0, []
    while now < 180:
        clear.update(600.0, now)
        if clear.probe_wanted is not None:
            clear.probe_done(now, 250.0, passed=False)
            waits.append(now)
        now = round(now + 0.1, 1)
    assert len(waits) <= 4, waits

    thin = VideoLadder()
    thin.can_probe = True
    thin.update(256.0, 0.0)
    # never carried: a minute, two, four, then every five (a failed probe is a garbled
    # phrase for every listener; 20, 80, 120 s still left one in every benchmark minute)
    assert failures(thin, 0.0, estimate=256.0) == []  # no room in the estimate: no probe
    # the estimate grows through random loss; a probe fails, and the waits grow
    assert failures(thin, 0.0, estimate=600.0) == [60.0, 120.0]
    assert failures(thin, 180.0, estimate=600.0) == [240.0]
    assert failures(thin, 360.0, estimate=600.0) == [300.0]


def test_a_rung_held_before_loss_took_it_down_counts_as_carried() -> None:
    """A 3g office at 320x180 (no probe ever passed for it: the start's first one was for
    the top) goes down on a burst of loss; a probe back that fails waits 10 s, not the
    minute of a rung the link never carried.  Left within 10 s, it never held."""
    ladder = VideoLadder()
    ladder.can_probe = True
    ladder.update(256.0, 0.0)  # 320x180
    ladder.update(256.0, 15.0)
    ladder.update(160.0, 15.1)  # the burst: down to 240x136
    assert str(ladder.rung) == "240x136@10"
    assert ladder.carried_lately(15.1) == 150 + AUDIO_SHARE_KBPS
    now = 15.1
    while ladder.probe_wanted is None:
        now = round(now + 0.1, 1)
        ladder.update(256.0, now)
    assert ladder.probe_wanted == 150 * 1.25 + AUDIO_SHARE_KBPS
    assert not ladder.probe_done(now, 180.0, passed=False)
    assert ladder.up_after_for(2) == 10.0

    brief = VideoLadder()
    brief.can_probe = True
    brief.update(256.0, 0.0)
    brief.update(160.0, 9.0)  # left after 9 s: the link never showed it carried 320x180
    assert brief.carried_lately(9.0) == 0.0


def test_once_the_server_answers_probes_an_unanswered_one_has_failed() -> None:
    ladder = VideoLadder()
    ladder.can_probe = True
    ladder.start_low()
    ladder.update(None, 0.0)
    assert not ladder.probe_done(0.5, 60.0, passed=False)  # the server answers: a 64 kbit/s link
    ladder.update(60.0, 0.6)
    assert str(ladder.rung) == "video off"
    now = 0.6
    while ladder.probe_wanted is None:  # room for 160x90 again (the estimate grew)
        now += 0.1
        ladder.update(200.0, now)
    asked = now
    while now < asked + PROBE_ANSWER_S + 0.5:  # no answer: nothing of it got through
        now += 0.1
        ladder.update(200.0, now)
    assert str(ladder.rung) == "video off" and ladder.probes_failed == 2
    # the probe was for the best rung the estimate had room for: 240x136 (index 3)
    assert ladder.up_after_for(3) == THIN_WAIT_FIRST_S


def test_after_a_probe_passes_the_next_comes_quickly_and_may_ask_for_twice_as_much() -> None:
    ladder = VideoLadder()
    ladder.can_probe = True
    ladder.update(120.0, 0.0)  # down to 160x90 in a drop
    assert str(ladder.rung) == "160x90@5"
    now = 0.0
    while ladder.probe_wanted is None:  # the estimate has room for 240x136 only
        now += 0.1
        ladder.update(200.0, now)
    assert ladder.probe_wanted == 90 * 1.25 + AUDIO_SHARE_KBPS
    assert ladder.probe_done(now, 190.0, passed=True)
    ladder.update(200.0, now + 0.1)
    assert str(ladder.rung) == "240x136@10"
    # the link is back: FOLLOW_UP_WAIT_S later a probe for what twice 190 kbit/s has room for,
    # though the estimate (200) still has room for nothing more
    asked = now + 0.1
    while ladder.probe_wanted is None and now < asked + 5:
        now += 0.1
        ladder.update(200.0, now)
    assert FOLLOW_UP_WAIT_S - 0.1 <= now - asked <= FOLLOW_UP_WAIT_S + 0.2, now - asked
    assert ladder.probe_wanted == 150 * 1.25 + AUDIO_SHARE_KBPS
