"""The client end of the signaling WebSocket."""

from __future__ import annotations

import dataclasses
import logging
import ssl
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from siakdesk.core import protocol
from siakdesk.core.protocol import SERVER_MESSAGES, Message, ProtocolError

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
    """One WebSocket to the server, speaking :mod:`siakdesk.core.protocol`."""

    def __init__(self, endpoint: ServerEndpoint) -> None:
        self.endpoint = endpoint
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self.local_address: str | None = None

    async def connect(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT)
        )
        url = self.endpoint.ws_url
        try:
            self._ws = await self._session.ws_connect(
                url,
                ssl=self.endpoint.ssl_option(),
                heartbeat=20,
                max_msg_size=4 * protocol.MAX_MESSAGE_BYTES,
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

    async def send(self, message: Message) -> None:
        if self._ws is None or self._ws.closed:
            raise SignalingError("closed", "the connection to the server is closed")
        try:
            await self._ws.send_str(protocol.encode(message))
        except (ConnectionError, RuntimeError) as exc:
            raise SignalingError("closed", f"the connection to the server broke: {exc}") from None

    async def receive(self) -> Message | None:
        """The next message, or ``None`` when the server closed the connection."""
        if self._ws is None:
            return None
        while True:
            raw = await self._ws.receive()
            if raw.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                try:
                    return protocol.decode(raw.data, accept=SERVER_MESSAGES)
                except ProtocolError as exc:
                    # a newer server may send what we do not know: skip it, say so
                    logger.warning("ignored a message from the server: %s", exc.message)
                    continue
            return None

    @property
    def close_code(self) -> int | None:
        return self._ws.close_code if self._ws is not None else None

    async def close(self) -> None:
        """Close the socket and the HTTP session; idempotent."""
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()
        if self._session is not None and not self._session.closed:
            await self._session.close()
