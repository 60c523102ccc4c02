"""The canonical try-on request: what every route (native, chat, async) normalizes to."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from tryon_core.provider import Category, OutputFormat

__all__ = ["ImageSource", "TryOnRequest"]


class ImageSource(msgspec.Struct, kw_only=True):
    """Where one input image comes from: a URL (data:, http:, https:) or uploaded bytes.

    ``param`` names the field it came from, for error messages. Not frozen for one reason: a
    data URL's text (megabytes of base64) is let go once intake has read it
    (:meth:`take_data_url`), so that a request in flight holds each image once, as bytes.
    """

    param: str
    url: str | None = None
    data: bytes | None = None

    def take_data_url(self) -> str | None:
        """The data URL this source holds, which it then holds no more (its ``url`` becomes
        the bare ``"data:"``, still described as a data URL, no longer an image); None if
        it holds no data URL. Read a request's fingerprint before its images are taken."""
        url = self.url
        if url is None or url[:5].lower() != "data:":
            return None
        self.url = _TAKEN
        return url


_TAKEN = "data:"


class TryOnRequest(msgspec.Struct, frozen=True, kw_only=True):
    person: ImageSource
    garments: tuple[ImageSource, ...]
    model: str = "auto"
    models: tuple[str, ...] = ()
    category: Category = "auto"
    prompt: str | None = None
    n: int = 1
    seed: int | None = None
    output_format: OutputFormat = "png"
    mode: Literal["sync", "async"] = "sync"
    options: dict[str, Any] = msgspec.field(default_factory=dict)
    """The client's per-model options as sent (checked against the models when planned)."""

    def summary(self) -> dict[str, object]:
        """The request as stored with its generation: everything but the image bytes."""
        return {
            "model": self.model,
            "models": list(self.models),
            "category": self.category,
            "prompt": self.prompt,
            "n": self.n,
            "seed": self.seed,
            "output_format": self.output_format,
            "mode": self.mode,
            **({"options": self.options} if self.options else {}),
            "person": _describe(self.person),
            "garments": [_describe(g) for g in self.garments],
        }


def _describe(source: ImageSource) -> str:
    if source.data is not None:
        return f"upload ({len(source.data)} bytes)"
    url = source.url or ""
    return "data URL" if url.startswith("data:") else url[:500]
