"""What a meeting server is told to do: its rooms, address, TLS and ICE settings."""

from __future__ import annotations

import dataclasses
import re

from siakdesk.core.protocol import MAX_NAME_CHARS, ROOM_NAME_PATTERN

_ROOM_NAME = re.compile(ROOM_NAME_PATTERN)

#: Every participant sees every other in a regency meeting: 14 camat, the regent, guests.
DEFAULT_MAX_PARTICIPANTS = 20


@dataclasses.dataclass(frozen=True)
class RoomConfig:
    """One meeting room; an empty passcode means the room is open."""

    name: str
    passcode: str = ""
    max_participants: int = DEFAULT_MAX_PARTICIPANTS
    #: who joins with it is the room's host (edits the agenda, exports attendance)
    host_passcode: str = ""

    def __post_init__(self) -> None:
        if not _ROOM_NAME.match(self.name):
            raise ValueError(
                f"room name {self.name!r} must be 1-64 letters, digits, '.', '_' or '-'"
            )
        if len(self.passcode) > MAX_NAME_CHARS or len(self.host_passcode) > MAX_NAME_CHARS:
            raise ValueError(f"passcode of room {self.name!r} is too long")
        if not 2 <= self.max_participants <= 64:
            raise ValueError(f"max_participants of room {self.name!r} must be 2 to 64")

    @property
    def slots(self) -> int:
        """Receive slots of each kind a participant needs to see everyone else."""
        return self.max_participants - 1


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8443
    rooms: tuple[RoomConfig, ...] = (RoomConfig("siak"),)
    #: addresses offered as ICE host candidates; empty: the listen address, or all interfaces
    media_addresses: tuple[str, ...] = ()
    stun_urls: tuple[str, ...] = ()
    tls_cert: str | None = None
    tls_key: str | None = None
    #: the SQLite file with the meetings' record (``:memory:``: lost when the process ends)
    database: str = ":memory:"
    #: a client that sent nothing for this long is gone (clients ping every 1.5 s)
    heartbeat_timeout: float = 5.0
    #: how long a participant whose connection was lost stays in the room, waiting for it
    reconnect_grace: float = 300.0

    def __post_init__(self) -> None:
        names = [room.name for room in self.rooms]
        if len(set(names)) != len(names):
            raise ValueError("room names must be unique")
        if not self.rooms:
            raise ValueError("at least one room is needed")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("--tls-cert and --tls-key go together")
        if self.heartbeat_timeout <= 0 or self.reconnect_grace < 0:
            raise ValueError("heartbeat_timeout must be positive and reconnect_grace not negative")
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be 0 to 65535")
