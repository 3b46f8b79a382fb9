"""Which local addresses ICE may offer as host candidates.

aioice offers every address of every interface except loopback, and aiortc
adds Google's public STUN server when no ICE server is configured.  Neither is
right for SiakDesk:

* a meeting server should offer only the address clients reach it on (Janus
  calls this ``ice_enforce_list``), and a server bound to ``127.0.0.1`` can only
  be reached on loopback;
* a client should offer the address its signaling connection to the server
  left from: that interface demonstrably routes to the server;
* no traffic goes to a third-party STUN server unless the configuration names one.

aioice has no option for the first two, so :func:`restrict_host_addresses`
replaces its module-level ``get_host_addresses`` with a filter.  The choice is
per process: all peer connections of one process share it, which fits how
SiakDesk runs (one server or one client per process; tests run everything on
loopback).

**Consent freshness on a slow link.**  Every ICE connection asks its peer for
consent about every 5 s (RFC 7675).  aioice 0.13 sends each request once,
waits 0.5 s, counts no answer in time as a failure, and closes the connection
after six failures in a row (aiortc/aioice issue #58).  On a 3G link whose
round trip is more than 0.5 s (300 ms each way, or a queue behind a burst)
every answer is "late", so a healthy connection is closed after about 30 s:
the media engine's edge benchmark saw the office drop out of the meeting
twice a minute ("Consent to send expired").  RFC 7675 says consent expires
30 s after the last answer; :func:`install_consent_freshness` makes aioice do
that: it retransmits each request (0.5, 1, 2 s apart, so answers up to 7.5 s
late count) and closes only when no answer came for
:data:`CONSENT_EXPIRY_S`.  A dead link is still noticed within seconds by the
session's own watchers (no media, heartbeat).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import time
from collections.abc import Callable, Iterable

import aioice.ice
import aioice.stun
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCIceServer

logger = logging.getLogger(__name__)

_original_get_host_addresses: Callable[[bool, bool], list[str]] = aioice.ice.get_host_addresses
_allowed: tuple[str, ...] | None = None


def _filtered_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    if _allowed is None:
        return _original_get_host_addresses(use_ipv4, use_ipv6)
    addresses = []
    for address in _allowed:
        version = ipaddress.ip_address(address).version
        if (version == 4 and use_ipv4) or (version == 6 and use_ipv6):
            addresses.append(address)
    return addresses


def restrict_host_addresses(addresses: Iterable[str] | None) -> None:
    """Offer only ``addresses`` as ICE host candidates (``None``: every interface)."""
    global _allowed
    if addresses is None:
        _allowed = None
    else:
        checked = tuple(str(ipaddress.ip_address(a)) for a in addresses)
        if not checked:
            raise ValueError("at least one ICE host address is needed")
        _allowed = checked
    aioice.ice.get_host_addresses = _filtered_host_addresses
    logger.debug("ICE host addresses: %s", "all interfaces" if _allowed is None else _allowed)


#: Seconds between consent requests (RFC 7675: randomised, 0.8 to 1.2 times this).
CONSENT_INTERVAL_S = 5.0
#: Consent ends this long after the last answer (RFC 7675 section 5.1).
CONSENT_EXPIRY_S = 30.0
#: Each request is sent again 0.5, 1.5 and 3.5 s after the first; it gives up at 7.5 s.
CONSENT_RETRANSMISSIONS = 3


async def _query_consent(self: aioice.ice.Connection) -> None:
    """aioice's ``Connection.query_consent``, expiring on time since the last answer."""
    assert self.remote_password is not None
    key = self.remote_password.encode("utf8")
    answered = time.monotonic()
    while True:
        await asyncio.sleep(CONSENT_INTERVAL_S * (0.8 + 0.4 * random.random()))
        for pair in list(self._nominated.values()):
            try:
                await pair.protocol.request(
                    self.build_request(pair, nominate=False),
                    pair.remote_addr,
                    integrity_key=key,
                    retransmissions=CONSENT_RETRANSMISSIONS,
                )
            except aioice.stun.TransactionError:
                continue
            answered = time.monotonic()
        silent = time.monotonic() - answered
        if silent >= CONSENT_EXPIRY_S:
            logger.info("ICE consent expired: no answer for %.0f s", silent)
            self._query_consent_task = None  # close() would cancel this task
            await self.close()
            return


def install_consent_freshness() -> None:
    """Make every aioice connection of this process keep consent as RFC 7675 says
    (see the module's docstring); idempotent."""
    aioice.ice.Connection.query_consent = _query_consent  # type: ignore[method-assign]


def host_addresses() -> tuple[str, ...] | None:
    """The current restriction, ``None`` when every interface is offered."""
    return _allowed


def is_unspecified(host: str) -> bool:
    """True for ``0.0.0.0``, ``::`` and host names (which may mean several interfaces)."""
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return True


def rtc_configuration(stun_urls: Iterable[str] = ()) -> RTCConfiguration:
    """A peer-connection configuration with only the STUN servers named here.

    Max-bundle: one ICE/DTLS transport carries every slot (one port, one
    handshake; what a thin link wants).  It also avoids aiortc issue #1414: with
    the default "balanced" policy an answerer leaves the second and later video
    m-lines on a transport that BUNDLE then closes, so their senders never start.
    """
    return RTCConfiguration(
        iceServers=[RTCIceServer(urls=url) for url in stun_urls],
        bundlePolicy=RTCBundlePolicy.MAX_BUNDLE,
    )
