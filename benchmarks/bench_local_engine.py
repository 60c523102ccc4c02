"""Time the offline engine: cold and warm milliseconds per request, per tier.

    uv run python benchmarks/bench_local_engine.py [--repeat N]

"Cold" is a fresh process: imports, engine construction, model and cascade loading, the first
request. "Warm" is the median (and the fastest) of N further requests on the same engine.
Each tier is timed on the sample person at its own size (768x1024, 0.79 MP), upscaled to
~1.05 MP (888x1184) and to the gateway's largest side (3072x4096, 12.6 MP; engine only, fewer
repeats), for the engine alone (PIL in, PIL out) and through the adapter (bytes in, PNG/JPEG
bytes out), with a breakdown of the warm engine request. Nothing is asserted: it prints
figures, and the load average, since other work on the machine skews them.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

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


def _ms(call: Callable[[], object], repeat: int) -> str:
    """``median (fastest)`` of ``repeat`` calls, in ms: the fastest shows the cost with the
    least interference from other work on the machine."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return f"{statistics.median(samples):.0f} ({min(samples):.0f})"


def _encoded(image: Any, fmt: str) -> Any:
    from tryon_core import InputImage

    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return InputImage(
        data=buffer.getvalue(),
        content_type="image/png" if fmt == "PNG" else "image/jpeg",
        width=image.width,
        height=image.height,
    )


def _run_adapter(adapter: Any, request: Any) -> None:
    asyncio.run(adapter.run(request, None))  # the local adapter never uses its context


def _tier_rows(tier: str, person: Any, garment: Any, repeat: int) -> None:
    from PIL import Image
    from tryon_local import Engine, LocalAdapter, LocalConfig

    from tryon_core import ProviderRequest

    engine = Engine(use_pose=TIERS[tier])
    adapter = LocalAdapter(LocalConfig(pose=TIERS[tier]))
    big = person.resize((888, 1184), Image.Resampling.LANCZOS)
    for image in (person, big):
        render = partial(engine.render, image, [garment])
        render()  # warm-up
        size = f"{image.width}x{image.height}"
        row = [f"{tier:<5} {size:<10} {_ms(render, repeat):>11}"]
        for fmt in ("png", "jpeg"):
            request = ProviderRequest(
                model="local/overlay",
                person=_encoded(image, "JPEG"),
                garments=(_encoded(garment, "PNG"),),
                output_format=fmt,  # type: ignore[arg-type]
            )
            run = partial(_run_adapter, adapter, request)
            run()  # warm-up
            row.append(f"{_ms(run, repeat):>13}")
        print(" ".join(row))
    huge = person.resize((3072, 4096), Image.Resampling.BICUBIC)
    render = partial(engine.render, huge, [garment])
    render()
    huge = _ms(render, max(1, repeat // 3))
    print(f"{tier:<5} {'3072x4096':<10} {huge:>11} {'-':>13} {'-':>13}")


def _breakdown(tier: str, person: Any, garment: Any, repeat: int) -> None:
    from tryon_local import Engine, cut_out
    from tryon_local.fit import fit

    engine = Engine(use_pose=TIERS[tier])
    engine.render(person, [garment])
    body = engine.locate(person)
    cutout = cut_out(garment)
    parts = {
        "locate": _ms(partial(engine.locate, person), repeat),
        "cut_out": _ms(partial(cut_out, garment), repeat),
        "fit": _ms(partial(fit, cutout, "tops", body), repeat),
    }
    found = ", ".join(body.found)
    print(f"{tier:<5} " + "  ".join(f"{k} {v}" for k, v in parts.items()) + f"  [{found}]")


def warm(repeat: int) -> None:
    person, garment = _load()
    print(f"warm: median (fastest) of {repeat} requests, ms")
    print(f"{'tier':<5} {'person':<10} {'engine':>11} {'adapter png':>13} {'adapter jpeg':>13}")
    for tier in TIERS:
        _tier_rows(tier, person, garment, repeat)
    print("\nwarm breakdown on the 768x1024 sample, ms")
    for tier in TIERS:
        _breakdown(tier, person, garment, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--cold", choices=sorted(TIERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cold:
        cold(args.cold)
        return
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"{os.cpu_count()} cores, load average {load}")
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
