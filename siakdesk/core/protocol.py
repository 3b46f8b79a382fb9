"""The signaling protocol between a SiakDesk client and the meeting server.

Every message is one JSON object on a WebSocket, with two envelope fields:

* ``v``: the protocol version (:data:`PROTOCOL_VERSION`); a peer refuses
  messages of a version it does not speak, with an ``unsupported_version`` error;
* ``type``: which message it is; the rest of the fields depend on it.

Each message is a typed :class:`msgspec.Struct` and there is exactly one pair of
functions to turn it into bytes and back: :func:`encode` and :func:`decode`.
:func:`decode` never raises anything but :class:`ProtocolError`, whose ``code``
is what the server sends back in an :class:`Error` reply; so garbage, an unknown
type, a missing field or a field of the wrong type is a clear reply, never a
traceback.

Media slots: the server never renegotiates a peer connection.  After ``joined``
the client offers one send-only audio and one send-only video transceiver (its
own camera and microphone) and then ``slots.audio`` receive-only audio and
``slots.video`` receive-only video transceivers.  The server fills those slots
with other participants' media and says which participant is in which slot (by
the transceiver's ``mid``) in a ``slot_map`` message, whenever that changes.
This is how Jitsi's last-N and Google Meet's fixed video slots work too, and it
lets the server choose per subscriber what to forward without a new offer.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

import msgspec

PROTOCOL_VERSION = 1

#: Largest message the server accepts; an SDP offer with 40 m-lines is ~40 KiB.
MAX_MESSAGE_BYTES = 256 * 1024

#: Longest name or office a participant may use, in characters.
MAX_NAME_CHARS = 64

#: Longest chat message, in characters (a report pasted from a document fits).
MAX_CHAT_CHARS = 4000
#: Messages in one ``chat_history`` reply; the client asks again for more.
CHAT_PAGE = 200
#: Longest agenda: a roll call of the 14 kecamatan and then some.
MAX_AGENDA_ITEMS = 60

#: How often a client sends ``ping``; a side that hears nothing for
#: :data:`HEARTBEAT_TIMEOUT` treats the connection as dead.
HEARTBEAT_INTERVAL = 1.5
HEARTBEAT_TIMEOUT = 4.5
#: ... unless media still arrives from the other side: then the link is alive and only
#: the socket is stuck behind loss on a thin link (TCP backs off for seconds), and each
#: side waits up to this long before it gives the connection up.
HEARTBEAT_PATIENCE = 20.0

#: What a room name looks like (it appears in URLs, logs and file names).
ROOM_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"

ErrorCode = Literal[
    "bad_json",
    "bad_message",
    "unknown_type",
    "unsupported_version",
    "too_large",
    "not_joined",
    "already_joined",
    "unknown_room",
    "wrong_passcode",
    "room_full",
    "bad_sdp",
    "not_host",
    "internal",
]


class ProtocolError(Exception):
    """A message could not be accepted; ``code`` says why, for the error reply."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message


class Message(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=False):
    """Base of every message: the envelope's version field."""

    TYPE: ClassVar[str]
    v: int = PROTOCOL_VERSION


class ParticipantInfo(msgspec.Struct, frozen=True):
    """One participant as everyone in the room sees them."""

    id: str
    name: str
    office: str = ""
    audio_muted: bool = False
    video_muted: bool = False
    #: ``reconnecting`` while the server waits for a lost participant to come back
    connection: Literal["connected", "reconnecting"] = "connected"
    #: ``host`` may edit the agenda and export attendance
    role: Literal["member", "host"] = "member"


class SlotCounts(msgspec.Struct, frozen=True):
    """How many receive-only transceivers of each kind the client must offer."""

    audio: int
    video: int


class SlotAssignment(msgspec.Struct, frozen=True):
    """Which participant's media the server sends on the transceiver ``mid``."""

    mid: str
    kind: Literal["audio", "video"]
    participant_id: str
    #: video only: the server does not forward it now (the subscriber's link has no room)
    paused: bool = False


# -- client to server ---------------------------------------------------------


class Join(Message, frozen=True, tag="join"):
    TYPE = "join"
    room: str
    name: str
    office: str = ""
    passcode: str = ""
    #: the token of an earlier ``joined``: come back as the same participant
    resume_token: str = ""
    #: the room's host passcode: join as its host
    host_passcode: str = ""

    def __post_init__(self) -> None:
        if len(self.resume_token) > 128:
            raise ValueError("resume_token is too long")
        for field, value in (("name", self.name), ("office", self.office)):
            if len(value) > MAX_NAME_CHARS:
                raise ValueError(f"{field} is longer than {MAX_NAME_CHARS} characters")
        if not self.name.strip():
            raise ValueError("name is empty")
        if not self.room.strip():
            raise ValueError("room is empty")
        if not re.match(ROOM_NAME_PATTERN, self.room):
            raise ValueError(f"room name {self.room!r} is not valid")


