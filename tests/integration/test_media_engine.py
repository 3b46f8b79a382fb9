"""The media engine on real peer connections: what is negotiated, sent and played.

The server is real; the office's link is the in-process emulator (loss on its
UDP only).  What the server's receiver reassembles tells the picture size
really sent (VP8 keyframe headers); the receiving bot's playout tells what it
rebuilt and concealed.
"""

from __future__ import annotations

import asyncio
import itertools
import time

from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder

from siakdesk.bot import Bot
from siakdesk.media.engine import encoder_of
from siakdesk.media.opusprofile import ProfiledOpusEncoder
from siakdesk.media.videoladder import LadderVp8Encoder
from siakdesk.netlab.inprocess import Impairment, LinkEmulator
from siakdesk.server.downlink import Downlink
from siakdesk.server.forwarding import Publication, SlotTrack
from tests.conftest import BotFactory, RunningServer

CAMERA = (640, 360)


def _history(downlink: Downlink) -> str:
    return "; ".join(
        f"{h.at:.1f}: sent {h.sent_kbps:.0f} loss {h.loss:.2f} rtt {h.rtt or 0:.3f} "
        f"busy {h.busy_s:.2f} -> {h.estimate_kbps:.0f}"
        for h in list(downlink.estimate.history)[-20:]
    )


def publication(server: RunningServer, bot: Bot, kind: str) -> Publication:
    room = server.meeting.rooms["siak"]
    return room.participants[bot.session.participant_id or ""].publications[kind]


def senders(bot: Bot) -> dict[str, object]:
    pc = bot.session._pc
    assert pc is not None
    return {t.kind: encoder_of(t.sender) for t in pc.getTransceivers() if t.direction == "sendonly"}


async def eventually(check: object, within: float) -> float:
    started = time.monotonic()
    while not check():  # type: ignore[operator]
        if time.monotonic() - started > within:
            raise AssertionError(f"not within {within} s")
        await asyncio.sleep(0.2)
    return time.monotonic() - started


async def test_a_clear_link_sends_the_top_rung_through_our_encoders(
    server: RunningServer, make_bot: BotFactory
) -> None:
    minas = await make_bot("Minas", video_size=CAMERA)
    kandis = await make_bot("Kandis")
    await minas.wait_for_more_from(["Kandis"], audio=20, video=5)
    await kandis.wait_for_more_from(["Minas"], audio=20, video=5)
    encoders = senders(minas)
    assert isinstance(encoders["audio"], ProfiledOpusEncoder)
    video_encoder = encoders["video"]
    assert isinstance(video_encoder, LadderVp8Encoder)
    # the RTP stream the server received: VP8 keyframes of the top rung's size, once the
    # start's probe (padding on the real RTX stream, measured by the real server) passed
    video = publication(server, minas, "video")
    await eventually(lambda: (video.width, video.height) == CAMERA, within=10)
    probes = list(minas.session.uplink.probes)
    assert video_encoder.ladder.probes_passed >= 1 and probes, probes
    _at, received, wanted = probes[0]
    assert received >= 0.85 * wanted, probes
    server_side = server.meeting.rooms["siak"].participants[minas.session.participant_id or ""]
    assert server_side.arrivals is not None and server_side.arrivals.trains >= 1
    await kandis.wait_for_more_from(["Minas"], audio=0, video=5)
    assert kandis.received["Minas"].video_size == CAMERA
    # and what Kandis heard went through the adaptive playout, nothing concealed
    stats = kandis.session.playout_stats()
    assert stats.played > 20 and stats.concealed_share < 0.05, stats
    assert kandis.session.playouts, "no playout attached to the audio slots"
    # the signaling is deflated: an offer with every slot would take seconds on 64 kbit/s
    signaling = minas.session._signaling
    assert signaling is not None and signaling._ws is not None
    assert signaling._ws.compress == 15


