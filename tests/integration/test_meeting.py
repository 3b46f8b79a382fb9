"""A regency meeting end to end: the real server, real peer connections, four offices."""

from __future__ import annotations

import asyncio

from siakdesk.bot import Bot
from siakdesk.core.events import ParticipantLeft, ParticipantUpdated, SessionEvent, TrackRemoved
from siakdesk.server.forwarding import SlotTrack
from tests.conftest import BotFactory, RunningServer

OFFICES = ["Minas", "Kandis", "Kerinci Kanan", "Sungai Apit"]


async def wait_until_received(bots: list[Bot], video_frames: int, within_s: float = 30) -> None:
    """Until every bot has ``video_frames`` pictures and some audio from every other bot."""
    names = {bot.name for bot in bots}

    def done(bot: Bot) -> bool:
        for name in names - {bot.name}:
            stats = bot.received.get(name)
            if stats is None or stats.video_frames < video_frames or stats.audio_frames < 10:
                return False
        return True

    try:
        async with asyncio.timeout(within_s):
            for bot in bots:
                await bot.wait_until(done)
    except TimeoutError as timed_out:
        missing = {
            f"{bot.name} <- {name}": {
                k: v for k, v in bot.received[name].as_json().items() if k != "video_log"
            }
            if name in bot.received
            else None
            for bot in bots
            for name in sorted(names - {bot.name})
            if not done(bot)
        }
        raise AssertionError(
            f"not everyone received everyone within {within_s} s: {missing}"
        ) from timed_out


async def test_four_offices_see_and_hear_each_other(
    server: RunningServer, make_bot: BotFactory
) -> None:
    bots = [await make_bot(name) for name in OFFICES]
    await wait_until_received(bots, video_frames=20)

    for bot in bots:
        stats = bot.stats()
        assert sorted(stats["received"]) == sorted(n for n in OFFICES if n != bot.name)
        for remote, figures in stats["received"].items():
            assert figures["audio_frames"] >= 10, (bot.name, remote, figures)
            assert figures["video_frames"] >= 20, (bot.name, remote, figures)
            assert (figures["video_width"], figures["video_height"]) == (320, 180)
            assert figures["video_ident_ok"], (bot.name, remote, figures)
        assert stats["reconnects"] == 0


async def test_server_forwards_without_decoding(
    server: RunningServer, make_bot: BotFactory
) -> None:
    bots = [await make_bot(name) for name in OFFICES[:2]]
    await wait_until_received(bots, video_frames=5)
    room = server.meeting.rooms["siak"]
    for participant in room.participants.values():
        assert participant.pc is not None
        for transceiver in participant.pc.getTransceivers():
            receiver = transceiver.receiver
            # the receive side never fed a decoder: its tap keeps no frames
            queue = receiver._RTCRtpReceiver__decoder_queue  # type: ignore[attr-defined]
            assert queue.qsize() == 0
            track = transceiver.sender.track
            if isinstance(track, SlotTrack) and track.publication is not None:
                assert track.forwarded > 0


async def test_late_joiner_sees_video_within_two_seconds(
    server: RunningServer, make_bot: BotFactory
) -> None:
    early = [await make_bot(name) for name in OFFICES]
    await wait_until_received(early, video_frames=10)

    late = await make_bot("Siak")
    await wait_until_received([*early, late], video_frames=3)

    for name in OFFICES:
        figures = late.received[name]
        assert figures.first_video_s is not None and figures.first_video_s <= 2.0, (name, figures)
        assert figures.video_ident_ok or figures.ident_checked == 0
    for bot in early:
        assert bot.received["Siak"].video_frames >= 3


async def test_leaving_removes_participant_and_tracks(
    server: RunningServer, make_bot: BotFactory
) -> None:
    minas, kandis = await make_bot("Minas"), await make_bot("Kandis")
    await wait_until_received([minas, kandis], video_frames=3)
    events: list[SessionEvent] = []
    gone = asyncio.Event()

    def on_event(event: SessionEvent) -> None:
        events.append(event)
        if isinstance(event, ParticipantLeft):
            gone.set()

    minas.session.add_listener(on_event)
    await kandis.close()
    await asyncio.wait_for(gone.wait(), 10)

    removed = {e.track.kind for e in events if isinstance(e, TrackRemoved)}
    assert removed == {"audio", "video"}
    left = [e for e in events if isinstance(e, ParticipantLeft)]
    assert [(e.participant.name, e.reason) for e in left] == [("Kandis", "left")]
    assert minas.session.tracks == []
    remaining = server.meeting.rooms["siak"].participants.values()
    assert [p.name for p in remaining] == ["Minas"]


async def test_counting_bot_receives_without_decoding(
    server: RunningServer, make_bot: BotFactory
) -> None:
    sender = await make_bot("Minas")
    counter = await make_bot("Kandis", decode=False)
    # the counting bot has no frame events to wait on: wait for the sender to see it instead
    await sender.wait_until(
        lambda b: "Kandis" in b.received and b.received["Kandis"].video_frames > 30
    )
    figures = counter.stats()["received"]["Minas"]
    assert figures["audio_frames"] > 0 and figures["video_frames"] > 0
    assert (figures["video_width"], figures["video_height"]) == (320, 180)
    assert figures["video_ident_ok"] is None
    assert counter.session.tracks and all(t.frames_dropped == 0 for t in counter.session.tracks)


