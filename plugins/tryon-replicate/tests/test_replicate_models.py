"""Models from ``[providers.replicate.models]``: what each entry becomes (capabilities follow
from what it maps, options become a Struct with a JSON Schema), and the entries that stop the
start, with a message naming the provider and the entry."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
import tryon_replicate.plugin
from hypothesis import given
from hypothesis import strategies as st
from tryon_replicate import ReplicateConfig, configured_models
from tryon_replicate.examples import CATVTON_FLUX, EXAMPLES, IDM_VTON
from tryon_replicate.fake_models import OUTFIT_ENTRY

from tryon_core.config import ConfigError, parse_settings
from tryon_core.plugin import ModelSpec
from tryon_core.testing import gateway

MINIMAL = {"model": "acme/tryon", "credits": 1, "person": "person", "garment": "garment"}


def models(**entries: dict[str, Any]) -> dict[str, ModelSpec]:
    config = msgspec.convert({"models": entries}, ReplicateConfig)
    return {m.slug: m for m in configured_models(config)}


def test_capabilities_follow_from_what_the_entry_maps() -> None:
    built = models(
        **{
            "replicate/idm-vton": IDM_VTON,
            "replicate/catvton-flux": CATVTON_FLUX,
            "tryon-test/outfit": OUTFIT_ENTRY,
            "acme/minimal": MINIMAL,
        }
    )
    idm = built["replicate/idm-vton"].capabilities
    assert idm.categories == ("auto", "tops", "bottoms", "one-pieces")
    assert (idm.uses_prompt, idm.supports_seed, idm.max_outputs) == (True, True, 1)
    assert idm.execution == "submit-poll" and idm.max_garments == 1
    cat = built["replicate/catvton-flux"].capabilities
    assert cat.categories == ("auto",)  # no category input: the model decides
    assert (cat.uses_prompt, cat.supports_seed) == (False, True)
    assert built["tryon-test/outfit"].capabilities.max_outputs == 4
    minimal = built["acme/minimal"]
    assert minimal.capabilities.categories == ("auto",) and minimal.options is None
    assert (minimal.name, minimal.credits, minimal.owned_by) == ("acme/tryon", 1, "replicate")
    assert built["replicate/idm-vton"].name == "IDM-VTON (Replicate)"


def test_options_become_a_struct_with_a_json_schema() -> None:
    options = models(**{"replicate/idm-vton": IDM_VTON})["replicate/idm-vton"].options
    assert options is not None
    schema = msgspec.json.schema(options)
    definition = schema["$defs"][schema["$ref"].rsplit("/", 1)[1]]
    steps = definition["properties"]["steps"]
    assert (steps["type"], steps["minimum"], steps["maximum"]) == ("integer", 1, 40)
    assert steps["description"].startswith("Denoising steps")
    assert definition["properties"]["crop"]["type"] == "boolean"
    assert not definition.get("required")  # a request without options is a whole request
    assert msgspec.to_builtins(msgspec.convert({}, options)) == {}
    with pytest.raises(msgspec.ValidationError, match="steps"):
        msgspec.convert({"steps": 41}, options)
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        msgspec.convert({"seed": 1}, options)


@given(
    low=st.integers(-1000, 1000),
    span=st.integers(0, 1000),
    value=st.integers(-3000, 3000),
)
def test_an_integer_option_takes_exactly_the_values_within_its_bounds(
    low: int, span: int, value: int
) -> None:
    entry = {
        **MINIMAL,
        "options": {"level": {"type": "integer", "minimum": low, "maximum": low + span}},
    }
    options = models(**{"acme/x": entry})["acme/x"].options
    assert options is not None
    try:
        decoded = msgspec.convert({"level": value}, options)
    except msgspec.ValidationError:
        assert not low <= value <= low + span
    else:
        assert low <= value <= low + span
        assert msgspec.to_builtins(decoded) == {"level": value}


@given(choice=st.sampled_from(["fast", "balanced", "best", "Fast", "", "ultra"]))
def test_a_choice_option_takes_only_its_choices(choice: str) -> None:
    options = models(**{"tryon-test/outfit": OUTFIT_ENTRY})["tryon-test/outfit"].options
    assert options is not None
    allowed = choice in ("fast", "balanced", "best")
    try:
        msgspec.convert({"quality": choice}, options)
    except msgspec.ValidationError:
        assert not allowed
    else:
        assert allowed


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"deployment": "acme/prod"}, "exactly one of `model` and `deployment`"),
        ({"model": None}, "exactly one of `model` and `deployment`"),
        ({"model": "acme/tryon:abc123"}, "not owner/name"),
        ({"version": "not a version!"}, "not a Replicate version id"),
        ({"model": None, "deployment": "acme/prod", "version": "a" * 64}, "leave `version` out"),
        ({"garment": "person"}, "both `person` and `garment`"),
        ({"seed": ""}, "`seed` names no input"),
        ({"categories": {"tops": "upper"}}, "`categories` needs `category`"),
        ({"category": "kind"}, "`category` needs `categories`"),
        ({"category": "kind", "categories": {"auto": "any"}}, "`category` needs `categories`"),
        ({"max_outputs": 2}, "needs `outputs`"),
        ({"inputs": {"person": "x"}}, "inputs.person is also the `person` input"),
        ({"options": {"garment": {"type": "string"}}}, "options.garment is also the `garment`"),
        ({"options": {"x": {"type": "string", "minimum": 1}}}, "minimum and maximum are for"),
        ({"options": {"x": {"type": "integer", "minimum": 5, "maximum": 1}}}, "minimum is above"),
        ({"options": {"x": {"type": "integer", "minimum": 0.5}}}, "whole numbers"),
        ({"options": {"x": {"type": "number", "choices": [1.5]}}}, "choices are for string"),
        ({"options": {"x": {"type": "string", "choices": ["a", 1]}}}, "must be a string"),
        ({"options": {"x": {"type": "string", "choices": []}}}, "choices is empty"),
        ({"options": {"x": {"type": "integer", "max_length": 3}}}, "max_length is for string"),
        ({"options": {"not-a-name": {"type": "string"}}}, "named like the model's input"),
    ],
)
def test_a_bad_entry_is_refused_naming_it(change: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=r'models\."acme/x": .*' + match.replace("(", r"\(")):
        models(**{"acme/x": {**MINIMAL, **change}})


async def test_a_bad_entry_stops_the_gateway_naming_the_provider(tmp_path: Any) -> None:
    text = (
        '[providers.replicate]\nenabled = true\napi_token = "t"\n'
        '[providers.replicate.models."acme/x"]\nmodel = "acme/tryon"\ncredits = 1\n'
        'person = "p"\ngarment = "p"\n'
    )
    with pytest.raises(ConfigError, match=r'providers\.replicate: models\."acme/x": .*both'):
        async with gateway(text, plugins=[tryon_replicate.plugin], tmp_path=tmp_path):
            pass


def test_the_readme_examples_parse_as_the_examples_module_holds_them() -> None:
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    block = readme.split("<!-- examples -->", 1)[1].split("```toml", 1)[1].split("```", 1)[0]
    settings = parse_settings(block, environ={"REPLICATE_API_TOKEN": "r8_x"})
    section = settings.providers["replicate"]
    assert section["models"] == EXAMPLES
