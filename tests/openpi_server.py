"""A real websocket policy server on 127.0.0.1 that behaves as openpi's WebsocketPolicyServer
(openpi/serving/websocket_policy_server.py): metadata frame on connect, one msgpack'd answer per
msgpack'd observation (with openpi's "server_timing" entry), a policy exception sent as a text frame
(the traceback) before the connection is closed. Encoding: gsenv.tools.openpi_wire, which
tests/test_openpi_wire.py checks byte for byte against openpi-client's."""
from __future__ import annotations

import threading
import time
import traceback

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import serve

from gsenv.tools.openpi_wire import packb, unpackb

NEVER = object()  # a policy returning this never answers (the server keeps reading, silent)


class Raw(bytes):
    """Bytes sent as they are (not msgpack'd): an answer from infer, or the metadata frame."""


class OpenpiTestServer:
    """with OpenpiTestServer(infer) as server: ... server.uri ...; infer(obs: dict) -> answer dict (or NEVER,
    or Raw bytes); metadata: a dict, or Raw bytes."""

    def __init__(self, infer, metadata: dict | None = None):
        self.infer = infer
        self.metadata = metadata if metadata is not None else {"policy": "gsenv-test", "action_horizon": 1}
        self.requests = 0
        self.connections = 0
        self._lock = threading.Lock()
        self._open: set = set()
        self._server = serve(self._handler, "127.0.0.1", 0, compression=None, max_size=None)
        self.port = self._server.socket.getsockname()[1]
        self.uri = f"ws://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _handler(self, ws) -> None:
        with self._lock:
            self.connections += 1
            self._open.add(ws)
        try:
            ws.send(self.metadata if isinstance(self.metadata, Raw) else packb(self.metadata))
            for message in ws:
                obs = unpackb(message)
                with self._lock:
                    self.requests += 1
                t0 = time.monotonic()
                try:
                    answer = self.infer(obs)
                except Exception:
                    ws.send(traceback.format_exc())
                    ws.close(code=1011, reason="Internal server error. Traceback included in previous frame.")
                    return
                if answer is NEVER:
                    continue
                if isinstance(answer, Raw):
                    ws.send(bytes(answer))
                    continue
                ws.send(packb({**answer, "server_timing": {"infer_ms": 1000 * (time.monotonic() - t0)}}))
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                self._open.discard(ws)

    def close(self) -> None:
        self._server.shutdown()
        with self._lock:
            live = list(self._open)
        for ws in live:  # a silent handler ends when its connection does
            ws.close()

    def __enter__(self) -> OpenpiTestServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
