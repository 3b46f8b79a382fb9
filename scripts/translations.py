"""Update resources/translations/siakdesk_id.ts from the UI code, fill it, compile the .qm.

    scripts/dev translations

pyside6-lupdate collects every self.tr() string; the Indonesian table in
resources/translations/id.py fills the translations; pyside6-lrelease compiles.
A source string with no Indonesian is an error: every string ships translated.
"""

from __future__ import annotations

import runpy
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TS = ROOT / "resources" / "translations" / "siakdesk_id.ts"
QM = TS.with_suffix(".qm")
BIN = Path(sys.executable).parent


def main() -> int:
    sources = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "siakdesk" / "ui").glob("*.py"))
    subprocess.run(
        [
            str(BIN / "pyside6-lupdate"),
            *sources,
            "-ts",
            str(TS),
            "-no-obsolete",
            "-locations",
            "none",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    table: dict[str, str] = runpy.run_path(str(TS.parent / "id.py"))["INDONESIAN"]
    tree = ET.parse(TS)
    tree.getroot().set("language", "id_ID")
    missing = []
    for message in tree.getroot().iter("message"):
        source = message.findtext("source") or ""
        translation = message.find("translation")
        assert translation is not None
        if source in table:
            translation.text = table[source]
            translation.attrib.pop("type", None)
        else:
            missing.append(source)
    tree.write(TS, encoding="utf-8", xml_declaration=True)
    if missing:
        print("no Indonesian for:\n  " + "\n  ".join(missing), file=sys.stderr)
        return 1
    subprocess.run(
        [str(BIN / "pyside6-lrelease"), str(TS), "-qm", str(QM)], check=True, capture_output=True
    )
    print(f"updated {TS.relative_to(ROOT)} and {QM.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
