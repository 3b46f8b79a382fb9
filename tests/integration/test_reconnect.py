"""Auto-reconnect against the real server: cut links, dead media, a restarted server.

The link of one participant is cut with the in-process link emulator
(:mod:`siakdesk.netlab.inprocess`): its UDP packets are dropped and its TCP
socket stalls, as on a radio link that went away.  Everything else is real.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from siakdesk.bot import Bot, BotConfig
from siakdesk.core.events import (
    ParticipantJoined,
    ParticipantLeft,
    ParticipantUpdated,
    ReconnectAttempt,
    ServerMessage,
    SessionEvent,
    SessionState,
)
from siakdesk.core.meetingsession import ReconnectPolicy, SessionConfig
from siakdesk.core.protocol import ChatMessage, ChatSend
from siakdesk.netlab.inprocess import Impairment, LinkEmulator
from siakdesk.server.config import RoomConfig, ServerConfig
from tests.conftest import BotFactory, RunningServer, start_server

#: Short timings so that many outages fit in a test; the defaults are tested too.
FAST = ReconnectPolicy(
    first_delay=0.3,
    max_delay=2.0,
    probe_interval=0.25,
    heartbeat_interval=0.3,
    heartbeat_timeout=1.2,
    media_timeout=1.2,
    watch_interval=0.2,
)


async def until(bot: Bot, predicate: Callable[[], bool], within: float) -> float:
    """Wait until ``predicate()`` holds, checked at each of ``bot``'s session events."""
    started = time.monotonic()
    changed = asyncio.Event()
    remove = bot.session.add_listener(lambda _event: changed.set())
    try:
        async with asyncio.timeout(within):
            while not predicate():
                await changed.wait()
                changed.clear()
    finally:
        remove()
    return time.monotonic() - started


async def wait_state(bot: Bot, state: SessionState, within: float) -> float:
    """Wait until ``bot``'s session is in ``state``; return how long that took."""
    return await until(bot, lambda: bot.session.state is state, within)


async def flowing_both_ways(bots: list[Bot], within: float = 20.0, video: int = 3) -> None:
    """Every bot receives new audio (and ``video`` pictures) from every other one."""
    try:
        async with asyncio.timeout(within):
            await asyncio.gather(
                *(
                    bot.wait_for_more_from([b.name for b in bots if b is not bot], video=video)
                    for bot in bots
                )
            )
    except TimeoutError:
        got = {bot.name: {b.name: bot.frames_from(b.name) for b in bots} for bot in bots}
        raise AssertionError(f"media does not flow every way: {got}") from None


class Recorder:
    def __init__(self, bot: Bot) -> None:
        self.events: list[SessionEvent] = []
        bot.session.add_listener(self.events.append)

    def of(self, kind: type) -> list[SessionEvent]:
        return [e for e in self.events if isinstance(e, kind)]


async def test_a_stuck_socket_while_media_flows_is_waited_for_not_reconnected() -> None:
    """TCP backing off on a thin, lossy link: the signaling socket is silent for longer
    than either side's heartbeat timeout, but media still arrives both ways."""
    config = ServerConfig(port=0, rooms=(RoomConfig("siak"),), heartbeat_timeout=1.5)
    running = await start_server(config)
    link = LinkEmulator()

    def bot(name: str, with_link: bool = False) -> Bot:
        session = SessionConfig(
            endpoint=running.endpoint(),
            room="siak",
            name=name,
            reconnect=dataclasses.replace(FAST, media_timeout=4.0),
            link=link if with_link else None,
        )
        return Bot(BotConfig(session=session))

    bots = [bot("Minas"), bot("Siak", with_link=True)]
    minas, siak = bots
    try:
        for b in bots:
            await b.start()
        await flowing_both_ways(bots)
        link.stall_streams()
        # the silence itself is what is tested: three times the client's heartbeat
        # timeout, more than twice the server's
        await asyncio.sleep(3 * FAST.heartbeat_timeout + 0.2)
        await flowing_both_ways(bots, within=5.0, video=0)
        assert siak.session.state is SessionState.JOINED and siak.session.reconnects == 0
        link.resume_streams()
        # what was held back arrives: the same socket goes on, nobody left or came back
        heard = Recorder(minas)
        assert await siak.session.send(ChatSend(id="0123456789abcdef", text="masih di sini"))

        def chat_arrived() -> bool:
            messages = [e.message for e in heard.events if isinstance(e, ServerMessage)]
            return any(isinstance(m, ChatMessage) for m in messages)

        await until(minas, chat_arrived, within=5.0)
        assert siak.session.reconnects == 0 and minas.session.reconnects == 0
        identity = siak.session.participant_id or ""
        store = running.meeting.store
        records = [r for r in store.attendance("siak") if r.participant_id == identity]
        assert records[0].reconnects == 0
    finally:
        for b in bots:
            await b.close()
        await running.runner.cleanup()


