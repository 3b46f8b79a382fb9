"""The protocol's error paths against the real server: clear replies, nobody else hurt."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiortc import RTCPeerConnection

from siakdesk.bot import Bot
from siakdesk.core import protocol
from siakdesk.core.meetingsession import JoinError
from siakdesk.core.signaling import ServerEndpoint
from siakdesk.server.app import CLOSE_REFUSED
from tests.conftest import BotFactory, RunningServer


class RawClient:
    """A WebSocket that sends whatever a test likes, as a broken or hostile client would."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def send(self, payload: str | dict[str, Any]) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        await self.ws.send_str(text)

    async def reply(self) -> dict[str, Any]:
        message = await asyncio.wait_for(self.ws.receive(), 10)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        data: dict[str, Any] = json.loads(message.data)
        return data

    async def join(self, name: str = "Tamu", passcode: str = "1234") -> dict[str, Any]:
        await self.send(
            {"v": 1, "type": "join", "room": "siak", "name": name, "passcode": passcode}
        )
        reply = await self.reply()
        if reply["type"] == "joined":
            # the agenda follows every admission
            assert (await self.reply())["type"] == "agenda"
        return reply

    async def still_answers(self) -> bool:
        await self.send({"v": 1, "type": "ping", "nonce": 7})
        return await self.reply() == {"v": 1, "type": "pong", "nonce": 7}


@pytest.fixture
async def raw(server: RunningServer) -> AsyncIterator[RawClient]:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{server.url}/ws", max_msg_size=0) as ws,
    ):
        yield RawClient(ws)


async def test_wrong_passcode_is_refused_with_reason(server: RunningServer, raw: RawClient) -> None:
    reply = await raw.join(passcode="9999")
    assert reply["type"] == "error"
    assert reply["code"] == "wrong_passcode"
    assert "wrong passcode" in reply["message"]
    assert reply["fatal"] is True
    closing = await asyncio.wait_for(raw.ws.receive(), 10)
    assert closing.type == aiohttp.WSMsgType.CLOSE
    assert raw.ws.close_code == CLOSE_REFUSED
    assert server.meeting.rooms["siak"].participants == {}


async def test_session_reports_wrong_passcode_and_unreachable_server(
    server: RunningServer, make_bot: BotFactory
) -> None:
    with pytest.raises(JoinError) as refused:
        await make_bot("Minas", passcode="0000")
    assert refused.value.code == "wrong_passcode"

    with socket.socket() as probe:  # a port that was free a moment ago: nobody listens
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    with pytest.raises(JoinError) as unreachable:
        await make_bot("Minas", endpoint=ServerEndpoint(f"http://127.0.0.1:{free_port}"))
    assert unreachable.value.code == "unreachable"
    assert "cannot reach" in unreachable.value.message


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ("{this is not json", "bad_json"),
        ("[1, 2, 3]", "bad_message"),
        ('{"v": 1}', "bad_message"),
        ('{"v": 1, "type": "launch_missiles"}', "unknown_type"),
        ('{"v": 1, "type": "joined", "participant_id": "x"}', "unknown_type"),
        ('{"v": 99, "type": "ping"}', "unsupported_version"),
        ('{"v": 1, "type": "join", "room": "siak"}', "bad_message"),
        ('{"v": 1, "type": "join", "room": "siak", "name": 5}', "bad_message"),
        ('{"v": 1, "type": "join", "room": "siak", "name": "   "}', "bad_message"),
        ('{"v": 1, "type": "offer", "sdp": "v=0"}', "not_joined"),
        ('{"v": 1, "type": "join", "room": "nowhere", "name": "Minas"}', "unknown_room"),
    ],
)
async def test_bad_messages_get_an_error_reply_and_the_connection_lives(
    raw: RawClient, payload: str, code: str
) -> None:
    await raw.send(payload)
    reply = await raw.reply()
    assert reply["type"] == "error"
    assert reply["code"] == code, reply
    assert reply["message"]
    assert await raw.still_answers()


async def test_long_name_is_refused(raw: RawClient) -> None:
    reply = await raw.join(name="x" * (protocol.MAX_NAME_CHARS + 1))
    assert (reply["type"], reply["code"]) == ("error", "bad_message")
    assert "longer than" in reply["message"]


async def test_oversized_message_gets_an_error_reply(raw: RawClient) -> None:
    huge = {"v": 1, "type": "offer", "sdp": "a" * (protocol.MAX_MESSAGE_BYTES + 10)}
    await raw.send(huge)
    reply = await raw.reply()
    assert (reply["code"], reply["ref"]) == ("too_large", "offer")
    assert await raw.still_answers()


async def test_giant_frame_closes_only_that_connection(
    server: RunningServer, raw: RawClient, make_bot: BotFactory
) -> None:
    bot = await make_bot("Kandis")
    await raw.send("x" * (8 * protocol.MAX_MESSAGE_BYTES))
    closing = await asyncio.wait_for(raw.ws.receive(), 10)
    assert closing.type == aiohttp.WSMsgType.CLOSE
    assert raw.ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    assert [p.name for p in server.meeting.rooms["siak"].participants.values()] == ["Kandis"]
    assert bot.session.state.value == "joined"


