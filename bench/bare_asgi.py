"""A minimal ASGI app for `bench_http_ceiling`: reads the request body and answers a fixed JSON
prediction of the size this server answers, under uvicorn with the same HTTP stack (httptools,
uvloop). Its rate is the HTTP server's own ceiling on this machine. A benchmark tool only."""

from __future__ import annotations

import json
from typing import Any

BODY = json.dumps(
    {
        "request_id": "0" * 32,
        "model_name": "product-classifier",
        "model_version": "1",
        "predictions": [
            {
                "label": "games",
                "probability": 0.73,
                "top_k": [
                    {"label": "games", "probability": 0.73},
                    {"label": "x11", "probability": 0.12},
                    {"label": "misc", "probability": 0.05},
                ],
            }
        ],
    }
).encode()
HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    message = await receive()
    while message.get("more_body"):
        message = await receive()
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
