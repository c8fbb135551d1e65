"""Running the emulator: `serve()` for `nfactory emulator`, `EmulatorServer` for tests."""

from __future__ import annotations

import os
import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette

from .app import DEFAULT_TOKEN, create_app
from .store import Workspace
from .traffic import EmulatorConfig


def _token(token: str | None) -> str:
    return token or os.environ.get("NOTION_TOKEN") or DEFAULT_TOKEN


def serve(
    host: str = "127.0.0.1",
    port: int = 8787,
    token: str | None = None,
    config: EmulatorConfig | None = None,
) -> None:
    """Run the emulator in the foreground until interrupted."""
    chosen = _token(token)
    app = create_app(chosen, config=config)
    print(f"Notion emulator: base URL http://{host}:{port}", flush=True)
    print(f"Notion emulator: integration token {chosen}", flush=True)
    print(f"Notion emulator: root page {app.state.workspace.root_id}", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class EmulatorServer:
    """The emulator on a free port in a background thread, for tests.

    with EmulatorServer() as emu:
        client = notion_client.Client(auth=emu.token, base_url=emu.base_url)
    """

    def __init__(
        self,
        token: str = "secret_test_token",
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        config: EmulatorConfig | None = None,
        **app_options: Any,
    ) -> None:
        self.token = token
        self.host = host
        self.port = port or free_port(host)
        self.app: Starlette = create_app(token, config=config, **app_options)
        self._server = uvicorn.Server(
            uvicorn.Config(self.app, host=host, port=self.port, log_level="warning", lifespan="on")
        )
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def workspace(self) -> Workspace:
        return self.app.state.workspace

    def start(self) -> EmulatorServer:
        self._thread = threading.Thread(
            target=self._server.run, name="notion-emulator", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the Notion emulator did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


if __name__ == "__main__":
    serve()
