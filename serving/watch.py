"""What the core may know about the HTTP request it is working for: when it began and whether its
client is still there. The middleware sets it; `PredictionService` checks it between chunks of
model work, so a request nobody waits for anymore stops using the model."""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass
class RequestWatch:
    """`started` is event-loop time; `gone` is set when the client closes the connection."""

    started: float
    gone: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def client_gone(self) -> bool:
        return self.gone.is_set()


request_watch_var: ContextVar[RequestWatch | None] = ContextVar("request_watch", default=None)


def current_watch() -> RequestWatch:
    """The watch of the request being answered, or a fresh one (calls made without HTTP)."""
    watch = request_watch_var.get()
    return watch if watch is not None else RequestWatch(asyncio.get_running_loop().time())