async def test_cut_of_six_seconds_resumes_the_same_participant(
    server: RunningServer, make_bot: BotFactory
) -> None:
    link = LinkEmulator()
    minas = await make_bot("Minas")
    kandis = await make_bot("Kandis")
    siak = await make_bot("Siak", link=link)
    bots = [minas, kandis, siak]
    await flowing_both_ways(bots)
    seen_by_minas = Recorder(minas)
    identity = siak.session.participant_id or ""
    room = server.meeting.rooms["siak"]

    link.cut()
    await wait_state(siak, SessionState.RECONNECTING, within=6.0)
    # the server notices too, and the others see "reconnecting", not a leave
    await until(minas, lambda: minas.session.roster[identity].connection == "reconnecting", 8)
    await asyncio.sleep(6.0 - link_down_for(link))
    link.restore()
    back_after = await wait_state(siak, SessionState.JOINED, within=10.0)
    await flowing_both_ways(bots)

    assert siak.session.participant_id == identity
    assert siak.session.reconnects == 1
    assert minas.session.reconnects == 0 and kandis.session.reconnects == 0
    assert minas.session.roster[identity].connection == "connected"
    assert not seen_by_minas.of(ParticipantLeft) and not seen_by_minas.of(ParticipantJoined)
    updates = [
        e.participant.connection for e in seen_by_minas.events if isinstance(e, ParticipantUpdated)
    ]
    assert updates == ["reconnecting", "connected"]
    records = [r for r in room.store.attendance("siak") if r.participant_id == identity]
    assert len(records) == 1 and records[0].left is None and records[0].reconnects == 1
    assert siak.session.seconds_without_media >= 5.0
    assert back_after < 5.0, f"{back_after:.1f} s from the link's return to joined"


def link_down_for(link: LinkEmulator) -> float:
    return time.monotonic() - link.down_since if link.down_since is not None else 0.0


async def test_cut_of_sixty_seconds_comes_back_without_a_click(
    server: RunningServer, make_bot: BotFactory
) -> None:
    link = LinkEmulator()
    minas = await make_bot("Minas")
    siak = await make_bot("Siak", link=link)
    await flowing_both_ways([minas, siak])
    identity = siak.session.participant_id or ""
    attempts = Recorder(siak)

    link.cut()
    await asyncio.sleep(60)
    assert siak.session.state is SessionState.RECONNECTING
    assert minas.session.roster[identity].connection == "reconnecting"
    link.restore()
    back_after = await wait_state(siak, SessionState.JOINED, within=10.0)
    await flowing_both_ways([minas, siak])

    assert siak.session.participant_id == identity
    assert siak.session.reconnects == 1
    tries = [e.attempt for e in attempts.events if isinstance(e, ReconnectAttempt)]
    # backoff: 1 s doubling to the 15 s cap, with jitter; not a hundred attempts a minute
    assert 4 <= len(tries) <= 12, tries
    assert back_after < 5.0, f"{back_after:.1f} s from the link's return to joined"


async def test_dead_media_gets_a_new_peer_connection_on_the_same_socket(
    server: RunningServer, make_bot: BotFactory
) -> None:
    impairment = Impairment()
    link = LinkEmulator(impairment)
    minas = await make_bot("Minas")
    siak = await make_bot("Siak", link=link, reconnect=FAST)
    await flowing_both_ways([minas, siak])
    participant = server.meeting.rooms["siak"].participants[siak.session.participant_id or ""]
    socket = participant.ws

    impairment.loss = 1.0  # every UDP packet lost; signaling untouched
    await wait_state(siak, SessionState.RECONNECTING, within=3.0)
    impairment.loss = 0.0
    await wait_state(siak, SessionState.JOINED, within=10.0)
    await flowing_both_ways([minas, siak])

    assert participant.ws is socket, "signaling should have stayed on the same socket"
    assert siak.session.reconnects == 1


async def test_server_restart_brings_everyone_back(tmp_path: Path) -> None:
    config = ServerConfig(
        port=0, rooms=(RoomConfig("siak"),), database=str(tmp_path / "meetings.sqlite3")
    )
    running = await start_server(config)
    host, port = running.runner.addresses[0][:2]
    bots = [
        Bot(
            BotConfig(
                session=SessionConfig(
                    endpoint=running.endpoint(), room="siak", name=name, office=f"Kec. {name}"
                )
            )
        )
        for name in ("Minas", "Kandis", "Siak")
    ]
    try:
        for bot in bots:
            await bot.start()
        await flowing_both_ways(bots)
        identities = {bot.name: bot.session.participant_id for bot in bots}

        await running.runner.cleanup()
        stopped = time.monotonic()
        await asyncio.gather(*(wait_state(b, SessionState.RECONNECTING, 6.0) for b in bots))
        running = await start_server(dataclasses.replace(config, port=port))
        restarted = time.monotonic()
        await asyncio.gather(*(wait_state(b, SessionState.JOINED, 15.0) for b in bots))
        all_back = time.monotonic() - restarted
        await flowing_both_ways(bots)

        assert {bot.name: bot.session.participant_id for bot in bots} == identities
        assert all(bot.session.reconnects == 1 for bot in bots)
        records = running.meeting.store.attendance("siak")
        assert sorted(r.name for r in records) == ["Kandis", "Minas", "Siak"]
        assert all(r.left is None and r.reconnects == 1 for r in records)
        assert all_back < 5.0, f"{all_back:.1f} s from restart to everyone back"
        assert restarted - stopped < 5.0
    finally:
        for bot in bots:
            await bot.close()
        await running.runner.cleanup()
    assert host == "127.0.0.1"


