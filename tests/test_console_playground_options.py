"""The playground's per-model options without a browser: the page renders each model's options
as form controls made from the JSON Schema ``GET /api/v1/models`` publishes, a job sent with
``options`` hands the model what was set (its attempts say so), and a refused option is a 422
naming ``options.NAME`` before anything is charged."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from typing import Annotated, Any, Literal

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.console_helpers import SAMPLE_FORM, Client, csrf, finished, page, run, sign_in
from tests.helpers import new_key
from tests.jobs_helpers import money
from tryon_core.console.option_controls import OptionControl, controls
from tryon_core.plugin import ModelSpec
from tryon_core.testing import ScriptedProvider

UNSET = msgspec.UNSET
Unset = msgspec.UnsetType


class StudioOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Options of acme/studio."""

    mode: (
        Annotated[Literal["fast", "quality"], msgspec.Meta(description="Speed against fidelity.")]
        | Unset
    ) = UNSET
    strength: Annotated[float, msgspec.Meta(ge=0, le=1)] | Unset = UNSET
    steps: Annotated[int, msgspec.Meta(ge=1, le=50)] = 28
    mirror: Annotated[bool, msgspec.Meta(description="Flip the result.")] | Unset = UNSET
    sharpness: Annotated[float, msgspec.Meta(gt=0, description="How crisp.")] | Unset = UNSET


MODELS = (
    ModelSpec(slug="acme/studio", name="Studio", description="takes options", credits=5,
              options=StudioOptions),
    ModelSpec(slug="acme/plain", name="Plain", description="takes no options", credits=1),
)  # fmt: skip


@pytest.fixture
def scripted() -> ScriptedProvider:
    return ScriptedProvider(models=MODELS)


@pytest.fixture
async def signed_in(client: Client) -> str:
    """An account with 100 credits, signed in to the console; its id."""
    key, account = await new_key(client, credits=100, scope="management")
    await sign_in(client, key)
    return account


class Element:
    def __init__(self, tag: str, attrs: dict[str, str]) -> None:
        self.tag, self.attrs = tag, attrs
        self.parts: list[Element | str] = []

    @property
    def children(self) -> list[Element]:
        return [part for part in self.parts if isinstance(part, Element)]

    def all(self, tag: str | None = None, **attrs: str) -> list[Element]:
        """Every element under this one with ``tag`` and these attributes (``data_x``:
        ``data-x``)."""
        wanted = {name.replace("_", "-"): value for name, value in attrs.items()}
        found = []
        for child in self.children:
            if (tag is None or child.tag == tag) and all(
                child.attrs.get(name) == value for name, value in wanted.items()
            ):
                found.append(child)
            found.extend(child.all(tag, **attrs))
        return found

    def one(self, tag: str | None = None, **attrs: str) -> Element:
        (found,) = self.all(tag, **attrs)
        return found

    def words(self) -> str:
        """The element's text, its spaces collapsed."""
        texts = (part if isinstance(part, str) else part.words() for part in self.parts)
        return " ".join(" ".join(texts).split())


VOID = {"input", "img", "meta", "link", "br", "hr", "source"}


