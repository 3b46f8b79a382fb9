"""ICE consent freshness on a link slower than aioice's 0.5 s wait (aiortc/aioice#58).

Two real aioice connections on loopback; one of them behind the in-process
link emulator.  The consent schedule is shortened (the real one is 5 s and
30 s) so each test takes seconds.
"""

from __future__ import annotations

import asyncio
import time

import aioice
import pytest

from siakdesk.core import icepolicy
from siakdesk.netlab.inprocess import Impairment, LinkEmulator


async def _connected_pair() -> tuple[aioice.Connection, aioice.Connection]:
    icepolicy.restrict_host_addresses(["127.0.0.1"])
    a = aioice.Connection(ice_controlling=True)
    b = aioice.Connection(ice_controlling=False)
    await asyncio.gather(a.gather_candidates(), b.gather_candidates())
    for one, other in ((a, b), (b, a)):
        for candidate in other.local_candidates:
            await one.add_remote_candidate(candidate)
        await one.add_remote_candidate(None)
        one.remote_username = other.local_username
        one.remote_password = other.local_password
    await asyncio.gather(a.connect(), b.connect())
    return a, b


@pytest.fixture
def short_consent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(icepolicy, "CONSENT_INTERVAL_S", 0.25)
    monkeypatch.setattr(icepolicy, "CONSENT_EXPIRY_S", 2.0)
    # aioice's own schedule, shortened alike: without the fix it closes after 6 late answers
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.25)
    monkeypatch.setattr(aioice.ice.Connection, "query_consent", aioice.ice.Connection.query_consent)
    icepolicy.install_consent_freshness()


async def test_consent_survives_a_round_trip_longer_than_half_a_second(
    short_consent: None,
) -> None:
    a, b = await _connected_pair()
    link = LinkEmulator(Impairment(delay=0.4))  # 0.8 s round trip
    link.attach_ice_connection(b)
    try:
        # aioice alone would have closed after 6 x (0.25 + 0.5) = 4.5 s
        await asyncio.sleep(6.0)
        assert a._query_consent_task is not None and not a._query_consent_task.done()
        await a.send(b"still here")
        assert await asyncio.wait_for(b.recv(), 2.0) == b"still here"
    finally:
        await asyncio.gather(a.close(), b.close())


async def test_consent_expires_when_the_peer_stops_answering(short_consent: None) -> None:
    a, b = await _connected_pair()
    link = LinkEmulator()
    link.attach_ice_connection(b)
    try:
        link.cut()
        cut_at = time.monotonic()
        with pytest.raises(ConnectionError):
            # recv() ends when the connection closes on expiry
            while True:
                await asyncio.wait_for(a.recv(), 10.0)
        assert time.monotonic() - cut_at >= icepolicy.CONSENT_EXPIRY_S
    finally:
        await asyncio.gather(a.close(), b.close())
