"""Time the offline engine: cold and warm milliseconds per request, per tier.

    uv run python benchmarks/bench_local_engine.py [--repeat N]

"Cold" is a fresh process: imports, engine construction, model and cascade loading, the first
request. "Warm" is the median of N further requests on the same engine. Each tier is timed on
the sample person at its own size (768x1024, 0.79 MP) and upscaled to ~1.05 MP (888x1184), for
the engine alone (PIL in, PIL out) and through the adapter (bytes in, PNG/JPEG bytes out), with
a breakdown of the warm engine request. Nothing here is asserted: it prints figures.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
TIERS = {"pose": True, "base": False}


def _load() -> tuple[object, object]:
    from PIL import Image

    person = Image.open(SAMPLES / "person.jpg")
    garment = Image.open(SAMPLES / "garment.png")
    person.load()
    garment.load()
    return person, garment


def cold(tier: str) -> None:
    """In a fresh process: everything from the first import to the first image."""
    start = time.perf_counter()
    from tryon_local import Engine

    person, garment = _load()
    engine = Engine(use_pose=TIERS[tier])
    engine.render(person, [garment])  # type: ignore[list-item, arg-type]
    print(f"{(time.perf_counter() - start) * 1000:.0f}")


def _median_ms(call: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def warm(repeat: int) -> None:
    from PIL import Image
    from tryon_core import InputImage, ProviderRequest

    from tryon_local import Engine, LocalAdapter, LocalConfig, cut_out
    from tryon_local.fit import fit

    person, garment = _load()
    assert isinstance(person, Image.Image) and isinstance(garment, Image.Image)
    big = person.resize((888, 1184), Image.Resampling.LANCZOS)

    def encoded(image: Image.Image, fmt: str) -> InputImage:
        buffer = io.BytesIO()
        image.save(buffer, format=fmt)
        return InputImage(
            data=buffer.getvalue(),
            content_type="image/png" if fmt == "PNG" else "image/jpeg",
            width=image.width,
            height=image.height,
        )

    print(f"warm: median of {repeat} requests, ms")
    header = f"{'tier':<5} {'person':<10} {'engine':>7} {'adapter png':>12} {'adapter jpeg':>13}"
    print(header)
    for tier, use_pose in TIERS.items():
        engine = Engine(use_pose=use_pose)
        adapter = LocalAdapter(LocalConfig(pose=use_pose))
        for image in (person, big):
            engine.render(image, [garment])  # warm-up
            engine_ms = _median_ms(lambda image=image: engine.render(image, [garment]), repeat)
            row = [f"{tier:<5} {f'{image.width}x{image.height}':<10} {engine_ms:>7.0f}"]
            for fmt, width in (("png", 12), ("jpeg", 13)):
                request = ProviderRequest(
                    model="local/overlay",
                    person=encoded(image, "JPEG"),
                    garments=(encoded(garment, "PNG"),),
                    output_format=fmt,  # type: ignore[arg-type]
                )
                asyncio.run(adapter.run(request, None))  # type: ignore[arg-type]
                ms = _median_ms(
                    lambda request=request: asyncio.run(adapter.run(request, None)),  # type: ignore[arg-type]
                    repeat,
                )
                row.append(f"{ms:>{width}.0f}")
            print(" ".join(row))

    print("\nwarm breakdown on the 768x1024 sample, ms")
    for tier, use_pose in TIERS.items():
        engine = Engine(use_pose=use_pose)
        engine.render(person, [garment])
        body = engine.locate(person)
        cutout = cut_out(garment)
        parts = {
            "locate": _median_ms(lambda engine=engine: engine.locate(person), repeat),
            "cut_out": _median_ms(lambda: cut_out(garment), repeat),
            "fit": _median_ms(lambda body=body: fit(cutout, "tops", body), repeat),
        }
        found = ", ".join(body.found)
        print(f"{tier:<5} " + "  ".join(f"{k} {v:.0f}" for k, v in parts.items()) + f"  ({found})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--cold", choices=sorted(TIERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cold:
        cold(args.cold)
        return
    print("cold: fresh process, first request (imports and model loading included), ms")
    for tier in TIERS:
        out = subprocess.run(
            [sys.executable, __file__, "--cold", tier],
            check=True,
            capture_output=True,
            text=True,
        )
        print(f"{tier:<5} {out.stdout.strip()}")
    print()
    warm(args.repeat)


if __name__ == "__main__":
    main()
