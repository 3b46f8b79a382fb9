"""The seam between a session and the network, for emulated links.

In production a session talks to the real network and has no :class:`LinkTap`.
The network lab (:mod:`siakdesk.netlab`) puts one in between to cut or impair a
single participant's link inside one process: it sees the signaling socket's
transport and the peer connection's UDP sockets, and may hold back, delay or
drop what crosses them, and make new connections wait or fail.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from aiortc import RTCPeerConnection


class LinkTap(Protocol):
    async def before_connect(self, within: float) -> None:
        """Return when a new connection may be made; else :class:`OSError`."""

    def attach_stream(self, transport: asyncio.Transport) -> None:
        """The signaling socket's transport, once connected."""

    def attach_peer_connection(self, pc: RTCPeerConnection) -> None:
        """A peer connection whose ICE candidates have been gathered."""
