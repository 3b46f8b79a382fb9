"""What a :class:`~siakdesk.core.meetingsession.MeetingSession` tells its listeners."""

from __future__ import annotations

import dataclasses
import enum
from typing import TYPE_CHECKING

from siakdesk.core.protocol import Message, ParticipantInfo

if TYPE_CHECKING:
    from siakdesk.core.remotetrack import RemoteTrack


class SessionState(enum.Enum):
    IDLE = "idle"
    CONNECTING = "connecting"  # opening the signaling socket
    JOINING = "joining"  # admitted; negotiating media
    JOINED = "joined"  # in the meeting, media connected
    RECONNECTING = "reconnecting"  # lost the server or the media; getting back by itself
    LEFT = "left"  # the user left, or the session was closed
    FAILED = "failed"  # could not join, or the meeting was lost


#: Which state may follow which; anything else is a bug in the session.
TRANSITIONS: dict[SessionState, frozenset[SessionState]] = {
    SessionState.IDLE: frozenset({SessionState.CONNECTING, SessionState.LEFT}),
    SessionState.CONNECTING: frozenset(
        {SessionState.JOINING, SessionState.FAILED, SessionState.LEFT}
    ),
    SessionState.JOINING: frozenset({SessionState.JOINED, SessionState.FAILED, SessionState.LEFT}),
    SessionState.JOINED: frozenset(
        {SessionState.RECONNECTING, SessionState.FAILED, SessionState.LEFT}
    ),
    SessionState.RECONNECTING: frozenset({SessionState.JOINED, SessionState.LEFT}),
    SessionState.FAILED: frozenset({SessionState.LEFT}),
    SessionState.LEFT: frozenset(),
}


@dataclasses.dataclass(frozen=True)
class StateChanged:
    old: SessionState
    new: SessionState
    reason: str = ""


@dataclasses.dataclass(frozen=True)
class ParticipantJoined:
    participant: ParticipantInfo


@dataclasses.dataclass(frozen=True)
class ParticipantUpdated:
    """A participant muted, unmuted, or turned the camera off or on."""

    participant: ParticipantInfo


@dataclasses.dataclass(frozen=True)
class ParticipantLeft:
    participant: ParticipantInfo
    reason: str


@dataclasses.dataclass(frozen=True)
class TrackAdded:
    participant: ParticipantInfo
    track: RemoteTrack


@dataclasses.dataclass(frozen=True)
class TrackRemoved:
    participant: ParticipantInfo
    track: RemoteTrack


@dataclasses.dataclass(frozen=True)
class ServerError:
    """The server refused something the session sent (not fatal to the session)."""

    code: str
    message: str


@dataclasses.dataclass(frozen=True)
class ReconnectAttempt:
    """The session is about to try to get back into the meeting (attempt 1, 2, ...)."""

    attempt: int
    reason: str


@dataclasses.dataclass(frozen=True)
class Admitted:
    """The server let us in (first join, or again after a reconnect): the socket is usable.

    Chat and agenda resync here, before media is back: they need only the socket.
    """

    participant_id: str
    resumed: bool
    role: str


@dataclasses.dataclass(frozen=True)
class ServerMessage:
    """A chat, agenda or host message from the server, for the components that handle it."""

    message: Message


@dataclasses.dataclass(frozen=True)
class VideoPaused:
    """The server paused a participant's video for this office's link, or resumed it
    (``track.paused`` says which)."""

    participant: ParticipantInfo
    paused: bool


SessionEvent = (
    StateChanged
    | ParticipantJoined
    | ParticipantUpdated
    | VideoPaused
    | ParticipantLeft
    | TrackAdded
    | TrackRemoved
    | ServerError
    | ReconnectAttempt
    | Admitted
    | ServerMessage
)
