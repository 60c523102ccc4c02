"""Multiprocess mode: the processes of one host share ``[metrics] multiprocess_dir``; a scrape
of any ``tryon serve`` reports the traffic of all (``tryon worker`` too, which serves no
HTTP), and a process that stopped still counts (totals never go backwards)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import SAMPLES, data_url
from tests.served import Gateway, Worker, configured, new_account, wait_until


def value(url: str, name: str, **labels: str) -> float:
    """One sample of a scrape of ``url`` (0 if absent)."""
    response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


def gateway(directory: Path, shared: Path, database_url: str, *options: str) -> Gateway:
    """A ``tryon serve`` of the deployment sharing ``shared``: one file store, one metrics
    folder."""
    return configured(
        directory,
        database_url,
        f"""
[metrics]
enabled = true
multiprocess_dir = "{shared}/metrics"
[providers.local]
enabled = true
[jobs]
sweep_interval_seconds = 0.5
""",
        files=shared / "files",
        name=f"serve-{len(list(directory.glob('serve-*.toml')))}",
        options=options,
    )


def test_a_scrape_of_one_process_sums_every_process(tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path}/tryon.db"
    key, _ = asyncio.run(new_account(database_url, 10))
    first = gateway(tmp_path, tmp_path, database_url)
    second = gateway(tmp_path, tmp_path, database_url)
    models = {"route": "/api/v1/models", "method": "GET", "status": "200"}
    try:
        first.start()
        second.start()
        for url, times in ((first.url, 3), (second.url, 2)):
            for _ in range(times):
                assert httpx.get(f"{url}/api/v1/models", timeout=10).status_code == 200
        served = httpx.post(
            f"{second.url}/api/v1/tryon",
            json={
                "model": "local/overlay",
                "person_images": [data_url(SAMPLES / "person.jpg", "image/jpeg")],
                "garment_images": [data_url(SAMPLES / "garment.png", "image/png")],
            },
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )
        assert served.status_code == 200, served.text
        credits = served.json()["usage"]["credits"]

        for url in (first.url, second.url):
            assert value(url, "tryon_http_requests_total", **models) == 5
            assert (
                value(url, "tryon_generations_total", model="local/overlay", outcome="succeeded")
                == 1
            )
            assert value(url, "tryon_credits_charged_total", model="local/overlay") == credits

        second.stop()
        assert value(first.url, "tryon_http_requests_total", **models) == 5
        assert (
            value(first.url, "tryon_generations_total", model="local/overlay", outcome="succeeded")
            == 1
        )
    finally:
        first.stop()
        second.stop()


def test_a_scrape_of_the_api_reports_what_the_worker_did(tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path}/tryon.db"
    key, _ = asyncio.run(new_account(database_url, 10))
    api = gateway(tmp_path, tmp_path, database_url, "--no-workers")
    worker = Worker(api.config, tmp_path / "worker.log")
    succeeded = {"model": "local/overlay", "outcome": "succeeded"}
    try:
        api.start()
        worker.start()
        accepted = httpx.post(
            f"{api.url}/api/v1/tryon",
            json={
                "model": "local/overlay",
                "mode": "async",
                "person_images": [data_url(SAMPLES / "person.jpg", "image/jpeg")],
                "garment_images": [data_url(SAMPLES / "garment.png", "image/png")],
            },
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )
        assert accepted.status_code == 202, accepted.text
        job = f"{api.url}/api/v1/tryon/{accepted.json()['jobId']}"

        def done() -> bool:
            answer = httpx.get(job, headers={"Authorization": f"Bearer {key}"}, timeout=10)
            return answer.json()["status"] in ("completed", "failed")

        wait_until(done, "the worker to finish the job")
        assert value(api.url, "tryon_generations_total", **succeeded) == 1
        assert (
            value(
                api.url,
                "tryon_attempts_total",
                provider="local",
                model="local/overlay",
                outcome="succeeded",
                error_type="none",
            )
            == 1
        )
        assert value(api.url, "tryon_jobs_queued") == 0
        assert value(api.url, "tryon_jobs_running") == 0
    finally:
        worker.stop()
        api.stop()
