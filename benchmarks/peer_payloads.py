"""The request bodies of the peer benchmarks: one payload, as each target expects it.

A payload is two images (person, garment) sent one way: ``multipart`` (an image edit) or
``chat`` (chat completions JSON with the images as data URLs). Each target gets the same images
in its own dialect:

| target | multipart | chat |
|---|---|---|
| direct (the fake) | ``POST /v1/images/edits`` | Gemini ``generateContent`` JSON |
| litellm | ``POST /v1/images/edits``, ``image[]`` | ``POST /v1/chat/completions`` |
| tryon | ``POST /api/v1/tryon``, person/garment | ``POST /api/v1/chat/completions`` |

Bodies are built once, as bytes, so that the client does as little as it can per request.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass

from peer_upstream import noise_png, png

PROMPT = "Dress the person in the first image in the garment from the second image."
GEMINI_MODEL = "gemini-2.5-flash-image"


@dataclass(frozen=True)
class Request:
    path: str
    body: bytes
    headers: dict[str, str]
    marker: bytes  # the reply is a success only with this in it

    def with_auth(self, key: str, header: str = "authorization") -> Request:
        value = f"Bearer {key}" if header == "authorization" else key
        return Request(self.path, self.body, {**self.headers, header: value}, self.marker)


@dataclass(frozen=True)
class Payload:
    name: str
    description: str
    person: bytes
    garment: bytes
    way: str  # "multipart" or "chat"

    def request(self, target: str) -> Request:
        if self.way == "multipart":
            return self._multipart(target)
        return self._chat(target)

    def _multipart(self, target: str) -> Request:
        if target == "tryon":
            fields = [("model", "openai/gpt-image-1"), ("prompt", PROMPT)]
            files = [("person_images", self.person), ("garment_images", self.garment)]
            path, marker = "/api/v1/tryon", b'"completed"'
        else:
            fields = [("model", "gpt-image-1"), ("prompt", PROMPT)]
            files = [("image[]", self.person), ("image[]", self.garment)]
            path, marker = "/v1/images/edits", b'"b64_json"'
        body, content_type = multipart(fields, files)
        return Request(path, body, {"content-type": content_type}, marker)

    def _chat(self, target: str) -> Request:
        person, garment = (_b64(self.person), _b64(self.garment))
        json_type = {"content-type": "application/json"}
        if target == "direct":
            parts = [
                {"text": PROMPT},
                {"inline_data": {"mime_type": "image/png", "data": person}},
                {"inline_data": {"mime_type": "image/png", "data": garment}},
            ]
            body = {
                "contents": [{"role": "user", "parts": parts}],
                "generationConfig": {"responseModalities": ["IMAGE", "TEXT"]},
            }
            path = f"/v1beta/models/{GEMINI_MODEL}:generateContent"
            return Request(path, json.dumps(body).encode(), json_type, b'"inlineData"')
        model = f"google/{GEMINI_MODEL}" if target == "tryon" else GEMINI_MODEL
        content = [
            {"type": "text", "text": PROMPT},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{person}"}},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{garment}"}},
        ]
        body = {
            "model": model,
            "modalities": ["image", "text"],
            "messages": [{"role": "user", "content": content}],
        }
        path = "/api/v1/chat/completions" if target == "tryon" else "/v1/chat/completions"
        return Request(path, json.dumps(body).encode(), json_type, b'"images"')


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def multipart(fields: list[tuple[str, str]], files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body (PNG files) and its content type."""
    boundary = "bench" + uuid.uuid4().hex
    chunks = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields
    ]
    for number, (name, data) in enumerate(files):
        chunks.append(
            f"--{boundary}\r\nContent-Disposition: form-data; "
            f'name="{name}"; filename="image{number}.png"\r\n'
            "Content-Type: image/png\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def payloads(*, big_side: int = 512) -> dict[str, Payload]:
    """The issue's four payloads: two small PNGs and two incompressible noise PNGs
    (``big_side`` px: 512 gives about 787 KB each), each as multipart and as chat."""
    tiny = (png(64), png(64))
    big = (noise_png(big_side, seed=1), noise_png(big_side, seed=2))
    kb = len(big[0]) // 1000
    return {
        "tiny-multipart": Payload(
            "tiny-multipart", "2 small PNGs, multipart edit", *tiny, "multipart"
        ),
        "tiny-chat": Payload("tiny-chat", "2 small PNGs, chat completions JSON", *tiny, "chat"),
        "big-multipart": Payload("big-multipart", f"2 x {kb} KB PNG, multipart", *big, "multipart"),
        "big-chat": Payload("big-chat", f"2 x {kb} KB PNG as data URLs, chat", *big, "chat"),
    }