async def test_out_of_order_and_repeated_messages(raw: RawClient) -> None:
    assert (await raw.join())["type"] == "joined"
    reply = await raw.join()
    assert (reply["code"], reply["ref"]) == ("already_joined", "join")
    await raw.send(
        {"v": 1, "type": "ice", "mid": "0", "candidate": "candidate:1 1 udp 1 1 1 typ host"}
    )
    reply = await raw.reply()
    assert reply["code"] == "not_joined"  # no offer yet, so no peer connection
    assert await raw.still_answers()


async def test_bad_offers_are_refused(raw: RawClient) -> None:
    joined = await raw.join()
    assert joined["slots"] == {"audio": 19, "video": 19}

    await raw.send({"v": 1, "type": "offer", "sdp": "not sdp at all"})
    reply = await raw.reply()
    assert reply["code"] == "bad_sdp"

    # one audio slot more than the room has; then a sendrecv section
    for transceivers, reason in (
        ([("audio", "recvonly")] * 20, "20 audio slots offered, the room allows 19"),
        ([("video", "sendrecv")], "sendrecv"),
    ):
        pc = RTCPeerConnection()
        try:
            for kind, direction in transceivers:
                pc.addTransceiver(kind, direction=direction)
            await pc.setLocalDescription(await pc.createOffer())
            await raw.send({"v": 1, "type": "offer", "sdp": pc.localDescription.sdp})
            reply = await raw.reply()
            assert reply["code"] == "bad_sdp"
            assert reason in reply["message"]
        finally:
            await pc.close()
    assert await raw.still_answers()


async def test_garbage_does_not_disturb_a_meeting(
    server: RunningServer, raw: RawClient, make_bot: BotFactory
) -> None:
    minas, kandis = await make_bot("Minas"), await make_bot("Kandis")
    await kandis.wait_until(
        lambda b: "Minas" in b.received and b.received["Minas"].video_frames > 0
    )
    before = kandis.received["Minas"].video_frames
    for payload in ("{", "[]", '{"v":1,"type":"nope"}', '{"v":1,"type":"leave"}'):
        await raw.send(payload)
        await raw.reply()
    await kandis.wait_until(lambda b: b.received["Minas"].video_frames > before + 15)
    assert minas.session.state.value == kandis.session.state.value == "joined"
    assert len(server.meeting.rooms["siak"].participants) == 2


async def test_bot_cannot_join_unknown_room(make_bot: BotFactory) -> None:
    with pytest.raises(JoinError) as refused:
        await make_bot("Minas", room="nowhere")
    assert refused.value.code == "unknown_room"


async def test_open_room_needs_no_passcode(make_bot: BotFactory) -> None:
    bot: Bot = await make_bot("Minas", room="open", passcode="")
    assert bot.session.state.value == "joined"


async def test_unusable_ice_candidate_is_refused(raw: RawClient) -> None:
    await raw.join()
    pc = RTCPeerConnection()
    try:
        pc.addTransceiver("audio", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        await raw.send({"v": 1, "type": "offer", "sdp": pc.localDescription.sdp})
        assert (await raw.reply())["type"] == "answer"
        assert (await raw.reply()) == {"v": 1, "type": "slot_map", "assignments": []}
        await raw.send({"v": 1, "type": "ice", "mid": "0", "candidate": "candidate:garbage"})
        reply = await raw.reply()
        assert (reply["type"], reply["code"]) == ("error", "bad_message")
        assert await raw.still_answers()
    finally:
        await pc.close()


async def test_a_silent_client_becomes_reconnecting_and_resumes_with_its_token(
    server: RunningServer, make_bot: BotFactory
) -> None:
    minas = await make_bot("Minas")
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{server.url}/ws") as ws:
            first = await RawClient(ws).join("Tamu")
            assert first["type"] == "joined" and first["resume_token"]
            assert not first["resumed"]
            # say nothing: the server's heartbeat timeout (5 s) ends the connection
            closed = await asyncio.wait_for(ws.receive(), 8)
            while closed.type is aiohttp.WSMsgType.TEXT:  # roster news, until the end
                closed = await asyncio.wait_for(ws.receive(), 8)
            assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), closed
        changed = asyncio.Event()
        minas.session.add_listener(lambda _event: changed.set())
        async with asyncio.timeout(5):
            while minas.session.roster[first["participant_id"]].connection != "reconnecting":
                await changed.wait()
                changed.clear()

        async with session.ws_connect(f"{server.url}/ws") as ws:
            client = RawClient(ws)
            await client.send(
                {
                    "v": 1,
                    "type": "join",
                    "room": "siak",
                    "name": "Tamu",
                    "passcode": "",
                    "resume_token": first["resume_token"],
                }
            )
            again = await client.reply()
            assert again["type"] == "joined" and again["resumed"]
            assert again["participant_id"] == first["participant_id"]
            # a made-up token is simply a new participant, who needs the passcode
            async with session.ws_connect(f"{server.url}/ws") as other:
                stranger = RawClient(other)
                await stranger.send(
                    {
                        "v": 1,
                        "type": "join",
                        "room": "siak",
                        "name": "X",
                        "passcode": "1234",
                        "resume_token": "made-up",
                    }
                )
                reply = await stranger.reply()
                assert reply["type"] == "joined" and not reply["resumed"]
                assert reply["participant_id"] != first["participant_id"]
