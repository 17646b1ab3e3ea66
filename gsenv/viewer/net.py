"""Where the viewer listens: loopback by default; anything else is said out loud."""
from __future__ import annotations

import ipaddress
import logging

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: only "localhost" is known to stay on this machine
        return False


def checked_address(host, port) -> tuple[str, int]:
    """(host, port) as given, or a ValueError saying what to pass."""
    if not isinstance(host, str) or not host:
        raise ValueError(f"host must be a non-empty string such as {DEFAULT_HOST!r}, got {host!r}")
    if not (isinstance(port, int) and not isinstance(port, bool) and 0 <= port <= 65535):
        raise ValueError(f"port must be an int in [0, 65535] (0: any free port), got {port!r}")
    return host, port


def warn_if_exposed(host: str) -> None:
    """A warning when `host` lets other machines in."""
    if not is_loopback(host):
        logger.warning("the viewer listens on %s: anyone who can reach this machine there can see the scene "
                       "and drive the robot (it has no login); use --host 127.0.0.1 to keep it local", host)
