"""The meeting from the command line: a server and four bots as separate processes."""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import signal
import socket
import subprocess
import time
import urllib.request
import wave
from pathlib import Path

import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from siakdesk.media.synthetic import identity_of
from tests.e2e.conftest import ServerProcess, program, run_bot, wait_for_line
from tests.mediasamples import dominant_frequency, write_tone_wav

pytestmark = pytest.mark.e2e
OFFICES = ["Minas", "Kandis", "Kerinci Kanan", "Sungai Apit"]


def test_four_bots_from_the_command_line(server_process: ServerProcess, tmp_path: Path) -> None:
    record = tmp_path / "rekaman"
    bots = {}
    for name in OFFICES:
        args = ["--passcode", "1234", "--stats", str(tmp_path / f"{name}.json")]
        if name == "Minas":
            args += ["--record-dir", str(record)]
        if name == "Kandis":  # a voice from a file instead of its tone
            write_tone_wav(str(tmp_path / "kandis.wav"), 1000.0)
            args += ["--audio-file", str(tmp_path / "kandis.wav")]
        bots[name] = run_bot(server_process.url, name, *args, duration=10)
    with urllib.request.urlopen(f"{server_process.url}/stats", timeout=10) as response:
        assert json.load(response)["version"]
    for name, proc in bots.items():
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, f"{name}: {out} {err}"

    for name in OFFICES:
        stats = json.loads((tmp_path / f"{name}.json").read_text())
        assert stats["name"] == name
        assert stats["reconnects"] == 0
        assert sorted(stats["received"]) == sorted(n for n in OFFICES if n != name)
        for remote, figures in stats["received"].items():
            assert figures["audio_frames"] > 50, (name, remote, figures)
            assert figures["video_frames"] > 20, (name, remote, figures)
            assert (figures["video_width"], figures["video_height"]) == (320, 180)
            assert figures["video_ident_ok"] is True, (name, remote, figures)

    # each recording holds that office's own sound: its tone, or Kandis's file
    expected = {"Kandis": 1000.0} | {
        n: identity_of(n).tone_hz for n in ("Kerinci Kanan", "Sungai Apit")
    }
    for remote, frequency in expected.items():
        with wave.open(str(record / f"{remote}.wav")) as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (48000, 1, 2)
            assert wav.getnframes() > 48000  # more than a second of their voice
            samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
        heard = dominant_frequency(samples[-48000:], 48000)
        assert abs(heard - frequency) < 5, (remote, heard, frequency)

    code, err = server_process.stop(signal.SIGINT)
    assert code == 0, err
    assert "Traceback" not in err


def test_bot_exits_non_zero_with_reason(server_process: ServerProcess, tmp_path: Path) -> None:
    wrong = run_bot(server_process.url, "Minas", "--passcode", "0000")
    _out, err = wrong.communicate(timeout=30)
    assert wrong.returncode == 2
    assert "wrong passcode" in err and "wrong_passcode" in err

    nobody = run_bot("http://127.0.0.1:1", "Minas", "--passcode", "1234")
    _out, err = nobody.communicate(timeout=30)
    assert nobody.returncode == 2
    assert "cannot reach the server" in err
    assert "Traceback" not in err


def test_server_stops_cleanly_on_sigterm_with_a_meeting_running(tmp_path: Path) -> None:
    server = ServerProcess("--room", "siak", "--passcode", "1234")
    bot = run_bot(server.url, "Minas", "--passcode", "1234", duration=12)
    try:
        wait_for_line(bot, re.compile("Minas joined room siak"), timeout=30)
        code, err = server.stop(signal.SIGTERM)
        assert code == 0, err
        assert "Traceback" not in err
        _out, bot_err = bot.communicate(timeout=40)
        # the bot notices the meeting is gone, says so and does not hang
        assert bot.returncode in (0, 3), bot_err
    finally:
        if bot.poll() is None:
            bot.kill()
            bot.communicate()


