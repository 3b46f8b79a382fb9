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
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterable

import aioice.ice
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
