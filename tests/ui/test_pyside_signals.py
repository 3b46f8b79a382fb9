"""PySide6 6.12.0 aborts the interpreter after many signal emissions to a Python slot.

Each emission drops a reference to a singleton (None, True, False), which
reaches zero after a few thousand and kills the process ("deallocating None").
pyproject.toml keeps PySide6 below 6.12; this test says whether the installed
PySide6 is safe, so the pin can be lifted once a release passes it.
"""

from __future__ import annotations

import subprocess
import sys

PROGRAM = """
from PySide6.QtCore import QCoreApplication, QObject, Signal
app = QCoreApplication([])
class Emitter(QObject):
    text = Signal(str)
    anything = Signal(object)
received = []
emitter = Emitter()
emitter.text.connect(received.append)
emitter.anything.connect(received.append)
for i in range(5000):
    emitter.text.emit(str(i))
    emitter.anything.emit(None)
received.clear()
print("survived")
"""


def test_many_signal_emissions_do_not_abort_the_interpreter() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0 and "survived" in result.stdout, result.stderr[-2000:]
