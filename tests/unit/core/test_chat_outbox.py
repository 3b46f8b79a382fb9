"""Property: over any sequence of sends, lost packets, drops and reconnects, the chat
loses nothing and duplicates nothing, and the client ends with the server's log.

The client is the real :class:`ChatLog` over a real (in-memory) SQLite store; the
server side is the real server :class:`Store` with its dedupe by message id; the
network between them loses whatever hypothesis decides.
"""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from siakdesk.core.chat import ChatLog, LocalChatStore
from siakdesk.core.protocol import CHAT_PAGE, ChatAck, ChatMessage, ChatSend
from siakdesk.server.room import chat_message
from siakdesk.server.store import ChatRow, Store, StoredParticipant

ME = StoredParticipant("me", "siak", "Camat Minas", "Kecamatan Minas", "member")
OTHER = StoredParticipant("other", "siak", "Camat Kandis", "Kecamatan Kandis", "member")


@dataclasses.dataclass
class World:
    server: Store
    client: ChatLog
    up: bool = True
    composed: int = 0
    others: int = 0

    def server_receives(self, message: ChatSend, sender: StoredParticipant) -> ChatRow:
        """The server's rule: an id is stored once; a resend gets the same row back."""
        existing = self.server.chat_find("siak", message.id)
        return existing or self.server.chat_append("siak", message.id, sender, message.text)

    def send_to_server(self, message: ChatSend, lose_request: bool, lose_reply: bool) -> None:
        if not self.up or lose_request:
            return
        row = self.server_receives(message, ME)
        if not lose_reply:
            # the ack and the relay of the same row; either one settles the outbox
            self.client.on_ack(ChatAck(id=row.id, seq=row.seq, ts=row.ts))
            self.client.on_message(chat_message(row))

    def resync(self, lose: list[bool]) -> None:
        """What ChatClient does on every admission: history first, then the outbox."""
        after = self.client.history_request().after_seq
        while True:
            rows = self.server.chat_after("siak", after, CHAT_PAGE + 1)
            for row in rows[:CHAT_PAGE]:
                self.client.on_message(chat_message(row))
            if len(rows) <= CHAT_PAGE:
                break
            after = rows[CHAT_PAGE - 1].seq
        for n, message in enumerate(self.client.to_send()):
            lost = lose[n % len(lose)] if lose else False
            self.send_to_server(message, lost, lost)


step = st.one_of(
    st.tuples(st.just("send"), st.booleans(), st.booleans()),
    st.tuples(st.just("other"), st.booleans(), st.booleans()),
    st.tuples(st.just("drop"), st.just(False), st.just(False)),
    st.tuples(st.just("reconnect"), st.booleans(), st.booleans()),
)


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(step, max_size=60))
def test_nothing_lost_nothing_duplicated(steps: list[tuple[str, bool, bool]]) -> None:
    world = World(server=Store(), client=ChatLog(LocalChatStore()))
    for action, a, b in steps:
        if action == "send":
            message = world.client.compose(f"pesan {world.composed}")
            world.composed += 1
            world.send_to_server(message, lose_request=a, lose_reply=b)
        elif action == "other":
            # another office's message; its relay to us may be lost like anything else
            world.others += 1
            other = ChatSend(id=f"other-{world.others:04d}", text="dari Kandis")
            row = world.server_receives(other, OTHER)
            if world.up and not a:
                world.client.on_message(chat_message(row))
        elif action == "drop":
            world.up = False
        elif action == "reconnect":
            world.up = True
            world.resync([a, b])
    # the link comes back for good
    world.up = True
    world.resync([])

    server_rows = world.server.chat_after("siak", 0, 10_000)
    mine = [r for r in server_rows if r.participant_id == "me"]
    assert len(mine) == world.composed, "every message typed is stored"
    assert len({r.id for r in mine}) == len(mine), "and stored once"
    assert [r.seq for r in server_rows] == list(range(1, len(server_rows) + 1))
    assert world.client.pending == [], "the outbox is empty"
    assert [m.id for m in world.client.messages] == [r.id for r in server_rows]


def test_contiguous_seq_skips_nothing() -> None:
    store = LocalChatStore()
    assert store.contiguous_seq() == 0
    for seq in (1, 2, 4, 5):
        store.add_message(
            ChatMessage(
                seq=seq, id=f"m{seq}", participant_id="p", name="n", office="", text="t", ts=0.0
            )
        )
    assert store.contiguous_seq() == 2  # 3 is missing: ask for everything after 2
    store.add_message(
        ChatMessage(seq=3, id="m3", participant_id="p", name="n", office="", text="t", ts=0.0)
    )
    assert store.contiguous_seq() == 5
