"""The adapter against the fake on 127.0.0.1: the exact request it sends, and what it returns."""

from __future__ import annotations

from tryon_openai.adapter import OpenAIAdapter


async def test_smoke(make_request, make_context, state) -> None:
    outputs = await OpenAIAdapter().run(make_request(), make_context())
    print(state.requests)
    assert len(outputs) == 1
