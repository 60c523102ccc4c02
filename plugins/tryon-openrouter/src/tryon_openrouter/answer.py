"""Images out of a chat completion: ``choices[0].message.images[].image_url.url``.

A 200 is not yet a success: the body may hold a top-level ``error``, the choice may carry an
``error`` with ``finish_reason: "error"``, or the model may answer with text only (a refusal
under ``finish_reason: "content_filter"`` or ``message.refusal``, or simply no image). Images
are base64 data URLs; an http(s) URL is downloaded through ``context.fetch``.
"""

from __future__ import annotations

from typing import Any

from tryon_core.plugin import (
    BadResponse,
    ContentRefused,
    NoImage,
    OutputImage,
    ProviderContext,
    TaskFailed,
    b64decode,
    sniff,
)
from tryon_openrouter.errors import error_in, generation_failure, status_failure

__all__ = ["images_of"]

_MAX_WORDS = 500


async def images_of(answer: Any, slug: str, n: int, context: ProviderContext) -> list[OutputImage]:
    """Up to ``n`` images of the first choice, or the error the answer means."""
    if not isinstance(answer, dict):
        raise BadResponse(f"{slug}: OpenRouter answered with JSON that is not an object.")
    error = error_in(answer)
    if error is not None:  # an error with HTTP 200: its code is the status it stands for
        code = error.get("code")
        raise status_failure(code if isinstance(code, int) else 502, error, slug)
    choices = answer.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise BadResponse(f"{slug}: OpenRouter answered without a choice.")
    choice = choices[0]
    if isinstance(choice.get("error"), dict):
        raise generation_failure(choice["error"], slug)
    message = choice.get("message")
    if not isinstance(message, dict):
        raise BadResponse(f"{slug}: OpenRouter's choice has no message.")
    images = message.get("images") or []
    if not isinstance(images, list):
        raise BadResponse(f"{slug}: OpenRouter's message.images is not a list.")
    found = [await _image(item, slug, context) for item in images[:n]]
    if found:
        return found
    raise _without_image(choice, message, slug)


async def _image(item: Any, slug: str, context: ProviderContext) -> OutputImage:
    holder = item.get("image_url") if isinstance(item, dict) else None
    url = holder.get("url") if isinstance(holder, dict) else None
    if not isinstance(url, str):
        raise BadResponse(f"{slug}: an image of OpenRouter's answer has no image_url.url.")
    if url.startswith(("https://", "http://")):
        return OutputImage(data=await context.fetch(url))
    return OutputImage(data=_decode(url, slug))


def _decode(url: str, slug: str) -> bytes:
    """The bytes of a ``data:image/…;base64,…`` URL that holds a PNG, JPEG or WebP image."""
    header, comma, encoded = url.partition(",")
    if not (comma and header.startswith("data:image/") and header.endswith(";base64")):
        raise BadResponse(f"{slug}: OpenRouter's image is not a base64 data URL of an image.")
    try:
        data = b64decode(encoded)
    except ValueError:
        raise BadResponse(f"{slug}: OpenRouter's image data URL is not valid base64.") from None
    if sniff(data) is None:
        raise BadResponse(f"{slug}: OpenRouter's image holds no PNG, JPEG or WebP image.")
    return data


def _without_image(choice: dict[str, Any], message: dict[str, Any], slug: str) -> Exception:
    finish = choice.get("finish_reason")
    native = choice.get("native_finish_reason")
    reason = native if isinstance(native, str) and native else finish
    said = _words(message.get("refusal")) or _words(message.get("content"))
    if finish == "content_filter" or _words(message.get("refusal")):
        return ContentRefused(
            f"{slug}: the model refused to make this image.",
            provider_code=reason if isinstance(reason, str) else "content_filter",
            upstream_message=said,
        )
    if finish == "error":
        return TaskFailed(
            f"{slug}: the provider failed while generating the image.",
            provider_code=reason if isinstance(reason, str) else "error",
            upstream_message=said,
        )
    return NoImage(
        f"{slug}: the model finished ({reason or 'no reason given'}) without an image.",
        provider_code=reason if isinstance(reason, str) else None,
        upstream_message=said,
    )


def _words(value: Any) -> str | None:
    if isinstance(value, list):  # content as parts
        value = " ".join(
            str(part.get("text")) for part in value if isinstance(part, dict) and part.get("text")
        )
    if not isinstance(value, str) or not value.strip():
        return None
    return " ".join(value.split())[:_MAX_WORDS]
