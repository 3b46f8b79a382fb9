"""A participant as the server holds it: its socket, its peer connection, its media."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

from aiohttp import WSCloseCode, web
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc import sdp as aiortc_sdp

from siakdesk.core import protocol
from siakdesk.core.icepolicy import rtc_configuration
from siakdesk.core.peerconnection import PeerConnection
from siakdesk.core.protocol import ParticipantInfo, ProtocolError, SlotCounts
from siakdesk.media.probe import ArrivalMeter
from siakdesk.server.forwarding import (
    Publication,
    ReportBudget,
    SlotTrack,
    quiet_when_idle,
    route_keyframe_requests,
)

logger = logging.getLogger(__name__)

#: The codecs the server forwards; every client must offer them first.
FORWARDED_CODECS = {"audio": "audio/opus", "video": "video/VP8"}
#: Messages waiting for a participant's socket; more means the client is gone in all but name.
MAX_OUTBOX = 500


def check_offer(sdp: str, slots: SlotCounts) -> dict[str, str]:
    """Validate a client's offer against the slot protocol; return ``{mid: direction}``.

    Raises :class:`ProtocolError` (``bad_sdp``) with the reason.
    """
    try:
        description = aiortc_sdp.SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc's parser raises whatever the text provokes
        raise ProtocolError("bad_sdp", f"the offer is not valid SDP: {exc!r}") from None
    if not sdp.startswith("v=0") or not description.media:
        raise ProtocolError("bad_sdp", "the offer is not SDP with media sections")
    sending = {"audio": 0, "video": 0}
    receiving = {"audio": 0, "video": 0}
    directions: dict[str, str] = {}
    for media in description.media:
        if media.kind not in ("audio", "video"):
            continue
        mid = media.rtp.muxId
        if not mid or mid in directions:
            raise ProtocolError("bad_sdp", "every media section needs its own a=mid")
        if media.direction == "sendonly":
            sending[media.kind] += 1
        elif media.direction == "recvonly":
            receiving[media.kind] += 1
        else:
            raise ProtocolError(
                "bad_sdp",
                f"media section {mid} is {media.direction}; use sendonly to publish "
                "and recvonly for a slot",
            )
        codecs = [c for c in media.rtp.codecs if c.mimeType.lower() != f"{media.kind}/rtx"]
        if not codecs or codecs[0].mimeType.lower() != FORWARDED_CODECS[media.kind].lower():
            first = codecs[0].mimeType if codecs else "nothing"
            raise ProtocolError(
                "bad_sdp",
                f"media section {mid} prefers {first}; the server forwards only "
                f"{FORWARDED_CODECS[media.kind]}",
            )
        directions[mid] = media.direction
    for kind in ("audio", "video"):
        if sending[kind] > 1:
            raise ProtocolError("bad_sdp", f"at most one {kind} track may be published")
        allowed = getattr(slots, kind)
        if receiving[kind] > allowed:
            raise ProtocolError(
                "bad_sdp", f"{receiving[kind]} {kind} slots offered, the room allows {allowed}"
            )
    return directions


#: How long a closing handshake may take; a peer whose link is gone never answers it.
CLOSE_TIMEOUT = 2.0


async def close_socket(
    ws: web.WebSocketResponse, code: int = WSCloseCode.OK, message: bytes = b""
) -> None:
    """Close ``ws``, waiting at most :data:`CLOSE_TIMEOUT` for the peer's answer."""
    if ws.closed:
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ws.close(code=code, message=message), CLOSE_TIMEOUT)


