"""The client end of the signaling WebSocket.

The client sends a ``ping`` every :data:`~siakdesk.core.protocol.HEARTBEAT_INTERVAL`
and the server answers each with a ``pong``; the server closes a socket that has
been silent for its own timeout, and :meth:`SignalingClient.receive` ends (returns
``None``) when nothing at all arrived for ``heartbeat_timeout``.  A dead link is
noticed within 5 s either way, where TCP alone would take minutes.

A socket can also go quiet on a link that is alive: on 64 kbit/s with a few
percent of loss, TCP retransmits a lost segment after a second, then two, then
four.  Tearing the meeting down then would cost far more than the wait, so
while the session still receives media (``media_flows``), the timeout grows to
:data:`~siakdesk.core.protocol.HEARTBEAT_PATIENCE`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import ssl
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from siakdesk.core import protocol
from siakdesk.core.link import LinkTap
from siakdesk.core.protocol import (
    HEARTBEAT_INTERVAL,
    HEARTBEAT_PATIENCE,
    HEARTBEAT_TIMEOUT,
    SERVER_MESSAGES,
    Message,
    Ping,
    Pong,
    ProtocolError,
)

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0


class SignalingError(Exception):
    """The server could not be reached or talked to; ``code`` for the UI, message for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def normalize_fingerprint(text: str) -> bytes:
    """A SHA-256 certificate fingerprint from ``AB:CD:...``, ``abcd...`` or ``sha256:...``."""
    cleaned = text.strip().lower().removeprefix("sha256:").replace(":", "").replace(" ", "")
    try:
        digest = bytes.fromhex(cleaned)
    except ValueError:
        raise ValueError(f"TLS fingerprint {text!r} is not hexadecimal") from None
    if len(digest) != 32:
        raise ValueError(f"TLS fingerprint {text!r} is not a SHA-256 digest (32 bytes)")
    return digest


@dataclasses.dataclass(frozen=True)
class ServerEndpoint:
    """Where the meeting server is and how to trust it."""

    url: str
    #: SHA-256 of a (self-signed) certificate to trust instead of the CA system
    tls_fingerprint: str | None = None
    #: PEM file of CAs to trust instead of the system's
    ca_file: str | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
            raise ValueError(f"server address {self.url!r} must look like https://host:port")
        if self.tls_fingerprint is not None:
            normalize_fingerprint(self.tls_fingerprint)

    @property
    def address(self) -> tuple[str, int]:
        """The server's host and TCP port."""
        parts = urlsplit(self.url)
        port = parts.port or (443 if parts.scheme in ("https", "wss") else 80)
        return parts.hostname or "", port

    @property
    def ws_url(self) -> str:
        parts = urlsplit(self.url)
        scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
        path = parts.path.rstrip("/")
        if not path.endswith("/ws"):
            path += "/ws"
        return urlunsplit((scheme, parts.netloc, path, "", ""))

    def ssl_option(self) -> ssl.SSLContext | aiohttp.Fingerprint | bool:
        if self.tls_fingerprint is not None:
            return aiohttp.Fingerprint(normalize_fingerprint(self.tls_fingerprint))
        if self.ca_file is not None:
            return ssl.create_default_context(cafile=self.ca_file)
        return True


