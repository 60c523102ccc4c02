"""A fake image provider for the peer benchmarks: a raw ASGI app on 127.0.0.1, nothing else.

Speaks just enough of two wire protocols for a gateway to call it and parse the reply:

- OpenAI ``POST /v1/images/edits`` (multipart) and ``POST /v1/images/generations`` (JSON):
  ``{"data": [{"b64_json": ...}], "usage": ...}``;
- Gemini ``POST /v1beta/models/{model}:generateContent`` (JSON): one candidate with a text part
  and an ``inlineData`` PNG part, and ``usageMetadata``.

Every reply carries the same real PNG (a solid square, ``--side`` px) as base64, built once.
The request body is read to the end and dropped: the fake does as little work as it can, so
what a benchmark measures is the gateway in front of it. ``GET /health`` answers ``{"ok":
true}``; ``GET /_stats`` counts the requests per route.

    uv run python benchmarks/peer_upstream.py --port 18080 [--side 64]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import struct
import time
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def png(side: int, *, noise: bytes | None = None) -> bytes:
    """An RGB PNG, ``side`` x ``side``: solid red, or the given noise (``side * side * 3`` bytes,
    which makes it incompressible: about that many bytes on disk)."""
    pixels = noise if noise is not None else bytes((200, 40, 50)) * (side * side)
    stride = side * 3
    rows = b"".join(b"\x00" + pixels[y * stride : (y + 1) * stride] for y in range(side))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 6))
        + chunk(b"IEND", b"")
    )


def noise_png(side: int, *, seed: int) -> bytes:
    """An incompressible PNG (deterministic noise from ``seed``): a big upload, real bytes."""
    import random

    return png(side, noise=random.Random(seed).randbytes(side * side * 3))


class FakeUpstream:
    """The ASGI app; ``stats`` counts the requests per ``METHOD path``."""

    def __init__(self, *, side: int = 64, delay: float = 0.0) -> None:
        self.delay = delay
        """Seconds before each image answer, as a real model takes (0: at once)."""
        image = base64.b64encode(png(side)).decode()
        self.stats: Counter[str] = Counter()
        self._openai = json.dumps(
            {
                "created": int(time.time()),
                "output_format": "png",
                "data": [{"b64_json": image}],
                "usage": {
                    "input_tokens": 1100,
                    "output_tokens": 1056,
                    "total_tokens": 2156,
                    "input_tokens_details": {"text_tokens": 20, "image_tokens": 1080},
                },
            }
        ).encode()
        self._gemini = json.dumps(
            {
                "candidates": [
                    {
                        "content": {
                            "role": "model",
                            "parts": [
                                {"text": "Here is the try-on result."},
                                {"inlineData": {"mimeType": "image/png", "data": image}},
                            ],
                        },
                        "finishReason": "STOP",
                        "index": 0,
                    }
                ],
                "usageMetadata": {
                    "promptTokenCount": 540,
                    "candidatesTokenCount": 1290,
                    "totalTokenCount": 1830,
                },
            }
        ).encode()

    def reply(self, method: str, path: str) -> tuple[int, bytes]:
        if path == "/health":
            return 200, b'{"ok":true}'
        if path == "/_stats":
            return 200, json.dumps(dict(self.stats)).encode()
        if method == "POST" and path in ("/v1/images/edits", "/v1/images/generations"):
            body = self._openai
        elif method == "POST" and "/models/" in path and path.endswith(":generateContent"):
            body = self._gemini
        else:
            message = f"fake upstream: no route {method} {path}"
            return 404, json.dumps({"error": {"message": message}}).encode()
        self.stats[f"{method} {path}"] += 1
        return 200, body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        more = True
        while more:  # read the body to its end, keep none of it
            more = (await receive()).get("more_body", False)
        status, body = self.reply(scope["method"], scope["path"])
        if self.delay and status == 200 and scope["method"] == "POST":
            await asyncio.sleep(self.delay)
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=18080)
    parser.add_argument("--side", type=int, default=64, help="side of the reply's PNG, in px")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each image")
    args = parser.parse_args()
    app = FakeUpstream(side=args.side, delay=args.delay)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
