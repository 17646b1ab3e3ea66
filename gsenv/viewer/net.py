"""Where the viewer listens: loopback by default; anything else is said out loud."""
from __future__ import annotations

import ipaddress
import logging
import socket
import threading

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "RESOLVE_TIMEOUT_S", "is_loopback", "checked_address",
           "check_can_listen", "warn_if_exposed"]

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
RESOLVE_TIMEOUT_S = 10.0  # a host name that takes longer to resolve is refused


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: only "localhost" is known to stay on this machine
        return False


def checked_address(host, port) -> tuple[str, int]:
    """(host, port) as given, or a ValueError saying what to pass: also when this machine cannot listen
    on host (check_can_listen)."""
    if not isinstance(host, str) or not host:
        raise ValueError(f"host must be a non-empty string such as {DEFAULT_HOST!r}, got {host!r}")
    if not (isinstance(port, int) and not isinstance(port, bool) and 0 <= port <= 65535):
        raise ValueError(f"port must be an int in [0, 65535] (0: any free port), got {port!r}")
    check_can_listen(host)
    return host, port


def check_can_listen(host: str, timeout_s: float = RESOLVE_TIMEOUT_S) -> None:
    """ValueError unless this machine can listen on `host`: it resolves within timeout_s, and each of
    its addresses can be bound (on a free port), as the viewer's server binds them all.

    Checked before the server starts because viser, on an address it cannot bind, tries 1000 ports
    one after another and then waits forever for a server that never started."""
    found: dict = {}

    def resolve() -> None:
        try:
            found["infos"] = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        except OSError as exc:
            found["error"] = exc

    hint = f"give an address of this machine: {DEFAULT_HOST} (this machine only) or 0.0.0.0 (all its interfaces)"
    resolver = threading.Thread(target=resolve, name="gsenv-viewer-resolve", daemon=True)  # getaddrinfo has no timeout
    resolver.start()
    resolver.join(timeout_s)
    if resolver.is_alive():
        raise ValueError(f"cannot listen on host {host!r}: it did not resolve within {timeout_s:g} s; {hint}")
    if "error" in found:
        exc = found["error"]
        raise ValueError(f"cannot listen on host {host!r}: it does not resolve ({exc.strerror or exc}); {hint}")
    for family, kind, proto, _, address in found["infos"]:
        try:
            sock = socket.socket(family, kind, proto)
        except OSError:  # an address family this machine has switched off: the server skips it too
            continue
        with sock:
            try:
                sock.bind(address)  # port 0: the address is what is checked (a busy port the viewer moves off)
            except OSError as exc:
                raise ValueError(f"cannot listen on host {host!r} ({address[0]}): {exc.strerror or exc}; "
                                 f"{hint}") from None


def warn_if_exposed(host: str) -> None:
    """A warning when `host` lets other machines in."""
    if not is_loopback(host):
        logger.warning("the viewer listens on %s: anyone who can reach this machine there can see the scene "
                       "and drive the robot (it has no login); use --host 127.0.0.1 to keep it local", host)
