"""Reading what SiakDesk's programs say when they run as child processes."""

from __future__ import annotations

import re
import selectors
import subprocess
import sys
import time
from pathlib import Path

#: What siakdesk-server prints once it accepts connections.
LISTENING = re.compile(r"listening on (https?://\S+)")
#: Where this interpreter's SiakDesk programs are.
BIN = Path(sys.executable).parent


def start_server(room: str, *options: str) -> subprocess.Popen[str]:
    """A ``siakdesk-server`` on a free port with one room and no database file, quiet."""
    return subprocess.Popen(
        [
            str(BIN / "siakdesk-server"),
            *("--port", "0", "--database", ":memory:", "--log-level", "WARNING"),
            *("--room", room, *options),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )


def wait_for_line(
    proc: subprocess.Popen[str], pattern: re.Pattern[str], timeout: float
) -> re.Match[str]:
    """Read ``proc``'s stdout until a line matches ``pattern``.

    Raises ``RuntimeError`` with what was read when ``timeout`` passes or the output ends.
    """
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    seen = []
    try:
        while time.monotonic() < deadline:
            if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                break
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            match = pattern.search(line)
            if match:
                return match
    finally:
        selector.close()
    program = proc.args[0] if isinstance(proc.args, list) else proc.args
    raise RuntimeError(
        f"{program!s} printed no line matching {pattern.pattern!r} in {timeout} s: "
        f"{''.join(seen)!r}"
    )
