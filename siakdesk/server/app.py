"""The meeting server's aiohttp application: signaling on ``/ws``, health and stats.

:func:`app_factory` builds the application; tests and the embedded demo call it
and run it on ``127.0.0.1:0``, the ``siakdesk-server`` command runs it for real.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from siakdesk import __version__
from siakdesk.core import icepolicy, protocol
from siakdesk.core.protocol import (
    CLIENT_MESSAGES,
    HEARTBEAT_PATIENCE,
    AgendaNext,
    AgendaSet,
    Answer,
    AttendanceExport,
    ChatHistory,
    ChatSend,
    IceCandidate,
    Join,
    Joined,
    Leave,
    MediaState,
    Offer,
    Ping,
    Pong,
    ProtocolError,
)
from siakdesk.server.config import ServerConfig
from siakdesk.server.participant import Participant, close_socket
from siakdesk.server.room import Room
from siakdesk.server.store import Store

logger = logging.getLogger(__name__)

#: aiohttp closes the socket (code 1009) above this; below it and above the protocol's
#: own limit, the client gets an error reply and stays connected.
WS_FRAME_LIMIT = 4 * protocol.MAX_MESSAGE_BYTES
#: Close code for a refused join (passcode, room, capacity): the reason is in the error message.
CLOSE_REFUSED = 4003


class MeetingServer:
    """Rooms and open sockets of one server process."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.store = Store(config.database)
        self.rooms = {
            room.name: Room(room, self.store, config.reconnect_grace, config.stun_urls)
            for room in config.rooms
        }
        for room in self.rooms.values():
            room.start()
        self.sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
        self.started = time.monotonic()

    async def close(self) -> None:
        for room in self.rooms.values():
            await room.close()
        for ws in list(self.sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")
        self.store.close()

    def stats(self) -> dict[str, Any]:
        rooms = {}
        for room in self.rooms.values():
            participants = {}
            for p in room.participants.values():
                participants[p.id] = {
                    "name": p.name,
                    "role": p.role,
                    "office": p.office,
                    "connection": p.info.connection,
                    "published": {
                        kind: {
                            "frames": pub.frames,
                            "bytes": pub.bytes,
                            "keyframes": pub.keyframes,
                            "keyframe_requests": pub.keyframe_requests,
                        }
                        for kind, pub in p.publications.items()
                    },
                    "forwarded": {
                        kind: {
                            "frames": sum(s.forwarded for s in p.slots if s.kind == kind),
                            "bytes": sum(s.forwarded_bytes for s in p.slots if s.kind == kind),
                            "dropped": sum(s.dropped for s in p.slots if s.kind == kind),
                        }
                        for kind in ("audio", "video")
                    },
                    "slots": [
                        {
                            "mid": s.mid,
                            "kind": s.kind,
                            "publisher": s.participant_id,
                            "frames": s.forwarded,
                        }
                        for s in p.slots
                        if s.participant_id is not None
                    ],
                }
            rooms[room.name] = {"participants": participants}
        return {
            "version": __version__,
            "uptime_s": round(time.monotonic() - self.started, 3),
            "rooms": rooms,
        }


SERVER = web.AppKey("server", MeetingServer)


async def _send_error(ws: web.WebSocketResponse, exc: ProtocolError, ref: str = "") -> None:
    if not ws.closed:
        await ws.send_str(protocol.encode(protocol.error_reply(exc, ref=ref)))


async def websocket_handler(request: web.Request) -> web.WebSocketResponse:
    server = request.app[SERVER]
    ws = web.WebSocketResponse(max_msg_size=WS_FRAME_LIMIT)
    await ws.prepare(request)
    server.sockets.add(ws)
    room: Room | None = None
    participant: Participant | None = None
    reason = "connection lost"
    left = False
    silent = 0.0
    try:
        while True:
            try:
                raw = await ws.receive(timeout=server.config.heartbeat_timeout)
            except TimeoutError:
                # a link that still carries this participant's media (in the last third
                # of the timeout) is alive: the socket is only stuck behind loss (see
                # siakdesk.core.signaling)
                timeout = server.config.heartbeat_timeout
                silent += timeout
                flows = participant is not None and participant.media_flows(timeout / 3)
                if flows and silent < HEARTBEAT_PATIENCE:
                    continue
                reason = f"silent for {silent:g} s"
                break
            silent = 0.0
            if raw.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
            data: str | bytes = raw.data
            try:
                message = protocol.decode(data, accept=CLIENT_MESSAGES)
            except ProtocolError as exc:
                logger.info("refused a message from %s: %s", request.remote, exc.message)
                await _send_error(ws, exc, ref=protocol.peek_type(data))
                continue
            try:
                if isinstance(message, Join):
                    if participant is not None:
                        raise ProtocolError("already_joined", "this connection has joined already")
                    room = server.rooms.get(message.room)
                    if room is None:
                        raise ProtocolError("unknown_room", f"there is no room {message.room!r}")
                    try:
                        admission = await room.admit(message)
                    except ProtocolError as exc:
                        logger.info(
                            "refused %s (%s) from room %s: %s",
                            message.name,
                            request.remote,
                            room.name,
                            exc.message,
                        )
                        error = protocol.error_reply(exc, ref="join", fatal=True)
                        await ws.send_str(protocol.encode(error))
                        await ws.close(code=CLOSE_REFUSED, message=exc.code.encode())
                        break
                    participant = admission.participant
                    participant.attach(ws)
                    participant.post(
                        Joined(
                            participant_id=participant.id,
                            room=room.name,
                            roster=[
                                p.info for p in room.participants.values() if p is not participant
                            ],
                            slots=room.slot_counts,
                            resume_token=admission.resume_token,
                            resumed=admission.resumed,
                            role="host" if participant.role == "host" else "member",
                        )
                    )
                    if admission.resumed:
                        room.update(participant)
                    participant.post(room.agenda_message())
                elif isinstance(message, Ping):
                    await ws.send_str(protocol.encode(Pong(nonce=message.nonce)))
                elif participant is None or room is None:
                    raise ProtocolError(
                        "not_joined", f"join a room before sending {message.TYPE!r}"
                    )
                elif isinstance(message, Offer):
                    answer = await participant.negotiate(message.sdp, room.slot_counts)
                    participant.post(Answer(sdp=answer))
                    room.media_renewed(participant)
                elif isinstance(message, IceCandidate):
                    await participant.add_ice_candidate(message.mid, message.candidate)
                elif isinstance(message, MediaState):
                    participant.audio_muted = message.audio_muted
                    participant.video_muted = message.video_muted
                    room.update(participant)
                elif isinstance(message, ChatSend):
                    room.chat(participant, message)
                elif isinstance(message, ChatHistory):
                    participant.post(room.chat_history(message.after_seq))
                elif isinstance(message, AgendaSet):
                    room.set_agenda(participant, message)
                elif isinstance(message, AgendaNext):
                    room.agenda_next(participant, message)
                elif isinstance(message, AttendanceExport):
                    participant.post(room.attendance_csv(participant))
                elif isinstance(message, Leave):
                    reason = "left"
                    left = True
                    break
            except ProtocolError as exc:
                logger.info("error for %s: %s", participant or request.remote, exc.message)
                await _send_error(ws, exc, ref=message.TYPE)
            except Exception:
                # a bug of ours: say so to this client, keep the meeting going for everyone
                logger.exception("failed to handle %s from %s", message.TYPE, participant)
                internal = ProtocolError(
                    "internal", f"the server failed to handle {message.TYPE!r}"
                )
                await _send_error(ws, internal, ref=message.TYPE)
        if ws.exception() is not None:
            logger.info("socket of %s failed: %s", participant or request.remote, ws.exception())
    finally:
        if participant is not None and room is not None and participant.ws is ws:
            if left:
                await room.remove(participant, reason)
            elif room.participants.get(participant.id) is participant:
                await room.connection_lost(participant, reason)
        await close_socket(ws)
    return ws


async def index_handler(request: web.Request) -> web.Response:
    return web.Response(text=f"SiakDesk meeting server {__version__}\n")


async def stats_handler(request: web.Request) -> web.Response:
    return web.json_response(request.app[SERVER].stats())


def app_factory(config: ServerConfig) -> web.Application:
    """The server application for ``config``; run it with ``aiohttp.web.AppRunner``."""
    app = web.Application()

    async def meeting_server(app: web.Application) -> AsyncIterator[None]:
        icepolicy.install_consent_freshness()
        if config.media_addresses:
            icepolicy.restrict_host_addresses(config.media_addresses)
        elif not icepolicy.is_unspecified(config.host):
            icepolicy.restrict_host_addresses([config.host])
        app[SERVER] = MeetingServer(config)
        yield
        await app[SERVER].close()  # nothing left to close after a normal shutdown

    async def close_meetings(app: web.Application) -> None:
        # on_shutdown runs before aiohttp waits for handlers to finish: the open
        # websockets must be closed here, or shutdown waits for its timeout
        await app[SERVER].close()

    app.cleanup_ctx.append(meeting_server)
    app.on_shutdown.append(close_meetings)
    app.router.add_get("/", index_handler)
    app.router.add_get("/ws", websocket_handler)
    app.router.add_get("/stats", stats_handler)
    return app
