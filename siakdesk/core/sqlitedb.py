"""Opening SiakDesk's SQLite files (the server's record, each client's local copy)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_database(path: str | Path) -> sqlite3.Connection:
    """Open (creating its folder) in autocommit and WAL mode; ``:memory:`` for none."""
    name = str(path)
    if name != ":memory:":
        Path(name).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(name, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    return db