class Offer(Message, frozen=True, tag="offer"):
    TYPE = "offer"
    sdp: str


class IceCandidate(Message, frozen=True, tag="ice"):
    """A trickled ICE candidate (``candidate`` in SDP a-line form, without ``a=``).

    aiortc gathers all candidates before it writes an offer or answer, so
    SiakDesk clients do not trickle; the server accepts trickled candidates
    from other clients all the same.
    """

    TYPE = "ice"
    mid: str
    candidate: str


class MediaState(Message, frozen=True, tag="media_state"):
    """The sender muted or unmuted its microphone or turned its camera off or on."""

    TYPE = "media_state"
    audio_muted: bool
    video_muted: bool


class Leave(Message, frozen=True, tag="leave"):
    TYPE = "leave"


class Ping(Message, frozen=True, tag="ping"):
    """The client's heartbeat (every :data:`HEARTBEAT_INTERVAL`); the server answers ``pong``."""

    TYPE = "ping"
    nonce: int = 0


class ChatSend(Message, frozen=True, tag="chat_send"):
    """A chat message; ``id`` is made by the client, so a resent message is stored once."""

    TYPE = "chat_send"
    id: str
    text: str

    def __post_init__(self) -> None:
        if not 8 <= len(self.id) <= 64:
            raise ValueError("id must be 8 to 64 characters")
        if not self.text.strip():
            raise ValueError("the message is empty")
        if len(self.text) > MAX_CHAT_CHARS:
            raise ValueError(
                f"the message is {len(self.text)} characters; the limit is {MAX_CHAT_CHARS}"
            )


class ChatHistory(Message, frozen=True, tag="chat_history"):
    """Ask for the room's messages after ``after_seq`` (0: from the start)."""

    TYPE = "chat_history"
    after_seq: int = 0


class AgendaItem(msgspec.Struct, frozen=True):
    id: str
    title: str
    presenter_office: str = ""
    planned_minutes: int = 5
    status: Literal["pending", "current", "done"] = "pending"

    def __post_init__(self) -> None:
        if not self.title.strip() or len(self.title) > 200:
            raise ValueError("an agenda item needs a title of at most 200 characters")
        if not 0 < self.planned_minutes <= 600:
            raise ValueError("planned minutes must be 1 to 600")
        if not 1 <= len(self.id) <= 64 or len(self.presenter_office) > MAX_NAME_CHARS:
            raise ValueError("agenda item id or office is too long")


class AgendaSet(Message, frozen=True, tag="agenda_set"):
    """Host only: the whole agenda, in order (edit, add, remove and reorder in one)."""

    TYPE = "agenda_set"
    id: str
    items: list[AgendaItem]

    def __post_init__(self) -> None:
        if len(self.items) > MAX_AGENDA_ITEMS:
            raise ValueError(f"an agenda has at most {MAX_AGENDA_ITEMS} items")
        if len({item.id for item in self.items}) != len(self.items):
            raise ValueError("agenda item ids must be unique")


class AgendaNext(Message, frozen=True, tag="agenda_next"):
    """Host only: the current item is done, the next pending one starts."""

    TYPE = "agenda_next"
    id: str


class AttendanceExport(Message, frozen=True, tag="attendance_export"):
    """Host only: the attendance of this room as CSV."""

    TYPE = "attendance_export"


# -- server to client ---------------------------------------------------------


class Joined(Message, frozen=True, tag="joined"):
    TYPE = "joined"
    participant_id: str
    room: str
    roster: list[ParticipantInfo]
    slots: SlotCounts
    #: present it in a later ``join`` to resume this participant after a lost connection
    resume_token: str = ""
    #: True when a ``join`` with a resume token found the participant it named
    resumed: bool = False
    role: Literal["member", "host"] = "member"


class ParticipantJoined(Message, frozen=True, tag="participant_joined"):
    TYPE = "participant_joined"
    participant: ParticipantInfo


class ParticipantUpdated(Message, frozen=True, tag="participant_updated"):
    """A participant's state changed (muted, camera off...); the whole record, not a delta."""

    TYPE = "participant_updated"
    participant: ParticipantInfo


class ParticipantLeft(Message, frozen=True, tag="participant_left"):
    TYPE = "participant_left"
    participant_id: str
    reason: str = "left"


class Answer(Message, frozen=True, tag="answer"):
    TYPE = "answer"
    sdp: str


class SlotMap(Message, frozen=True, tag="slot_map"):
    """The whole current slot assignment (not a delta), so a lost one does no harm."""

    TYPE = "slot_map"
    assignments: list[SlotAssignment]


class ChatMessage(Message, frozen=True, tag="chat_message"):
    """One stored chat message; ``seq`` orders the room's chat, the same for everyone."""

    TYPE = "chat_message"
    seq: int
    id: str
    participant_id: str
    name: str
    office: str
    text: str
    #: server time, seconds since the epoch
    ts: float


