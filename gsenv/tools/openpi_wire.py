"""openpi's policy-server wire format, and a client connection that speaks it.

The format is openpi-client's (``openpi_client.msgpack_numpy`` and ``websocket_client_policy``, 0.1.2):

- a websocket; right after the handshake the server sends one binary frame, its metadata (a msgpack'd dict);
- each request is one binary frame, the msgpack'd observation dict; each answer one binary frame, a
  msgpack'd dict, or a text frame carrying the server's error message;
- numpy arrays travel as ``{b"__ndarray__": True, b"data": raw bytes, b"dtype": dtype.str, b"shape": shape}``,
  numpy scalars as ``{b"__npgeneric__": True, b"data": item, b"dtype": dtype.str}``; object, void and
  complex arrays are refused.

`packb` / `unpackb` produce and read exactly openpi-client's bytes (tests/test_openpi_wire.py compares
them byte for byte where openpi-client is installed). `connect` uses openpi-client's own
``WebsocketClientPolicy`` when ``openpi_client`` imports (it pins numpy < 2, so it often cannot be
installed beside gsenv), else the same protocol over ``websockets`` (sync client) + ``msgpack``
(``pip install gsenv[eval]``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

NDARRAY_KEY, NPGENERIC_KEY = b"__ndarray__", b"__npgeneric__"
INSTALL_HINT = "pip install 'gsenv[eval]' (websockets + msgpack) or openpi-client"


class OpenpiError(RuntimeError):
    """The server could not be reached, failed, or answered something that is not openpi's format."""


def pack_array(obj: Any) -> Any:
    """msgpack's `default` hook: numpy arrays and scalars -> openpi's tagged dicts."""
    if isinstance(obj, (np.ndarray, np.generic)) and obj.dtype.kind in ("V", "O", "c"):
        raise ValueError(f"Unsupported dtype: {obj.dtype}")
    if isinstance(obj, np.ndarray):
        return {NDARRAY_KEY: True, b"data": obj.tobytes(), b"dtype": obj.dtype.str, b"shape": obj.shape}
    if isinstance(obj, np.generic):
        return {NPGENERIC_KEY: True, b"data": obj.item(), b"dtype": obj.dtype.str}
    return obj


def unpack_array(obj: dict) -> Any:
    """msgpack's `object_hook`: openpi's tagged dicts -> numpy arrays (read-only views) and scalars."""
    if NDARRAY_KEY in obj:
        return np.ndarray(buffer=obj[b"data"], dtype=np.dtype(obj[b"dtype"]), shape=obj[b"shape"])
    if NPGENERIC_KEY in obj:
        return np.dtype(obj[b"dtype"]).type(obj[b"data"])
    return obj


def _msgpack():
    try:
        import msgpack
    except ImportError:
        raise OpenpiError(f"openpi's wire format needs msgpack: {INSTALL_HINT}") from None
    return msgpack


def packb(obj: Any) -> bytes:
    """obj (dicts, lists, str, numbers, numpy arrays) -> openpi's msgpack bytes."""
    return _msgpack().packb(obj, default=pack_array)


def unpackb(data: bytes) -> Any:
    """openpi's msgpack bytes -> the object, numpy arrays restored."""
    return _msgpack().unpackb(data, object_hook=unpack_array)


def openpi_client_available() -> bool:
    try:
        import openpi_client.websocket_client_policy  # noqa: F401
    except ImportError:
        return False
    return True


