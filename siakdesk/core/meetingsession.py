"""One participant's presence in a meeting: signaling, media, roster, remote tracks.

A :class:`MeetingSession` connects to the server, joins a room, publishes the
local audio and video tracks it was given, receives everyone else's through the
server's slots, and tells listeners what happens (:mod:`siakdesk.core.events`).
The desktop UI and the headless bot drive the same class; neither touches the
network themselves.

Staying in: once joined, a supervisor task keeps the session in the meeting
until the user leaves.  Trouble has four sources, each noticed within 5 s:
the signaling socket ends or falls silent (heartbeat), no media packet arrives
(the server sends an RTCP sender report about once a second even when nobody
talks, so silence means a dead path), the peer connection fails, or the network
changes under us (a new local address, or the PC woke from sleep).  Dead media
with live signaling gets a new peer connection on the same socket (aiortc has
no ICE restart); anything else a new socket that resumes the same participant
with the server's resume token, then a new peer connection.  Attempts repeat
forever with exponential backoff and jitter (:class:`ReconnectPolicy`); while
waiting, a cheap TCP probe notices at once that the server is reachable again,
so a returning link is used within about a second whatever the backoff.

Ownership: the session owns its signaling client, its peer connection, the task
that reads signaling messages, one reader task per receive slot, and the
supervisor and its two watchers.  :meth:`close` (also :meth:`leave`) cancels
and awaits all of them, and may be called any number of times.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import random
import socket
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
    Admitted,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantUpdated,
    ReconnectAttempt,
    ServerError,
    ServerMessage,
    SessionEvent,
    SessionState,
    StateChanged,
    TrackAdded,
    TrackRemoved,
    VideoPaused,
)
from siakdesk.core.link import LinkTap
from siakdesk.core.peerconnection import PeerConnection
from siakdesk.core.protocol import (
    HEARTBEAT_INTERVAL,
    HEARTBEAT_TIMEOUT,
    ActionAck,
    Agenda,
    Answer,
    AttendanceCsv,
    ChatAck,
    ChatHistoryReply,
    ChatMessage,
    Error,
    Join,
    Joined,
    Leave,
    MediaState,
    Message,
    Offer,
    ParticipantInfo,
    ProbeResult,
    SlotAssignment,
    SlotCounts,
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
from siakdesk.core.signaling import ServerEndpoint, SignalingClient, SignalingError, probe
from siakdesk.core.uplink import Uplink
from siakdesk.media import engine, videojitter
from siakdesk.media.encodedtap import tap_receiver
from siakdesk.media.estimate import LoopLag
from siakdesk.media.gatedtrack import GatedTrack, SenderFeed
from siakdesk.media.playout import AudioPlayout, PlayoutStats, tap_rtp

logger = logging.getLogger(__name__)

JOIN_TIMEOUT = 20.0
#: The codecs the server forwards (it refuses offers that prefer others).
CODEC_MIME = {"audio": "audio/opus", "video": "video/VP8"}
#: What the session passes on as :class:`ServerMessage` (chat, agenda, host replies).
APP_MESSAGES = (ChatMessage, ChatAck, ChatHistoryReply, Agenda, ActionAck, AttendanceCsv)


class JoinError(Exception):
    """Joining failed; ``code`` is machine-readable (``wrong_passcode``, ``unreachable``...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclasses.dataclass(frozen=True)
class ReconnectPolicy:
    """How the session watches its connection and how it gets back in.

    Attempt 1 starts at once; attempt ``n`` waits ``first_delay * 2**(n-2)``,
    capped at ``max_delay``, times a random factor in [0.5, 1] so offices that
    lost the server together do not come back in lockstep.  Between attempts a
    TCP probe every ``probe_interval`` ends the wait as soon as the server
    answers again after it did not.
    """

    first_delay: float = 1.0
    max_delay: float = 15.0
    probe_interval: float = 1.0
    #: one attempt: socket, join and media, all of it
    attempt_timeout: float = 12.0
    connect_timeout: float = 5.0
    heartbeat_interval: float = HEARTBEAT_INTERVAL
    heartbeat_timeout: float = HEARTBEAT_TIMEOUT
    #: no media packet for this long: the media path is dead
    media_timeout: float = 4.0
    #: how often the media and network watchers look
    watch_interval: float = 0.5

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before ``attempt`` (1-based)."""
        if attempt <= 1:
            return 0.0
        return min(self.max_delay, self.first_delay * 2 ** (attempt - 2)) * rng.uniform(0.5, 1.0)


@dataclasses.dataclass(frozen=True)
class SessionConfig:
    endpoint: ServerEndpoint
    room: str
    name: str
    office: str = ""
    passcode: str = ""
    #: join as the room's host (agenda, attendance export)
    host_passcode: str = ""
    stun_urls: tuple[str, ...] = ()
    #: local addresses to offer for media; ``None``: the one the signaling socket uses
    ice_addresses: tuple[str, ...] | None = None
    #: decode what arrives; ``False`` only counts encoded frames (load tests, many bots)
    decode: bool = True
    reconnect: ReconnectPolicy = ReconnectPolicy()
    #: an emulated link between this session and the network (tests, the network lab)
    link: LinkTap | None = dataclasses.field(default=None, compare=False)
    #: "siakdesk": the low-bandwidth media engine; "aiortc": aiortc's defaults as
    #: they come (the benchmark's baseline).  The Opus profile is process-wide once
    #: a "siakdesk" session has been made.
    media: str = "siakdesk"
    #: "hemat data": video no larger than 320x180 whatever the link allows
    data_saver: bool = False

    def __post_init__(self) -> None:
        if self.media not in MEDIA_ENGINES:
            raise ValueError(f"media must be one of {', '.join(MEDIA_ENGINES)}")


Listener = Callable[[SessionEvent], None]
MEDIA_ENGINES = ("siakdesk", "aiortc")


def _codec_preferences(kind: str) -> list[object]:
    capabilities = RTCRtpSender.getCapabilities(kind).codecs
    wanted = CODEC_MIME[kind].lower()
    return [c for c in capabilities if c.mimeType.lower() in (wanted, f"{kind}/rtx")]


def _rx_packets(pc: RTCPeerConnection) -> int:
    """Packets received by ``pc``'s DTLS transports (RTP, RTCP and DTLS alike)."""
    total = 0
    seen: set[int] = set()
    for transceiver in pc.getTransceivers():
        dtls = transceiver.receiver.transport
        if dtls is None or id(dtls) in seen:
            continue
        seen.add(id(dtls))
        total += getattr(dtls, "_RTCDtlsTransport__rx_packets", 0)  # aiortc keeps no public count
    return total


class MeetingSession:
    def __init__(
        self,
        config: SessionConfig,
        audio: MediaStreamTrack | None = None,
        video: MediaStreamTrack | None = None,
    ) -> None:
        if config.media == "siakdesk":
            engine.install()  # our Opus profile and video ladder for what this session sends
        self.config = config
        self.policy = config.reconnect
        #: what is sent: the given tracks behind a mute gate each
        self.local: dict[str, GatedTrack] = {
            kind: GatedTrack(track)
            for kind, track in (("audio", audio), ("video", video))
            if track is not None
        }
        self.state = SessionState.IDLE
        self.participant_id: str | None = None
        self.role = "member"
        self.roster: dict[str, ParticipantInfo] = {}
        #: times the session lost the meeting and went back in by itself
        self.reconnects = 0
        #: seconds from the last media packet before each loss to the media back again
        self.seconds_without_media = 0.0
        #: when the last media packet arrived (``time.monotonic()``), ``None`` before the first
        self.last_media_at: float | None = None
        self.joined_at: float | None = None
        self._listeners: list[Listener] = []
        self._signaling: SignalingClient | None = None
        self._pc: RTCPeerConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._slot_readers: list[asyncio.Task[None]] = []
        #: the adaptive jitter buffer of each audio receive slot (by mid)
        self.playouts: dict[str, AudioPlayout] = {}
        self._retired_playouts = PlayoutStats()
        #: what this office can send, and the encoders tuned to it
        self.uplink = Uplink(data_saver=config.data_saver)
        #: this process's event-loop lateness, measured while joined (statistics, the uplink)
        self.loop_lag = LoopLag()
        self._background: list[asyncio.Task[None]] = []
        self._slot_owner: dict[str, str] = {}
        self._tracks: dict[tuple[str, str], RemoteTrack] = {}
        self._answer: asyncio.Future[str] | None = None
        self._connected = asyncio.Event()
        self._admitted = False
        self._resume_token = ""
        self._trouble = asyncio.Event()
        self._trouble_reason = ""
        self._trouble_media_only = False
        self._kick = asyncio.Event()
        self._rx_seen: tuple[int, int] = (0, -1)  # (id of the pc, packets)
        self._media_since = 0.0  # when the current media connection came up
        self._slots = SlotCounts(audio=0, video=0)
        self._random = random.Random()

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
        """Connect, join and negotiate media; return once media flows, or raise JoinError.

        From then on the session stays in the meeting by itself until :meth:`leave`.
        """
        self._set_state(SessionState.CONNECTING, self.config.endpoint.url)
        try:
            await asyncio.wait_for(self._establish(resume=False), JOIN_TIMEOUT)
        except JoinError as exc:
            await self._fail(exc)
            raise
        except TimeoutError:
            timeout = JoinError("timeout", f"no meeting after {JOIN_TIMEOUT:.0f} s")
            await self._fail(timeout)
            raise timeout from None
        self._set_state(SessionState.JOINED, "media connected")
        self._background = [
            asyncio.ensure_future(self._supervise()),
            asyncio.ensure_future(self._watch_media()),
            asyncio.ensure_future(self._watch_network()),
        ]

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

    async def send(self, message: Message) -> bool:
        """Send ``message`` if the server can hear us now; False if not (keep it and retry)."""
        if self._signaling is None or not self._admitted:
            return False
        try:
            await self._signaling.send(message)
        except SignalingError:
            return False
        return True

    async def _send_media_state(self) -> None:
        # when not admitted it is sent again on admission (after a reconnect too)
        await self.send(
            MediaState(audio_muted=self.is_muted("audio"), video_muted=self.is_muted("video"))
        )

    async def leave(self) -> None:
        """Leave the meeting politely and release everything."""
        await self.send(Leave())
        await self.close()

    async def close(self) -> None:
        """Release the socket, the peer connection and every task; idempotent."""
        background, self._background = self._background, []
        for task in background:
            task.cancel()
        for outcome in await asyncio.gather(*background, return_exceptions=True):
            if isinstance(outcome, Exception):
                logger.error("%s: a session task had failed: %r", self.config.name, outcome)
        await self._teardown()
        for gate in self.local.values():
            gate.stop()  # and the device behind it
        if self.state is not SessionState.LEFT:
            self._set_state(SessionState.LEFT, "closed")

    # -- establishing: join or resume, then media -----------------------------

    async def _establish(self, resume: bool) -> None:
        """Open a socket, join (or resume) and negotiate media; raise JoinError on failure."""
        config = self.config
        signaling = SignalingClient(
            config.endpoint,
            link=config.link,
            heartbeat_interval=self.policy.heartbeat_interval,
            heartbeat_timeout=self.policy.heartbeat_timeout,
            connect_timeout=self.policy.connect_timeout,
            media_flows=self._media_flows,
        )
        self._signaling = signaling
        try:
            await signaling.connect()
            await signaling.send(
                Join(
                    room=config.room,
                    name=config.name,
                    office=config.office,
                    passcode=config.passcode,
                    resume_token=self._resume_token if resume else "",
                    host_passcode=config.host_passcode,
                )
            )
        except SignalingError as exc:
            raise JoinError(exc.code, exc.message) from None
        except ValueError as exc:  # the Join itself is invalid (empty name, say)
            raise JoinError("bad_message", str(exc)) from None
        reply = await signaling.receive()
        if isinstance(reply, Error):
            raise JoinError(reply.code, reply.message)
        if not isinstance(reply, Joined):
            raise JoinError("closed", signaling.end_reason or "the server did not admit us")
        if resume and not reply.resumed:
            logger.info("%s: the server did not know us any more; joined afresh", config.name)
        self.participant_id = reply.participant_id
        self._resume_token = reply.resume_token
        self._slots = reply.slots
        self._admitted = True
        if self.joined_at is None:
            self.joined_at = time.monotonic()
        self.role = reply.role
        self._sync_roster(reply.roster)
        if self.state is SessionState.CONNECTING:
            self._set_state(SessionState.JOINING, f"admitted as {reply.participant_id}")
        await self._send_media_state()
        self._emit(Admitted(reply.participant_id, reply.resumed, reply.role))

        addresses = config.ice_addresses
        if addresses is None and signaling.local_address:
            addresses = (signaling.local_address,)
        icepolicy.restrict_host_addresses(addresses)
        icepolicy.install_consent_freshness()
        self._reader = asyncio.ensure_future(self._read_signaling(signaling))
        await self._negotiate()

    async def _negotiate(self) -> None:
        """A new peer connection on the current socket; return once its media is connected."""
        await self._close_media()
        assert self._signaling is not None and self._reader is not None
        config = self.config
        self._answer = asyncio.get_running_loop().create_future()
        # the offer may never go out (the socket closed first): then nobody awaits the
        # answer, and its failure must not be reported as an error nobody retrieved
        self._answer.add_done_callback(_retrieve)
        self._connected = asyncio.Event()
        # the encoders of this connection's senders start from what the link is known to
        # carry (a reconnect over a thin link must not start again at the top rung)
        engine.uplink_known.set(self.uplink.known)
        pc = PeerConnection(configuration=icepolicy.rtc_configuration(config.stun_urls))
        self._pc = pc
        self._rx_seen = (0, -1)  # none of this connection's packets seen yet
        pc.on("connectionstatechange", functools.partial(self._on_connection_state, pc))
        receivers: list[RTCRtpTransceiver] = []
        for kind in ("audio", "video"):
            track = self.local.get(kind)
            if track is not None:
                publisher = pc.addTransceiver(SenderFeed(track), direction="sendonly")
                publisher.setCodecPreferences(_codec_preferences(kind))  # type: ignore[arg-type]
        slots = self._slots
        for kind in ("audio", "video"):
            for _ in range(getattr(slots, kind)):
                transceiver = pc.addTransceiver(kind, direction="recvonly")
                transceiver.setCodecPreferences(_codec_preferences(kind))  # type: ignore[arg-type]
                receivers.append(transceiver)
                if kind == "video":
                    videojitter.install(transceiver.receiver)
                if not config.decode:
                    tap_receiver(transceiver.receiver, functools.partial(self._count, transceiver))
        await pc.setLocalDescription(await pc.createOffer())
        if config.link is not None:
            config.link.attach_peer_connection(pc)
        try:
            await self._signaling.send(Offer(sdp=pc.localDescription.sdp))
        except SignalingError as exc:
            raise JoinError(exc.code, exc.message) from None
        answer = await self._answer
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        if config.media == "siakdesk":
            self.uplink.pace(pc)
        for transceiver in receivers:
            if not config.decode:
                continue
            if (
                transceiver.mid is not None
                and transceiver.kind == "audio"
                and config.media == "siakdesk"
            ):
                playout = AudioPlayout(functools.partial(self._play, transceiver.mid))
                tap_rtp(transceiver.receiver, playout)
                self.playouts[transceiver.mid] = playout
                self._slot_readers.append(asyncio.ensure_future(playout.run()))
            elif transceiver.mid is not None and transceiver.receiver.track is not None:
                task = asyncio.ensure_future(
                    self._read_slot(transceiver.mid, transceiver.receiver.track)
                )
                self._slot_readers.append(task)
        connected = asyncio.ensure_future(self._connected.wait())
        try:
            await asyncio.wait([connected, self._reader], return_when=asyncio.FIRST_COMPLETED)
        finally:
            connected.cancel()
        if self._reader.done():
            raise JoinError("closed", self._signaling.end_reason or "the server went away")
        if pc.connectionState != "connected":
            raise JoinError("media", f"the media connection {pc.connectionState}")

    def _on_connection_state(self, pc: RTCPeerConnection) -> None:
        if pc is not self._pc:
            return
        state = pc.connectionState
        logger.info("%s: media %s", self.config.name, state)
        if state in ("connected", "failed", "closed"):
            self._connected.set()
        if state == "failed" and self.state is SessionState.JOINED:
            self._raise_trouble("the media connection failed", media_only=True)

    async def _fail(self, exc: JoinError) -> None:
        logger.info("%s: could not join: %s", self.config.name, exc.message)
        if self.state in (SessionState.CONNECTING, SessionState.JOINING):
            self._set_state(SessionState.FAILED, exc.message)
        await self.close()

    async def _close_media(self) -> None:
        readers, self._slot_readers = self._slot_readers, []
        for playout in self.playouts.values():
            self._retired_playouts.add(playout.stats)
        self.playouts = {}
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        await self.uplink.stop_probe()  # it may wait seconds for a pause in our speech
        if self._pc is not None:
            pc, self._pc = self._pc, None
            await pc.close()
        for key in list(self._tracks):
            self._drop_track(*key)
        self._slot_owner = {}

    async def _teardown(self) -> None:
        """Release the media, the reader and the socket (aborted: the link may be dead)."""
        await self._close_media()
        if self._reader is not None:
            reader, self._reader = self._reader, None
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        if self._signaling is not None:
            signaling, self._signaling = self._signaling, None
            await signaling.abort()
        self._admitted = False

    # -- staying in the meeting -------------------------------------------------

    def _raise_trouble(self, reason: str, media_only: bool) -> None:
        if self._trouble.is_set():
            self._trouble_media_only &= media_only
            return
        self._trouble_reason = reason
        self._trouble_media_only = media_only
        self._trouble.set()

    async def _supervise(self) -> None:
        while True:
            await self._trouble.wait()
            reason, media_only = self._trouble_reason, self._trouble_media_only
            self.reconnects += 1
            self._set_state(SessionState.RECONNECTING, reason)
            if media_only and self._signaling is not None and self._reader is not None:
                self._emit(ReconnectAttempt(1, reason))
                try:
                    await asyncio.wait_for(self._negotiate(), self.policy.attempt_timeout)
                except Exception as exc:
                    reason = _describe(exc)
                    logger.info("%s: new media connection failed: %s", self.config.name, reason)
                else:
                    self._recovered(1)
                    continue
            await self._reconnect(reason)

    def _recovered(self, attempts: int) -> None:
        now = time.monotonic()
        pc = self._pc
        seen = pc is not None and self._rx_seen[0] == id(pc)
        if self.last_media_at is not None and not seen:
            # from the last packet of the old media to the new media connected (unless
            # the watcher already saw the new media's packets and counted the gap)
            self.seconds_without_media += now - self.last_media_at
        if not seen:
            self.last_media_at = now
        self._media_since = now
        self._trouble.clear()
        self._kick.clear()
        plural = "s" if attempts != 1 else ""
        self._set_state(SessionState.JOINED, f"back after {attempts} attempt{plural}")

    async def _reconnect(self, reason: str) -> None:
        await self._teardown()
        attempt = 0
        while True:
            attempt += 1
            self._emit(ReconnectAttempt(attempt, reason))
            try:
                await asyncio.wait_for(self._establish(resume=True), self.policy.attempt_timeout)
            except Exception as exc:
                reason = _describe(exc)
                unreachable = isinstance(exc, TimeoutError) or (
                    isinstance(exc, JoinError) and exc.code in ("unreachable", "closed")
                )
                logger.info("%s: attempt %d failed: %s", self.config.name, attempt, reason)
                await self._teardown()
            else:
                self._recovered(attempt)
                return
            await self._wait_before(attempt + 1, unreachable)

    async def _wait_before(self, attempt: int, unreachable: bool) -> None:
        """Back off before ``attempt``; end early when the server answers again or the net moved.

        ``unreachable``: the last attempt could not reach the server, so the first probe
        that gets through already means the link is back.  When the server was reachable
        and refused (full room, say), only a change from unreachable to reachable ends the
        wait, and the backoff spaces out the attempts.
        """
        deadline = time.monotonic() + self.policy.delay(attempt, self._random)
        self._kick.clear()
        was_reachable: bool | None = False if unreachable else None
        while (left := deadline - time.monotonic()) > 0:
            step = min(left, self.policy.probe_interval)
            started = time.monotonic()
            reachable = await probe(self.config.endpoint, self.config.link, step)
            if reachable and was_reachable is False:
                logger.info("%s: the server answers again", self.config.name)
                return
            was_reachable = reachable
            if self._kick.is_set():
                return
            rest = step - (time.monotonic() - started)
            if rest > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._kick.wait(), rest)
                if self._kick.is_set():
                    return

    def _media_flows(self) -> bool:
        """Media arrived from the server lately: within a third of the heartbeat timeout
        (the media watcher looks every ``watch_interval``)."""
        last = self.last_media_at
        within = max(self.policy.heartbeat_timeout / 3, self.policy.watch_interval)
        return (
            self.state is SessionState.JOINED
            and last is not None
            and time.monotonic() - last <= within
        )

    async def _watch_media(self) -> None:
        """Notice a media path that went silent; count the seconds without media;
        keep the uplink's estimate (and so the encoders) up to date."""
        self.last_media_at = self._media_since = time.monotonic()
        # our own loop lag is part of every RTT we measure: the uplink tells it from a queue
        lag = asyncio.ensure_future(self.loop_lag.run())
        try:
            while True:
                await asyncio.sleep(self.policy.watch_interval)
                try:
                    self._look_at_media()
                    if self._pc is not None:
                        await self.uplink.poll(
                            self._pc, busy_s=self.loop_lag.recent(time.monotonic())
                        )
                except Exception:  # a watcher that dies would leave the session blind
                    logger.exception("%s: media watcher failed", self.config.name)
        finally:
            lag.cancel()
            await asyncio.gather(lag, return_exceptions=True)

    def _look_at_media(self) -> None:
        now = time.monotonic()
        pc = self._pc
        packets = _rx_packets(pc) if pc is not None else -1
        key = (id(pc), packets)
        if pc is not None and packets > 0 and key != self._rx_seen:
            if key[0] != self._rx_seen[0] and self.last_media_at is not None:
                # the first packets of a new connection, seen before the session said it
                # was back (its ICE and DTLS can take a second): the gap ends here
                self.seconds_without_media += max(0.0, now - self.last_media_at)
            self.last_media_at = now
            self._rx_seen = key
            return
        silent = now - max(self.last_media_at or 0.0, self._media_since)
        if self.state is SessionState.JOINED and silent > self.policy.media_timeout:
            self._raise_trouble(f"no media for {silent:.1f} s", media_only=True)

    async def _watch_network(self) -> None:
        """Notice the PC waking from sleep and a new local address; reconnect at once."""
        wall, mono = time.time(), time.monotonic()
        checks = 0
        while True:
            await asyncio.sleep(1.0)
            now_wall, now_mono = time.time(), time.monotonic()
            # Linux's monotonic clock stops in suspend, Windows' does not: look at both
            if now_mono - mono > 5.0 or (now_wall - wall) - (now_mono - mono) > 3.0:
                self._network_moved("the computer woke from sleep")
            wall, mono = now_wall, now_mono
            checks += 1
            if checks % 2 or self._signaling is None or not self._signaling.local_address:
                continue
            used = self._signaling.local_address
            route = await self._route_address()
            if route is not None and route != used:
                self._network_moved(f"the network changed ({used} -> {route})")

    def _network_moved(self, reason: str) -> None:
        logger.info("%s: %s", self.config.name, reason)
        self._kick.set()
        if self.state is SessionState.JOINED:
            self._raise_trouble(reason, media_only=False)

    async def _route_address(self) -> str | None:
        """The local address the OS would use to reach the server now, or None if no route."""
        host, _port = self.config.endpoint.address
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, 9, type=socket.SOCK_DGRAM)
            family, _, _, _, address = infos[0]
            with socket.socket(family, socket.SOCK_DGRAM) as probe_socket:
                probe_socket.connect(address)  # a route lookup; sends nothing
                return str(probe_socket.getsockname()[0])
        except (OSError, IndexError):
            return None

    # -- signaling messages ------------------------------------------------

    async def _read_signaling(self, signaling: SignalingClient) -> None:
        while True:
            message = await signaling.receive()
            if message is None:
                break
            if isinstance(message, Answer):
                if self._answer is not None and not self._answer.done():
                    self._answer.set_result(message.sdp)
            elif isinstance(message, SlotMap):
                self._apply_slot_map(message.assignments)
            elif isinstance(message, ProbeResult):
                self.uplink.probe_result(
                    message.received_kbps, message.packets, message.span_ms / 1000
                )
            elif isinstance(message, ParticipantJoinedMessage):
                self._add_participant(message.participant)
            elif isinstance(message, ParticipantUpdatedMessage):
                self._update_participant(message.participant)
            elif isinstance(message, ParticipantLeftMessage):
                self._remove_participant(message.participant_id, message.reason)
            elif isinstance(message, APP_MESSAGES):
                self._emit(ServerMessage(message))
            elif isinstance(message, Error):
                logger.warning(
                    "%s: server error %s: %s", self.config.name, message.code, message.message
                )
                if self._answer is not None and not self._answer.done() and message.ref == "offer":
                    self._answer.set_exception(JoinError(message.code, message.message))
                self._emit(ServerError(message.code, message.message))
        reason = signaling.end_reason or "the server closed the connection"
        self._admitted = False
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(JoinError("closed", reason))
        if self.state is SessionState.JOINED:
            self._raise_trouble(reason, media_only=False)

    def _sync_roster(self, roster: list[ParticipantInfo]) -> None:
        """Make the roster what the server says (after a resume, people came and went)."""
        current = {info.id: info for info in roster if info.id != self.participant_id}
        for participant_id in list(self.roster):
            if participant_id not in current:
                self._remove_participant(participant_id, "left")
        for info in current.values():
            if info.id in self.roster:
                self._update_participant(info)
            else:
                self._add_participant(info)

    def _add_participant(self, info: ParticipantInfo) -> None:
        if info.id in self.roster or info.id == self.participant_id:
            return
        self.roster[info.id] = info
        self._emit(ParticipantJoined(info))

    def _update_participant(self, info: ParticipantInfo) -> None:
        if info.id in self.roster and self.roster[info.id] != info:
            self.roster[info.id] = info
            self._emit(ParticipantUpdated(info))

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
        for assignment in assignments:
            remote = self._tracks.get((assignment.participant_id, assignment.kind))
            if remote is not None and remote.paused != assignment.paused:
                remote.paused = assignment.paused  # the server stopped forwarding it, or resumed
                info = self.roster.get(assignment.participant_id)
                if info is not None:
                    self._emit(VideoPaused(info, assignment.paused))

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

    def _play(self, mid: str, frame: Frame) -> None:
        owner = self._slot_owner.get(mid)
        remote = self._tracks.get((owner, "audio")) if owner else None
        if remote is not None:
            remote.feed(frame)

    def set_data_saver(self, on: bool) -> None:
        """ "Hemat data": video no larger than 320x180 (applied within half a second)."""
        self.uplink.data_saver = on

    def playout_stats(self) -> PlayoutStats:
        """What the audio jitter buffers did, summed over every slot since joining."""
        total = dataclasses.replace(self._retired_playouts)
        for playout in self.playouts.values():
            total.add(playout.stats)
        return total

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


def _retrieve(future: asyncio.Future[str]) -> None:
    if not future.cancelled():
        future.exception()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, JoinError):
        return exc.message
    if isinstance(exc, TimeoutError):
        return "the attempt took too long"
    return f"{type(exc).__name__}: {exc}"
