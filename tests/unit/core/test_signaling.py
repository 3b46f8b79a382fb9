from __future__ import annotations

import aiohttp
import pytest

from siakdesk.core.signaling import ServerEndpoint, normalize_fingerprint

DIGEST = "AB:" * 31 + "CD"


@pytest.mark.parametrize(
    ("url", "ws_url"),
    [
        ("http://127.0.0.1:8443", "ws://127.0.0.1:8443/ws"),
        ("https://rapat.siakkab.go.id/", "wss://rapat.siakkab.go.id/ws"),
        ("https://host/siakdesk", "wss://host/siakdesk/ws"),
        ("wss://host:9/ws", "wss://host:9/ws"),
    ],
)
def test_ws_url(url: str, ws_url: str) -> None:
    assert ServerEndpoint(url).ws_url == ws_url


@pytest.mark.parametrize("url", ["", "127.0.0.1:8443", "ftp://host", "http://"])
def test_bad_server_address(url: str) -> None:
    with pytest.raises(ValueError, match="server address"):
        ServerEndpoint(url)


def test_fingerprint_forms() -> None:
    digest = normalize_fingerprint(DIGEST)
    assert len(digest) == 32
    assert normalize_fingerprint("sha256:" + DIGEST.replace(":", "").lower()) == digest
    option = ServerEndpoint("https://h", tls_fingerprint=DIGEST).ssl_option()
    assert isinstance(option, aiohttp.Fingerprint)
    assert option.fingerprint == digest
    for bad in ("zz", "AB:CD"):
        with pytest.raises(ValueError, match="fingerprint"):
            normalize_fingerprint(bad)
