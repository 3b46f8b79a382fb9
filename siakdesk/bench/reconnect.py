"""How fast a meeting comes back: after a participant's link returns, and after a server restart.

One process runs the real server (a SQLite file in a temporary directory) and
four bots with the default reconnect policy.  One bot's link goes through the
in-process link emulator (:mod:`siakdesk.netlab.inprocess`).

* **Link outages**: the link is cut for ``outage_s`` (longer than the 4.5 s
  detection, so every outage is a real reconnect), then restored.  Measured:
  seconds from the restore until audio flows again *both ways* (a new audio
  frame from the office at another participant, and one from another
  participant at the office).
* **Server restarts**: the server is stopped and started again on the same
  port and database.  Measured: seconds from the new server listening until
  every bot is joined again and receives new audio from every other.
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from siakdesk.bot import Bot, BotConfig
from siakdesk.core.events import SessionState
from siakdesk.core.meetingsession import SessionConfig
from siakdesk.core.signaling import ServerEndpoint
from siakdesk.netlab.inprocess import LinkEmulator
from siakdesk.server.app import app_factory
from siakdesk.server.config import RoomConfig, ServerConfig

OFFICES = ("Minas", "Kandis", "Sabak Auh", "Siak")


@dataclasses.dataclass
class ReconnectResult:
    outage_s: float
    link_recovery_s: list[float]
    restart_recovery_s: list[float]
    reconnects: int

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {
            "link_median_s": _median(self.link_recovery_s),
            "link_worst_s": max(self.link_recovery_s, default=None),
            "restart_median_s": _median(self.restart_recovery_s),
            "restart_worst_s": max(self.restart_recovery_s, default=None),
        }


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


async def _start(config: ServerConfig) -> web.AppRunner:
    runner = web.AppRunner(app_factory(config), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, config.host, config.port).start()
    return runner


async def _audio_flows(bots: list[Bot], pairs: list[tuple[Bot, Bot]]) -> None:
    """Until each receiver of ``pairs`` has a new audio frame from its sender."""
    await asyncio.gather(*(rx.wait_for_more_from([tx.name], audio=1, video=0) for rx, tx in pairs))


async def _joined(bot: Bot) -> None:
    changed = asyncio.Event()
    remove = bot.session.add_listener(lambda _event: changed.set())
    try:
        while bot.session.state is not SessionState.JOINED:
            await changed.wait()
            changed.clear()
    finally:
        remove()


async def measure(outages: int, outage_s: float, restarts: int) -> ReconnectResult:
    with tempfile.TemporaryDirectory(prefix="siakdesk-bench-") as tmp:
        config = ServerConfig(
            port=0, rooms=(RoomConfig("siak"),), database=str(Path(tmp) / "meetings.sqlite3")
        )
        runner = await _start(config)
        host, port = runner.addresses[0][:2]
        config = dataclasses.replace(config, port=port)
        endpoint = ServerEndpoint(f"http://{host}:{port}")
        link = LinkEmulator()
        bots = [
            Bot(
                BotConfig(
                    session=SessionConfig(
                        endpoint=endpoint,
                        room="siak",
                        name=name,
                        link=link if name == "Siak" else None,
                    )
                )
            )
            for name in OFFICES
        ]
        office, other = bots[-1], bots[0]
        every_pair = [(a, b) for a in bots for b in bots if a is not b]
        link_times: list[float] = []
        restart_times: list[float] = []
        try:
            for bot in bots:
                await bot.start()
            await asyncio.wait_for(_audio_flows(bots, every_pair), 30)
            for _ in range(outages):
                link.cut()
                await asyncio.sleep(outage_s)
                link.restore()
                restored = time.monotonic()
                await asyncio.wait_for(_audio_flows(bots, [(other, office), (office, other)]), 60)
                link_times.append(round(time.monotonic() - restored, 3))
                await asyncio.sleep(1.0)
            for _ in range(restarts):
                await runner.cleanup()
                await asyncio.sleep(1.0)
                runner = await _start(config)
                started = time.monotonic()
                await asyncio.wait_for(asyncio.gather(*(_joined(b) for b in bots)), 60)
                await asyncio.wait_for(_audio_flows(bots, every_pair), 60)
                restart_times.append(round(time.monotonic() - started, 3))
                await asyncio.sleep(1.0)
            reconnects = sum(b.session.reconnects for b in bots)
        finally:
            for bot in bots:
                await bot.close()
            await runner.cleanup()
    return ReconnectResult(outage_s, link_times, restart_times, reconnects)


def run_reconnect(outages: int, outage_s: float, restarts: int) -> ReconnectResult:
    return asyncio.run(measure(outages, outage_s, restarts))


def format_result(result: ReconnectResult) -> str:
    figures = result.as_json()
    return "\n".join(
        [
            "| measured | runs | median | worst | target |",
            "|---|---|---|---|---|",
            f"| link back ({result.outage_s:g} s cut) -> audio both ways | "
            f"{len(result.link_recovery_s)} | {figures['link_median_s']} s | "
            f"{figures['link_worst_s']} s | median <= 2 s, worst <= 5 s |",
            f"| server restart -> all 4 back, audio every way | "
            f"{len(result.restart_recovery_s)} | {figures['restart_median_s']} s | "
            f"{figures['restart_worst_s']} s | <= 5 s |",
        ]
    )
