"""A meeting room: who is in it, and which of their media goes in whose slots.

Slot assignment is sticky: once a publisher has a slot at a subscriber it keeps
it until it leaves, so a subscriber's decoder never has to switch streams
mid-meeting.  A new publisher takes the lowest free slot of its kind.

Lost connections: a participant whose socket ends without a ``leave`` stays in
the room as *reconnecting* (everyone sees that, not a leave) for
``reconnect_grace`` seconds, and its media is released.  A ``join`` with its
resume token attaches the new socket to the same participant: same id, same
role, one attendance.  The tokens are in the store, so this works across a
server restart too.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import datetime
import hmac
import io
import logging
import secrets
import time

import msgspec

from siakdesk.core.protocol import (
    CHAT_PAGE,
    ActionAck,
    Agenda,
    AgendaItem,
    AgendaNext,
    AgendaSet,
    AttendanceCsv,
    ChatAck,
    ChatHistoryReply,
    ChatMessage,
    ChatSend,
    Join,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantUpdated,
    ProtocolError,
    SlotAssignment,
    SlotCounts,
    SlotMap,
)
from siakdesk.media.estimate import LoopLag
from siakdesk.server.config import RoomConfig
from siakdesk.server.downlink import STEER_INTERVAL, Candidate, Downlink
from siakdesk.server.forwarding import SlotTrack
from siakdesk.server.participant import Participant, close_socket
from siakdesk.server.store import AgendaRow, AttendanceRecord, ChatRow, Store, StoredParticipant

logger = logging.getLogger(__name__)

#: Audio frames a second that mean a publisher is speaking (DTX sends 2.5 in silence).
SPEAKING_FRAMES_PER_S = 20


@dataclasses.dataclass(frozen=True)
class Admission:
    participant: Participant
    resume_token: str
    resumed: bool


class Room:
    def __init__(
        self,
        config: RoomConfig,
        store: Store,
        reconnect_grace: float = 300.0,
        stun_urls: tuple[str, ...] = (),
    ) -> None:
        self.config = config
        self.store = store
        self.reconnect_grace = reconnect_grace
        self.stun_urls = stun_urls
        self.participants: dict[str, Participant] = {}
        self._last_maps: dict[str, list[SlotAssignment]] = {}
        self._grace_tasks: dict[str, asyncio.Task[None]] = {}
        self._sweep: asyncio.TimerHandle | None = None
        self._steering: asyncio.Task[None] | None = None
        self._loop_lag = LoopLag()
        #: per subscriber: its downlink estimate and the videos it is sent
        self.downlinks: dict[str, Downlink] = {}
        #: per publisher: when its audio last sounded like speech (monotonic)
        self._spoke_at: dict[str, float] = {}
        self._joined: dict[str, int] = {}

    def start(self) -> None:
        """Start steering each subscriber's videos; close attendances a previous
        server process left open, unless they come back."""
        self._steering = asyncio.ensure_future(self._steer_forever())
        stale = self.store.open_attendance(self.name)
        if not stale:
            return
        started = time.time()

        def sweep() -> None:
            for participant_id in stale:
                if participant_id not in self.participants:
                    self.store.attendance_closed(participant_id, at=started)
            logger.info("room %s: closed %d attendances of the last run", self.name, len(stale))

        self._sweep = asyncio.get_running_loop().call_later(self.reconnect_grace, sweep)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def slot_counts(self) -> SlotCounts:
        return SlotCounts(audio=self.config.slots, video=self.config.slots)

    def check_admission(self, join: Join) -> None:
        """Raise :class:`ProtocolError` unless ``join`` may enter."""
        if self.config.passcode and not _same_secret(self.config.passcode, join.passcode):
            raise ProtocolError("wrong_passcode", f"wrong passcode for room {self.name!r}")
        if len(self.participants) >= self.config.max_participants:
            raise ProtocolError(
                "room_full",
                f"room {self.name!r} is full ({self.config.max_participants} participants)",
            )

    async def admit(self, join: Join) -> Admission:
        """Let ``join`` in: resume the participant its token names, or a new one.

        Raises :class:`ProtocolError` when a new participant may not enter.
        """
        if join.resume_token:
            resumed = await self._resume(join.resume_token)
            if resumed is not None:
                return Admission(resumed, join.resume_token, resumed=True)
        self.check_admission(join)
        role = "member"
        if join.host_passcode:
            expected = self.config.host_passcode
            if not expected or not _same_secret(expected, join.host_passcode):
                raise ProtocolError("wrong_passcode", f"wrong host passcode for room {self.name!r}")
            role = "host"
        token = secrets.token_urlsafe(24)
        stored = StoredParticipant(
            id=secrets.token_urlsafe(9),
            room=self.name,
            name=join.name,
            office=join.office,
            role=role,
        )
        self.store.add_participant(stored, token)
        self.store.attendance_opened(stored)
        participant = Participant(stored.id, stored.name, stored.office, self.stun_urls, role=role)
        self._add(participant)
        return Admission(participant, token, resumed=False)

    # -- chat ----------------------------------------------------------------------

    def chat(self, participant: Participant, message: ChatSend) -> None:
        """Store ``message`` once (a resend is acknowledged again) and relay it to everyone."""
        existing = self.store.chat_find(self.name, message.id)
        if existing is not None:
            participant.post(ChatAck(id=existing.id, seq=existing.seq, ts=existing.ts))
            return
        row = self.store.chat_append(self.name, message.id, self._stored(participant), message.text)
        participant.post(ChatAck(id=row.id, seq=row.seq, ts=row.ts))
        relayed = chat_message(row)
        for other in self.participants.values():
            other.post(relayed)

    def chat_history(self, after_seq: int) -> ChatHistoryReply:
        rows = self.store.chat_after(self.name, after_seq, CHAT_PAGE + 1)
        return ChatHistoryReply(
            messages=[chat_message(r) for r in rows[:CHAT_PAGE]], complete=len(rows) <= CHAT_PAGE
        )

    def _stored(self, participant: Participant) -> StoredParticipant:
        return StoredParticipant(
            participant.id, self.name, participant.name, participant.office, participant.role
        )

    # -- agenda ------------------------------------------------------------------

    def agenda_message(self) -> Agenda:
        row = self.store.agenda(self.name)
        if row is None:
            return Agenda(items=[], server_time=time.time())
        items = msgspec.json.decode(row.items_json, type=list[AgendaItem])
        return Agenda(
            items=items,
            version=row.version,
            current_started=row.current_started,
            server_time=time.time(),
        )

    def _require_host(self, participant: Participant, what: str) -> None:
        if participant.role != "host":
            raise ProtocolError("not_host", f"only the meeting's host may {what}")

    def set_agenda(self, participant: Participant, message: AgendaSet) -> None:
        self._require_host(participant, "change the agenda")
        if not self.store.action_applied(self.name, message.id):
            current = [item for item in message.items if item.status == "current"]
            if len(current) > 1:
                raise ProtocolError("bad_message", "at most one agenda item can be current")
            before = self.agenda_message()
            was = next((i.id for i in before.items if i.status == "current"), None)
            started = before.current_started if current and current[0].id == was else None
            if current and started is None:
                started = time.time()
            self._save_agenda(message.items, before.version + 1, started, message.id)
        participant.post(ActionAck(id=message.id))

    def agenda_next(self, participant: Participant, message: AgendaNext) -> None:
        self._require_host(participant, "start the next agenda item")
        if not self.store.action_applied(self.name, message.id):
            before = self.agenda_message()
            items = [
                msgspec.structs.replace(i, status="done") if i.status == "current" else i
                for i in before.items
            ]
            upcoming = next((n for n, i in enumerate(items) if i.status == "pending"), None)
            started = None
            if upcoming is not None:
                items[upcoming] = msgspec.structs.replace(items[upcoming], status="current")
                started = time.time()
            self._save_agenda(items, before.version + 1, started, message.id)
        participant.post(ActionAck(id=message.id))

    def _save_agenda(
        self, items: list[AgendaItem], version: int, started: float | None, action_id: str
    ) -> None:
        encoded = msgspec.json.encode(items).decode()
        self.store.save_agenda(self.name, AgendaRow(encoded, version, started), action_id)
        agenda = self.agenda_message()
        for other in self.participants.values():
            other.post(agenda)

    # -- attendance --------------------------------------------------------------

    def attendance_csv(self, participant: Participant) -> AttendanceCsv:
        self._require_host(participant, "export the attendance")
        return AttendanceCsv(csv=attendance_csv(self.store.attendance(self.name), time.time()))

    async def _resume(self, token: str) -> Participant | None:
        stored = self.store.find_by_token(self.name, token)
        if stored is None:
            return None
        participant = self.participants.get(stored.id)
        if participant is None:
            # the server restarted (or the grace ran out): bring the participant back
            participant = Participant(
                stored.id, stored.name, stored.office, self.stun_urls, role=stored.role
            )
            if not self.store.attendance_resumed(stored.id):
                self.store.attendance_opened(stored)
            self._add(participant)
        else:
            if participant.ws is not None:
                # the client gave up on a socket the server still holds: the new one wins
                old = participant.ws
                await participant.detach()
                await close_socket(old, code=4000, message=b"resumed on another connection")
            self._cancel_grace(participant.id)
            self.store.attendance_resumed(stored.id)
        self._last_maps.pop(participant.id, None)
        logger.info("%s (%s) is back in room %s", participant.name, participant.id, self.name)
        return participant

    def _add(self, participant: Participant) -> None:
        for other in self.participants.values():
            other.post(ParticipantJoined(participant=participant.info))
        self.participants[participant.id] = participant
        self._joined.setdefault(participant.id, len(self._joined))
        logger.info(
            "%s (%s) joined room %s: %d in the room",
            participant.name,
            participant.office or "-",
            self.name,
            len(self.participants),
        )

    async def connection_lost(self, participant: Participant, reason: str) -> None:
        """``participant``'s socket ended without a leave: wait for it to come back."""
        if self.participants.get(participant.id) is not participant:
            return
        await participant.detach()
        if participant.ws is not None:
            return  # it resumed on a new socket while the old one was being released
        logger.info(
            "%s lost its connection to room %s (%s); waiting %.0f s for it",
            participant.name,
            self.name,
            reason,
            self.reconnect_grace,
        )
        self.update(participant)
        self.rebalance()
        self._cancel_grace(participant.id)
        self._grace_tasks[participant.id] = asyncio.ensure_future(self._grace(participant))

    async def _grace(self, participant: Participant) -> None:
        await asyncio.sleep(self.reconnect_grace)
        self._grace_tasks.pop(participant.id, None)
        if participant.ws is None and self.participants.get(participant.id) is participant:
            await self.remove(participant, "connection lost")

    def _cancel_grace(self, participant_id: str) -> None:
        task = self._grace_tasks.pop(participant_id, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def update(self, participant: Participant) -> None:
        """Tell everyone else that ``participant``'s state changed."""
        for other in self.participants.values():
            if other is not participant:
                other.post(ParticipantUpdated(participant=participant.info))

    async def remove(self, participant: Participant, reason: str) -> None:
        if self.participants.pop(participant.id, None) is None:
            return
        self._cancel_grace(participant.id)
        self._last_maps.pop(participant.id, None)
        for table in (self.downlinks, self._spoke_at, self._joined):
            table.pop(participant.id, None)
        self.store.attendance_closed(participant.id)
        await participant.close()
        for other in self.participants.values():
            other.post(ParticipantLeft(participant_id=participant.id, reason=reason))
        logger.info(
            "%s left room %s (%s): %d in the room",
            participant.name,
            self.name,
            reason,
            len(self.participants),
        )
        self.rebalance()

    def media_renewed(self, participant: Participant) -> None:
        """``participant`` has a new peer connection: fill its slots and tell it the whole map."""
        self._last_maps.pop(participant.id, None)
        self.rebalance()

    def rebalance(self) -> None:
        """Fill every subscriber's slots with everyone else's media; tell who changed."""
        for subscriber in self.participants.values():
            if subscriber.pc is None:
                continue  # joined, but has not offered its slots yet
            for slot in subscriber.slots:
                publication = slot.publication
                if publication is not None and (
                    publication.publisher_id not in self.participants
                    or self.participants[publication.publisher_id].publications.get(slot.kind)
                    is not publication
                ):
                    slot.assign(None)
            for publisher in self.participants.values():
                if publisher is subscriber:
                    continue
                for kind, publication in publisher.publications.items():
                    taken = [s for s in subscriber.slots if s.kind == kind]
                    if any(s.publication is publication for s in taken):
                        continue
                    free = next((s for s in taken if s.publication is None), None)
                    if free is None:
                        # a client may offer fewer slots than the room has (audio only, say)
                        logger.debug(
                            "%s has no free %s slot for %s", subscriber.name, kind, publisher.name
                        )
                        continue
                    free.assign(publication)
            self._post_map(subscriber)

    def _post_map(self, subscriber: Participant) -> None:
        """Tell ``subscriber`` who is in its slots, and which videos are paused, on a change."""
        assignments = [
            SlotAssignment(
                mid=s.mid,
                kind=s.kind,  # type: ignore[arg-type]
                participant_id=s.participant_id,
                paused=s.paused,
            )
            for s in subscriber.slots
            if s.participant_id is not None
        ]
        if assignments != self._last_maps.get(subscriber.id):
            self._last_maps[subscriber.id] = assignments
            subscriber.post(SlotMap(assignments=assignments))

    # -- per-subscriber forwarding (see siakdesk.server.downlink) --------------------

    async def _steer_forever(self) -> None:
        # the server's own loop lag is part of every RTT it measures: told apart from queues
        lag = asyncio.ensure_future(self._loop_lag.run())
        try:
            await self._steer_every_interval()
        finally:
            lag.cancel()
            await asyncio.gather(lag, return_exceptions=True)

    async def _steer_every_interval(self) -> None:
        while True:
            await asyncio.sleep(STEER_INTERVAL)
            try:
                await self.steer()
            except Exception:  # steering that dies would leave every link unmanaged
                logger.exception("room %s: steering failed", self.name)

    async def steer(self, now: float | None = None) -> None:
        """Measure each subscriber's downlink and pause or resume its videos."""
        now = time.monotonic() if now is None else now
        for participant in self.participants.values():
            audio = participant.publications.get("audio")
            if audio is not None and audio.frames_in_last(1.0, now) >= SPEAKING_FRAMES_PER_S:
                self._spoke_at[participant.id] = now
        for subscriber in list(self.participants.values()):
            pc = subscriber.pc
            if pc is None or not subscriber.slots:
                continue
            downlink = self.downlinks.setdefault(subscriber.id, Downlink())
            senders = [
                t.sender for t in pc.getTransceivers() if isinstance(t.sender.track, SlotTrack)
            ]
            if not await downlink.measure(senders, now, self._loop_lag.recent(now)):
                continue
            audio_kbps = sum(s.cost_kbps(now) for s in subscriber.slots if s.kind == "audio")
            videos = [s for s in subscriber.slots if s.kind == "video" and s.publication]
            candidates = [
                Candidate(
                    publisher_id=s.publication.publisher_id,
                    kbps=s.publication.rate_kbps(now),
                    spoke_at=self._spoke_at.get(s.publication.publisher_id),
                    joined=self._joined.get(s.publication.publisher_id, 0),
                )
                for s in videos
                if s.publication is not None
            ]
            chosen = downlink.steer(audio_kbps, candidates, now)
            packed = False
            for slot in subscriber.slots:
                packed |= slot.set_packed(downlink.thin)
            if packed:
                logger.info(
                    "room %s: %s gets audio in %s ms packets (%.0f kbit/s estimated)",
                    self.name, subscriber.name, 60 if downlink.thin else "its own",
                    downlink.estimate.kbps,
                )  # fmt: skip
            changed = False
            for slot in videos:
                changed |= slot.set_paused(slot.participant_id not in chosen)
            if changed:
                logger.info(
                    "room %s: %s gets %d of %d videos (%.0f kbit/s estimated)",
                    self.name, subscriber.name, len(chosen), len(videos), downlink.estimate.kbps,
                )  # fmt: skip
                self._post_map(subscriber)

    async def close(self) -> None:
        """The server stops: close every connection, keep everyone's place for a restart.

        Attendance stays open; if the participants do not come back to the next
        server, its :meth:`start` closes them at the time it started.
        """
        tasks = list(self._grace_tasks.values())
        self._grace_tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._sweep is not None:
            self._sweep.cancel()
        if self._steering is not None:
            self._steering.cancel()
            await asyncio.gather(self._steering, return_exceptions=True)
        for participant in list(self.participants.values()):
            await participant.close()
        self.participants.clear()


def _same_secret(expected: str, given: str) -> bool:
    """Passcodes compared in constant time."""
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def chat_message(row: ChatRow) -> ChatMessage:
    """The protocol message for a stored chat row."""
    return ChatMessage(
        seq=row.seq,
        id=row.id,
        participant_id=row.participant_id,
        name=row.name,
        office=row.office,
        text=row.text,
        ts=row.ts,
    )


def attendance_csv(records: list[AttendanceRecord], now: float) -> str:
    """One row per office: names, first join, last leave, minutes present.

    Minutes present are the union of the office's attendances, so two people of
    one office in the meeting at once count once, and a reconnect is no gap.
    An attendance still open counts until ``now`` and has no leave time.
    """
    offices: dict[str, list[AttendanceRecord]] = {}
    for record in records:
        offices.setdefault(record.office or record.name, []).append(record)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["office", "names", "joined", "left", "minutes_present", "reconnects"])
    for office, rows in sorted(offices.items(), key=lambda item: min(r.joined for r in item[1])):
        spans = sorted((r.joined, r.left if r.left is not None else now) for r in rows)
        total, start, end = 0.0, spans[0][0], spans[0][1]
        for begin, finish in spans[1:]:
            if begin > end:
                total += end - start
                start, end = begin, finish
            else:
                end = max(end, finish)
        total += end - start
        still_here = any(r.left is None for r in rows)
        last_left = None if still_here else max(r.left or 0.0 for r in rows)
        writer.writerow(
            [
                office,
                "; ".join(sorted({r.name for r in rows})),
                _local_time(min(r.joined for r in rows)),
                _local_time(last_left) if last_left is not None else "",
                f"{total / 60:.1f}",
                sum(r.reconnects for r in rows),
            ]
        )
    return out.getvalue()


def _local_time(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch).astimezone().isoformat(timespec="seconds")
