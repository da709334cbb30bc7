"""What the core may know about the HTTP request it is working for: when it began and whether its
client is still there. The middleware sets it; `PredictionService` checks it between chunks of
model work, so a request nobody waits for anymore stops using the model."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass
class RequestWatch:
    """`started` is event-loop time; `gone` is set when the client closes the connection, once
    someone watches for that: `begin_watching` starts the watcher, at the first question."""

    started: float
    gone: asyncio.Event = field(default_factory=asyncio.Event)
    begin_watching: Callable[[], None] | None = None

    def watch(self) -> None:
        """Start watching for the client to leave (once; later calls do nothing)."""
        begin, self.begin_watching = self.begin_watching, None
        if begin is not None:
            begin()

    async def client_gone(self) -> bool:
        """Whether the client has closed the connection. The first question starts the watcher
        and lets it run once, so a close that already happened is seen: a request answered in
        one model call never pays for a watcher."""
        if self.begin_watching is not None:
            self.watch()
            await asyncio.sleep(0)
        return self.gone.is_set()


request_watch_var: ContextVar[RequestWatch | None] = ContextVar("request_watch", default=None)


def current_watch() -> RequestWatch:
    """The watch of the request being answered, or a fresh one (calls made without HTTP)."""
    watch = request_watch_var.get()
    return watch if watch is not None else RequestWatch(asyncio.get_running_loop().time())