class ChatAck(Message, frozen=True, tag="chat_ack"):
    """The server has stored the sender's message ``id`` as ``seq`` (sent again on a resend)."""

    TYPE = "chat_ack"
    id: str
    seq: int
    ts: float


class ChatHistoryReply(Message, frozen=True, tag="chat_history_reply"):
    TYPE = "chat_history_reply"
    messages: list[ChatMessage]
    #: False when more messages follow; ask again after the last ``seq``
    complete: bool = True


class Agenda(Message, frozen=True, tag="agenda"):
    """The whole agenda, sent on join and after every change."""

    TYPE = "agenda"
    items: list[AgendaItem]
    version: int = 0
    #: server time (epoch seconds) when the current item started, for everyone's timer
    current_started: float | None = None
    server_time: float = 0.0


class ActionAck(Message, frozen=True, tag="action_ack"):
    """A host action ``id`` was applied (or had been already: it is applied once)."""

    TYPE = "action_ack"
    id: str


class AttendanceCsv(Message, frozen=True, tag="attendance_csv"):
    TYPE = "attendance_csv"
    csv: str


class Pong(Message, frozen=True, tag="pong"):
    TYPE = "pong"
    nonce: int = 0


class ProbeResult(Message, frozen=True, tag="probe_result"):
    """What the server saw arrive from this participant during its last probe
    (:mod:`siakdesk.media.probe`): everything it sent, in kbit/s on the wire."""

    TYPE = "probe_result"
    received_kbps: float
    #: the probe's padding packets that arrived, and over how long
    packets: int = 0
    span_ms: int = 0


class Error(Message, frozen=True, tag="error"):
    TYPE = "error"
    code: str
    message: str
    #: the type of the message that caused the error, when it could be read
    ref: str = ""
    #: True when the server closes the connection after this error
    fatal: bool = False


CLIENT_MESSAGES: tuple[type[Message], ...] = (
    Join,
    Offer,
    IceCandidate,
    MediaState,
    Leave,
    Ping,
    ChatSend,
    ChatHistory,
    AgendaSet,
    AgendaNext,
    AttendanceExport,
)
SERVER_MESSAGES: tuple[type[Message], ...] = (
    Joined,
    ParticipantJoined,
    ParticipantUpdated,
    ParticipantLeft,
    Answer,
    SlotMap,
    Pong,
    Error,
    ProbeResult,
    ChatMessage,
    ChatAck,
    ChatHistoryReply,
    Agenda,
    ActionAck,
    AttendanceCsv,
)
_BY_TYPE: dict[str, type[Message]] = {m.TYPE: m for m in CLIENT_MESSAGES + SERVER_MESSAGES}

_encoder = msgspec.json.Encoder()


class _Envelope(msgspec.Struct, forbid_unknown_fields=False):
    type: str
    v: int = PROTOCOL_VERSION


def encode(message: Message) -> str:
    """Serialize ``message`` with its ``type`` tag, as a WebSocket text frame."""
    return _encoder.encode(message).decode("utf-8")


def decode(data: str | bytes, accept: tuple[type[Message], ...] | None = None) -> Message:
    """Parse and validate one message.

    ``accept`` limits the types a peer may send (the server accepts only
    :data:`CLIENT_MESSAGES`).  Raises :class:`ProtocolError` and nothing else.
    """
    size = len(data.encode("utf-8") if isinstance(data, str) else data)
    if size > MAX_MESSAGE_BYTES:
        raise ProtocolError(
            "too_large", f"message of {size} bytes exceeds the limit of {MAX_MESSAGE_BYTES}"
        )
    try:
        envelope = msgspec.json.decode(data, type=_Envelope)
    except msgspec.ValidationError as exc:
        raise ProtocolError("bad_message", f"not a SiakDesk message: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ProtocolError("bad_json", f"not valid JSON: {exc}") from None
    if envelope.v != PROTOCOL_VERSION:
        raise ProtocolError(
            "unsupported_version",
            f"protocol version {envelope.v} is not supported (this peer speaks {PROTOCOL_VERSION})",
        )
    cls = _BY_TYPE.get(envelope.type)
    if cls is None or (accept is not None and cls not in accept):
        raise ProtocolError("unknown_type", f"unknown message type {envelope.type!r}")
    try:
        return msgspec.json.decode(data, type=cls)
    except (msgspec.ValidationError, ValueError) as exc:
        raise ProtocolError("bad_message", f"invalid {envelope.type!r} message: {exc}") from None


def error_reply(exc: ProtocolError, ref: str = "", fatal: bool = False) -> Error:
    """The :class:`Error` message that answers ``exc``."""
    return Error(code=exc.code, message=exc.message, ref=ref, fatal=fatal)


def peek_type(data: str | bytes) -> str:
    """Best-effort ``type`` of a raw message, for error replies; ``""`` if unreadable."""
    try:
        value: Any = msgspec.json.decode(data)
    except msgspec.DecodeError:
        return ""
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        return str(value["type"])[:40]
    return ""
