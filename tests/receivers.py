"""Real servers on localhost for the notifications to reach: an HTTP receiver (an SMS gateway, a
webhook subscriber) and an SMTP server (aiosmtpd)."""

from __future__ import annotations

import email
import json
import socket
import threading
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class Call:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers `failing_status` (500) to the first `failures` calls, then 200; `hold` makes calls
    wait until it is set (a receiver that is slow to answer)."""

    failures: int = 0
    failing_status: int = 500
    calls: list[Call] = field(default_factory=list)
    hold: threading.Event | None = None

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.calls.append(Call(self.path, dict(self.headers.items()), body))
                if receiver.hold is not None:
                    receiver.hold.wait(30)
                failing = len(receiver.calls) <= receiver.failures
                self.send_response(receiver.failing_status if failing else 200)
                self.end_headers()
                self.wfile.write(b"down" if failing else b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def accepted(self) -> list[Call]:
        """The calls answered 200, one per Idempotency-Key (a repeat is dropped)."""
        seen: dict[str, Call] = {}
        for number, call in enumerate(self.calls, 1):
            if number > self.failures:
                seen.setdefault(call.headers["Idempotency-Key"], call)
        return list(seen.values())

    def close(self) -> None:
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()


class _Collect:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        mail = email.message_from_bytes(envelope.original_content)
        self.messages.append((list(envelope.rcpt_tos), mail))
        return "250 OK"


class SmtpServer:
    """aiosmtpd on a free port, keeping what it receives."""

    def __init__(self) -> None:
        self._collect = _Collect()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(self._collect, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    @property
    def messages(self) -> list[tuple[list[str], Message]]:
        return self._collect.messages

    def close(self) -> None:
        self.controller.stop()
