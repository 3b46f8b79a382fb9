"""One participant's presence in a meeting: signaling, media, roster, remote tracks.

A :class:`MeetingSession` connects to the server, joins a room, publishes the
local audio and video tracks it was given, receives everyone else's through the
server's slots, and tells listeners what happens (:mod:`siakdesk.core.events`).
The desktop UI and the headless bot drive the same class; neither touches the
network themselves.

Ownership: the session owns its signaling client, its peer connection, the task
that reads signaling messages and one reader task per receive slot.
:meth:`close` (also :meth:`leave`) cancels and awaits all of them, and may be
called any number of times.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import Callable

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtptransceiver import RTCRtpTransceiver
from av.frame import Frame

from siakdesk.core import icepolicy
from siakdesk.core.events import (
    TRANSITIONS,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantUpdated,
    ServerError,
    SessionEvent,
    SessionState,
    StateChanged,
    TrackAdded,
    TrackRemoved,
)
from siakdesk.core.protocol import (
    Answer,
    Error,
    Join,
    Joined,
    Leave,
    MediaState,
    Offer,
    ParticipantInfo,
    SlotAssignment,
    SlotMap,
)
from siakdesk.core.protocol import (
    ParticipantJoined as ParticipantJoinedMessage,
)
from siakdesk.core.protocol import (
    ParticipantLeft as ParticipantLeftMessage,
)
from siakdesk.core.protocol import (
    ParticipantUpdated as ParticipantUpdatedMessage,
)
from siakdesk.core.remotetrack import RemoteTrack
from siakdesk.core.signaling import ServerEndpoint, SignalingClient, SignalingError
from siakdesk.media.encodedtap import tap_receiver
from siakdesk.media.gatedtrack import GatedTrack

logger = logging.getLogger(__name__)

JOIN_TIMEOUT = 20.0
#: The codecs the server forwards (it refuses offers that prefer others).
CODEC_MIME = {"audio": "audio/opus", "video": "video/VP8"}


class JoinError(Exception):
    """Joining failed; ``code`` is machine-readable (``wrong_passcode``, ``unreachable``...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclasses.dataclass(frozen=True)
class SessionConfig:
    endpoint: ServerEndpoint
    room: str
    name: str
    office: str = ""
    passcode: str = ""
    stun_urls: tuple[str, ...] = ()
    #: local addresses to offer for media; ``None``: the one the signaling socket uses
    ice_addresses: tuple[str, ...] | None = None
    #: decode what arrives; ``False`` only counts encoded frames (load tests, many bots)
    decode: bool = True


Listener = Callable[[SessionEvent], None]


def _codec_preferences(kind: str) -> list[object]:
    capabilities = RTCRtpSender.getCapabilities(kind).codecs
    wanted = CODEC_MIME[kind].lower()
    return [c for c in capabilities if c.mimeType.lower() in (wanted, f"{kind}/rtx")]


class MeetingSession:
    def __init__(
        self,
        config: SessionConfig,
        audio: MediaStreamTrack | None = None,
        video: MediaStreamTrack | None = None,
    ) -> None:
        self.config = config
        #: what is sent: the given tracks behind a mute gate each
        self.local: dict[str, GatedTrack] = {
            kind: GatedTrack(track)
            for kind, track in (("audio", audio), ("video", video))
            if track is not None
        }
        self.state = SessionState.IDLE
        self.participant_id: str | None = None
        self.roster: dict[str, ParticipantInfo] = {}
        self.reconnects = 0
        self._listeners: list[Listener] = []
        self._signaling: SignalingClient | None = None
        self._pc: RTCPeerConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._slot_readers: list[asyncio.Task[None]] = []
        self._slot_owner: dict[str, str] = {}
        self._tracks: dict[tuple[str, str], RemoteTrack] = {}
        self._answer: asyncio.Future[str] | None = None
        self._connected = asyncio.Event()
        self._failure: JoinError | None = None
        self.joined_at: float | None = None

    # -- listeners ---------------------------------------------------------

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every event; returns a function that removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _emit(self, event: SessionEvent) -> None:
        for listener in tuple(self._listeners):
            listener(event)

    def _set_state(self, new: SessionState, reason: str = "") -> None:
        old = self.state
        if new is old:
            return
        if new not in TRANSITIONS[old]:
            raise RuntimeError(f"session cannot go from {old.value} to {new.value}")
        self.state = new
        logger.info(
            "%s: %s -> %s%s",
            self.config.name,
            old.value,
            new.value,
            f" ({reason})" if reason else "",
        )
        self._emit(StateChanged(old, new, reason))

    # -- public API --------------------------------------------------------

    @property
    def tracks(self) -> list[RemoteTrack]:
        return list(self._tracks.values())

    async def join(self) -> None:
        """Connect, join and negotiate media; return once media flows, or raise JoinError."""
        self._set_state(SessionState.CONNECTING, self.config.endpoint.url)
        try:
            await asyncio.wait_for(self._join(), JOIN_TIMEOUT)
        except JoinError as exc:
            await self._fail(exc)
            raise
        except TimeoutError:
            timeout = JoinError("timeout", f"no meeting after {JOIN_TIMEOUT:.0f} s")
            await self._fail(timeout)
            raise timeout from None

    def is_muted(self, kind: str) -> bool:
        """True when ``kind`` is muted, or there is no such device to send."""
        gate = self.local.get(kind)
        return gate is None or gate.muted

    async def set_muted(self, kind: str, muted: bool) -> None:
        """Mute or unmute the microphone (``audio``) or the camera (``video``); tell the others."""
        gate = self.local.get(kind)
        if gate is None or gate.muted == muted:
            return
        gate.set_muted(muted)
        logger.info("%s: %s %s", self.config.name, kind, "muted" if muted else "unmuted")
        await self._send_media_state()

    async def _send_media_state(self) -> None:
        if self._signaling is None or self.state not in (SessionState.JOINING, SessionState.JOINED):
            return
        state = MediaState(audio_muted=self.is_muted("audio"), video_muted=self.is_muted("video"))
        with contextlib.suppress(SignalingError):
            await self._signaling.send(state)

    async def leave(self) -> None:
        """Leave the meeting politely and release everything."""
        if self._signaling is not None and self.state is SessionState.JOINED:
            with contextlib.suppress(SignalingError):
                await self._signaling.send(Leave())
        await self.close()

    async def close(self) -> None:
        """Release the socket, the peer connection and every task; idempotent."""
        tasks = [t for t in (self._reader, *self._slot_readers) if t is not None]
        self._reader = None
        self._slot_readers = []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._pc is not None:
            pc, self._pc = self._pc, None
            await pc.close()
        if self._signaling is not None:
            await self._signaling.close()
        for key in list(self._tracks):
            self._drop_track(*key)
        if self.state is not SessionState.LEFT:
            self._set_state(SessionState.LEFT, "closed")

    # -- joining -----------------------------------------------------------

    async def _join(self) -> None:
        config = self.config
        self._signaling = SignalingClient(config.endpoint)
        try:
            await self._signaling.connect()
            await self._signaling.send(
                Join(
                    room=config.room,
                    name=config.name,
                    office=config.office,
                    passcode=config.passcode,
                )
            )
        except SignalingError as exc:
            raise JoinError(exc.code, exc.message) from None
        except ValueError as exc:  # the Join itself is invalid (empty name, say)
            raise JoinError("bad_message", str(exc)) from None
        reply = await self._signaling.receive()
        if isinstance(reply, Error):
            raise JoinError(reply.code, reply.message)
        if not isinstance(reply, Joined):
            raise JoinError("closed", "the server closed the connection before admitting us")
        self.participant_id = reply.participant_id
        self.joined_at = time.monotonic()
        for info in reply.roster:
            self._add_participant(info)
        self._set_state(SessionState.JOINING, f"admitted as {reply.participant_id}")
        await self._send_media_state()

        addresses = config.ice_addresses
        if addresses is None and self._signaling.local_address:
            addresses = (self._signaling.local_address,)
        icepolicy.restrict_host_addresses(addresses)

        self._answer = asyncio.get_running_loop().create_future()
        self._reader = asyncio.ensure_future(self._read_signaling())
        pc = RTCPeerConnection(configuration=icepolicy.rtc_configuration(config.stun_urls))
        self._pc = pc
        pc.on("connectionstatechange", self._on_connection_state)
        receivers: list[RTCRtpTransceiver] = []
        for kind in ("audio", "video"):
            track = self.local.get(kind)
            if track is not None:
                publisher = pc.addTransceiver(track, direction="sendonly")
                publisher.setCodecPreferences(_codec_preferences(kind))  # type: ignore[arg-type]
        for kind in ("audio", "video"):
            for _ in range(getattr(reply.slots, kind)):
                transceiver = pc.addTransceiver(kind, direction="recvonly")
                transceiver.setCodecPreferences(_codec_preferences(kind))  # type: ignore[arg-type]
                receivers.append(transceiver)
                if not config.decode:
                    tap_receiver(transceiver.receiver, functools.partial(self._count, transceiver))
        await pc.setLocalDescription(await pc.createOffer())
        try:
            await self._signaling.send(Offer(sdp=pc.localDescription.sdp))
        except SignalingError as exc:
            raise JoinError(exc.code, exc.message) from None
        answer = await self._answer
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        for transceiver in receivers:
            if not config.decode:
                continue
            if transceiver.mid is not None and transceiver.receiver.track is not None:
                task = asyncio.ensure_future(
                    self._read_slot(transceiver.mid, transceiver.receiver.track)
                )
                self._slot_readers.append(task)
        connected = asyncio.ensure_future(self._connected.wait())
        try:
            await asyncio.wait([connected, self._reader], return_when=asyncio.FIRST_COMPLETED)
        finally:
            connected.cancel()
        if self._failure is not None:
            raise self._failure
        self._set_state(SessionState.JOINED, "media connected")

    def _on_connection_state(self) -> None:
        if self._pc is None:
            return
        state = self._pc.connectionState
        logger.info("%s: media %s", self.config.name, state)
        if state == "connected":
            self._connected.set()
        elif state == "failed" and self.state is SessionState.JOINED:
            # the reconnect loop (auto-reconnect issue) takes over from here
            self._set_state(SessionState.FAILED, "media connection failed")

    async def _fail(self, exc: JoinError) -> None:
        logger.info("%s: could not join: %s", self.config.name, exc.message)
        if self.state in (SessionState.CONNECTING, SessionState.JOINING):
            self._set_state(SessionState.FAILED, exc.message)
        await self.close()

    # -- signaling messages ------------------------------------------------

    async def _read_signaling(self) -> None:
        assert self._signaling is not None
        while True:
            message = await self._signaling.receive()
            if message is None:
                break
            if isinstance(message, Answer):
                if self._answer is not None and not self._answer.done():
                    self._answer.set_result(message.sdp)
            elif isinstance(message, SlotMap):
                self._apply_slot_map(message.assignments)
            elif isinstance(message, ParticipantJoinedMessage):
                self._add_participant(message.participant)
            elif isinstance(message, ParticipantUpdatedMessage):
                if message.participant.id in self.roster:
                    self.roster[message.participant.id] = message.participant
                    self._emit(ParticipantUpdated(message.participant))
            elif isinstance(message, ParticipantLeftMessage):
                self._remove_participant(message.participant_id, message.reason)
            elif isinstance(message, Error):
                logger.warning(
                    "%s: server error %s: %s", self.config.name, message.code, message.message
                )
                if self._answer is not None and not self._answer.done() and message.ref == "offer":
                    self._failure = JoinError(message.code, message.message)
                    self._answer.set_exception(self._failure)
                self._emit(ServerError(message.code, message.message))
        reason = f"the server closed the connection (code {self._signaling.close_code})"
        if self._answer is not None and not self._answer.done():
            self._failure = JoinError("closed", reason)
            self._answer.set_exception(self._failure)
        elif self.state is SessionState.JOINING:
            self._failure = JoinError("closed", reason)
        elif self.state is SessionState.JOINED:
            self._set_state(SessionState.FAILED, reason)

    def _add_participant(self, info: ParticipantInfo) -> None:
        if info.id in self.roster or info.id == self.participant_id:
            return
        self.roster[info.id] = info
        self._emit(ParticipantJoined(info))

    def _remove_participant(self, participant_id: str, reason: str) -> None:
        info = self.roster.pop(participant_id, None)
        if info is None:
            return
        for kind in ("audio", "video"):
            self._drop_track(participant_id, kind)
        self._emit(ParticipantLeft(info, reason))

    def _apply_slot_map(self, assignments: list[SlotAssignment]) -> None:
        owner = {a.mid: a.participant_id for a in assignments}
        wanted = {(a.participant_id, a.kind) for a in assignments}
        for key in list(self._tracks):
            if key not in wanted:
                self._drop_track(*key)
        self._slot_owner = owner
        for participant_id, kind in sorted(wanted):
            info = self.roster.get(participant_id)
            if info is None or (participant_id, kind) in self._tracks:
                continue
            track = RemoteTrack(kind, info)
            self._tracks[(participant_id, kind)] = track
            self._emit(TrackAdded(info, track))

    def _drop_track(self, participant_id: str, kind: str) -> None:
        track = self._tracks.pop((participant_id, kind), None)
        if track is not None:
            track.stop()
            self._emit(TrackRemoved(track.participant, track))

    def _count(self, transceiver: RTCRtpTransceiver, frame: JitterFrame) -> None:
        owner = self._slot_owner.get(transceiver.mid or "")
        remote = self._tracks.get((owner, transceiver.kind)) if owner else None
        if remote is not None:
            remote.count_encoded(frame)

    async def _read_slot(self, mid: str, track: MediaStreamTrack) -> None:
        """Read one receive slot for the whole session, and pass frames to their owner."""
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            owner = self._slot_owner.get(mid)
            remote = self._tracks.get((owner, track.kind)) if owner else None
            if remote is not None and isinstance(frame, Frame):
                remote.feed(frame)
