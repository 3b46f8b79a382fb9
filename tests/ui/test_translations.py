"""Every user-facing string of the UI ships in Indonesian, and the compiled .qm matches."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from PySide6.QtCore import QTranslator

ROOT = Path(__file__).resolve().parents[2]
TS = ROOT / "resources" / "translations" / "siakdesk_id.ts"
QM = TS.with_suffix(".qm")
TR_CALL = re.compile(r"""self\.tr\(\s*"((?:[^"\\]|\\.)*)"\s*\)""")


def ts_entries() -> dict[tuple[str, str], str]:
    entries = {}
    for context in ET.parse(TS).getroot().iter("context"):
        name = context.findtext("name") or ""
        for message in context.iter("message"):
            translation = message.find("translation")
            assert translation is not None
            assert translation.get("type") != "unfinished", message.findtext("source")
            entries[(name, message.findtext("source") or "")] = translation.text or ""
    return entries


def test_every_tr_string_has_an_indonesian_translation() -> None:
    entries = ts_entries()
    sources = {source for _context, source in entries}
    missing = []
    for path in (ROOT / "siakdesk" / "ui").glob("*.py"):
        for text in TR_CALL.findall(path.read_text()):
            if text not in sources:
                missing.append(f"{path.name}: {text}")
    assert missing == [], "run scripts/dev translations"
    assert all(entries.values())


def test_compiled_translations_match_the_source() -> None:
    translator = QTranslator()
    assert translator.load(str(QM))
    for (context, source), translation in ts_entries().items():
        assert translator.translate(context, source) == translation, (context, source)
