"""Screenshots of the join screen and of a meeting with four participants, in Indonesian.

    scripts/dev screenshots [OUT_DIR]      (default: out/screenshots)

Rendered offscreen by Qt (the same raster engine a real screen uses), so it works on a
machine without a display.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[1]


def join_screen(path: Path) -> None:
    from PySide6.QtWidgets import QApplication

    from siakdesk.core import config
    from siakdesk.media.devices import DeviceProvider
    from siakdesk.ui.i18n import install_translator
    from siakdesk.ui.mainwindow import MainWindow

    app = QApplication.instance() or QApplication([])
    install_translator(app, "id")
    settings = config.resolve([config.Layer("screenshot", {"room": "siak"})])
    window = MainWindow(settings, DeviceProvider(), remember=False)
    window.resize(1100, 700)
    window.show()
    window.join_screen.name.setText("Sekretaris Camat")
    window.join_screen.office.setText("Kecamatan Kandis")
    app.processEvents()
    window.grab().save(str(path))
    window.hide()  # no event loop runs here: closeEvent (async) is not for this


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "out" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    join_screen(out / "join-screen.png")
    meeting = out / "meeting.png"
    subprocess.run(
        [
            str(Path(sys.executable).parent / "siakdesk"),
            "demo",
            "--duration",
            "6",
            "--screenshot",
            str(meeting),
        ],
        check=True,
    )
    print(f"join screen: {out / 'join-screen.png'}\nmeeting: {meeting}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
