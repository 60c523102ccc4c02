"""Streamed chat completions against a real server: the SSE wire, the SDKs, errors, leaving."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy import select

from tests.helpers import auth, live_server, new_key, own_database
from tests.test_chat_sdk import MESSAGES, png_of
from tryon_core.api.routes import chat as chat_route
from tryon_core.db.schema import generations
from tryon_core.errors import ProviderUnavailable, RateLimited
from tryon_core.testing import ScriptedProvider
from tryon_core.testing.scripted import Hang, Sleep

BODY = {"model": "scripted/alpha", "messages": MESSAGES, "stream": True}


@pytest.fixture
def fast_keepalive(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start streaming at once and keep alive every 50 ms, so short tests see both."""
    monkeypatch.setattr(chat_route, "HOLD_SECONDS", 0.0)
    monkeypatch.setattr(chat_route, "KEEPALIVE_SECONDS", 0.05)


@pytest.fixture
def server(make_app: Callable[..., Any]) -> Callable[..., Any]:
    @asynccontextmanager
    async def start(credits: int = 100) -> AsyncIterator[tuple[str, str, Any]]:
        app = make_app()
        async with live_server(app) as url:
            key, _ = await new_key(app, credits=credits)
            yield url, key, app

    return start


async def raw_events(url: str, key: str, body: dict[str, Any]) -> tuple[httpx.Response, list[str]]:
    async with (
        httpx.AsyncClient(base_url=url) as http,
        http.stream("POST", "/api/v1/chat/completions", json=body, headers=auth(key)) as response,
    ):
        text = (await response.aread()).decode()
    return response, [event for event in text.split("\n\n") if event]


async def balance(url: str, key: str) -> tuple[int, int]:
    async with httpx.AsyncClient(base_url=url) as http:
        for _ in range(100):
            credits = (await http.get("/api/v1/credits", headers=auth(key))).json()
            if credits["reserved"] == 0:
                break
            await asyncio.sleep(0.05)
    return credits["balance"], credits["reserved"]


async def test_the_wire_keepalives_then_image_stop_usage_done(
    server: Any, scripted: ScriptedProvider, fast_keepalive: None
) -> None:
    scripted.script("scripted/alpha", Sleep(0.3))
    async with server() as (url, key, _):
        response, events = await raw_events(url, key, BODY)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        keepalives = [e for e in events if e.startswith(":")]
        assert len(keepalives) >= 3 and set(keepalives) == {": TRYON PROCESSING"}
        data = [e.removeprefix("data: ") for e in events if not e.startswith(":")]
        assert events.index(keepalives[-1]) < events.index("data: " + data[0])
        assert data[-1] == "[DONE]"
        image, stop, usage = (json.loads(d) for d in data[:-1])
        for chunk in (image, stop, usage):
            assert chunk["object"] == "chat.completion.chunk"
            assert chunk["id"] == image["id"] and chunk["id"].startswith("gen_")
            assert chunk["model"] == "scripted/alpha"
        (choice,) = image["choices"]
        assert choice["delta"]["role"] == "assistant" and choice["finish_reason"] is None
        png_of(choice["delta"]["images"][0]["image_url"]["url"])
        assert stop["choices"][0]["finish_reason"] == "stop"
        assert usage["choices"] == []
        assert usage["usage"] == {
            "credits": 3,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "total_tokens": 0,
        }
        assert [a["status"] for a in usage["tryon"]["attempts"]] == ["succeeded"]
        assert await balance(url, key) == (97, 0)


async def test_sdk_streams_sync_and_async(
    server: Any, scripted: ScriptedProvider, fast_keepalive: None
) -> None:
    scripted.script("scripted/alpha", Sleep(0.2), Sleep(0.2))
    async with server() as (url, key, _):
        base = url + "/api/v1"
        async with openai.AsyncOpenAI(base_url=base, api_key=key, max_retries=0) as aclient:
            stream = await aclient.chat.completions.create(
                model="scripted/alpha", messages=MESSAGES, stream=True
            )
            chunks = [chunk async for chunk in stream]

        def sync_stream() -> list[Any]:
            with openai.OpenAI(base_url=base, api_key=key, max_retries=0) as client:
                return list(
                    client.chat.completions.create(
                        model="scripted/alpha", messages=MESSAGES, stream=True
                    )
                )

        synced = await asyncio.to_thread(sync_stream)
        for got in (chunks, synced):
            images = [
                img
                for c in got
                if c.choices
                for img in (c.choices[0].delta.model_extra or {}).get("images", [])
            ]
            (image,) = images
            png_of(image["image_url"]["url"])
            assert [c.choices[0].finish_reason for c in got if c.choices] == [None, "stop"]
            assert got[-1].choices == [] and got[-1].usage is not None
            assert got[-1].usage.model_extra == {"credits": 3}
        assert await balance(url, key) == (94, 0)


