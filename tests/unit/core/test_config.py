"""The configuration layers: schema, precedence, MSI values, bad input."""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

import pytest

from siakdesk.core import config
from siakdesk.core.config import (
    COMMAND_LINE,
    DEFAULTS,
    MSI_PROPERTIES,
    OPTIONS,
    SCHEMA,
    ConfigError,
    Layer,
    resolve,
)


@pytest.mark.parametrize("option", SCHEMA, ids=lambda o: o.name)
def test_every_default_is_valid_and_described(option: config.Option) -> None:
    assert option.parse(option.default, from_text=False) == option.default
    assert len(option.description) > 15 and option.description.endswith(".")


def test_template_round_trips_every_default() -> None:
    template = config.default_toml()
    uncommented = "\n".join(
        line.removeprefix("# ") for line in template.splitlines() if re.match(r"# \w+ = ", line)
    )
    parsed = tomllib.loads(uncommented)
    assert set(parsed) == set(OPTIONS)
    settings = resolve([Layer("template", parsed)])
    assert dict(settings.values) == {o.name: o.default for o in SCHEMA}


def test_defaults_alone() -> None:
    settings = resolve([])
    assert settings["room"] == "siak" and settings["room_mode"] is False
    assert set(settings.sources.values()) == {DEFAULTS}


def test_precedence_registry_machine_user_command_line() -> None:
    registry = Layer(
        "registry HKLM\\Software\\SiakDesk",
        {"server_url": "https://rapat.siakkab.go.id", "office": "Kecamatan Kandis", "room": "siak"},
        text=True,
    )
    machine = Layer("/etc/siakdesk/siakdesk.toml", {"office": "Kecamatan Minas", "room_mode": True})
    user = Layer(
        "~/.config/SiakDesk/siakdesk.toml", {"display_name": "Pak Camat", "room_mode": False}
    )
    line = Layer(COMMAND_LINE, {"room": "latihan"})
    settings = resolve([registry, machine, user, line])
    assert settings["server_url"] == "https://rapat.siakkab.go.id"
    assert settings.source("server_url") == registry.source
    assert (settings["office"], settings.source("office")) == ("Kecamatan Minas", machine.source)
    assert (settings["room_mode"], settings.source("room_mode")) == (False, user.source)
    assert (settings["room"], settings.source("room")) == ("latihan", COMMAND_LINE)
    assert settings.source("language") == DEFAULTS


def test_msi_written_values_read_back() -> None:
    # what installer/siakdesk.wxs writes: every property as a string, empty when not given
    written = {option: "" for option in MSI_PROPERTIES.values()}
    written |= {
        "server_url": "https://10.0.0.5:8443",
        "office": "Kecamatan Kandis",
        "room_mode": "1",
    }
    settings = resolve([Layer("registry", written, text=True)])
    assert settings["server_url"] == "https://10.0.0.5:8443"
    assert settings["room_mode"] is True
    assert (settings["room"], settings.source("room")) == ("siak", DEFAULTS)
    assert settings.source("passcode") == DEFAULTS
    for text, expected in (("0", False), ("true", True), ("Tidak", False), ("ya", True)):
        assert resolve([Layer("r", {"room_mode": text}, text=True)])["room_mode"] is expected


def test_msi_properties_are_options() -> None:
    assert set(MSI_PROPERTIES.values()) <= set(OPTIONS)
    assert set(MSI_PROPERTIES) == {
        "SERVER_URL",
        "ROOM",
        "OFFICE",
        "DISPLAY_NAME",
        "PASSCODE",
        "ROOM_MODE",
    }