class Participant:
    """One joined participant; owns its outbox task and its peer connection."""

    def __init__(
        self,
        participant_id: str,
        name: str,
        office: str,
        stun_urls: tuple[str, ...] = (),
        role: str = "member",
    ) -> None:
        self.id = participant_id
        self.name = name
        self.office = office
        self.role = role
        self.audio_muted = False
        self.video_muted = False
        self._stun_urls = stun_urls
        #: the socket of the current connection; ``None`` while the participant is away
        self.ws: web.WebSocketResponse | None = None
        self.pc: RTCPeerConnection | None = None
        self.publications: dict[str, Publication] = {}
        self.slots: list[SlotTrack] = []
        #: what arrives from this participant's media connection: its probes' rates
        self.arrivals: ArrivalMeter | None = None
        self._outbox: deque[str] = deque()
        self._wakeup = asyncio.Event()
        self._drained = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        #: when the connection was lost (``time.monotonic()``), None while connected
        self.away_since: float | None = None

    def __repr__(self) -> str:
        return f"<Participant {self.id} {self.name!r}>"

    @property
    def info(self) -> ParticipantInfo:
        return ParticipantInfo(
            id=self.id,
            name=self.name,
            office=self.office,
            audio_muted=self.audio_muted,
            video_muted=self.video_muted,
            connection="connected" if self.ws is not None else "reconnecting",
            role="host" if self.role == "host" else "member",
        )

    def attach(self, ws: web.WebSocketResponse) -> None:
        """Speak to the participant on ``ws`` from now on (a join, or a resume)."""
        self.ws = ws
        self.away_since = None
        self._outbox.clear()
        self._writer = asyncio.ensure_future(self._write(ws))

    async def detach(self) -> None:
        """The connection is gone: stop writing to it and release its media.

        The media goes first and at once: a resume on a new socket may start while
        this awaits, and must find nothing of the old connection to trip over.
        """
        self.ws = None
        self.away_since = asyncio.get_running_loop().time()
        media = self._take_media()
        await self._stop_writer(drain=False)
        await self._release(media)

    def post(self, message: protocol.Message) -> None:
        """Queue ``message`` for this participant's socket; never blocks the caller.

        While the participant is away nothing is queued: what it missed (the
        roster, the slots) is sent whole when it comes back.
        """
        if self._closed or self._writer is None or self._writer.done():
            return
        if len(self._outbox) >= MAX_OUTBOX:
            logger.warning("%s: outbox full, dropping the connection", self.name)
            self._writer.cancel()
            return
        self._outbox.append(protocol.encode(message))
        self._drained.clear()
        self._wakeup.set()

    async def _write(self, ws: web.WebSocketResponse) -> None:
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                while self._outbox:
                    await ws.send_str(self._outbox.popleft())
                self._drained.set()
        except (ConnectionError, RuntimeError) as exc:
            # the socket's handler notices and closes it; a closing handshake here could
            # wait 10 s for a peer whose link is gone
            logger.info("%s: socket closed while sending: %s", self.name, exc)

    async def _stop_writer(self, drain: bool) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return
        # let queued messages (a final error, say) go out, then stop the writer
        if drain and self._outbox and not writer.done():
            try:
                await asyncio.wait_for(self._drained.wait(), timeout=2)
            except TimeoutError:
                logger.info("%s: %d messages not delivered", self.name, len(self._outbox))
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        self._outbox.clear()

    async def negotiate(self, offer_sdp: str, slots: SlotCounts) -> str:
        """Answer a media offer with a new peer connection; return the answer's SDP."""
        directions = check_offer(offer_sdp, slots)
        await self.close_media()
        pc = PeerConnection(configuration=rtc_configuration(self._stun_urls))
        self.pc = pc
        pc.on("connectionstatechange", self._on_connection_state)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            budget = ReportBudget()  # the slots' sender reports, shared (quiet_when_idle)
            transceivers = pc.getTransceivers()
            if transceivers:  # one transport for all of them (bundled)
                arrivals = ArrivalMeter(self._probe_measured)
                if ArrivalMeter.install(transceivers[0].receiver.transport, arrivals):
                    self.arrivals = arrivals
            for transceiver in transceivers:
                kind, mid = transceiver.kind, transceiver.mid
                if mid is None:
                    continue
                if directions.get(mid) == "sendonly":
                    self.publications[kind] = Publication(kind, self.id, transceiver.receiver)
                else:
                    slot = SlotTrack(kind, mid)
                    transceiver.sender.replaceTrack(slot)
                    transceiver.direction = "sendonly"
                    route_keyframe_requests(transceiver.sender, slot.request_keyframe)
                    quiet_when_idle(transceiver.sender, budget)
                    self.slots.append(slot)
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:
            await self.close_media()
            raise ProtocolError("bad_sdp", f"the offer could not be answered: {exc}") from None
        return pc.localDescription.sdp

    def _probe_measured(self, kbps: float, packets: int, span_s: float) -> None:
        self.post(
            protocol.ProbeResult(
                received_kbps=round(kbps, 1), packets=packets, span_ms=round(1000 * span_s)
            )
        )

    def _on_connection_state(self) -> None:
        if self.pc is None:
            return
        state = self.pc.connectionState
        logger.info("%s: media %s", self.name, state)
        if state == "connected":
            # the slots' senders run from now on: start every video with a keyframe
            for slot in self.slots:
                slot.request_keyframe()

    async def add_ice_candidate(self, mid: str, candidate: str) -> None:
        if self.pc is None:
            raise ProtocolError("not_joined", "send an offer before ICE candidates")
        try:
            parsed = aiortc_sdp.candidate_from_sdp(candidate.removeprefix("candidate:"))
        except Exception as exc:
            raise ProtocolError("bad_message", f"unreadable ICE candidate: {exc!r}") from None
        parsed.sdpMid = mid
        try:
            await self.pc.addIceCandidate(parsed)
        except Exception as exc:  # aiortc raises ValueError and others for unusable candidates
            raise ProtocolError("bad_message", f"cannot use ICE candidate: {exc!r}") from None

    async def close_media(self) -> None:
        """Release the current media; what a negotiation sets up meanwhile is left alone."""
        await self._release(self._take_media())

    def media_flows(self, within: float) -> bool:
        """This participant's audio or video reached the server within ``within`` seconds."""
        return any(p.frames_in_last(within) for p in self.publications.values())

    def _take_media(self) -> tuple[list[Publication], list[SlotTrack], RTCPeerConnection | None]:
        publications, self.publications = list(self.publications.values()), {}
        slots, self.slots = self.slots, []
        pc, self.pc = self.pc, None
        if self.arrivals is not None:
            self.arrivals.close()
            self.arrivals = None
        return publications, slots, pc

    @staticmethod
    async def _release(
        media: tuple[list[Publication], list[SlotTrack], RTCPeerConnection | None],
    ) -> None:
        publications, slots, pc = media
        for slot in slots:
            slot.stop()
        for publication in publications:
            await publication.close()
        if pc is not None:
            await pc.close()

    async def close(self) -> None:
        """Close media and the socket; idempotent."""
        if self._closed:
            return
        self._closed = True
        await self.close_media()
        ws = self.ws
        await self._stop_writer(drain=True)
        if ws is not None:
            await close_socket(ws)