async def test_the_server_sends_sender_reports_only_for_slots_that_carry_media(
    server: RunningServer, make_bot: BotFactory
) -> None:
    await make_bot("Minas")
    kandis = await make_bot("Kandis")
    await kandis.wait_for_more_from(["Minas"], audio=20, video=5)
    room = server.meeting.rooms["siak"]
    pc = room.participants[kandis.session.participant_id or ""].pc
    assert pc is not None
    slots = [t for t in pc.getTransceivers() if t.direction == "sendonly"]
    assert len(slots) == 2 * 19  # a room of 20: a slot of each kind for each of the others
    transport = slots[0].sender.transport
    send = transport._send_rtp
    reporting: list[int] = []

    async def watch(data: bytes) -> None:
        if len(data) >= 8 and data[1] == 200:  # an RTCP compound that starts with an SR
            reporting.append(int.from_bytes(data[4:8], "big"))
        await send(data)

    transport._send_rtp = watch  # type: ignore[method-assign]
    await asyncio.sleep(4.0)  # the window counted over (aiortc reports every 0.5-1.5 s)
    transport._send_rtp = send  # type: ignore[method-assign]
    # the two slots with Minas's audio and video report; the 36 empty ones keep quiet but
    # for one now and then when those two happened to leave a second without a report
    carrying = {t.sender._ssrc for t in slots if getattr(t.sender.track, "forwarded", 0)}
    assert len(carrying) == 2 and carrying <= set(reporting), (reporting, carrying)
    idle = [ssrc for ssrc in reporting if ssrc not in carrying]
    assert len(idle) <= 4, (reporting, carrying)  # aiortc's own: ~36 x 4 s = 144


async def test_one_alone_in_the_room_still_hears_from_the_server_every_second(
    server: RunningServer, make_bot: BotFactory
) -> None:
    """With no media to forward, an empty slot's report keeps the media path alive (the
    office takes 4 s without a packet for a dead path)."""
    minas = await make_bot("Minas")
    participant = server.meeting.rooms["siak"].participants[minas.session.participant_id or ""]
    await eventually(
        lambda: participant.pc is not None and participant.pc.connectionState == "connected",
        within=10,
    )
    pc = participant.pc
    assert pc is not None
    transport = pc.getTransceivers()[0].sender.transport
    send = transport._send_rtp
    reports: list[float] = []

    async def watch(data: bytes) -> None:
        if len(data) >= 8 and data[1] == 200:
            reports.append(time.monotonic())
        await send(data)

    transport._send_rtp = watch  # type: ignore[method-assign]
    await asyncio.sleep(6.0)  # the window the reports are counted over, not a wait
    transport._send_rtp = send  # type: ignore[method-assign]
    gaps = [b - a for a, b in itertools.pairwise(reports)]
    assert 3 <= len(reports) <= 12 and max(gaps) < 2.5, reports  # ~1 a second, not 38
    assert minas.session.reconnects == 0


async def test_a_congested_uplink_steps_the_video_down_and_audio_keeps_flowing(
    server: RunningServer, make_bot: BotFactory
) -> None:
    link = LinkEmulator()
    minas = await make_bot("Minas", video_size=CAMERA, link=link)
    kandis = await make_bot("Kandis")
    await kandis.wait_for_more_from(["Minas"], audio=20, video=5)
    video = publication(server, minas, "video")
    await eventually(lambda: (video.width, video.height) == CAMERA, within=10)
    link.impairment = Impairment(loss=0.3)  # more than 10 % lost: congestion, to GCC too
    encoder = senders(minas)["video"]
    assert isinstance(encoder, LadderVp8Encoder)
    took = await eventually(lambda: encoder.ladder.index > 0, within=15)
    assert minas.session.uplink.estimate.kbps < 500
    # audio went on the whole time, tuned to the loss (60 ms frames from 20 % with copies)
    audio = senders(minas)["audio"]
    assert isinstance(audio, ProfiledOpusEncoder)
    await eventually(lambda: audio.loss >= 10 and audio.frame_ms == 60, within=10)
    await kandis.wait_for_more_from(["Minas"], audio=25, video=0)
    assert took < 15
    # what Minas hears comes over the same lossy link: Opus FEC rebuilt some of it
    heard = minas.session.playout_stats()
    assert heard.recovered > 0 and heard.concealed > 0, heard
    # a new media connection (the watcher renegotiates) starts its encoder from what the
    # link is known to carry: a thin link flooded again by a top-rung keyframe would lose
    # the renegotiation's first seconds of audio
    link.impairment = Impairment()
    old_pc = minas.session._pc
    minas.session._raise_trouble("test: a new media path", media_only=True)
    await eventually(
        lambda: minas.session._pc is not old_pc and senders(minas).get("video") is not None,
        within=15,
    )
    fresh = senders(minas)["video"]
    assert isinstance(fresh, LadderVp8Encoder) and fresh is not encoder
    await eventually(lambda: fresh.frames_in > 0, within=5)
    assert fresh.ladder.index > 0, (fresh.estimate_kbps, minas.session.uplink.estimate.kbps)
    # what the server gets over the new connection: audio, and no top-rung picture
    await kandis.wait_for_more_from(["Minas"], audio=25, video=0)
    assert publication(server, minas, "video").width < CAMERA[0]


