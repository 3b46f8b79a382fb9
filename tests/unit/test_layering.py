"""House rule: core, media and server never import Qt (STYLE.md, convention 1)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "siakdesk"
QT_FREE = ["core", "media", "server"]


#: Run in a fresh interpreter: CPython 3.11's AST builder keeps one recursion counter for
#: all threads (python/cpython#106905), and ``ast.parse`` in a test process whose earlier
#: tests left threads running (aiortc's encoders) failed with "AST constructor recursion
#: depth mismatch" on CI.
SOURCE_CHECK = """
import ast, sys
from pathlib import Path
offenders = []
for layer in sys.argv[2:]:
    for path in (Path(sys.argv[1]) / layer).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path}: {n}" for n in names if n.split(".")[0] in ("PySide6", "qasync")]
print("\\n".join(offenders))
sys.exit(1 if offenders else 0)
"""


def test_qt_free_layers_do_not_import_qt_in_source() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SOURCE_CHECK, str(PACKAGE), *QT_FREE],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


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
