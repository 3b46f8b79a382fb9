"""Real shaped links between network namespaces: audio gets through a thin lossy link,
and an office whose link goes down for 6 s comes back by itself.

Skipped, with the reason, where namespaces cannot be made (not root, no iproute2/nftables).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from siakdesk.netlab.namespaces import NetLab, Shape, unavailable
from tests.e2e.conftest import LISTENING, program, wait_for_line

REASON = unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"no network lab: {REASON}")


@pytest.fixture
def lab() -> Iterator[NetLab]:
    with NetLab() as network:
        yield network


def start_server(lab: NetLab) -> str:
    host = lab.add_host("server")
    server = lab.popen(
        "server",
        [program("siakdesk-server"), "--host", host.address, "--port", "8443",
         "--database", ":memory:", "--room", "siak"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    return str(wait_for_line(server, LISTENING, timeout=20).group(1))


def start_bot(
    lab: NetLab, name: str, url: str, stats: Path, duration: float
) -> subprocess.Popen[str]:
    return lab.popen(
        name,
        [program("siakdesk-bot"), "--server", url, "--room", "siak", "--name", name,
         "--duration", str(duration), "--stats", str(stats), "--video-size", "160x90",
         "--fps", "5", "--log-level", "INFO"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def test_audio_arrives_over_a_thin_lossy_link(lab: NetLab, tmp_path: Path) -> None:
    url = start_server(lab)
    lab.add_host("Minas")
    lab.add_host("Kandis", Shape(capacity_kbit=256, loss=0.03))
    minas = start_bot(lab, "Minas", url, tmp_path / "minas.json", duration=12)
    kandis = start_bot(lab, "Kandis", url, tmp_path / "kandis.json", duration=12)
    for bot in (minas, kandis):
        _out, err = bot.communicate(timeout=60)
        assert bot.returncode == 0, err
    got_at_minas = json.loads((tmp_path / "minas.json").read_text())["received"]["Kandis"]
    got_at_kandis = json.loads((tmp_path / "kandis.json").read_text())["received"]["Minas"]
    # some 10 s of 20 ms frames after joining; 3 % loss on each of the two hops and the
    # slower join over the thin link take their share, a dead link would give none
    for figures in (got_at_minas, got_at_kandis):
        assert figures["audio_frames"] > 200, figures


def test_an_office_cut_for_six_seconds_comes_back_by_itself(lab: NetLab, tmp_path: Path) -> None:
    url = start_server(lab)
    lab.add_host("Minas")
    lab.add_host("Siak", Shape(capacity_kbit=512, loss=0.01))
    minas = start_bot(lab, "Minas", url, tmp_path / "minas.json", duration=24)
    siak = start_bot(lab, "Siak", url, tmp_path / "siak.json", duration=24)
    wait_for_line(siak, re.compile(r"Siak joined room siak as (\S+)"), timeout=30)
    subprocess.run(["sleep", "3"], check=True)
    lab.cut("Siak")
    subprocess.run(["sleep", "6"], check=True)
    lab.restore("Siak")
    logs = {}
    for name, bot in (("Minas", minas), ("Siak", siak)):
        _out, logs[name] = bot.communicate(timeout=60)
        assert bot.returncode == 0, logs[name]
    print(logs["Siak"])  # shown when the test fails: how the session got back
    at_siak = json.loads((tmp_path / "siak.json").read_text())
    at_minas = json.loads((tmp_path / "minas.json").read_text())
    assert at_siak["reconnects"] == 1, at_siak
    assert at_minas["reconnects"] == 0
    # 24 s at 50 frames/s, minus joining, the 6 s cut and the way back: if the office had
    # not come back, it would have had about 150
    assert at_siak["received"]["Minas"]["audio_frames"] > 500, at_siak
    assert at_minas["received"]["Siak"]["audio_frames"] > 500, at_minas
    assert 6 <= at_siak["seconds_without_media"] < 15, at_siak
