"""aiortc's peer connection, with its connect task's failures accounted for.

aiortc starts the transports of a peer connection in a task of its own
(``RTCPeerConnection.__connect``, started by ``setRemoteDescription``) whose
result nobody awaits.  When the connection is closed while that task is still
starting transports (a server shutting down while an office connects, an office
giving up on a connection to reconnect), the task fails with
``InvalidStateError('RTCIceTransport is closed')`` and asyncio reports "Task
exception was never retrieved": noise in the log at best, and in the tests an
error that fails whichever test happens to be running.

:class:`PeerConnection` runs the same task and accounts for how it ended: a
failure after :meth:`close` was called is what closing means (debug log); a
failure of an open connection is logged as a warning (the connection then never
connects, which the session's own connect timeout and media watchers handle).
"""

from __future__ import annotations

import logging
from typing import Any

from aiortc import RTCPeerConnection

logger = logging.getLogger(__name__)

#: aiortc's private connect coroutine (name-mangled), which this class wraps.
_CONNECT = "_RTCPeerConnection__connect"

if not callable(getattr(RTCPeerConnection, _CONNECT, None)):  # pragma: no cover
    raise ImportError("this aiortc version has no RTCPeerConnection.__connect to wrap")


class PeerConnection(RTCPeerConnection):
    """An ``RTCPeerConnection`` whose background connect task never fails unseen."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.closing = False

    async def close(self) -> None:
        self.closing = True
        await super().close()

    async def _RTCPeerConnection__connect(self) -> None:
        try:
            await getattr(super(), _CONNECT)()
        except Exception as exc:
            if self.closing:
                logger.debug("peer connection closed while connecting: %r", exc)
            else:
                logger.warning("peer connection could not start its transports: %r", exc)