@pytest.mark.timeout(600)
async def test_fifty_random_outages_on_one_office_of_four() -> None:
    """Fault injection: short outages (survived in place) and long ones (a reconnect each)."""
    config = ServerConfig(port=0, rooms=(RoomConfig("siak"),), heartbeat_timeout=1.5)
    running = await start_server(config)
    link = LinkEmulator(seed=7)

    def bot(name: str, with_link: bool = False) -> Bot:
        return Bot(
            BotConfig(
                session=SessionConfig(
                    endpoint=running.endpoint(),
                    room="siak",
                    name=name,
                    reconnect=FAST,
                    link=link if with_link else None,
                )
            )
        )

    bots = [bot("Minas"), bot("Kandis"), bot("Sabak Auh"), bot("Siak", with_link=True)]
    siak = bots[-1]
    rng = random.Random(2026)
    long_outages = 0
    try:
        for b in bots:
            await b.start()
        await flowing_both_ways(bots)
        identity = siak.session.participant_id or ""
        for _ in range(50):
            long = rng.random() < 0.6
            link.cut()
            await asyncio.sleep(rng.uniform(1.6, 3.0) if long else rng.uniform(0.05, 0.3))
            link.restore()
            if long:
                long_outages += 1
                await wait_state(siak, SessionState.JOINED, within=10.0)
            await asyncio.sleep(rng.uniform(0.5, 1.5))
        # audio every way at once; video too once the estimates, cut by a link that was
        # down every second or two, have grown back (8 % a second): within a minute
        await flowing_both_ways(bots, within=10.0, video=0)
        await flowing_both_ways(bots, within=60.0)

        assert siak.session.participant_id == identity
        assert siak.session.reconnects == long_outages
        assert all(b.session.reconnects == 0 for b in bots[:-1])
        for other in bots[:-1]:
            assert other.session.roster[identity].connection == "connected"
        records = [
            r for r in running.meeting.store.attendance("siak") if r.participant_id == identity
        ]
        assert len(records) == 1 and records[0].reconnects == long_outages
    finally:
        for b in bots:
            await b.close()
        await running.runner.cleanup()


async def test_waking_from_sleep_reconnects_at_once(
    server: RunningServer, make_bot: BotFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a suspend the wall clock has jumped ahead of the monotonic one (Linux stops the
    monotonic clock in suspend): the session reconnects at once instead of waiting for the
    heartbeat to notice a socket the server closed long ago."""
    minas = await make_bot("Minas")
    siak = await make_bot("Siak")
    await flowing_both_ways([minas, siak])
    identity = siak.session.participant_id

    import siakdesk.core.meetingsession as module

    real_time = time.time

    class SuspendedClock:
        monotonic = staticmethod(time.monotonic)

        @staticmethod
        def time() -> float:
            return real_time() + 3600.0  # an hour asleep, as the wall clock sees it

    monkeypatch.setattr(module, "time", SuspendedClock)
    await wait_state(siak, SessionState.RECONNECTING, within=3.0)
    monkeypatch.setattr(module, "time", time)
    await wait_state(siak, SessionState.JOINED, within=10.0)
    await flowing_both_ways([minas, siak])
    assert siak.session.participant_id == identity
    assert siak.session.reconnects == 1


async def test_a_link_back_during_a_long_backoff_is_used_at_once(
    server: RunningServer, make_bot: BotFactory
) -> None:
    """Regression (a CI run of the 60 s cut): the link came back while the first probe of
    a long backoff was waiting, that probe's success was not taken as "back", and the
    session sat out the rest of the backoff."""
    patient = dataclasses.replace(FAST, first_delay=30.0, max_delay=30.0, probe_interval=1.0)
    link = LinkEmulator()
    minas = await make_bot("Minas")
    siak = await make_bot(
        "Siak", link=link, reconnect=dataclasses.replace(patient, connect_timeout=1.0)
    )
    await flowing_both_ways([minas, siak])

    link.cut()
    await wait_state(siak, SessionState.RECONNECTING, within=5.0)
    await asyncio.sleep(1.5)  # attempt 1 has failed; the 15-30 s wait and its first probe began
    link.restore()
    back_after = await wait_state(siak, SessionState.JOINED, within=10.0)
    assert back_after < 3.0, back_after
