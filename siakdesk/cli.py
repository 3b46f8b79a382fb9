"""``siakdesk``: the desktop app's command line.

``siakdesk`` opens the window (joining at once when configured);
``siakdesk demo`` runs a whole meeting in one process with the window
(:mod:`siakdesk.ui.demo`), or without it (``--headless``, :mod:`siakdesk.demo`);
``--print-config`` and ``--config-template`` are for IT.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from siakdesk import __version__
from siakdesk.core import config
from siakdesk.logsetup import configure_logging


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="siakdesk",
        description="SiakDesk conferencing. Options come from the configuration files "
        "(see --print-config) and may be overridden here.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="show every option's effective value and where it came from, then exit",
    )
    parser.add_argument(
        "--config-template",
        action="store_true",
        help="print a configuration file with every option at its default, then exit",
    )
    config.add_arguments(parser)
    commands = parser.add_subparsers(dest="command")
    demo = commands.add_parser("demo", help="a meeting with three simulated offices")
    demo.add_argument(
        "--duration",
        type=float,
        help="seconds in the meeting (default: until the window is closed; 10 headless)",
    )
    demo.add_argument(
        "--screenshot", type=Path, help="save a picture of the window here at the end"
    )
    demo.add_argument(
        "--headless",
        action="store_true",
        help="no window: print what the fourth participant received",
    )
    args = parser.parse_args(argv)

    if args.config_template:
        print(config.default_toml())
        return 0
    try:
        settings = config.load(config.command_line_values(args))
    except config.ConfigError as exc:
        print(f"siakdesk: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.print_config:
        print(config.format_settings(settings, config.locations()))
        return 0
    configure_logging(settings["log_level"])
    if args.command == "demo" and args.headless:
        from siakdesk.demo import run_demo

        return asyncio.run(run_demo(args.duration or 10.0))
    if args.command == "demo":
        from siakdesk.ui.demo import run_window_demo

        return run_window_demo(settings, args.duration, args.screenshot)
    from siakdesk.ui.application import run_app

    return run_app(settings)


if __name__ == "__main__":
    sys.exit(main())
