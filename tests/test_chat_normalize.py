"""The chat form and the native form of one request reach the provider as the same request."""

from __future__ import annotations

import base64
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests._images import make
from tests.helpers import SAMPLES, auth, data_url, new_key
from tryon_core.testing import ScriptedProvider

PERSON = data_url(SAMPLES / "person.jpg", "image/jpeg")
GARMENTS = [
    data_url(SAMPLES / "garment.png", "image/png"),
    "data:image/jpeg;base64," + base64.b64encode(make(size=(300, 400), fmt="JPEG")).decode(),
]

options = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from(["auto", "scripted/alpha", "scripted/gamma"]),
        "models": st.sampled_from([["scripted/gamma", "scripted/alpha"], ["scripted/alpha"]]),
        "category": st.sampled_from(["auto", "tops", "bottoms", "one-pieces", "apparel"]),
        "prompt": st.text(
            alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=40
        ),
        "n": st.integers(min_value=1, max_value=2),
        "seed": st.integers(min_value=0, max_value=2**32 - 1),
        "output_format": st.sampled_from(["png", "jpeg", "webp"]),
    },
)
TRYON_OPTIONS = ("category", "output_format")


def part(url: str, role: str | None) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "image_url", "image_url": {"url": url}}
    if role:
        item["tryon_role"] = role
    return item


@st.composite
def layouts(draw: st.DrawFn, garments: int) -> list[dict[str, Any]]:
    """The images as chat parts, in any order the roles rule maps back to the same request."""
    tagging = draw(st.sampled_from(["none", "person", "all"]))
    garment_parts = [
        part(GARMENTS[i], "garment" if tagging == "all" else None) for i in range(garments)
    ]
    if tagging == "none":
        return [part(PERSON, None), *garment_parts]
    position = draw(st.integers(min_value=0, max_value=garments))
    garment_parts.insert(position, part(PERSON, "person"))
    return garment_parts


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(fields=options, garments=st.integers(min_value=1, max_value=2), data=st.data())
async def test_chat_and_native_normalize_alike(
    client: AsyncTestClient[Litestar],
    scripted: ScriptedProvider,
    fields: dict[str, Any],
    garments: int,
    data: st.DataObject,
) -> None:
    key, _ = await new_key(client, credits=1000)
    native = {**fields, "person_images": PERSON, "garment_images": GARMENTS[:garments]}
    first = await client.post("/api/v1/tryon", json=native, headers=auth(key))

    content = data.draw(layouts(garments))
    if "prompt" in fields:
        at = data.draw(st.integers(min_value=0, max_value=len(content)))
        content.insert(at, {"type": "text", "text": fields["prompt"]})
    chat: dict[str, Any] = {k: v for k, v in fields.items() if k not in (*TRYON_OPTIONS, "prompt")}
    chat["messages"] = [{"role": "user", "content": content}]
    chat["tryon"] = {k: fields[k] for k in TRYON_OPTIONS if k in fields}
    second = await client.post("/api/v1/chat/completions", json=chat, headers=auth(key))

    assert first.status_code == second.status_code == 200, (first.text, second.text)
    native_call, chat_call = scripted.calls[-2:]
    assert native_call == chat_call
    assert first.json()["usage"]["credits"] == second.json()["usage"]["credits"]
    assert first.json()["model"] == second.json()["model"]
