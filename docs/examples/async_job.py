"""Submit an async try-on job, watch it on its WebSocket, download the result.

    TRYON_URL=http://127.0.0.1:8000 TRYON_KEY=tryon_... \
        python docs/examples/async_job.py samples/person.jpg samples/garment.png out.png

Needs httpx and websockets (both come with tryon-core). Safe to re-run: the Idempotency-Key
makes a retried submission return the same job instead of starting (and paying for) another.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path

import httpx
from websockets.asyncio.client import connect


async def main(person: bytes, garment: bytes, out: Path) -> int:
    url = os.environ.get("TRYON_URL", "http://127.0.0.1:8000")
    key = os.environ["TRYON_KEY"]
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": str(uuid.uuid4())}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
        response = await http.post(
            "/api/v1/tryon",
            files={"person_images": person, "garment_images": garment},
            data={"mode": "async"},
        )
        if response.status_code != 202:
            print(response.json()["error"]["message"], file=sys.stderr)
            return 1
        accepted = response.json()
        print("submitted", accepted["jobId"])

        job = None
        async with connect(accepted["wsUrl"]) as socket:
            async for raw in socket:  # ends when the gateway closes after the final status
                message = json.loads(raw)
                if message["type"] == "error":
                    print(message["error"]["message"], file=sys.stderr)
                    return 1
                job = message["job"]
                step = job["progress"]
                detail = f" ({step['model']}: {step['state']})" if step else ""
                print(job["status"] + detail)

        if job is None or job["status"] != "completed":
            print("failed:", job and job["error"] and job["error"]["message"], file=sys.stderr)
            return 1
        image = await http.get(job["images"][0]["url"])
        await asyncio.to_thread(out.write_bytes, image.content)
        print(f"saved {out}; charged {job['usage']['credits']} credits")
    return 0


if __name__ == "__main__":
    person, garment, out = (Path(arg) for arg in sys.argv[1:4])
    raise SystemExit(asyncio.run(main(person.read_bytes(), garment.read_bytes(), out)))
