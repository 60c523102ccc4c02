"""A prediction's output: where its images are, and their bytes.

A model's output is whatever its code returns: one file (a URL string), a list of files, or
an object holding them. Files are ``https://`` links on Replicate's delivery hosts, or data URLs
when the prediction answered in sync mode (``Prefer: wait``).
"""

from __future__ import annotations

from typing import Any

from tryon_core.plugin import BadResponse, NoImage, ProviderContext, b64decode

__all__ = ["download", "file_links"]

_SCHEMES = ("https://", "http://", "data:")


def file_links(output: Any, slug: str) -> list[str]:
    """Every file link in ``output``, in order; ``NoImage`` when there is none."""
    found: list[str] = []
    _collect(output, found)
    if not found:
        raise NoImage(f"{slug}: the prediction succeeded without an image.")
    return found


def _collect(value: Any, found: list[str]) -> None:
    if isinstance(value, str):
        if value.startswith(_SCHEMES):
            found.append(value)
    elif isinstance(value, list):
        for item in value:
            _collect(item, found)
    elif isinstance(value, dict):
        for item in value.values():
            _collect(item, found)


async def download(link: str, context: ProviderContext, slug: str) -> bytes:
    """A file's bytes: a data URL is decoded here, a link fetched behind the egress guard."""
    if not link.startswith("data:"):
        return await context.fetch(link)
    header, _, payload = link.partition(",")
    if not header.endswith(";base64"):
        raise BadResponse(f"{slug}: Replicate returned a data URL that is not base64.")
    try:
        return b64decode(payload)
    except ValueError:
        raise BadResponse(f"{slug}: Replicate returned a data URL that is not base64.") from None
