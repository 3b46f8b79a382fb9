"""Run the installed programs as a user would: ``siakdesk-server`` and ``siakdesk-bot``."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from siakdesk.bench import processes
from siakdesk.bench.processes import LISTENING

BIN = Path(sys.executable).parent


def program(name: str) -> str:
    path = BIN / name
    assert path.exists(), f"{name} is not installed in {BIN}: pip install -e ."
    return str(path)


def wait_for_line(
    proc: subprocess.Popen[str], pattern: re.Pattern[str], timeout: float
) -> re.Match[str]:
    """The shared line reader; on failure the process is killed and its stderr shown."""
    try:
        return processes.wait_for_line(proc, pattern, timeout)
    except RuntimeError as exc:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"{exc}\n{err}") from None


class ServerProcess:
    def __init__(self, *args: str) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [
                program("siakdesk-server"),
                *("--host", "127.0.0.1", "--port", "0", "--database", ":memory:"),
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.url = wait_for_line(self.proc, LISTENING, timeout=20).group(1)

    def stop(self, signum: int = signal.SIGTERM) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        try:
            _, err = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
            raise AssertionError(f"server did not stop on signal {signum}: {err}") from None
        return self.proc.returncode, err


@pytest.fixture
def server_process() -> Iterator[ServerProcess]:
    server = ServerProcess("--room", "siak", "--passcode", "1234")
    yield server
    server.stop()


def run_bot(url: str, name: str, *args: str, duration: float = 8) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            program("siakdesk-bot"),
            "--server",
            url,
            "--room",
            "siak",
            "--name",
            name,
            "--duration",
            str(duration),
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
