"""The JSON and multipart forms of one request are the same canonical request."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.helpers import SAMPLES, auth, data_url, new_key
from tryon_core.testing import ScriptedProvider

PERSON = SAMPLES / "person.jpg"
GARMENT = SAMPLES / "garment.png"

options = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from(["auto", "scripted/alpha", "scripted/gamma"]),
        "category": st.sampled_from(["auto", "tops", "bottoms", "one-pieces", "apparel"]),
        "prompt": st.text(
            alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=40
        ),
        "n": st.integers(min_value=1, max_value=2),
        "seed": st.integers(min_value=0, max_value=2**32 - 1),
        "output_format": st.sampled_from(["png", "jpeg", "webp"]),
    },
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(fields=options, garments=st.integers(min_value=1, max_value=2))
async def test_json_and_multipart_normalize_alike(
    client: AsyncTestClient[Litestar],
    scripted: ScriptedProvider,
    fields: dict[str, Any],
    garments: int,
) -> None:
    key, _ = await new_key(client, credits=1000)
    as_json = {
        **fields,
        "person_images": data_url(PERSON, "image/jpeg"),
        "garment_images": [data_url(GARMENT, "image/png")] * garments,
    }
    first = await client.post("/api/v1/tryon", json=as_json, headers=auth(key))
    files = [("person_images", ("p.jpg", PERSON.read_bytes(), "image/jpeg"))] + [
        ("garment_images", (f"g{i}.png", GARMENT.read_bytes(), "image/png"))
        for i in range(garments)
    ]
    form = {k: str(v) for k, v in fields.items()}
    second = await client.post("/api/v1/tryon", files=files, data=form, headers=auth(key))
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    json_call, form_call = scripted.calls[-2:]
    assert json_call == form_call
    assert first.json()["usage"] == second.json()["usage"]