async def test_the_uplink_reads_the_round_trip_time_of_the_link(
    server: RunningServer, make_bot: BotFactory
) -> None:
    # 150 ms each way: an RTT of 300 ms, measured from our own sender reports and
    # the server's answers to them (aiortc's own figure lags and misses queues)
    link = LinkEmulator(Impairment(delay=0.15))
    minas = await make_bot("Minas", link=link)
    kandis = await make_bot("Kandis")
    await kandis.wait_for_more_from(["Minas"], audio=20, video=3)
    uplink = minas.session.uplink
    await eventually(lambda: len([s for s in uplink.estimate.history if s.rtt]) >= 3, within=15)
    rtts = sorted(s.rtt for s in uplink.estimate.history if s.rtt)
    assert 0.28 < rtts[len(rtts) // 2] < 0.5, rtts


async def test_data_saver_caps_the_video_at_320x180(
    server: RunningServer, make_bot: BotFactory
) -> None:
    minas = await make_bot("Minas", video_size=CAMERA, data_saver=True)
    kandis = await make_bot("Kandis")
    await kandis.wait_for_more_from(["Minas"], audio=10, video=10)
    video = publication(server, minas, "video")
    assert (video.width, video.height) == (320, 180)
    minas.session.set_data_saver(False)
    await eventually(lambda: video.width == CAMERA[0], within=20)


async def test_aiortc_defaults_stay_available_as_the_baseline(
    server: RunningServer, make_bot: BotFactory
) -> None:
    # another process would be cleaner; here the check is that the session does not
    # attach our playout and that aiortc's decoders deliver
    minas = await make_bot("Minas", media="aiortc")
    kandis = await make_bot("Kandis", media="aiortc")
    await kandis.wait_for_more_from(["Minas"], audio=20, video=5)
    assert not kandis.session.playouts
    encoders = senders(minas)
    # the encoders are ours if an earlier session in this process installed them
    assert isinstance(encoders["audio"], OpusEncoder | ProfiledOpusEncoder)
    assert isinstance(encoders["video"], Vp8Encoder)


async def test_a_weak_office_gets_fewer_videos_and_does_not_drag_the_others_down(
    server: RunningServer, make_bot: BotFactory
) -> None:
    # four offices and the server share this one process: small pictures keep it from
    # being the bottleneck (a process behind on its sockets reads as a queue on every link)
    small = {"video_size": (160, 90), "fps": 10}
    link = LinkEmulator()
    weak = await make_bot("Kandis", link=link, **small)
    others = [await make_bot(name, **small) for name in ("Minas", "Dayun", "Siak")]
    for bot in (weak, *others):
        names = [b.name for b in (weak, *others) if b is not bot]
        await bot.wait_for_more_from(names, audio=10, video=3)
    room = server.meeting.rooms["siak"]
    weak_slots = room.participants[weak.session.participant_id or ""].slots
    link.impairment = Impairment(loss=0.3)  # Kandis's link is overwhelmed, both ways

    def paused(slots: list[SlotTrack]) -> int:
        return sum(1 for s in slots if s.kind == "video" and s.publication and s.paused)

    await eventually(lambda: paused(weak_slots) >= 2, within=20)
    # what Kandis hears comes in 60 ms packets while its downlink estimate is thin (under
    # 80 kbit/s: 30 % loss may or may not cut it that far), as the estimate says
    kandis = room.downlinks[weak.session.participant_id or ""]
    audio_slots = [s for s in weak_slots if s.kind == "audio" and s.publication]
    assert all(s.packed == kandis.thin for s in audio_slots)
    # Kandis is told, and shows those tiles as paused
    await eventually(
        lambda: sum(1 for t in weak.session.tracks if t.kind == "video" and t.paused) >= 2,
        within=5,
    )
    # everyone else still gets every video, none paused, pictures still coming (a moment
    # when this busy process falls behind its sockets reads as a queue and may pause one
    # for a few seconds: what counts is that they are all let through while Kandis is not)
    for bot in others:
        slots = room.participants[bot.session.participant_id or ""].slots
        downlink = room.downlinks[bot.session.participant_id or ""]
        try:
            await eventually(lambda slots=slots: paused(slots) == 0, within=20)
        except AssertionError:
            raise AssertionError(f"{bot.name}'s downlink: {_history(downlink)}") from None
        assert paused(weak_slots) >= 2
        names = [b.name for b in others if b is not bot]
        await bot.wait_for_more_from(names, audio=10, video=10)
        assert not any(s.packed for s in slots)
    # and the weak office still hears everyone
    await weak.wait_for_more_from([b.name for b in others], audio=10, video=0)
