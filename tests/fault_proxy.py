"""A fault-injecting HTTP proxy for tests: it forwards each request to a real server on loopback
and spoils the first N requests of a kind, chosen by method and a piece of the path.

- "cut": the request reaches the server, which does the work and answers; the client gets the
  status line and headers and half of the body, then the connection closes (an `IncompleteRead`,
  as from a server restarting mid-response or a proxy timing out); an answer without a body is
  not sent at all (the connection closes: "remote end closed connection without response").
- "503": the proxy answers 503 itself without forwarding (a server restarting behind a gateway).

Every connection carries one request (`Connection: close` both ways), so the proxy never has to
follow keep-alive framing. It records every request, so a test can check what the client sent.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field

_TIMEOUT = 60.0


@dataclass
class Fault:
    method: str
    path_part: str
    times: int
    kind: str = "cut"
    spoiled: int = 0

    def takes(self, method: str, path: str) -> bool:
        return self.spoiled < self.times and method == self.method and self.path_part in path


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str
    body: bytes
    fault: str | None


@dataclass
class FaultProxy:
    """`with FaultProxy(upstream_port, [Fault(...)]) as proxy:` then use `proxy.uri`."""

    upstream_port: int
    faults: list[Fault]
    exchanges: list[Exchange] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.uri = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FaultProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._listener.close()

    def requests_to(self, method: str, path_part: str) -> list[Exchange]:
        with self._lock:
            return [e for e in self.exchanges if e.method == method and path_part in e.path]

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            client.settimeout(_TIMEOUT)
            request = read_request(client)
            if request is None:
                return
            head, body = request
            method, path = head.split(b" ", 2)[:2]
            fault = self._choose(method.decode(), path.decode())
            with self._lock:
                self.exchanges.append(Exchange(method.decode(), path.decode(), body, fault))
            if fault == "503":
                message = b"restarting"
                client.sendall(status_response(503, "Service Unavailable", message))
                return
            answer = self._forward(with_connection_close(head) + body)
            client.sendall(cut_in_half(answer) if fault == "cut" else close_after(answer))

    def _choose(self, method: str, path: str) -> str | None:
        with self._lock:
            for fault in self.faults:
                if fault.takes(method, path):
                    fault.spoiled += 1
                    return fault.kind
        return None

    def _forward(self, request: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", self.upstream_port), _TIMEOUT) as upstream:
            upstream.sendall(request)
            chunks = []
            while chunk := upstream.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)


def read_request(client: socket.socket) -> tuple[bytes, bytes] | None:
    """The request's head (through the blank line) and its body, or None if the client left."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = client.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    headers = header_map(head)
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        while not body.endswith(b"0\r\n\r\n"):
            body += receive(client)
    else:
        length = int(headers.get(b"content-length", b"0"))
        while len(body) < length:
            body += receive(client)
    return head + b"\r\n\r\n", body


def receive(client: socket.socket) -> bytes:
    chunk = client.recv(65536)
    if not chunk:
        raise ConnectionError("the client closed the connection mid-request")
    return chunk


def header_map(head: bytes) -> dict[bytes, bytes]:
    lines = head.split(b"\r\n")[1:]
    pairs = (line.split(b":", 1) for line in lines if b":" in line)
    return {name.strip().lower(): value.strip() for name, value in pairs}


def with_connection_close(head: bytes) -> bytes:
    """The head with its Connection and Keep-Alive headers replaced by `Connection: close`."""
    lines = head.rstrip(b"\r\n").split(b"\r\n")
    kept = [
        line
        for line in lines
        if not line.lower().startswith((b"connection:", b"keep-alive:", b"proxy-connection:"))
    ]
    return b"\r\n".join([*kept, b"Connection: close"]) + b"\r\n\r\n"


def close_after(answer: bytes) -> bytes:
    head, _, body = answer.partition(b"\r\n\r\n")
    return with_connection_close(head) + body


def cut_in_half(answer: bytes) -> bytes:
    """The answer's head and half its body; with no body, nothing (the connection just closes)."""
    head, _, body = answer.partition(b"\r\n\r\n")
    if not body:
        return b""
    return with_connection_close(head) + body[: len(body) // 2]


def status_response(status: int, reason: str, body: bytes) -> bytes:
    head = f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\n"
    head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    return head.encode() + body