def self_signed(tmp_path: Path) -> tuple[Path, Path, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "siakdesk-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    fingerprint = ":".join(digest[i : i + 2] for i in range(0, 64, 2)).upper()
    return cert_path, key_path, fingerprint


def test_tls_with_a_pinned_self_signed_certificate(tmp_path: Path) -> None:
    cert, key, fingerprint = self_signed(tmp_path)
    server = ServerProcess("--room", "siak", "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        assert server.url.startswith("https://")
        pinned = run_bot(server.url, "Minas", "--tls-fingerprint", fingerprint, duration=2)
        unpinned = run_bot(server.url, "Kandis", duration=2)
        wrong = "00:" * 31 + "00"
        mispinned = run_bot(server.url, "Siak", "--tls-fingerprint", wrong, duration=2)
        results = {
            name: (proc.wait(timeout=40), proc.communicate()[1])
            for name, proc in (("pinned", pinned), ("unpinned", unpinned), ("wrong", mispinned))
        }
        assert results["pinned"][0] == 0, results["pinned"][1]
        assert results["unpinned"][0] == 2
        assert "not trusted" in results["unpinned"][1]
        assert results["wrong"][0] == 2
        assert "does not match the pinned fingerprint" in results["wrong"][1]
    finally:
        code, err = server.stop()
    assert code == 0, err


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--passcode", "1234"], "must follow the --room"),
        (["--room", "no spaces allowed"], "room name"),
        (["--room", "siak", "--max-participants", "1"], "must be 2 to 64"),
        (["--tls-cert", "cert.pem"], "go together"),
    ],
)
def test_server_refuses_bad_arguments(args: list[str], reason: str) -> None:
    bad = subprocess.run(
        [program("siakdesk-server"), *args], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2 and reason in bad.stderr, bad.stderr


def test_demo_runs_a_meeting_and_reports_what_you_received() -> None:
    result = subprocess.run(
        [program("siakdesk"), "demo", "--headless", "--duration", "4"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for office in ("Camat Minas", "Camat Kandis", "Camat Sungai Apit"):
        line = next(line for line in result.stdout.splitlines() if line.strip().startswith(office))
        assert line.rstrip().endswith("yes"), line
    assert "Traceback" not in result.stderr


def test_bot_leaves_at_once_on_sigterm(server_process: ServerProcess, tmp_path: Path) -> None:
    stats = tmp_path / "minas.json"
    bot = run_bot(
        server_process.url, "Minas", "--passcode", "1234", "--stats", str(stats), duration=120
    )
    wait_for_line(bot, re.compile("Minas joined room siak"), timeout=30)
    bot.send_signal(signal.SIGTERM)
    _out, err = bot.communicate(timeout=15)  # not the 120 s it was asked to stay
    assert bot.returncode == 0, err
    assert json.loads(stats.read_text())["name"] == "Minas"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_killed_and_restarted_server_gets_every_bot_back(tmp_path: Path) -> None:
    """kill -9 the server mid-meeting, start it again: the bots come back by themselves."""
    port = free_port()
    database = str(tmp_path / "meetings.sqlite3")
    args = ("--room", "siak", "--port", str(port), "--database", database)
    server = ServerProcess(*args)
    names = ["Minas", "Kandis", "Siak"]
    bots = {
        name: run_bot(server.url, name, "--stats", str(tmp_path / f"{name}.json"), duration=25)
        for name in names
    }
    try:
        identities = {}
        for name, bot in bots.items():
            line = wait_for_line(bot, re.compile(rf"{name} joined room siak as (\S+)"), 30)
            identities[name] = line.group(1)
        time.sleep(2)
        server.stop(signal.SIGKILL)
        time.sleep(2)
        server = ServerProcess(*args)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"{server.url}/stats", timeout=5) as reply:
                room = json.load(reply)["rooms"]["siak"]["participants"]
            if len(room) == 3 and all(p["connection"] == "connected" for p in room.values()):
                break
            time.sleep(0.25)
        assert {p["name"]: pid for pid, p in room.items()} == identities
        for name, bot in bots.items():
            _out, err = bot.communicate(timeout=40)
            assert bot.returncode == 0, err
            stats = json.loads((tmp_path / f"{name}.json").read_text())
            assert stats["reconnects"] == 1 and stats["state"] == "left"
            assert stats["seconds_without_media"] >= 2
            for other in set(names) - {name}:
                assert stats["received"][other]["audio_seconds"] > 6, stats
    finally:
        for bot in bots.values():
            if bot.poll() is None:
                bot.kill()
                bot.communicate()
        server.stop()
