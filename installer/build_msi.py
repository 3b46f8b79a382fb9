#!/usr/bin/env python3
"""Build SiakDesk.msi with wixl (msitools) from a staged one-folder app.

    python installer/build_msi.py --stage dist/siakdesk --output SiakDesk.msi

The stage is what PyInstaller's ``installer/siakdesk.spec`` produces (``siakdesk.exe`` and its
``_internal`` folder). On Linux this is how CI checks the installer's structure; releases are
built on the Windows runner with WiX 3 from the same ``siakdesk.wxs``
(``.github/workflows/windows.yml``).

wixl ignores two WiX attributes the release build relies on, ``Property/@Secure`` and
``Property/@Hidden``; this script writes their effect into the MSI itself afterwards
(``SecureCustomProperties`` and ``MsiHiddenProperties``), so the Linux-built MSI behaves the
same: the public properties reach the elevated install, and the passcode stays out of logs.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WXS = HERE / "siakdesk.wxs"
PUBLIC_PROPERTIES = ("SERVER_URL", "ROOM", "OFFICE", "DISPLAY_NAME", "PASSCODE", "ROOM_MODE")
SECURE = [*PUBLIC_PROPERTIES, *(f"SAVED_{p}" for p in PUBLIC_PROPERTIES)]
HIDDEN = ["PASSCODE", "SAVED_PASSCODE"]


class BuildError(Exception):
    pass


def msi_version(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """The project's version as an MSI ProductVersion: three numbers, at most 255.255.65535."""
    version = tomllib.loads(pyproject.read_text())["project"]["version"]
    match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", version)
    if not match:
        raise BuildError(f"version {version!r} in {pyproject} is not MAJOR.MINOR.PATCH")
    major, minor, patch = (int(g) for g in match.groups())
    if major > 255 or minor > 255 or patch > 65535:
        raise BuildError(f"version {version!r} is beyond what Windows Installer compares")
    return version


def _run(
    command: list[str], input: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command, input=input, cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise BuildError(
            f"{command[0]} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )
    return result


def build(stage: Path, output: Path, version: str | None = None) -> Path:
    for tool in ("wixl", "wixl-heat", "msibuild"):
        if shutil.which(tool) is None:
            raise BuildError(f"{tool} is not installed (Debian: apt-get install wixl msitools)")
    if not (stage / "siakdesk.exe").is_file():
        raise BuildError(f"{stage} has no siakdesk.exe: build the app with installer/siakdesk.spec")
    version = version or msi_version()
    files = sorted(str(p.relative_to(stage.parent)) for p in stage.rglob("*") if p.is_file())
    with tempfile.TemporaryDirectory() as work:
        fragment = Path(work) / "files.wxs"
        heat = _run(
            [
                "wixl-heat",
                "--prefix",
                f"{stage.name}/",
                "--directory-ref",
                "INSTALLDIR",
                "--component-group",
                "AppFiles",
                "--var",
                "var.SourceDir",
                "--win64",
            ],
            input="\n".join(files) + "\n",
            cwd=stage.parent,
        )
        fragment.write_text(heat.stdout)
        output.parent.mkdir(parents=True, exist_ok=True)
        _run(
            [
                "wixl",
                "--arch",
                "x64",
                "-D",
                f"Version={version}",
                "-D",
                f"SourceDir={stage.name}",  # wixl resolves only relative sources
                "-D",
                "Win64=yes",
                "-o",
                str(output),
                str(WXS),
                str(fragment),
            ],
            cwd=stage.parent,
        )
    secure = ";".join(["WIX_DOWNGRADE_DETECTED", "WIX_UPGRADE_DETECTED", *SECURE])
    for prop, value in (
        ("SecureCustomProperties", secure),
        ("MsiHiddenProperties", ";".join(HIDDEN)),
    ):
        _run(["msibuild", str(output), "-q", f"DELETE FROM `Property` WHERE `Property` = '{prop}'"])
        _run(
            [
                "msibuild",
                str(output),
                "-q",
                f"INSERT INTO `Property` (`Property`, `Value`) VALUES ('{prop}', '{value}')",
            ]
        )
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stage", type=Path, required=True, help="folder holding siakdesk.exe")
    parser.add_argument("--output", type=Path, default=Path("SiakDesk.msi"))
    parser.add_argument("--version", help="override the version from pyproject.toml")
    args = parser.parse_args(argv)
    try:
        path = build(args.stage.resolve(), args.output.resolve(), args.version)
    except BuildError as exc:
        print(f"build_msi: {exc}", file=sys.stderr)
        return 1
    print(f"built {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
