from __future__ import annotations

import json

import msgspec
import pytest

from siakdesk.core import protocol
from siakdesk.core.protocol import (
    CLIENT_MESSAGES,
    SERVER_MESSAGES,
    ActionAck,
    Agenda,
    AgendaItem,
    AgendaNext,
    AgendaSet,
    Answer,
    AttendanceCsv,
    AttendanceExport,
    ChatAck,
    ChatHistory,
    ChatHistoryReply,
    ChatMessage,
    ChatSend,
    Error,
    IceCandidate,
    Join,
    Joined,
    Leave,
    MediaState,
    Offer,
    ParticipantInfo,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantUpdated,
    Ping,
    Pong,
    ProbeResult,
    ProtocolError,
    SlotAssignment,
    SlotCounts,
    SlotMap,
)

EXAMPLES: list[protocol.Message] = [
    Join(room="siak", name="Camat Minas", office="Kecamatan Minas", passcode="1234"),
    Offer(sdp="v=0\r\n"),
    IceCandidate(mid="0", candidate="candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host"),
    Leave(),
    MediaState(audio_muted=True, video_muted=False),
    Ping(nonce=3),
    Joined(
        participant_id="p1",
        room="siak",
        roster=[ParticipantInfo(id="p2", name="Kandis", office="Kecamatan Kandis")],
        slots=SlotCounts(audio=3, video=3),
    ),
    ParticipantJoined(participant=ParticipantInfo(id="p3", name="Siak")),
    ParticipantUpdated(participant=ParticipantInfo(id="p3", name="Siak", audio_muted=True)),
    ParticipantLeft(participant_id="p3", reason="left"),
    Answer(sdp="v=0\r\n"),
    SlotMap(assignments=[SlotAssignment(mid="2", kind="audio", participant_id="p2")]),
    Pong(nonce=3),
    ProbeResult(received_kbps=242.5, packets=30, span_ms=290),
    Error(code="bad_json", message="not valid JSON", ref="", fatal=False),
    ChatSend(id="0123456789abcdef", text="Selamat pagi, Pak Bupati"),
    ChatHistory(after_seq=41),
    AgendaSet(id="action-0001", items=[AgendaItem(id="kec-minas", title="Laporan Minas")]),
    AgendaNext(id="action-0002"),
    AttendanceExport(),
    ChatMessage(
        seq=42,
        id="0123456789abcdef",
        participant_id="p1",
        name="Minas",
        office="",
        text="ok",
        ts=1.5,
    ),
    ChatAck(id="0123456789abcdef", seq=42, ts=1.5),
    ChatHistoryReply(messages=[], complete=True),
    Agenda(items=[AgendaItem(id="a", title="Pembukaan", status="current")], version=3),
    ActionAck(id="action-0001"),
    AttendanceCsv(csv="office,names\n"),
]


def test_every_message_type_has_an_example() -> None:
    assert {type(m) for m in EXAMPLES} == set(CLIENT_MESSAGES + SERVER_MESSAGES)


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: m.TYPE)
def test_round_trip(message: protocol.Message) -> None:
    text = protocol.encode(message)
    envelope = json.loads(text)
    assert envelope["v"] == protocol.PROTOCOL_VERSION
    assert envelope["type"] == message.TYPE
    assert protocol.decode(text) == message


def test_server_accepts_only_client_messages() -> None:
    text = protocol.encode(Pong(nonce=1))
    with pytest.raises(ProtocolError) as refused:
        protocol.decode(text, accept=CLIENT_MESSAGES)
    assert refused.value.code == "unknown_type"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ("", "bad_json"),
        ("{", "bad_json"),
        (b"\xff\xfe", "bad_json"),
        ("null", "bad_message"),
        ('"join"', "bad_message"),
        ('{"type": 5}', "bad_message"),
        ('{"v": 2, "type": "ping"}', "unsupported_version"),
        ('{"v": 1, "type": "nope"}', "unknown_type"),
        ('{"v": 1, "type": "join", "room": "", "name": "a"}', "bad_message"),
        ('{"v": 1, "type": "join", "room": "siak", "name": "a", "office": 3}', "bad_message"),
        ('{"v": 1, "type": "slot_map", "assignments": [{"mid": "1"}]}', "bad_message"),
    ],
)
def test_decode_errors_are_protocol_errors(data: str | bytes, code: str) -> None:
    with pytest.raises(ProtocolError) as refused:
        protocol.decode(data)
    assert refused.value.code == code
    assert refused.value.message


def test_size_limit_counts_bytes_not_characters() -> None:
    name = "é" * (protocol.MAX_MESSAGE_BYTES // 2)  # two bytes each in UTF-8
    text = '{"v": 1, "type": "offer", "sdp": "' + name + '"}'
    assert len(text) < protocol.MAX_MESSAGE_BYTES < len(text.encode())
    with pytest.raises(ProtocolError) as refused:
        protocol.decode(text)
    assert refused.value.code == "too_large"


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    decoded = protocol.decode('{"v": 1, "type": "ping", "nonce": 1, "sent_at": 12.5}')
    assert decoded == Ping(nonce=1)


def test_join_validates_in_code_too() -> None:
    with pytest.raises(ValueError, match="longer than"):
        Join(room="siak", name="x" * 65)
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"type":"join","room":"siak","name":""}', type=Join)


def test_peek_type() -> None:
    assert protocol.peek_type('{"type": "offer", "sdp": 1}') == "offer"
    assert protocol.peek_type("{") == ""
    assert protocol.peek_type("[]") == ""
