"""A tiny SMTP server for the tests (stdlib only): accepts every message and keeps it in memory.

Speaks what smtplib needs: EHLO/HELO, AUTH PLAIN, MAIL, RCPT, DATA (dot-unstuffed), RSET, NOOP,
QUIT. No TLS: the app is configured with SMTP_SECURITY=none against it. Runs in a thread on
127.0.0.1:<free port>; `wait_for(n)` waits (bounded) for n messages.
"""

from __future__ import annotations

import base64
import email
import email.policy
import socketserver
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage
    login: tuple[str, str] | None
    at: float = field(default_factory=time.monotonic)
    wall: float = field(default_factory=time.time)  # to compare with the other processes' clocks


class SmtpSink:
    def __init__(self) -> None:
        self.messages: list[Received] = []
        self._cond = threading.Condition()
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")

            def handle(self) -> None:  # noqa: C901 - one small state machine
                sender, recipients, login = "", [], None
                self.reply("220 sumidero ESMTP")
                while line := self.rfile.readline(65536):
                    command = line.decode("utf-8", "replace").rstrip("\r\n")
                    verb = command.split(" ", 1)[0].upper()
                    if verb in ("EHLO", "HELO"):
                        self.reply("250-sumidero" if verb == "EHLO" else "250 sumidero")
                        if verb == "EHLO":
                            self.reply("250-AUTH PLAIN")
                            self.reply("250 8BITMIME")
                    elif verb == "AUTH":
                        parts = command.split()
                        raw = parts[2] if len(parts) > 2 else ""
                        _, user, password = base64.b64decode(raw).decode().split("\0")
                        login = (user, password)
                        self.reply("235 2.7.0 ok")
                    elif verb == "MAIL":
                        sender, recipients = command.split(":", 1)[1].split()[0].strip("<>"), []
                        self.reply("250 ok")
                    elif verb == "RCPT":
                        recipients.append(command.split(":", 1)[1].strip().strip("<>"))
                        self.reply("250 ok")
                    elif verb == "DATA":
                        self.reply("354 end with .")
                        data = bytearray()
                        while (chunk := self.rfile.readline(1 << 20)) not in (b".\r\n", b""):
                            data += chunk[1:] if chunk.startswith(b"..") else chunk
                        parsed = email.message_from_bytes(bytes(data), policy=email.policy.default)
                        with sink._cond:
                            sink.messages.append(Received(sender, recipients, parsed, login))  # type: ignore[arg-type]
                            sink._cond.notify_all()
                        self.reply("250 queued")
                    elif verb in ("RSET", "NOOP"):
                        self.reply("250 ok")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("502 not implemented")

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True, name="smtp-sink")

    def __enter__(self) -> SmtpSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.messages) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"the SMTP sink got {len(self.messages)} message(s), expected {count}")
                self._cond.wait(remaining)
            return list(self.messages)
