"""The desktop app's configuration: one schema, four layers.

Each option is declared once in :data:`SCHEMA` (name, type, default, description).
Values come in layers, each overriding the ones before it:

1. built-in defaults (the schema);
2. machine-wide, written by IT: on Windows first the registry values the MSI writes under
   ``HKLM\\Software\\SiakDesk`` (its public properties), then the file
   ``%ProgramData%\\SiakDesk\\siakdesk.toml``; on Linux ``/etc/siakdesk/siakdesk.toml``;
3. per user: ``siakdesk.toml`` in the user's configuration folder (platformdirs);
4. the command line (``--server-url``, ``--room-mode``...).

The machine file comes after the MSI's registry values because it is the later,
deliberate edit (pushed by group policy, say). ``SIAKDESK_MACHINE_CONFIG`` and
``SIAKDESK_USER_CONFIG`` point at other files (tests, portable installs).

Every value is checked against the schema when it is read, and a bad one is a
:class:`ConfigError` that names where it came from, the option and the reason.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import platformdirs

from siakdesk.core.protocol import MAX_NAME_CHARS, ROOM_NAME_PATTERN
from siakdesk.core.signaling import ServerEndpoint, normalize_fingerprint

APP_NAME = "SiakDesk"
FILE_NAME = "siakdesk.toml"
REGISTRY_KEY = r"Software\SiakDesk"
DEFAULTS = "default"
COMMAND_LINE = "command line"

_TRUE = {"1", "true", "yes", "ya", "on"}
_FALSE = {"0", "false", "no", "tidak", "off", ""}


class ConfigError(ValueError):
    """A configuration value is wrong; the message says where, which option and why."""

    def __init__(self, source: str, option: str | None, reason: str) -> None:
        where = f"{source}: option {option!r}" if option else source
        super().__init__(f"{where}: {reason}")
        self.source = source
        self.option = option
        self.reason = reason


def _check_server_url(value: str) -> str | None:
    if not value:
        return None
    try:
        ServerEndpoint(value)
    except ValueError as exc:
        return str(exc)
    return None


def _check_name(value: str) -> str | None:
    return f"longer than {MAX_NAME_CHARS} characters" if len(value) > MAX_NAME_CHARS else None


def _check_room(value: str) -> str | None:
    if re.match(ROOM_NAME_PATTERN, value):
        return None
    return "a room name is 1-64 letters, digits, '.', '_' or '-'"


def _check_fingerprint(value: str) -> str | None:
    if not value:
        return None
    try:
        normalize_fingerprint(value)
    except ValueError as exc:
        return str(exc)
    return None


@dataclasses.dataclass(frozen=True)
class Option:
    name: str
    kind: type
    default: Any
    description: str
    choices: tuple[str, ...] = ()
    #: never printed in full (--print-config shows whether it is set)
    secret: bool = False
    check: Callable[[Any], str | None] | None = None

    def __post_init__(self) -> None:
        if self.kind not in (str, bool, int):
            raise TypeError(f"option {self.name}: unsupported type {self.kind}")
        if not isinstance(self.default, self.kind):
            raise TypeError(f"option {self.name}: default is not a {self.kind.__name__}")

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def parse(self, value: Any, from_text: bool) -> Any:
        """The checked value; ``from_text``: it came as a string (registry, command line).

        Raises ``ValueError`` with the reason.
        """
        if from_text and isinstance(value, str) and self.kind is not str:
            value = self._from_text(value)
        if (self.kind is int and isinstance(value, bool)) or not isinstance(value, self.kind):
            raise ValueError(f"must be a {self.kind.__name__}, not {type(value).__name__}")
        if self.choices and value not in self.choices:
            raise ValueError(f"must be one of {', '.join(self.choices)}, not {value!r}")
        if self.check is not None:
            reason = self.check(value)
            if reason:
                raise ValueError(reason)
        return value

    def _from_text(self, text: str) -> Any:
        lowered = text.strip().lower()
        if self.kind is bool:
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise ValueError(f"must be true or false (1 or 0), not {text!r}")
        try:
            return int(lowered)
        except ValueError:
            raise ValueError(f"must be a whole number, not {text!r}") from None

    def show(self, value: Any) -> str:
        if self.secret:
            return "(set)" if value else "(not set)"
        if self.kind is bool:
            return "true" if value else "false"
        return repr(value) if self.kind is str else str(value)


SCHEMA: tuple[Option, ...] = (
    Option(
        "server_url",
        str,
        "",
        "Address of the meeting server, e.g. https://rapat.siakkab.go.id:8443. "
        "Empty: the app asks on its join screen.",
        check=_check_server_url,
    ),
    Option("room", str, "siak", "Meeting room to join.", check=_check_room),
    Option(
        "office",
        str,
        "",
        "Office shown beside the name, e.g. Kecamatan Kandis.",
        check=_check_name,
    ),
    Option(
        "display_name",
        str,
        "",
        "Name shown to the others; empty: the office's name.",
        check=_check_name,
    ),
    Option("passcode", str, "", "Passcode of the room, if it has one.", secret=True),
    Option(
        "host_passcode",
        str,
        "",
        "Host passcode of the room: join as the host who runs the agenda.",
        secret=True,
    ),
    Option("display", int, 0, "Screen the room mode opens on (0: the primary, 1: the next)."),
    Option("camera", int, 0, "Camera to use (OpenCV index; 0: the first)."),
    Option("microphone", str, "", "Microphone to use, by name; empty: the system's default."),
    Option("speaker", str, "", "Speaker to use, by name; empty: the system's default."),
    Option(
        "data_saver",
        bool,
        False,
        "Hemat data (data saver): send video no larger than 320x180 whatever the link allows.",
    ),
    Option(
        "room_mode",
        bool,
        False,
        "Meeting-room PC: full screen on the chosen display, join at start, large type.",
    ),
    Option(
        "echo_cancellation",
        bool,
        True,
        "Echo cancellation, noise suppression and automatic gain on the microphone.",
    ),
    Option(
        "language", str, "id", "Language of the app: id (Bahasa Indonesia) or en.", ("id", "en")
    ),
    Option(
        "tls_fingerprint",
        str,
        "",
        "SHA-256 fingerprint of a self-signed server certificate to trust (AB:CD:...).",
        check=_check_fingerprint,
    ),
    Option("ca_file", str, "", "PEM file of certificate authorities to trust for the server."),
    Option(
        "log_level",
        str,
        "WARNING",
        "How much the app logs: DEBUG, INFO, WARNING or ERROR.",
        ("DEBUG", "INFO", "WARNING", "ERROR"),
    ),
)
OPTIONS: dict[str, Option] = {option.name: option for option in SCHEMA}

#: The MSI's public properties and the options they set (installer/siakdesk.wxs).
MSI_PROPERTIES: dict[str, str] = {
    "SERVER_URL": "server_url",
    "ROOM": "room",
    "OFFICE": "office",
    "DISPLAY_NAME": "display_name",
    "PASSCODE": "passcode",
    "ROOM_MODE": "room_mode",
}


@dataclasses.dataclass(frozen=True)
class Layer:
    """Values from one source; ``text``: they came as strings (registry, command line)."""

    source: str
    values: Mapping[str, Any]
    text: bool = False


@dataclasses.dataclass(frozen=True)
class Settings:
    """The effective configuration, and where each value came from."""

    values: Mapping[str, Any]
    sources: Mapping[str, str]

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def source(self, name: str) -> str:
        return self.sources[name]


def resolve(layers: Iterable[Layer]) -> Settings:
    """Apply ``layers`` over the defaults, checking every value."""
    values = {option.name: option.default for option in SCHEMA}
    sources = dict.fromkeys(values, DEFAULTS)
    for layer in layers:
        for name, raw in layer.values.items():
            option = OPTIONS.get(name)
            if option is None:
                known = ", ".join(OPTIONS)
                raise ConfigError(layer.source, name, f"unknown option (known: {known})")
            if layer.text and raw == "":
                continue  # an MSI property left empty: not set
            try:
                values[name] = option.parse(raw, layer.text)
            except ValueError as exc:
                raise ConfigError(layer.source, name, str(exc)) from None
            sources[name] = layer.source
    return Settings(values=values, sources=sources)


def machine_config_path() -> Path:
    override = os.environ.get("SIAKDESK_MACHINE_CONFIG")
    if override:
        return Path(override)
    if sys.platform == "win32":
        base = os.environ.get("PROGRAMDATA", r"C:\ProgramData")
        return Path(base) / APP_NAME / FILE_NAME
    return Path("/etc/siakdesk") / FILE_NAME


def user_config_path() -> Path:
    override = os.environ.get("SIAKDESK_USER_CONFIG")
    if override:
        return Path(override)
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / FILE_NAME


def read_toml(path: Path) -> Layer | None:
    """The layer in the TOML file at ``path``; ``None`` when there is no such file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(str(path), None, f"cannot read the file: {exc.strerror}") from None
    try:
        parsed = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(str(path), None, "the file is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), None, f"not valid TOML: {exc}") from None
    return Layer(source=str(path), values=parsed)


def read_registry(
    root: int | None = None, key: str = REGISTRY_KEY, reader: Callable[..., Any] | None = None
) -> Layer | None:
    """The values the MSI wrote under ``HKLM\\Software\\SiakDesk``; ``None`` off Windows.

    Value names are option names (``server_url``...), all stored as strings.
    """
    if sys.platform != "win32":
        return None
    import winreg  # type: ignore[import-not-found, unused-ignore]

    root = winreg.HKEY_LOCAL_MACHINE if root is None else root
    values: dict[str, Any] = {}
    try:
        handle = winreg.OpenKey(root, key, 0, winreg.KEY_READ | winreg.KEY_WOW64_64KEY)
    except OSError:
        return None
    with handle:
        index = 0
        while True:
            try:
                name, value, _type = winreg.EnumValue(handle, index)
            except OSError:
                break
            index += 1
            if name in OPTIONS:
                values[name] = str(value)
    root_name = "HKLM" if root == winreg.HKEY_LOCAL_MACHINE else "HKCU"
    return Layer(source=f"registry {root_name}\\{key}", values=values, text=True)


def load(command_line: Mapping[str, Any] | None = None) -> Settings:
    """Every layer of this machine and user, then ``command_line`` (already typed)."""
    layers: list[Layer] = []
    for layer in (read_registry(), read_toml(machine_config_path()), read_toml(user_config_path())):
        if layer is not None:
            layers.append(layer)
    if command_line:
        layers.append(Layer(COMMAND_LINE, command_line))
    return resolve(layers)


def locations() -> list[str]:
    """Where this machine's layers are looked for, each marked found or absent."""
    found = []
    if sys.platform == "win32":
        present = read_registry() is not None
        found.append(f"registry HKLM\\{REGISTRY_KEY} ({'found' if present else 'absent'})")
    for path in (machine_config_path(), user_config_path()):
        found.append(f"{path} ({'found' if path.is_file() else 'absent'})")
    return found


def add_arguments(parser: Any) -> None:
    """Add one command-line flag per option to an ``argparse`` parser (default: not given)."""
    import argparse

    group = parser.add_argument_group("configuration (overrides the files)")
    for option in SCHEMA:
        if option.kind is bool:
            group.add_argument(
                option.flag,
                dest=f"config_{option.name}",
                action=argparse.BooleanOptionalAction,
                default=None,
                help=option.description,
            )
        else:
            group.add_argument(
                option.flag,
                dest=f"config_{option.name}",
                type=option.kind,
                default=None,
                metavar=option.name.upper(),
                choices=option.choices or None,
                help=option.description,
            )


def command_line_values(args: Any) -> dict[str, Any]:
    """The options given on the command line, from :func:`add_arguments`' flags."""
    given = {}
    for option in SCHEMA:
        value = getattr(args, f"config_{option.name}", None)
        if value is not None:
            given[option.name] = value
    return given


def format_settings(settings: Settings, layers_read: Sequence[str] = ()) -> str:
    """A table of every option: effective value and where it came from."""
    width = max(len(option.name) for option in SCHEMA)
    lines = [f"{'option':<{width}}  {'value':<40}  source"]
    for option in SCHEMA:
        shown = option.show(settings[option.name])
        lines.append(f"{option.name:<{width}}  {shown:<40}  {settings.source(option.name)}")
    if layers_read:
        lines.append("")
        lines.append("looked for: " + ", ".join(layers_read))
    return "\n".join(lines)


def default_toml() -> str:
    """A commented file with every option at its default: a template for IT."""
    lines = ["# SiakDesk configuration. Every option, at its default; remove the # to set one.", ""]
    for option in SCHEMA:
        lines.append(f"# {option.description}")
        if option.kind is bool:
            rendered = "true" if option.default else "false"
        elif option.kind is int:
            rendered = str(option.default)
        else:
            rendered = '"' + str(option.default).replace("\\", "\\\\").replace('"', '\\"') + '"'
        lines.append(f"# {option.name} = {rendered}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    # a JSON string is a valid TOML basic string
    import json

    return json.dumps(str(value), ensure_ascii=False)


def save_user_values(values: Mapping[str, Any], path: Path | None = None) -> Path:
    """Remember ``values`` in the user's file (what the join screen typed), keeping the rest."""
    path = path or user_config_path()
    current = read_toml(path)
    merged = dict(current.values) if current else {}
    for name, value in values.items():
        option = OPTIONS[name]
        merged[name] = option.parse(value, from_text=False)
    resolve([Layer(str(path), merged)])  # never write what could not be read back
    lines = ["# Written by SiakDesk's join screen; edit freely."]
    lines += [f"{name} = {_toml_value(value)}" for name, value in merged.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
