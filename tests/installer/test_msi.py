"""The MSI's structure, built with wixl from a small staged tree and read back with msiinfo."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from siakdesk.core.config import MSI_PROPERTIES, REGISTRY_KEY

ROOT = Path(__file__).resolve().parents[2]
UPGRADE_CODE = "{D1639747-D566-4159-B5AE-87984DFA77F9}"

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("wixl", "wixl-heat", "msiinfo", "msibuild")),
    reason="wixl and msitools are not installed (Debian: apt-get install wixl msitools; "
    "scripts/dev test installs them)",
)


def _load_build_msi() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("build_msi", ROOT / "installer" / "build_msi.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_msi"] = module
    spec.loader.exec_module(module)
    return module


build_msi = _load_build_msi()


def stage_tree(base: Path) -> Path:
    stage = base / "siakdesk"
    for relative, content in {
        "siakdesk.exe": b"MZ fake app",
        "siakdesk-cli.exe": b"MZ fake console app",
        "_internal/python311.dll": b"fake python",
        "_internal/resources/translations/siakdesk_id.qm": b"qm",
        "_internal/_sounddevice_data/portaudio-binaries/libportaudio64bit.dll": b"pa",
    }.items():
        path = stage / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return stage


def table(msi: Path, name: str) -> list[dict[str, str]]:
    """Rows of one MSI table as dicts (msiinfo export: header, types, table name, rows)."""
    text = subprocess.run(
        ["msiinfo", "export", str(msi), name], capture_output=True, text=True, check=True
    ).stdout
    lines = text.splitlines()
    header = lines[0].split("\t")
    rows = []
    for line in lines[3:]:
        cells = line.split("\t")
        rows.append(dict(zip(header, cells + [""] * (len(header) - len(cells)), strict=True)))
    return rows


@pytest.fixture(scope="module")
def msi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("msi")
    path = build_msi.build(stage_tree(base), base / "out" / "SiakDesk.msi")
    yield path


def test_version_and_upgrade_code(msi: Path) -> None:
    properties = {row["Property"]: row["Value"] for row in table(msi, "Property")}
    assert properties["ProductVersion"] == build_msi.msi_version()
    assert properties["UpgradeCode"] == UPGRADE_CODE
    assert properties["ProductName"] == "SiakDesk"
    assert properties["ALLUSERS"] == "1"  # per machine
    suminfo = subprocess.run(
        ["msiinfo", "suminfo", str(msi)], capture_output=True, text=True, check=True
    )
    assert "Template: x64;" in suminfo.stdout


def test_major_upgrade(msi: Path) -> None:
    rows = table(msi, "Upgrade")
    assert {r["UpgradeCode"] for r in rows} == {UPGRADE_CODE}
    assert {r["ActionProperty"] for r in rows} == {"WIX_UPGRADE_DETECTED", "WIX_DOWNGRADE_DETECTED"}
    sequence = {r["Action"]: int(r["Sequence"]) for r in table(msi, "InstallExecuteSequence")}
    assert sequence["FindRelatedProducts"] < sequence["AppSearch"]
    assert "RemoveExistingProducts" in sequence


def test_shortcuts_on_desktop_and_start_menu_in_indonesian(msi: Path) -> None:
    shortcuts = {r["Directory_"]: r for r in table(msi, "Shortcut")}
    assert set(shortcuts) == {"DesktopFolder", "ProgramMenuDir"}
    for row in shortcuts.values():
        assert row["Name"] == "Rapat SiakDesk"
        assert row["Target"] == "[INSTALLDIR]siakdesk.exe"
        assert row["Description"] == "Bergabung ke rapat daring Kabupaten Siak"
    removed = table(msi, "RemoveFile")
    assert [(r["DirProperty"], r["InstallMode"]) for r in removed] == [("ProgramMenuDir", "2")]
    directories = {r["Directory"]: r for r in table(msi, "Directory")}
    assert directories["INSTALLDIR"]["Directory_Parent"] == "ProgramFiles64Folder"


def test_public_properties_become_machine_configuration(msi: Path) -> None:
    registry = {
        r["Name"]: r for r in table(msi, "Registry") if r["Key"].rstrip("\\") == REGISTRY_KEY
    }
    for prop, option in MSI_PROPERTIES.items():
        row = registry[option]  # the value name is the option the config layer reads
        assert row["Value"] == f"[{prop}]"
        assert row["Root"] == "2"  # HKLM
        assert row["Component_"] == "MachineConfig"
    properties = {row["Property"]: row["Value"] for row in table(msi, "Property")}
    secure = properties["SecureCustomProperties"].split(";")
    assert set(MSI_PROPERTIES) <= set(secure)
    assert "PASSCODE" in properties["MsiHiddenProperties"].split(";")


def test_settings_survive_upgrade_and_repair(msi: Path) -> None:
    searches = {r["Property"]: r["Signature_"] for r in table(msi, "AppSearch")}
    locators = {r["Signature_"]: r for r in table(msi, "RegLocator")}
    actions = {r["Action"]: r for r in table(msi, "CustomAction")}
    conditions = {r["Action"]: r["Condition"] for r in table(msi, "InstallExecuteSequence")}
    for prop, option in MSI_PROPERTIES.items():
        locator = locators[searches[f"SAVED_{prop}"]]
        assert (locator["Root"], locator["Key"], locator["Name"]) == ("2", REGISTRY_KEY, option)
        restore = next(a for a in actions.values() if a["Source"] == prop)
        assert restore["Target"] == f"[SAVED_{prop}]"
        assert conditions[restore["Action"]] == f"SAVED_{prop} AND NOT {prop}"


def test_every_staged_file_is_installed(msi: Path) -> None:
    names = {r["FileName"] for r in table(msi, "File")}
    assert names == {
        "siakdesk.exe",
        "siakdesk-cli.exe",
        "python311.dll",
        "siakdesk_id.qm",
        "libportaudio64bit.dll",
    }


def test_upgrade_build_keeps_identities(msi: Path, tmp_path: Path) -> None:
    newer = build_msi.build(stage_tree(tmp_path), tmp_path / "newer.msi", version="0.2.0")
    old = {r["Property"]: r["Value"] for r in table(msi, "Property")}
    new = {r["Property"]: r["Value"] for r in table(newer, "Property")}
    assert new["ProductVersion"] == "0.2.0"
    assert new["UpgradeCode"] == old["UpgradeCode"]
    assert new["ProductCode"] != old["ProductCode"]
    components = {r["Component"]: r["ComponentId"] for r in table(msi, "Component")}
    assert {r["Component"]: r["ComponentId"] for r in table(newer, "Component")} == components


def test_build_refuses_what_it_cannot_build(tmp_path: Path) -> None:
    error = build_msi.BuildError
    with pytest.raises(error, match=r"no siakdesk\.exe"):
        build_msi.build(tmp_path, tmp_path / "x.msi")
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nversion = "1.0.0.dev1"\n')
    with pytest.raises(error, match=r"not MAJOR\.MINOR\.PATCH"):
        build_msi.msi_version(pyproject)