class Tree(HTMLParser):
    """A page as nested elements (enough of HTML for the console's own templates)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.root = Element("document", {})
        self.open = [self.root]
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {name: value or "" for name, value in attrs})
        self.open[-1].parts.append(element)
        if tag not in VOID:
            self.open.append(element)

    def handle_endtag(self, tag: str) -> None:
        while len(self.open) > 1 and self.open.pop().tag != tag:
            pass

    def handle_data(self, data: str) -> None:
        self.open[-1].parts.append(data)


async def playground(client: Client) -> Element:
    return Tree((await page(client, "/playground")).text).root


def choices(select: Element) -> list[tuple[str, str]]:
    return [(o.attrs["value"], o.words()) for o in select.all("option")]


async def test_each_models_options_are_rendered_from_its_schema(
    client: Client, signed_in: str
) -> None:
    root = await playground(client)
    sets = root.all("fieldset", data_testid="option-set")
    assert [s.attrs["data-model"] for s in sets] == ["acme/studio"]  # acme/plain takes none
    (studio,) = sets
    # no model but auto is chosen yet: every set is hidden, and its fields neither checked nor sent
    assert "hidden" in studio.attrs and "disabled" in studio.attrs
    assert studio.one("legend").words() == "Options of acme/studio"
    assert root.one(data_testid="options-note").words().startswith("Options belong to a model")
    labels = {label.words(): root.one(id=label.attrs["for"]) for label in studio.all("label")}
    assert list(labels) == ["Mode", "Strength", "Steps", "Mirror", "Sharpness"]

    mode = labels["Mode"]
    assert (mode.tag, mode.attrs["data-option"], mode.attrs["data-kind"]) == (
        "select", "mode", "choice",
    )  # fmt: skip
    assert choices(mode) == [("", "default"), ('"fast"', "fast"), ('"quality"', "quality")]
    assert choices(labels["Mirror"]) == [("", "default"), ("true", "true"), ("false", "false")]

    strength = labels["Strength"].attrs
    assert (strength["type"], strength["data-kind"]) == ("number", "number")
    assert (strength["min"], strength["max"], strength["step"]) == ("0", "1", "any")
    assert strength["placeholder"] == "default"
    steps = labels["Steps"].attrs
    assert (steps["data-kind"], steps["min"], steps["max"], steps["step"]) == (
        "integer", "1", "50", "1",
    )  # fmt: skip
    assert steps["placeholder"] == "28"  # the schema's default
    assert "max" not in labels["Sharpness"].attrs and labels["Sharpness"].attrs["min"] == "0"

    # each field's help: its name as the API takes it, its description, its bounds; and a place
    # for the gateway's refusal, which the field names as its description too
    for label, words in [
        ("Mode", "mode · Speed against fidelity."),
        ("Strength", "strength · From 0 to 1."),
        ("Steps", "steps · From 1 to 50."),
        ("Mirror", "mirror · Flip the result."),
        ("Sharpness", "sharpness · How crisp. More than 0."),
    ]:
        control = labels[label]
        help_id, error_id = control.attrs["aria-describedby"].split()
        assert root.one(id=help_id).words() == words
        error = root.one(id=error_id)
        assert error.attrs["data-for"] == control.attrs["data-option"] and "hidden" in error.attrs


async def test_the_controls_name_every_option_the_api_publishes(
    client: Client, signed_in: str
) -> None:
    listed = (await client.get("/api/v1/models")).json()["data"]
    published = {m["id"]: m["tryon"]["options"] for m in listed if m["id"] != "auto"}
    root = await playground(client)
    for slug, schema in published.items():
        rendered = root.all("fieldset", data_model=slug)
        if schema is None:
            assert rendered == []
            continue
        (fieldset,) = rendered
        names = [c.attrs["data-option"] for c in fieldset.all() if "data-option" in c.attrs]
        assert names == list(schema["properties"])


async def test_the_options_set_reach_the_model_and_its_attempt_says_so(
    client: Client, signed_in: str, scripted: ScriptedProvider
) -> None:
    options = {"mode": "quality", "strength": 0.25, "mirror": False}
    accepted = await run(
        client, {"model": (None, "acme/studio"), "options": (None, json.dumps(options))}
    )
    body = await finished(client, accepted["jobId"])
    assert body["status"] == "completed", body
    (attempt,) = body["attempts"]
    assert attempt["options"] == {"applied": ["mode", "strength", "mirror"], "dropped": []}
    (call,) = scripted.calls
    assert call.options == StudioOptions(mode="quality", strength=0.25, mirror=False)
    assert await money(client, signed_in) == (95, 0, 95, 0)
    # the generation's page lists them with the attempt
    detail = Tree((await page(client, f"/generations/{accepted['jobId']}")).text).root
    (row,) = detail.all(data_testid="attempt-row")
    assert row.one(data_testid="attempt-options").words() == "applied: mode, strength, mirror"


async def test_without_options_the_model_keeps_its_defaults(
    client: Client, signed_in: str, scripted: ScriptedProvider
) -> None:
    accepted = await run(client, {"model": (None, "acme/studio"), "options": (None, "")})
    body = await finished(client, accepted["jobId"])
    assert "options" not in body["attempts"][0]
    assert scripted.calls[0].options == StudioOptions()


@pytest.mark.parametrize(
    ("options", "status", "param", "words"),
    [
        ({"strength": 2}, 422, "options.strength", "acme/studio refuses options.strength"),
        ({"sharpness": 0}, 422, "options.sharpness", "> 0"),  # the form lets 0 through
        ({"colour": "red"}, 422, "options.colour", "not taken by any model"),
        ("{not json", 400, "options", "must be a JSON object"),
        ('["mode"]', 400, "options", "Expected `object`"),
    ],
)
async def test_a_refused_option_is_named_and_nothing_is_charged(
    client: Client,
    signed_in: str,
    scripted: ScriptedProvider,
    options: Any,
    status: int,
    param: str,
    words: str,
) -> None:
    text = options if isinstance(options, str) else json.dumps(options)
    response = await client.post(
        "/playground/jobs",
        files={**SAMPLE_FORM, "model": (None, "acme/studio"), "options": (None, text)},
        headers={"X-CSRF-Token": await csrf(client, "/playground")},
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["param"] == param
    assert words in error["message"]
    if status == 422:
        assert error["type"] == "invalid_option"
    assert scripted.calls == []
    assert await money(client, signed_in) == (100, 0, 100, 0)


# What the form lets through, the model takes: every choice offered, and every number within
# the bounds the field carries (but an exclusive bound itself, which the help text states).

Texts = st.text(alphabet="abcdefgh:-_0123456789", min_size=1, max_size=6)
Bound = st.one_of(st.none(), st.integers(-1000, 1000))


@st.composite
def option_types(draw: st.DrawFn) -> tuple[type[msgspec.Struct], dict[str, Any]]:
    """An options type of one field, and how its values are drawn: an enum of strings and
    integers, a boolean, or a bounded integer or number."""
    shape = draw(st.sampled_from(["enum", "boolean", "integer", "number"]))
    if shape == "enum":
        values = draw(st.lists(st.one_of(Texts, st.integers(-50, 50)), min_size=1, max_size=5))
        kind: Any = Literal[tuple(dict.fromkeys(values))]  # type: ignore[valid-type]
        return _options_type(kind, msgspec.Meta()), {"shape": shape}
    if shape == "boolean":
        return _options_type(bool, msgspec.Meta()), {"shape": shape}
    low, high = draw(Bound), draw(Bound)
    if low is not None and high is not None and low > high:
        low, high = high, low
    open_low = low is not None and draw(st.booleans())
    open_high = high is not None and draw(st.booleans())
    if open_low and open_high and high is not None and low is not None and high - low < 2:
        open_high = False
    meta = msgspec.Meta(
        ge=None if open_low else low,
        gt=low if open_low else None,
        le=None if open_high else high,
        lt=high if open_high else None,
    )
    base = int if shape == "integer" else float
    return _options_type(base, meta), {
        "shape": shape, "low": low, "high": high, "open": (open_low, open_high),
    }  # fmt: skip


def _options_type(base: Any, meta: msgspec.Meta) -> type[msgspec.Struct]:
    return msgspec.defstruct(
        "Drawn",
        [("value", Annotated[base, meta] | Unset, UNSET)],
        kw_only=True,
        forbid_unknown_fields=True,
    )


def takes(options: type[msgspec.Struct], value: Any) -> bool:
    try:
        msgspec.convert({"value": value}, options)
    except msgspec.ValidationError:
        return False
    return True


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(drawn=option_types(), data=st.data())
def test_what_the_form_lets_through_the_model_takes(
    drawn: tuple[type[msgspec.Struct], dict[str, Any]], data: st.DataObject
) -> None:
    options, how = drawn
    (control,) = controls(options)
    if how["shape"] in ("enum", "boolean"):
        assert control.kind == "choice"
        assert control.choices
        for choice in control.choices:
            assert takes(options, json.loads(choice.value)), choice
        return
    assert control.kind == how["shape"]
    low = float(control.minimum) if control.minimum else None
    high = float(control.maximum) if control.maximum else None
    assert (low, high) == (
        None if how["low"] is None else float(how["low"]),
        None if how["high"] is None else float(how["high"]),
    )
    value = data.draw(_within(control, low, high))
    at_open_bound = (how["open"][0] and value == low) or (how["open"][1] and value == high)
    assert takes(options, value) != at_open_bound, (value, control)
    if low is not None:
        assert not takes(options, low - 1)  # below what the field allows
    if high is not None:
        assert not takes(options, high + 1)


def _within(control: OptionControl, low: float | None, high: float | None) -> Any:
    """A value the browser lets through a number field with these ``min``, ``max``, ``step``."""
    if control.step == "1":
        return st.integers(None if low is None else int(low), None if high is None else int(high))
    assert control.step == "any"
    return st.floats(low, high, allow_nan=False, allow_infinity=False)
