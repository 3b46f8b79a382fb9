"""House rule: core, media and server never import Qt (STYLE.md, convention 1)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "siakdesk"
QT_FREE = ["core", "media", "server"]


def test_qt_free_layers_do_not_import_qt_in_source() -> None:
    offenders = []
    for layer in QT_FREE:
        for path in (PACKAGE / layer).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                offenders += [
                    f"{path}: {n}" for n in names if n.split(".")[0] in ("PySide6", "qasync")
                ]
    assert offenders == []


def test_importing_the_qt_free_layers_loads_no_qt() -> None:
    code = (
        "import sys, siakdesk.core.meetingsession, siakdesk.server.app, siakdesk.server.cli, "
        "siakdesk.media.synthetic, siakdesk.bot\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'qasync'))\n"
        "print(loaded)\n"
        "sys.exit(1 if loaded else 0)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