class SignalingClient:
    """One WebSocket to the server, speaking :mod:`siakdesk.core.protocol`, with a heartbeat."""

    def __init__(
        self,
        endpoint: ServerEndpoint,
        link: LinkTap | None = None,
        heartbeat_interval: float = HEARTBEAT_INTERVAL,
        heartbeat_timeout: float = HEARTBEAT_TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
        media_flows: Callable[[], bool] | None = None,
        heartbeat_patience: float = HEARTBEAT_PATIENCE,
    ) -> None:
        self.endpoint = endpoint
        self.link = link
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_timeout = heartbeat_timeout
        self.media_flows = media_flows
        self.heartbeat_patience = heartbeat_patience
        self.connect_timeout = connect_timeout
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._pinger: asyncio.Task[None] | None = None
        self.local_address: str | None = None
        #: why :meth:`receive` ended, for logs and the UI
        self.end_reason = ""

    async def connect(self) -> None:
        url = self.endpoint.ws_url
        if self.link is not None:
            try:
                await self.link.before_connect(self.connect_timeout)
            except OSError as exc:
                raise SignalingError(
                    "unreachable", f"cannot reach the server at {url}: {exc}"
                ) from None
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, connect=self.connect_timeout)
        )
        try:
            self._ws = await self._session.ws_connect(
                url,
                ssl=self.endpoint.ssl_option(),
                autoping=True,
                max_msg_size=4 * protocol.MAX_MESSAGE_BYTES,
                # permessage-deflate: an offer with every slot is ~30 KB of SDP and
                # deflates ~15x; uncompressed it takes 4 s and more on 64 kbit/s, long
                # enough for the heartbeat behind it to call the server gone
                compress=15,
            )
        except aiohttp.ServerFingerprintMismatch as exc:
            await self.close()
            raise SignalingError(
                "tls", f"the server's certificate does not match the pinned fingerprint: {exc}"
            ) from None
        except aiohttp.ClientConnectorCertificateError as exc:
            await self.close()
            raise SignalingError("tls", f"the server's certificate is not trusted: {exc}") from None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            await self.close()
            raise SignalingError(
                "unreachable", f"cannot reach the server at {url}: {exc or type(exc).__name__}"
            ) from None
        sockname = self._ws.get_extra_info("sockname")
        self.local_address = sockname[0] if sockname else None
        transport = self._transport()
        if self.link is not None and transport is not None:
            self.link.attach_stream(transport)
        self._pinger = asyncio.ensure_future(self._ping())

    async def _ping(self) -> None:
        for nonce in itertools.count(1):
            await asyncio.sleep(self.heartbeat_interval)
            try:
                await self.send(Ping(nonce=nonce))
            except SignalingError:
                return

    async def send(self, message: Message) -> None:
        if self._ws is None or self._ws.closed:
            raise SignalingError("closed", "the connection to the server is closed")
        try:
            await self._ws.send_str(protocol.encode(message))
        except (ConnectionError, RuntimeError) as exc:
            raise SignalingError("closed", f"the connection to the server broke: {exc}") from None

    async def receive(self) -> Message | None:
        """The next message, or ``None`` when the connection ended (see :attr:`end_reason`).

        ``pong`` answers are consumed here; they only keep the connection alive.
        """
        if self._ws is None:
            return None
        silent = 0.0
        while True:
            try:
                raw = await self._ws.receive(timeout=self.heartbeat_timeout)
            except TimeoutError:
                silent += self.heartbeat_timeout
                flows = self.media_flows is not None and self.media_flows()
                if flows and silent < self.heartbeat_patience:
                    logger.info("no answer from the server for %.0f s; media still flows", silent)
                    continue
                self.end_reason = f"no answer from the server for {silent:g} s"
                await self.abort()
                return None
            silent = 0.0
            if raw.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                try:
                    message = protocol.decode(raw.data, accept=SERVER_MESSAGES)
                except ProtocolError as exc:
                    # a newer server may send what we do not know: skip it, say so
                    logger.warning("ignored a message from the server: %s", exc.message)
                    continue
                if isinstance(message, Pong):
                    continue
                return message
            if raw.type is aiohttp.WSMsgType.ERROR:
                self.end_reason = f"the connection to the server broke: {raw.data}"
            else:
                self.end_reason = f"the server closed the connection (code {self.close_code})"
            return None

    @property
    def close_code(self) -> int | None:
        return self._ws.close_code if self._ws is not None else None

    async def abort(self) -> None:
        """Drop the connection without a closing handshake (the link is presumed dead)."""
        transport = self._transport()
        if transport is not None:
            transport.abort()
        await self.close()

    def _transport(self) -> asyncio.Transport | None:
        """The socket's transport (aiohttp keeps it on the private connection)."""
        if self._ws is None or self._ws._conn is None:
            return None
        return self._ws._conn.transport

    async def close(self) -> None:
        """Close the socket and the HTTP session; idempotent."""
        if self._pinger is not None:
            self._pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pinger
            self._pinger = None
        if self._ws is not None and not self._ws.closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ws.close(), 2.0)
        if self._session is not None and not self._session.closed:
            await self._session.close()


async def probe(endpoint: ServerEndpoint, link: LinkTap | None, within: float) -> bool:
    """Whether a TCP connection to the server opens within ``within`` seconds (no TLS, no join).

    Costs the server one accepted and closed connection; the reconnect loop uses it
    between attempts to notice at once that a link came back.
    """
    host, port = endpoint.address
    try:
        if link is not None:
            await link.before_connect(within)
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), within)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