class Connection:
    """One websocket connection to an openpi policy server; answers one observation at a time.

    ``infer(obs) -> dict`` sends one observation and waits for its answer (no timeout of its own: the
    caller waits on a thread; `close()` from another thread ends a blocked infer). `metadata` is what the
    server sent on connect; `kind` says which client speaks: "openpi_client" or "gsenv".
    """

    def __init__(self, uri: str, open_timeout_s: float, use_openpi_client: bool | None = None):
        self.uri = uri
        if use_openpi_client is None:
            use_openpi_client = openpi_client_available()
        self.kind = "openpi_client" if use_openpi_client else "gsenv"
        try:
            if use_openpi_client:
                from openpi_client.websocket_client_policy import WebsocketClientPolicy

                self._client = WebsocketClientPolicy(uri)
                self._ws = self._client._ws  # the client keeps its socket private; close() needs it
                self.metadata = self._client.get_server_metadata()
            else:
                self._client = None
                self._ws = _connect_websocket(uri, open_timeout_s)
                self.metadata = self._decoded(self._ws.recv(timeout=open_timeout_s), "a metadata frame")
        except OpenpiError:
            self.close()
            raise
        except ConnectionRefusedError:
            raise OpenpiError(f"nothing listens at {uri} (connection refused): start the openpi policy server "
                              f"first (openpi: scripts/serve_policy.py) or fix the address") from None
        except TimeoutError:
            self.close()
            raise OpenpiError(f"the openpi policy server at {uri} did not greet within {open_timeout_s:g} s "
                              f"(no websocket handshake or no metadata frame): is it an openpi server?") from None
        except OSError as exc:
            raise OpenpiError(f"cannot reach the openpi policy server at {uri}: {exc}") from None
        except Exception as exc:  # websockets' InvalidHandshake, InvalidURI, msgpack errors: not openpi there
            self.close()
            raise OpenpiError(f"{uri} is not an openpi policy server: its greeting is not openpi's metadata frame "
                              f"({describe(exc)})") from None

    def infer(self, obs: dict) -> dict:
        """obs (str keys; numpy arrays, str, numbers) -> the server's answer dict."""
        try:
            if self._client is not None:
                return self._client.infer(obs)  # it decodes the answer itself
            self._ws.send(packb(obs))
            answer = self._ws.recv()
        except OpenpiError:
            raise
        except Exception as exc:
            if type(exc).__module__.startswith("msgpack"):  # openpi-client could not decode the answer
                raise OpenpiError(f"the openpi policy server at {self.uri} answered with bytes that are not openpi's "
                                  f"msgpack format ({describe(exc)}): is it an openpi policy server?") from None
            raise OpenpiError(f"the openpi policy server at {self.uri} failed: {describe(exc)}") from None
        if isinstance(answer, str):  # openpi servers send their traceback as text
            raise OpenpiError(f"the openpi policy server at {self.uri} failed:\n{answer}")
        return self._decoded(answer, "an answer")

    def _decoded(self, data, what: str) -> Any:
        """unpackb(data), or an OpenpiError naming the server and showing what came."""
        try:
            return unpackb(data)
        except OpenpiError:
            raise
        except Exception as exc:  # msgpack's errors, or a tagged array that does not add up
            head = data[:16] if isinstance(data, (bytes, bytearray)) else data
            size = f"{len(data)} bytes" if isinstance(data, (bytes, bytearray)) else type(data).__name__
            raise OpenpiError(f"the openpi policy server at {self.uri} sent {what} that is not openpi's msgpack format "
                              f"({describe(exc)}; {size} starting {head!r}): is it an openpi policy server?") from None

    def close(self) -> None:
        ws = getattr(self, "_ws", None)
        if ws is not None:
            self._ws = None
            try:
                ws.close()
            except Exception:  # closing a broken connection: nothing more to do
                pass


def describe(exc: BaseException) -> str:
    """"Type: message", or "Type (no message)" for an exception that carries none (msgpack's FormatError)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else f"{type(exc).__name__} (no message)"


def _connect_websocket(uri: str, open_timeout_s: float):
    try:
        from websockets.sync.client import connect
    except ImportError:
        raise OpenpiError(f"talking to an openpi policy server needs websockets: {INSTALL_HINT}") from None
    _msgpack()
    # as openpi-client connects: no compression, no message size limit; a short close handshake
    return connect(uri, compression=None, max_size=None, open_timeout=open_timeout_s, close_timeout=1.0)

