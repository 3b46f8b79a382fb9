"""SiakDesk: conferencing for the sub-district offices of Siak regency."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("siakdesk")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"
