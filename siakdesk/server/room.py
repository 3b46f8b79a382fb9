"""A meeting room: who is in it, and which of their media goes in whose slots.

Slot assignment is sticky: once a publisher has a slot at a subscriber it keeps
it until it leaves, so a subscriber's decoder never has to switch streams
mid-meeting.  A new publisher takes the lowest free slot of its kind.
"""

from __future__ import annotations

import hmac
import logging
import secrets

from siakdesk.core.protocol import (
    Join,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantUpdated,
    ProtocolError,
    SlotAssignment,
    SlotCounts,
    SlotMap,
)
from siakdesk.server.config import RoomConfig
from siakdesk.server.participant import Participant

logger = logging.getLogger(__name__)


class Room:
    def __init__(self, config: RoomConfig) -> None:
        self.config = config
        self.participants: dict[str, Participant] = {}
        self._last_maps: dict[str, list[SlotAssignment]] = {}

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def slot_counts(self) -> SlotCounts:
        return SlotCounts(audio=self.config.slots, video=self.config.slots)

    def check_admission(self, join: Join) -> None:
        """Raise :class:`ProtocolError` unless ``join`` may enter."""
        expected = self.config.passcode.encode("utf-8")
        given = join.passcode.encode("utf-8")
        if expected and not hmac.compare_digest(expected, given):
            raise ProtocolError("wrong_passcode", f"wrong passcode for room {self.name!r}")
        if len(self.participants) >= self.config.max_participants:
            raise ProtocolError(
                "room_full",
                f"room {self.name!r} is full ({self.config.max_participants} participants)",
            )

    @staticmethod
    def new_participant_id() -> str:
        return secrets.token_urlsafe(9)

    def add(self, participant: Participant) -> None:
        for other in self.participants.values():
            other.post(ParticipantJoined(participant=participant.info))
        self.participants[participant.id] = participant
        logger.info(
            "%s (%s) joined room %s: %d in the room",
            participant.name,
            participant.office or "-",
            self.name,
            len(self.participants),
        )

    def update(self, participant: Participant) -> None:
        """Tell everyone else that ``participant``'s state changed."""
        for other in self.participants.values():
            if other is not participant:
                other.post(ParticipantUpdated(participant=participant.info))

    async def remove(self, participant: Participant, reason: str) -> None:
        if self.participants.pop(participant.id, None) is None:
            return
        self._last_maps.pop(participant.id, None)
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
            assignments = [
                SlotAssignment(mid=s.mid, kind=s.kind, participant_id=s.participant_id)  # type: ignore[arg-type]
                for s in subscriber.slots
                if s.participant_id is not None
            ]
            if assignments != self._last_maps.get(subscriber.id):
                self._last_maps[subscriber.id] = assignments
                subscriber.post(SlotMap(assignments=assignments))

    async def close(self) -> None:
        for participant in list(self.participants.values()):
            await self.remove(participant, "server shutting down")
