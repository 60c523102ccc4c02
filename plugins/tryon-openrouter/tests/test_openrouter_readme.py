"""The README documents every config key, every model key and every fault the fake renders."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
from tryon_openrouter import ConfiguredModel, OpenRouterConfig
from tryon_openrouter.fake import create_app

README = (Path(__file__).parents[1] / "README.md").read_text()


def documented_keys() -> set[str]:
    return set(re.findall(r"^\| `(\w+)` \|", README, re.M))


def test_every_config_key_and_model_key_is_documented() -> None:
    fields = msgspec.structs.fields(OpenRouterConfig) + msgspec.structs.fields(ConfiguredModel)
    missing = {field.name for field in fields} - documented_keys()
    assert not missing, f"README.md does not document {sorted(missing)}"


def test_every_fault_the_fake_renders_is_in_the_fault_table() -> None:
    faults = README.split("Its faults, as OpenRouter renders them", 1)[1]
    listed = set(re.findall(r"^\| `(\w+)` \|", faults, re.M))
    assert listed == set(create_app().state.fake.supported)
