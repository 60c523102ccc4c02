"""The bundled sample photos the playground offers: ``samples/`` of the source tree, or the
copy an installed wheel carries in ``tryon_core/console/sample_photos``."""

from __future__ import annotations

from pathlib import Path

import msgspec

__all__ = ["SAMPLES", "Sample", "sample", "samples_folder"]


class Sample(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    role: str
    """``person`` or ``garment``."""
    label: str
    content_type: str


SAMPLES = (
    Sample(name="person.jpg", role="person", label="Sample person", content_type="image/jpeg"),
    Sample(name="garment.png", role="garment", label="Sample T-shirt", content_type="image/png"),
)


def samples_folder() -> Path:
    packaged = Path(__file__).with_name("sample_photos")
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[3] / "samples"


def sample(name: str, role: str | None = None) -> tuple[Sample, bytes] | None:
    """A sample by name (and role, if given) with its bytes; None if there is no such one."""
    for found in SAMPLES:
        if found.name == name and role in (None, found.role):
            try:
                return found, (samples_folder() / found.name).read_bytes()
            except OSError:
                return None
    return None
