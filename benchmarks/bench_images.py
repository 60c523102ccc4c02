"""What proving an input image whole costs: ``load_image`` against Pillow's full decode.

An image that passes unchanged (8-bit RGB or RGBA, one frame, upright) is proven whole by
``tryon_core.image_proof`` (PNG: chunks, zlib stream and row filters, no pixels; JPEG: decoded
at an eighth of its size); before, every image was decoded in full. For each kind of image this
prints the best of ``--repeat`` timings (CPU time of this process, one thread) of:

- ``full decode``: ``Image.open(...).load()``, what the proof replaces;
- ``load_image``: everything the gateway does to accept it (sniff, header, limits, proof);

and whether the proof covered it. Photo-like images (a gradient under noise, slightly blurred)
are made in memory. Asserts nothing.

    uv run python benchmarks/bench_images.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable

from peer_upstream import noise_png
from PIL import Image, ImageFilter

from tryon_core.image_proof import proven_as_is
from tryon_core.imaging import ImageLimits, inspect, load_image

LIMITS = ImageLimits()


def photo(size: tuple[int, int], fmt: str, **save: object) -> bytes:
    grey = Image.linear_gradient("L").resize(size).convert("RGB")
    noise = Image.effect_noise(size, 40).convert("RGB")
    image = Image.blend(grey, noise, 0.3).filter(ImageFilter.GaussianBlur(1))
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save)
    return buffer.getvalue()


def kinds() -> dict[str, bytes]:
    return {
        "JPEG photo 1024x1536": photo((1024, 1536), "JPEG", quality=90),
        "JPEG photo 3024x4032": photo((3024, 4032), "JPEG", quality=90),
        "JPEG photo 1024x1536, progressive": photo(
            (1024, 1536), "JPEG", quality=90, progressive=True
        ),
        "PNG photo 1024x1536": photo((1024, 1536), "PNG"),
        "PNG photo 512x512 (peer benchmark size)": photo((512, 512), "PNG"),
        "PNG noise 512x512, stored (peer benchmark)": noise_png(512, seed=1),
        "WebP photo 1024x1536 (no proof: full decode)": photo((1024, 1536), "WEBP"),
    }


def best_ms(run: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.thread_time()
        run()
        best = min(best, time.thread_time() - started)
    return best * 1000


def full_decode(data: bytes) -> None:
    Image.open(io.BytesIO(data)).load()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    print(f"{'image':<46}{'bytes':>10}{'full decode':>13}{'load_image':>12}  proven")
    for name, data in kinds().items():
        kind, width, height = inspect(data, param="x", limits=LIMITS)
        full = best_ms(lambda data=data: full_decode(data), args.repeat)
        loaded = best_ms(lambda data=data: load_image(data, param="x", limits=LIMITS), args.repeat)
        proven = proven_as_is(data, kind, (width, height))
        print(f"{name:<46}{len(data):>10}{full:>10.2f} ms{loaded:>9.2f} ms  {proven}")


if __name__ == "__main__":
    main()
