"""``siakdesk-bench``: benchmarks that print figures."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from siakdesk.bench.serverload import format_table, run_load


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="siakdesk-bench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    server = commands.add_parser("server", help="server CPU and forwarding for N participants")
    server.add_argument("--participants", type=int, nargs="+", default=[4, 8, 16], metavar="N")
    server.add_argument("--window", type=float, default=20.0, help="seconds measured for each N")
    server.add_argument("--repeat", type=int, default=1, help="runs for each N (report each)")
    server.add_argument("--json", type=Path, help="also write the figures here")
    client = commands.add_parser(
        "client", help="the desktop client's CPU and memory: 640x360 out, four tiles in"
    )
    client.add_argument("--duration", type=float, default=60.0, help="seconds measured")
    reconnect = commands.add_parser(
        "reconnect", help="time from a link's return (and a server restart) to audio flowing"
    )
    reconnect.add_argument("--outages", type=int, default=20, help="link cuts to measure")
    reconnect.add_argument("--outage", type=float, default=6.0, help="seconds each cut lasts")
    reconnect.add_argument("--restarts", type=int, default=5, help="server restarts to measure")
    reconnect.add_argument("--json", type=Path, help="also write the figures here")
    media = commands.add_parser(
        "media", help="speech quality, delay, video and bitrate on shaped links (needs root)"
    )
    media.add_argument("--scenario", nargs="*", default=[], help="names (default: all)")
    media.add_argument(
        "--engine", nargs="+", default=["siakdesk", "aiortc"], choices=["siakdesk", "aiortc"]
    )
    media.add_argument("--out", type=Path, default=Path("out/bench-media"))
    args = parser.parse_args(argv)

    if args.command == "media":
        from siakdesk.bench.media import format_table as media_table
        from siakdesk.bench.media import run_media

        table = media_table(run_media(args.scenario, args.engine, args.out))
        print(table)
        (args.out / "media.md").write_text(table + "\n")
        return 0

    if args.command == "reconnect":
        from siakdesk.bench.reconnect import format_result, run_reconnect

        outcome = run_reconnect(args.outages, args.outage, args.restarts)
        print(format_result(outcome))
        if args.json is not None:
            args.json.write_text(json.dumps(outcome.as_json(), indent=2) + "\n")
        return 0

    if args.command == "client":
        from siakdesk.bench.clientload import run_client_load

        result = run_client_load(args.duration)
        print(json.dumps(dataclasses.asdict(result), indent=2))
        return 0

    results = []
    for n in args.participants:
        for run in range(args.repeat):
            print(f"running N={n} ({run + 1}/{args.repeat})...", file=sys.stderr, flush=True)
            results.append(run_load(n, window_s=args.window))
    print(format_table(results))
    if args.json is not None:
        args.json.write_text(json.dumps([r.as_json() for r in results], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
