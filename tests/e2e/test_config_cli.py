"""``siakdesk --print-config`` as IT would run it, with real files in every layer."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from siakdesk.core.config import SCHEMA
from tests.e2e.conftest import program

pytestmark = pytest.mark.e2e


def run_siakdesk(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        SIAKDESK_MACHINE_CONFIG=str(tmp_path / "machine.toml"),
        SIAKDESK_USER_CONFIG=str(tmp_path / "user.toml"),
    )
    return subprocess.run(
        [program("siakdesk"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def config_rows(stdout: str) -> dict[str, str]:
    """The table's rows by option name (the lines between the header and the blank line)."""
    table = stdout.split("\n\n")[0].splitlines()[1:]
    return {line.split()[0]: line for line in table}


def test_print_config_shows_values_and_sources(tmp_path: Path) -> None:
    machine, user = tmp_path / "machine.toml", tmp_path / "user.toml"
    machine.write_text(
        'server_url = "https://rapat.siakkab.go.id:8443"\noffice = "Kecamatan Kandis"\n'
        'passcode = "1234"\nroom_mode = true\n'
    )
    user.write_text('display_name = "Sekcam Kandis"\n')
    result = run_siakdesk(tmp_path, "--print-config", "--no-room-mode", "--language", "en")
    assert result.returncode == 0, result.stderr
    rows = {
        line.split()[0]: line
        for line in result.stdout.splitlines()
        if re.match(r"^[a-z_]+\s", line)
    }
    assert re.search(
        r"'https://rapat\.siakkab\.go\.id:8443'\s+" + re.escape(str(machine)), rows["server_url"]
    )
    assert re.search(r"'Sekcam Kandis'\s+" + re.escape(str(user)), rows["display_name"])
    assert re.search(r"false\s+command line$", rows["room_mode"])
    assert re.search(r"'en'\s+command line$", rows["language"])
    assert re.search(r"'siak'\s+default$", rows["room"])
    assert "(set)" in rows["passcode"] and "1234" not in result.stdout
    assert f"{machine} (found)" in result.stdout


def test_invalid_configuration_is_reported_and_refused(tmp_path: Path) -> None:
    (tmp_path / "user.toml").write_text('room_mode = "kadang"\n')
    result = run_siakdesk(tmp_path, "--print-config")
    assert result.returncode == 2
    assert f"{tmp_path / 'user.toml'}: option 'room_mode': must be a bool, not str" in result.stderr
    assert "Traceback" not in result.stderr

    result = run_siakdesk(tmp_path, "--print-config", "--language", "fr")
    assert result.returncode == 2 and "invalid choice: 'fr'" in result.stderr


def test_config_template_is_valid_toml_for_every_option(tmp_path: Path) -> None:
    result = run_siakdesk(tmp_path, "--config-template")
    assert result.returncode == 0
    (tmp_path / "machine.toml").write_text(result.stdout)  # all commented out: defaults
    shown = run_siakdesk(tmp_path, "--print-config")
    assert shown.returncode == 0, shown.stderr
    rows = config_rows(shown.stdout)
    assert len(rows) == len(SCHEMA)
    assert all(line.endswith("default") for line in rows.values()), rows