async def test_fallback_while_streaming_is_invisible(
    server: Any, scripted: ScriptedProvider, fast_keepalive: None
) -> None:
    scripted.script("scripted/gamma", ProviderUnavailable("down"))
    async with server() as (url, key, _):
        body = BODY | {"model": "scripted/gamma", "models": ["scripted/alpha"]}
        _, events = await raw_events(url, key, body)
        data = [json.loads(e[6:]) for e in events if e.startswith("data: {")]
        assert [c["model"] for c in data] == ["scripted/alpha"] * 3
        assert not any("error" in c for c in data)
        assert await balance(url, key) == (97, 0)


async def test_a_failure_after_the_stream_began_is_an_error_chunk(
    server: Any, scripted: ScriptedProvider, fast_keepalive: None
) -> None:
    scripted.script("scripted/alpha", RateLimited("busy", retry_after=3))
    async with server() as (url, key, _):
        response, events = await raw_events(url, key, BODY)
        assert response.status_code == 200
        data = [e.removeprefix("data: ") for e in events if e.startswith("data: ")]
        assert data[-1] == "[DONE]"
        (chunk,) = (json.loads(d) for d in data[:-1])
        assert chunk["error"]["code"] == 429
        assert chunk["error"]["type"] == "rate_limit_exceeded"
        assert chunk["choices"] == [
            {
                "index": 0,
                "delta": {"content": ""},
                "finish_reason": "error",
                "native_finish_reason": None,
            }
        ]
        assert await balance(url, key) == (100, 0)

        scripted.script("scripted/alpha", RateLimited("busy again", retry_after=3))
        async with openai.AsyncOpenAI(base_url=url + "/api/v1", api_key=key) as aclient:
            stream = await aclient.chat.completions.create(
                model="scripted/alpha", messages=MESSAGES, stream=True
            )
            with pytest.raises(openai.APIError, match="busy again"):
                async for _ in stream:
                    pass
        assert await balance(url, key) == (100, 0)


async def test_errors_found_before_streaming_are_plain_http_errors(
    server: Any, scripted: ScriptedProvider
) -> None:
    async with (
        server(credits=1) as (url, key, _),
        openai.AsyncOpenAI(base_url=url + "/api/v1", api_key=key, max_retries=0) as aclient,
    ):
        with pytest.raises(openai.APIStatusError) as unpaid:
            await aclient.chat.completions.create(
                model="scripted/alpha", messages=MESSAGES, stream=True
            )
        assert unpaid.value.status_code == 402
        with pytest.raises(openai.NotFoundError):
            await aclient.chat.completions.create(
                model="nobody/nothing", messages=MESSAGES, stream=True
            )
    assert scripted.calls == []


async def test_a_client_that_leaves_mid_stream_is_not_charged(
    server: Any, scripted: ScriptedProvider, fast_keepalive: None
) -> None:
    # The upstream never answers: only the hang-up can end this generation.
    scripted.script("scripted/alpha", Hang())
    async with server(credits=10) as (url, key, app):
        async with (
            httpx.AsyncClient(base_url=url) as http,
            http.stream(
                "POST", "/api/v1/chat/completions", json=BODY, headers=auth(key)
            ) as response,
        ):
            assert response.status_code == 200
            # One iterator, kept: breaking out of ``async for`` would drop it, and its
            # finalization closes the connection whenever the loop gets to it
            lines = response.aiter_lines()
            while not scripted.calls:  # until the upstream is at work
                assert await anext(lines) in (": TRYON PROCESSING", "")
            async with httpx.AsyncClient(base_url=url) as other:
                credits = (await other.get("/api/v1/credits", headers=auth(key))).json()
            assert credits["reserved"] == 3  # still connected: the work goes on
        assert await balance(url, key) == (10, 0)
        async with own_database(app) as database, database.reading() as conn:
            row = (await conn.execute(select(generations.c.status, generations.c.error))).one()
        assert row.status == "failed" and row.error["type"] == "cancelled"