async def test_offices_joining_at_once_all_get_slots(
    server: RunningServer, make_bot: BotFactory
) -> None:
    bots = await asyncio.gather(*(make_bot(name) for name in OFFICES))
    await wait_until_received(list(bots), video_frames=5)
    room = server.meeting.rooms["siak"]
    for participant in room.participants.values():
        assigned = sorted(
            (s.kind, room.participants[s.participant_id].name)
            for s in participant.slots
            if s.participant_id is not None
        )
        others = sorted(n for n in OFFICES if n != participant.name)
        assert assigned == sorted([("audio", n) for n in others] + [("video", n) for n in others])


async def test_subscriber_keyframe_request_reaches_the_publisher(
    server: RunningServer, make_bot: BotFactory
) -> None:
    minas, kandis = await make_bot("Minas"), await make_bot("Kandis")
    await wait_until_received([minas, kandis], video_frames=10)
    room = server.meeting.rooms["siak"]
    publication = next(p for p in room.participants.values() if p.name == "Minas").publications[
        "video"
    ]
    before_requests, before_keyframes = publication.keyframe_requests, publication.keyframes

    # Kandis's decoder "lost" a picture: its receiver for Minas's slot sends a PLI to the server
    pc = kandis.session._pc
    assert pc is not None
    owner = {
        mid
        for mid, pid in kandis.session._slot_owner.items()
        if pid == minas.session.participant_id
    }
    receiver = next(
        t.receiver for t in pc.getTransceivers() if t.mid in owner and t.kind == "video"
    )
    ssrc = receiver.getSynchronizationSources()[0].source
    await receiver._send_rtcp_pli(ssrc)

    async with asyncio.timeout(10):
        await kandis.wait_until(lambda _: publication.keyframes > before_keyframes)
    assert publication.keyframe_requests == before_requests + 1


async def test_back_to_back_joiners_all_get_video_quickly(
    server: RunningServer, make_bot: BotFactory
) -> None:
    # offices joining within a few hundred ms of each other ask the same publishers for
    # keyframes inside one throttle interval; none of those requests may be lost
    bots = [await make_bot(name) for name in [*OFFICES, "Siak"]]
    await wait_until_received(bots, video_frames=1, within_s=10)
    for bot in bots:
        for remote, figures in bot.received.items():
            assert figures.first_video_s is not None and figures.first_video_s <= 3.0, (
                bot.name,
                remote,
                figures.first_video_s,
            )


async def test_mute_and_camera_off_reach_the_others(
    server: RunningServer, make_bot: BotFactory
) -> None:
    minas, kandis = await make_bot("Minas"), await make_bot("Kandis")
    await wait_until_received([minas, kandis], video_frames=3)
    updates: list[ParticipantUpdated] = []
    changed = asyncio.Event()

    def on_event(event: SessionEvent) -> None:
        if isinstance(event, ParticipantUpdated):
            updates.append(event)
            changed.set()

    kandis.session.add_listener(on_event)
    await minas.session.set_muted("audio", True)
    await asyncio.wait_for(changed.wait(), 10)
    info = kandis.session.roster[minas.session.participant_id or ""]
    assert (info.audio_muted, info.video_muted) == (True, False)

    # no audio packets while muted: once what was on the way has played (and the
    # playout's few frames of concealment at the end), the count stops growing
    # while pictures keep coming
    await asyncio.sleep(1.5)
    frozen = kandis.received["Minas"].audio_frames
    pictures = kandis.received["Minas"].video_frames
    await kandis.wait_until(lambda b: b.received["Minas"].video_frames > pictures + 30)
    assert kandis.received["Minas"].audio_frames == frozen

    changed.clear()
    await minas.session.set_muted("video", True)
    await minas.session.set_muted("audio", False)
    await asyncio.wait_for(changed.wait(), 10)
    await kandis.wait_until(lambda b: b.received["Minas"].audio_frames > frozen + 20)
    info = kandis.session.roster[minas.session.participant_id or ""]
    assert (info.audio_muted, info.video_muted) == (False, True)
    assert minas.session.is_muted("video") and not minas.session.is_muted("audio")


async def test_audio_goes_out_in_the_siakdesk_opus_profile(
    server: RunningServer, make_bot: BotFactory
) -> None:
    from siakdesk.media.engine import encoder_of
    from siakdesk.media.opusprofile import ProfiledOpusEncoder

    bots = [await make_bot(name) for name in OFFICES[:2]]
    await wait_until_received(bots, video_frames=5)
    pc = bots[0].session._pc
    assert pc is not None
    (audio,) = [t for t in pc.getTransceivers() if t.kind == "audio" and t.direction == "sendonly"]
    encoder = encoder_of(audio.sender)
    assert isinstance(encoder, ProfiledOpusEncoder)
    # loopback is clean: no FEC (it would take bits from the speech), 24 kbit/s
    assert encoder.settings["channels"] == 1 and encoder.settings["bitrate"] == 24000
    assert not encoder.settings["fec"] and encoder.settings["frame_ms"] == 20
    # what reached the server: Opus payloads of a 24 kbit/s stream, not aiortc's 96 kbit/s
    publisher = server.meeting.rooms["siak"].participants[bots[0].session.participant_id or ""]
    publication = publisher.publications["audio"]
    await asyncio.sleep(1.0)
    per_frame = publication.bytes / max(1, publication.frames)
    assert 20 < per_frame < 110, per_frame
