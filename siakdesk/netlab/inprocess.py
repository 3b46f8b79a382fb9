"""A link emulator inside one process, between one session and the network.

:class:`LinkEmulator` implements :class:`~siakdesk.core.link.LinkTap`: give it
to a :class:`~siakdesk.core.meetingsession.SessionConfig` and everything that
session sends or receives crosses it.

* **Cut** (:meth:`LinkEmulator.cut` / :meth:`LinkEmulator.restore`) behaves like
  a radio link that goes away: UDP datagrams are dropped both ways; the TCP
  signaling socket stalls (what the application writes is held back and
  reading pauses, as TCP would retransmit into the void) and, when the link
  returns, what was held back is delivered, unless someone gave up on the socket
  first; new connections wait for the link until their timeout.
* **Impairments** on the UDP packets (media): random loss, fixed delay and
  jitter (uniform, so packets can reorder, as they do on 3G).

It cannot shape capacity (a token bucket belongs in the kernel: see
:mod:`siakdesk.netlab.namespaces`), and it does not touch other sessions in the
same process, nor the server.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import logging
import random
import time
from typing import Any

from aiortc import RTCPeerConnection

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class Impairment:
    loss: float = 0.0  # probability a datagram is dropped, each way
    delay: float = 0.0  # seconds, each way
    jitter: float = 0.0  # seconds, uniform 0..jitter added to delay


class LinkEmulator:
    def __init__(self, impairment: Impairment | None = None, seed: int | None = None) -> None:
        self.impairment = impairment or Impairment()
        self._random = random.Random(seed)
        self._up = asyncio.Event()
        self._up.set()
        self._streams: list[_Stream] = []
        self.cuts = 0
        self.down_since: float | None = None
        self.dropped = 0

    @property
    def up(self) -> bool:
        return self._up.is_set()

    def cut(self) -> None:
        if not self.up:
            return
        self._up.clear()
        self.cuts += 1
        self.down_since = time.monotonic()
        for stream in self._live_streams():
            stream.stall()
        logger.info("link cut")

    def restore(self) -> None:
        if self.up:
            return
        self._up.set()
        self.down_since = None
        for stream in self._live_streams():
            stream.resume()
        logger.info("link restored")

    def stall_streams(self) -> None:
        """Only the TCP sockets stall (UDP goes on): TCP backing off after losses on a
        thin link, while the media still gets through.  :meth:`resume_streams` ends it."""
        for stream in self._live_streams():
            stream.stall()

    def resume_streams(self) -> None:
        for stream in self._live_streams():
            stream.resume()

    def _live_streams(self) -> list[_Stream]:
        self._streams = [s for s in self._streams if not s.transport.is_closing()]
        return list(self._streams)

    # -- LinkTap -------------------------------------------------------------

    async def before_connect(self, within: float) -> None:
        if self.up:
            return
        try:
            await asyncio.wait_for(self._up.wait(), within)
        except TimeoutError:
            raise OSError(errno.ETIMEDOUT, "the link is down") from None

    def attach_stream(self, transport: asyncio.Transport) -> None:
        stream = _Stream(transport)
        self._streams.append(stream)
        if not self.up:
            stream.stall()

    def attach_peer_connection(self, pc: RTCPeerConnection) -> None:
        for connection in _ice_connections(pc):
            self.attach_ice_connection(connection)

    def attach_ice_connection(self, connection: Any) -> None:
        """Put one aioice ``Connection``'s UDP (STUN checks and all) behind this link."""
        for protocol in connection._protocols:  # aioice Connection -> its UDP protocols
            self._wrap_datagrams(protocol)

    # -- datagrams -------------------------------------------------------------

    def _passes(self) -> bool:
        if not self.up or (self.impairment.loss and self._random.random() < self.impairment.loss):
            self.dropped += 1
            return False
        return True

    def _latency(self) -> float:
        imp = self.impairment
        return imp.delay + (self._random.uniform(0, imp.jitter) if imp.jitter else 0.0)

    def _wrap_datagrams(self, protocol: Any) -> None:
        if getattr(protocol, "_siakdesk_link", None) is self:
            return
        protocol._siakdesk_link = self
        loop = asyncio.get_running_loop()
        transport = protocol.transport
        send = transport.sendto
        receive = protocol.datagram_received

        def sendto(data: bytes, addr: Any = None) -> None:
            if not self._passes():
                return
            latency = self._latency()
            if latency:
                loop.call_later(latency, _send_unless_closed, transport, send, data, addr)
            else:
                send(data, addr)

        def datagram_received(data: bytes, addr: Any) -> None:
            if not self._passes():
                return
            latency = self._latency()
            if latency:
                loop.call_later(latency, receive, data, addr)
            else:
                receive(data, addr)

        transport.sendto = sendto
        protocol.datagram_received = datagram_received


def _send_unless_closed(transport: Any, send: Any, data: bytes, addr: Any) -> None:
    if not transport.is_closing():
        send(data, addr)


def _ice_connections(pc: RTCPeerConnection) -> list[Any]:
    """``pc``'s aioice connections (aiortc internals, named here once)."""
    connections: list[Any] = []
    seen: set[int] = set()
    for transceiver in pc.getTransceivers():
        dtls = transceiver.sender.transport
        if dtls is None or id(dtls) in seen:
            continue
        seen.add(id(dtls))
        connections.append(dtls.transport._connection)  # RTCIceTransport -> aioice Connection
    return connections


class _Stream:
    """A TCP transport that can stall like a dead link and resume, losing nothing."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self._write = transport.write
        self._held: list[bytes] = []
        self._stalled = False
        transport.write = self._on_write  # type: ignore[method-assign]

    def _on_write(self, data: bytes | bytearray | memoryview) -> None:
        if self._stalled:
            self._held.append(bytes(data))
        else:
            self._write(data)

    def stall(self) -> None:
        self._stalled = True
        if not self.transport.is_closing():
            self.transport.pause_reading()

    def resume(self) -> None:
        self._stalled = False
        if self.transport.is_closing():
            self._held.clear()
            return
        held, self._held = self._held, []
        for data in held:
            self._write(data)
        self.transport.resume_reading()
