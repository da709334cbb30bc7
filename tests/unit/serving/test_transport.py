"""Coalesced writes: what is written in one pass of the event loop leaves in one write, nothing
is lost or reordered, and uvicorn serves over it as before (a real server on loopback)."""

from __future__ import annotations

import asyncio
import http.client
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from serving.transport import CoalescingHttpToolsProtocol, CoalescingTransport
from tests.support import free_port


class RecordingTransport(asyncio.Transport):
    """The wrapped transport: records the writes and the close/abort calls it gets."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Any] = []
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.calls.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.calls.append("close")
        self.closing = True

    def abort(self) -> None:
        self.calls.append("abort")
        self.closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1)}.get(name, default)


def run_in_loop(steps: Any) -> RecordingTransport:
    """Run `steps(transport, coalescing)` as a coroutine, then let the loop run its callbacks."""
    recorded = RecordingTransport()

    async def main() -> None:
        await steps(recorded, CoalescingTransport(recorded, asyncio.get_running_loop()))
        await asyncio.sleep(0)

    asyncio.run(main())
    return recorded


def test_writes_of_one_loop_pass_leave_in_one_write_in_order() -> None:
    async def steps(_: RecordingTransport, transport: CoalescingTransport) -> None:
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.write(b"body")

    assert run_in_loop(steps).calls == [b"HTTP/1.1 200 OK\r\n\r\nbody"]


def test_writes_of_later_passes_leave_separately_as_a_stream_does() -> None:
    async def steps(recorded: RecordingTransport, transport: CoalescingTransport) -> None:
        transport.write(b"head")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert recorded.calls == [b"head"]  # sent before the next chunk is produced
        transport.writelines([b"chunk", b"s"])

    assert run_in_loop(steps).calls == [b"head", b"chunks"]


def test_close_sends_what_was_written_first_and_abort_drops_it() -> None:
    async def closing(_: RecordingTransport, transport: CoalescingTransport) -> None:
        transport.write(b"bye")
        transport.close()

    async def aborting(_: RecordingTransport, transport: CoalescingTransport) -> None:
        transport.write(b"lost")
        transport.abort()

    assert run_in_loop(closing).calls == [b"bye", "close"]
    assert run_in_loop(aborting).calls == ["abort"]


def test_nothing_is_written_to_a_closing_connection() -> None:
    async def steps(recorded: RecordingTransport, transport: CoalescingTransport) -> None:
        transport.write(b"late")
        recorded.closing = True  # the peer went away before the loop's next pass

    assert run_in_loop(steps).calls == []


def test_other_calls_reach_the_wrapped_transport() -> None:
    async def steps(recorded: RecordingTransport, transport: CoalescingTransport) -> None:
        assert transport.get_extra_info("peername") == ("127.0.0.1", 1)
        assert transport.is_closing() is False

    run_in_loop(steps)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A plain answer, or a body streamed in three chunks over several loop passes."""
    if scope["type"] != "http":
        return
    streamed = scope["path"] == "/stream"
    headers = [(b"content-type", b"text/plain")]
    if not streamed:
        headers.append((b"content-length", b"5"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if not streamed:
        await send({"type": "http.response.body", "body": b"hello"})
        return
    for chunk in (b"one ", b"two ", b"three"):
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await asyncio.sleep(0.01)
    await send({"type": "http.response.body", "body": b""})


@pytest.fixture
def server_port() -> Iterator[int]:
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http=CoalescingHttpToolsProtocol, log_config=None
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        thread.join(0.01)
    yield port
    server.should_exit = True
    thread.join(10)


def test_uvicorn_serves_kept_alive_streamed_and_closed_connections(server_port: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server_port, timeout=10)
    for _ in range(3):  # one kept-alive connection
        connection.request("GET", "/")
        response = connection.getresponse()
        assert (response.status, response.read()) == (200, b"hello")
    connection.request("GET", "/stream")
    response = connection.getresponse()
    assert response.getheader("transfer-encoding") == "chunked"
    assert response.read() == b"one two three"
    connection.request("GET", "/", headers={"Connection": "close"})
    response = connection.getresponse()
    assert (response.read(), response.getheader("connection")) == (b"hello", "close")
    connection.close()
