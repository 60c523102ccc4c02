"""Dress a person in a garment through tryon-core's JSON API, images sent as data URLs.

    TRYON_URL=http://127.0.0.1:8000 TRYON_KEY=tryon_... \\
        python tryon_client.py person.jpg garment.png result.png

The output format follows the file name (.png, .jpg, .webp). TRYON_MODEL picks a model
(default "auto"). Needs httpx. Exits 1 on an API error, printed from the error envelope.
"""

from __future__ import annotations

import base64
import mimetypes
import os
import sys
from pathlib import Path

import httpx

FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp"}


def data_url(path: Path) -> str:
    # The gateway reads the real type from the bytes; the declared one only has to be image/*.
    declared = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{declared};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    person, garment, output = (Path(arg) for arg in argv[1:])
    base = os.environ.get("TRYON_URL", "http://127.0.0.1:8000").rstrip("/")
    headers = {"Authorization": f"Bearer {os.environ['TRYON_KEY']}"}
    body = {
        "person_images": data_url(person),
        "garment_images": [data_url(garment)],
        "model": os.environ.get("TRYON_MODEL", "auto"),
        "output_format": FORMATS.get(output.suffix.lower(), "png"),
    }
    with httpx.Client(timeout=300) as client:
        response = client.post(f"{base}/api/v1/tryon", json=body, headers=headers)
        if response.status_code != 200:
            error = response.json()["error"]
            print(f"{error['code']} {error['type']}: {error['message']}", file=sys.stderr)
            if "retry-after" in response.headers:
                print(f"retry in {response.headers['retry-after']} s", file=sys.stderr)
            return 1
        result = response.json()
        image = result["images"][0]
        download = client.get(image["url"])  # a signed URL: no key needed
        download.raise_for_status()
        output.write_bytes(download.content)
    print(
        f"{result['model']} charged {result['usage']['credits']} credit(s); "
        f"saved {output} ({image['width']}x{image['height']}, {image['content_type']})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