@pytest.mark.parametrize(
    ("values", "text", "option", "reason"),
    [
        ({"room_mode": "maybe"}, True, "room_mode", "must be true or false"),
        ({"room_mode": "yes"}, False, "room_mode", "must be a bool, not str"),
        ({"language": "fr"}, False, "language", "must be one of id, en"),
        ({"server_url": "rapat.siakkab.go.id"}, False, "server_url", "must look like https://"),
        ({"room": "ruang rapat"}, False, "room", "a room name is"),
        ({"office": "K" * 65}, False, "office", "longer than 64"),
        ({"tls_fingerprint": "AB:CD"}, False, "tls_fingerprint", "not a SHA-256"),
        ({"servr_url": "https://x"}, False, "servr_url", "unknown option"),
    ],
)
def test_invalid_values_name_source_option_and_reason(
    values: dict[str, object], text: bool, option: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as error:
        resolve([Layer("/etc/siakdesk/siakdesk.toml", values, text=text)])
    message = str(error.value)
    assert message.startswith(f"/etc/siakdesk/siakdesk.toml: option {option!r}: ")
    assert reason in message


def test_toml_files(tmp_path: Path) -> None:
    path = tmp_path / "siakdesk.toml"
    assert config.read_toml(path) is None
    path.write_text('server_url = "https://rapat.siakkab.go.id"\nroom_mode = true\n')
    layer = config.read_toml(path)
    assert layer is not None and layer.source == str(path)
    assert resolve([layer])["room_mode"] is True

    path.write_text("server_url = https://unquoted\n")
    with pytest.raises(ConfigError, match=r"siakdesk\.toml: not valid TOML: .*line 1"):
        config.read_toml(path)
    path.write_bytes(b"office = '\xff'\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        config.read_toml(path)


def test_locations_follow_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    machine, user = tmp_path / "machine.toml", tmp_path / "user.toml"
    monkeypatch.setenv("SIAKDESK_MACHINE_CONFIG", str(machine))
    monkeypatch.setenv("SIAKDESK_USER_CONFIG", str(user))
    machine.write_text('office = "Kecamatan Siak"\nroom_mode = true\n')
    user.write_text("room_mode = false\n")
    settings = config.load({"room": "latihan"})
    assert settings.source("office") == str(machine)
    assert (settings["room_mode"], settings.source("room_mode")) == (False, str(user))
    assert settings.source("room") == COMMAND_LINE
    assert any(str(machine) in entry and "found" in entry for entry in config.locations())


def test_command_line_flags_come_from_the_schema() -> None:
    parser = argparse.ArgumentParser()
    config.add_arguments(parser)
    args = parser.parse_args(["--server-url", "https://h", "--no-room-mode", "--language", "en"])
    assert config.command_line_values(args) == {
        "server_url": "https://h",
        "room_mode": False,
        "language": "en",
    }
    assert config.command_line_values(parser.parse_args([])) == {}


def test_secrets_are_not_printed() -> None:
    settings = resolve([Layer(COMMAND_LINE, {"passcode": "rahasia-1234"})])
    table = config.format_settings(settings)
    assert "rahasia" not in table
    assert re.search(r"passcode\s+\(set\)\s+command line", table)


def test_registry_values_read_back_on_windows() -> None:
    if sys.platform != "win32":
        pytest.skip("the registry exists on Windows only (the Windows workflow runs this)")
    import winreg

    key = r"Software\SiakDesk-Test"
    with winreg.CreateKey(winreg.HKEY_CURRENT_USER, key) as handle:
        winreg.SetValueEx(handle, "server_url", 0, winreg.REG_SZ, "https://rapat.siakkab.go.id")
        winreg.SetValueEx(handle, "room_mode", 0, winreg.REG_SZ, "1")
    try:
        layer = config.read_registry(winreg.HKEY_CURRENT_USER, key)
        assert layer is not None
        settings = resolve([layer])
        assert settings["room_mode"] is True
        assert settings.source("server_url") == f"registry HKCU\\{key}"
    finally:
        winreg.DeleteKey(winreg.HKEY_CURRENT_USER, key)


def test_join_screen_values_are_remembered(tmp_path: Path) -> None:
    path = tmp_path / "user" / "siakdesk.toml"
    path.parent.mkdir()
    path.write_text('language = "en"\n')
    config.save_user_values(
        {
            "server_url": "https://rapat.siakkab.go.id",
            "office": 'Kecamatan "Kandis"',
            "room_mode": True,
        },
        path,
    )
    layer = config.read_toml(path)
    assert layer is not None
    settings = resolve([layer])
    assert settings["office"] == 'Kecamatan "Kandis"'
    assert settings["language"] == "en" and settings["room_mode"] is True
    with pytest.raises(ValueError):
        config.save_user_values({"room": "no spaces"}, path)
