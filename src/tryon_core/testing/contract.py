"""The plugin contract kit: what every provider plugin must do, as tests a plugin turns on.

A plugin's test suite subclasses :class:`ProviderContract` in a module pytest collects::

    from tryon_core.errors import ProviderUnavailable, RateLimited
    from tryon_core.testing.contract import FaultExpectation, ProviderContract
    import tryon_example.plugin

    class TestExampleContract(ProviderContract):
        plugin = tryon_example.plugin
        provider = "example"
        config = {"api_key": "test-key"}
        faults = {
            "rate_limit": FaultExpectation(RateLimited, hint=True),
            "server_error": FaultExpectation(ProviderUnavailable),
        }

The kit serves the provider's fake upstream (``ProviderSpec.fake``) on 127.0.0.1 and runs the
adapter the way the gateway does (:func:`tryon_core.fallback.run_attempt`), checking that:

- results decode, come back ``n`` at a time in the requested format, for Hypothesis-generated
  requests within the declared capabilities (image formats, sizes and EXIF orientations;
  garment counts and categories; ``n``; seeds);
- each injected fault becomes the declared error class, with the retry hint when the protocol
  carries one and none when it does not;
- requests beyond the declared limits are refused by the gateway before any upstream call;
- no secret from the config appears in an error or a log record;
- a submit-poll adapter records its task id and resumes from it without submitting again.
"""

from __future__ import annotations

import asyncio
import io
import logging
import secrets
import tempfile
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import httpx
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from tryon_core.amounts import is_credits
from tryon_core.egress import EgressPolicy, GuardedFetcher
from tryon_core.errors import (
    BadResponse,
    ContentRefused,
    InputRejected,
    NoImage,
    ProviderError,
    ProviderMisconfigured,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    TaskFailed,
)
from tryon_core.fallback import Produced, result_download, run_attempt
from tryon_core.imaging import ImageLimits, load_image
from tryon_core.plugins import collect_providers, make_plugin_manager
from tryon_core.provider import (
    InputImage,
    ModelSpec,
    ProviderConfig,
    ProviderContext,
    ProviderRequest,
    ProviderSpec,
)
from tryon_core.testing.fakes import FAULT_KINDS, FakeState, Fault, load_fake
from tryon_core.testing.server import serve_app_in_thread

__all__ = [
    "STANDARD_FAULTS",
    "FaultExpectation",
    "ProviderContract",
    "synthetic_garment",
    "synthetic_person",
]

_LIMITS = ImageLimits()
_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}


ImageFactory = Callable[[int, int, str, int], bytes]


class FaultExpectation(msgspec.Struct, frozen=True):
    """What a fault must become: an error class (None: it must still succeed).

    ``hint``: the protocol carries a wait hint for this fault; the kit then injects it both
    with a hint (which must arrive as ``retry_after``) and without (``retry_after`` is None).
    """

    error: type[ProviderError] | None
    hint: bool = False


STANDARD_FAULTS: dict[str, FaultExpectation] = {
    "rate_limit": FaultExpectation(RateLimited, hint=True),
    "quota": FaultExpectation(ProviderMisconfigured),
    "server_error": FaultExpectation(ProviderUnavailable),
    "hang": FaultExpectation(ProviderTimeout),
    "malformed": FaultExpectation(BadResponse),
    "no_image": FaultExpectation(NoImage),
    "bad_image": FaultExpectation(BadResponse),
    "content_refused": FaultExpectation(ContentRefused),
    "invalid_input": FaultExpectation(InputRejected),
    "auth": FaultExpectation(ProviderMisconfigured),
    "task_failed": FaultExpectation(TaskFailed),
    "slow_task": FaultExpectation(None),
}
"""What each fault kind becomes unless a plugin's ``faults`` says otherwise."""


def synthetic_person(width: int, height: int, fmt: str = "JPEG", orientation: int = 1) -> bytes:
    """A plain figure on a light background (head, torso, legs), with an EXIF orientation."""
    image = Image.new("RGB", (width, height), (232, 228, 220))
    draw = ImageDraw.Draw(image)
    cx, unit = width // 2, min(width, height) // 12
    draw.ellipse((cx - unit, unit, cx + unit, 3 * unit), fill=(224, 180, 150))
    draw.rectangle((cx - 2 * unit, 3 * unit, cx + 2 * unit, 7 * unit), fill=(40, 90, 140))
    draw.rectangle((cx - 2 * unit, 7 * unit, cx + 2 * unit, 11 * unit), fill=(30, 40, 70))
    buffer = io.BytesIO()
    exif = Image.Exif()
    if orientation != 1 and fmt == "JPEG":
        exif[0x0112] = orientation
    image.save(buffer, format=fmt, exif=exif.tobytes() if len(exif) else b"")
    return buffer.getvalue()


def synthetic_garment(width: int, height: int, fmt: str = "PNG", hue: int = 0) -> bytes:
    """A T-shirt-like shape on a white product-photo background."""
    image = Image.new("RGB", (width, height), (250, 250, 250))
    draw = ImageDraw.Draw(image)
    colour = ((hue * 53) % 200 + 30, (hue * 97) % 200 + 30, (hue * 31) % 200 + 30)
    w, h = width, height
    draw.polygon(
        [
            (w * 0.3, h * 0.1),
            (w * 0.7, h * 0.1),
            (w * 0.95, h * 0.3),
            (w * 0.8, h * 0.4),
            (w * 0.75, h * 0.9),
            (w * 0.25, h * 0.9),
            (w * 0.2, h * 0.4),
            (w * 0.05, h * 0.3),
        ],
        fill=colour,
    )
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


class _Fake(msgspec.Struct):
    url: str | None
    state: FakeState | None


class ProviderContract:
    """Subclass as ``Test…`` in a plugin's tests and set the class attributes below."""

    plugin: ClassVar[object]
    """The object or module holding the plugin's ``@hookimpl``."""
    provider: ClassVar[str]
    """The provider's name (its ``[providers.NAME]`` section)."""
    config: ClassVar[dict[str, Any]] = {}
    """The provider's own config keys for the fake (test credentials)."""
    fake_options: ClassVar[dict[str, Any]] = {}
    """Keyword arguments for the fake's factory."""
    faults: ClassVar[dict[str, FaultExpectation]] = {}
    """Only where a fault becomes something other than ``STANDARD_FAULTS`` says. Every kind the
    fake renders is checked."""
    base_path: ClassVar[str] = ""
    """Appended to the fake's URL to make ``base_url`` (e.g. ``"/v1"`` for an API whose
    ``base_url`` includes its version)."""
    submission: ClassVar[tuple[str, str] | None] = None
    """Submit-poll providers: the method and path suffix of the submit call."""
    # -- fixtures ---------------------------------------------------------------------------

    @pytest.fixture
    def contract_spec(self) -> ProviderSpec:
        manager = make_plugin_manager(extra_plugins=[self.plugin], load_entry_points=False)
        registry = collect_providers(manager)
        assert self.provider in registry.providers, (
            f"{self.plugin!r} registers no {self.provider!r}"
        )
        spec = registry.providers[self.provider]
        if spec.models_from_config is None:
            return spec
        config = msgspec.convert({**self.config, "enabled": True}, spec.config_type)
        configured = tuple(spec.models_from_config(config))
        assert spec.models or configured, "`config` configures no model for the kit to run"
        return msgspec.structs.replace(spec, models=spec.models + configured)

    @pytest.fixture
    def contract_fake(self, contract_spec: ProviderSpec) -> Iterator[_Fake]:
        if contract_spec.fake is None:
            yield _Fake(None, None)
            return
        app = load_fake(contract_spec.fake, **self.fake_options)
        with serve_app_in_thread(app) as url:
            yield _Fake(url, app.state.fake)

    # -- helpers ----------------------------------------------------------------------------

    def make_person(self, width: int, height: int, fmt: str, orientation: int) -> bytes:
        """A person photo for the kit's requests; override to use a real photo."""
        return synthetic_person(width, height, fmt, orientation)

    def make_garment(self, width: int, height: int, fmt: str, variant: int) -> bytes:
        """A garment product photo for the kit's requests; override to use a real one."""
        return synthetic_garment(width, height, fmt, variant)

    def provider_config(self, spec: ProviderSpec, fake: _Fake, timeout: float) -> ProviderConfig:
        values = {**self.config, "enabled": True, "timeout": timeout}
        if fake.url:
            values["base_url"] = fake.url + self.base_path
        return msgspec.convert(values, spec.config_type)

    @classmethod
    def expectation(cls, kind: str) -> FaultExpectation:
        """What fault ``kind`` must become for this provider."""
        return cls.faults.get(kind, STANDARD_FAULTS[kind])

    def secrets_of(self, spec: ProviderSpec) -> list[str]:
        return [str(self.config[n]) for n in spec.config_type.secrets if self.config.get(n)]

    def run(
        self,
        spec: ProviderSpec,
        fake: _Fake,
        request: ProviderRequest,
        *,
        timeout: float = 20.0,
        task_id: str | None = None,
        attempt_key: str | None = None,
        resumed: bool = False,
        die_on_record: bool = False,
    ) -> tuple[list[Produced] | ProviderError, list[str]]:
        """Run one attempt as the gateway would; returns its images or its error, and task ids.
        ``die_on_record``: the process "dies" as the task id is being kept (the attempt ends
        there with ``_Died``, the id unrecorded)."""
        config = self.provider_config(spec, fake, timeout)
        adapter = self._adapter(spec, config)
        recorded: list[str] = []

        async def go() -> list[Produced] | ProviderError:
            allowed = frozenset({fake.url.removeprefix("http://")} if fake.url else ())
            fetcher = GuardedFetcher(EgressPolicy(allow_hosts=allowed, max_bytes=64 << 20))

            async def record_task(value: str) -> None:
                if die_on_record:
                    raise _Died(value)
                recorded.append(value)

            async with httpx.AsyncClient(timeout=timeout) as http:
                context = ProviderContext(
                    http=http,
                    config=config,
                    timeout=timeout,
                    record_task=record_task,
                    fetch=result_download(fetcher, request.model),
                    task_id=task_id,
                    attempt_key=attempt_key,
                    resumed=resumed,
                )
                try:
                    return await run_attempt(
                        adapter, request, context, slug=request.model, limits=_LIMITS
                    )
                except ProviderError as error:
                    return error
                finally:
                    await fetcher.aclose()

        return asyncio.run(go()), recorded

    def _adapter(self, spec: ProviderSpec, config: ProviderConfig) -> Any:
        """One adapter per test and config, as the gateway keeps one per process."""
        cache: dict[bytes, Any] = self.__dict__.setdefault("_adapters", {})
        key = msgspec.json.encode(config)
        if key not in cache:
            cache[key] = spec.adapter_factory(config)
        return cache[key]

    def simple_request(self, model: ModelSpec, **changes: Any) -> ProviderRequest:
        caps = model.capabilities
        side = max(caps.min_input_side, 384)
        fmt = "image/jpeg" if "image/jpeg" in caps.input_formats else caps.input_formats[0]
        person = self._image(self.make_person, side, side * 4 // 3, fmt, 1)
        garment = self._image(self.make_garment, side, side, fmt, 0)
        base: dict[str, Any] = {
            "model": model.slug,
            "person": person,
            "garments": (garment,),
            "options": None if model.options is None else msgspec.convert({}, model.options),
        }
        return ProviderRequest(**{**base, **changes})

    @staticmethod
    def _image(
        factory: Callable[..., bytes], w: int, h: int, mime: str, variant: int
    ) -> InputImage:
        return load_image(factory(w, h, _FORMATS[mime], variant), param="contract", limits=_LIMITS)

    # -- the contract -----------------------------------------------------------------------

    def test_contract_declares_honest_models(self, contract_spec: ProviderSpec) -> None:
        for model in contract_spec.models:
            caps = model.capabilities
            assert is_credits(model.credits) and model.name and model.description
            assert caps.execution in ("sync", "submit-poll")
            assert set(caps.input_formats) <= set(_FORMATS), model.slug
            assert caps.max_garments >= 1 and caps.max_outputs >= 1 and caps.categories
            if caps.execution == "submit-poll" and contract_spec.fake is not None:
                assert self.submission is not None, "submit-poll providers set `submission`"
            if model.options is not None:
                schema = msgspec.json.schema(model.options)
                assert schema, model.slug
                # no option is required: a request without options is a whole request
                msgspec.convert({}, model.options)
        assert set(self.faults) <= set(FAULT_KINDS)

    @settings(
        max_examples=8,
        deadline=None,
        # each plugin subclass runs this same method: differing executors are expected
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.differing_executors,
        ],
    )
    @given(data=st.data())
    def test_contract_results_match_the_request(
        self, contract_spec: ProviderSpec, contract_fake: _Fake, data: st.DataObject
    ) -> None:
        model = data.draw(st.sampled_from(contract_spec.models), label="model")
        caps = model.capabilities
        low = max(caps.min_input_side, 64)
        high = max(low, min(caps.max_input_side, 768))
        width = data.draw(st.integers(low, high), label="width")
        height = data.draw(st.integers(low, high), label="height")
        mime = data.draw(st.sampled_from(caps.input_formats), label="format")
        orientation = data.draw(
            st.sampled_from([1, 3, 6, 8]) if mime == "image/jpeg" else st.just(1)
        )
        garments = data.draw(st.integers(1, caps.max_garments), label="garments")
        request = ProviderRequest(
            model=model.slug,
            person=self._image(self.make_person, width, height, mime, orientation),
            garments=tuple(
                self._image(self.make_garment, low + 32, low + 32, mime, hue)
                for hue in range(garments)
            ),
            # several garments make an outfit (a top and a bottom), never a one-piece
            category=data.draw(
                st.sampled_from([c for c in caps.categories if garments == 1 or c != "one-pieces"]),
                label="category",
            ),
            prompt=data.draw(st.sampled_from([None, "a relaxed fit"]))
            if caps.uses_prompt
            else None,
            n=data.draw(st.integers(1, caps.max_outputs), label="n"),
            seed=data.draw(st.integers(0, 2**31 - 1)) if caps.supports_seed else None,
            output_format=data.draw(st.sampled_from(["png", "jpeg", "webp"]), label="output"),
            options=None if model.options is None else msgspec.convert({}, model.options),
        )
        result, _ = self.run(contract_spec, contract_fake, request)
        assert not isinstance(result, ProviderError), f"{model.slug}: {result!r}"
        assert len(result) == request.n
        wanted = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
        assert all(p.content_type == wanted[request.output_format] for p in result)
        assert all(p.width > 0 and p.height > 0 for p in result)

    def test_contract_faults_become_the_right_errors(
        self,
        contract_spec: ProviderSpec,
        contract_fake: _Fake,
    ) -> None:
        if contract_fake.state is None:
            pytest.skip("this provider has no upstream, so no upstream faults")
        logs = _LogCapture()
        model = contract_spec.models[0]
        request = self.simple_request(model)
        secrets = self.secrets_of(contract_spec)
        problems: list[str] = []
        for kind in contract_fake.state.supported:
            expected = self.expectation(kind)
            variants = [Fault(kind=kind, retry_after=7.0), Fault(kind=kind)]  # type: ignore[arg-type]
            for fault in variants if expected.hint else variants[1:]:
                if kind == "slow_task":
                    fault = Fault(kind="slow_task", seconds=0.5)
                contract_fake.state.faults.clear()
                contract_fake.state.inject(fault)
                timeout = 1.5 if kind == "hang" else 20.0
                result, _ = self.run(contract_spec, contract_fake, request, timeout=timeout)
                problems += _check_fault(kind, fault, expected, result, secrets)
        logs.close()
        problems += [f"a log record shows a secret: {s[:4]}…" for s in secrets if s in logs.text]
        assert not problems, "\n".join(problems)

    def test_contract_limits_are_enforced_before_any_upstream_call(
        self, contract_spec: ProviderSpec, contract_fake: _Fake
    ) -> None:
        from litestar.testing import AsyncTestClient

        from tryon_core import accounts, billing
        from tryon_core.api import create_app
        from tryon_core.config import parse_settings

        model = contract_spec.models[0]
        caps = model.capabilities
        person = synthetic_person(400, 520)
        garment = synthetic_garment(300, 300)
        too_much: list[dict[str, Any]] = []
        if caps.max_outputs < 4:
            too_much.append({"n": caps.max_outputs + 1})
        if caps.max_garments < 4:
            too_much.append({"garments": caps.max_garments + 1})
        missing = [c for c in ("tops", "bottoms", "one-pieces") if c not in caps.categories]
        if missing:
            too_much.append({"category": missing[0]})
        if not too_much:
            pytest.skip("the model accepts everything the gateway itself allows")

        with tempfile.TemporaryDirectory() as folder:
            section = {**self.config, "enabled": True, "timeout": 10}
            if contract_fake.url:
                section["base_url"] = contract_fake.url + self.base_path
            text = (
                f'[database]\nurl = "sqlite+aiosqlite:///{folder}/db.sqlite"\n'
                f'[storage]\npath = "{folder}/files"\n'
                + f"[providers.{self.provider}]\n"
                + "".join(f"{_toml_key(k)} = {_toml(v)}\n" for k, v in section.items())
            )
            app = create_app(
                parse_settings(text), extra_plugins=[self.plugin], load_entry_points=False
            )

            async def go() -> list[tuple[int, int]]:
                outcomes = []
                async with AsyncTestClient(app=app) as client:
                    database = app.state.gateway.database
                    async with database.transaction() as conn:
                        account = await accounts.create_account(conn)
                        _, key = await accounts.create_key(conn, account_id=account, name="kit")
                        await billing.grant(conn, account, 1000)
                    before = len(contract_fake.state.requests) if contract_fake.state else 0
                    for change in too_much:
                        body = {
                            "model": model.slug,
                            "person_images": _data_url(person, "image/jpeg"),
                            "garment_images": [_data_url(garment, "image/png")]
                            * change.get("garments", 1),
                            **{k: v for k, v in change.items() if k != "garments"},
                        }
                        response = await client.post(
                            "/api/v1/tryon", json=body, headers={"Authorization": f"Bearer {key}"}
                        )
                        after = len(contract_fake.state.requests) if contract_fake.state else 0
                        outcomes.append((response.status_code, after - before))
                    credits = await client.get(
                        "/api/v1/credits", headers={"Authorization": f"Bearer {key}"}
                    )
                    assert credits.json()["balance"] == 1000
                return outcomes

            outcomes = asyncio.run(go())
        assert all(400 <= status < 500 for status, _ in outcomes), outcomes
        assert all(calls == 0 for _, calls in outcomes), outcomes

    def test_contract_resumes_from_a_recorded_task(
        self, contract_spec: ProviderSpec, contract_fake: _Fake
    ) -> None:
        model = next(
            (m for m in contract_spec.models if m.capabilities.execution == "submit-poll"), None
        )
        if model is None or contract_fake.state is None or self.submission is None:
            pytest.skip("no submit-poll model with a fake upstream to resume from")
        request = self.simple_request(model)
        result, tasks = self.run(contract_spec, contract_fake, request)
        assert not isinstance(result, ProviderError), result
        assert len(tasks) == 1, "record_task must be called once, before polling"
        submissions = self._submissions(contract_fake.state)
        resumed, _ = self.run(contract_spec, contract_fake, request, task_id=tasks[0])
        assert not isinstance(resumed, ProviderError), resumed
        assert len(resumed) == request.n
        assert self._submissions(contract_fake.state) == submissions, "resuming submitted again"

    def test_contract_a_keyed_task_is_found_again_after_a_crash(
        self, contract_spec: ProviderSpec, contract_fake: _Fake
    ) -> None:
        """A model with ``keyed_tasks``: the process dies after the upstream accepted the task
        but before its id was kept; the attempt, run again with the same key, finds the task
        and polls it: the upstream holds one task, and the result comes."""
        model = next((m for m in contract_spec.models if m.capabilities.keyed_tasks), None)
        if model is None or contract_fake.state is None or self.submission is None:
            pytest.skip("no model with keyed_tasks and a fake upstream")
        request = self.simple_request(model)
        key = f"gen_contract{secrets.token_hex(4)}-0"
        with pytest.raises(_Died):
            self.run(contract_spec, contract_fake, request, attempt_key=key, die_on_record=True)
        accepted = self._submissions(contract_fake.state)
        result, tasks = self.run(
            contract_spec, contract_fake, request, attempt_key=key, resumed=True
        )
        assert not isinstance(result, ProviderError), result
        assert len(result) == request.n and len(tasks) == 1
        assert self._submissions(contract_fake.state) == accepted, (
            "the crashed task was submitted again"
        )

    def _submissions(self, state: FakeState) -> int:
        assert self.submission is not None
        method, suffix = self.submission
        return sum(1 for r in state.requests if r.method == method and r.path.endswith(suffix))


class _Died(BaseException):  # not an Exception: run_attempt must not turn it into an error
    """Stands for the process dying (a test's record_task raises it)."""


class _LogCapture(logging.Handler):
    """Every log record of every logger, formatted, while it is attached to the root."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self._root = logging.getLogger()
        self._level = self._root.level
        self._root.addHandler(self)
        self._root.setLevel(logging.DEBUG)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.getMessage()} {record.args!r} {record.exc_text or ''}")

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def close(self) -> None:
        self._root.removeHandler(self)
        self._root.setLevel(self._level)
        super().close()


def _check_fault(
    kind: str,
    fault: Fault,
    expected: FaultExpectation,
    result: list[Produced] | ProviderError,
    secrets: list[str],
) -> list[str]:
    label = f"{kind}" + (" (with hint)" if fault.retry_after else "")
    if expected.error is None:
        return [] if not isinstance(result, ProviderError) else [f"{label}: failed with {result!r}"]
    if not isinstance(result, expected.error):
        return [f"{label}: expected {expected.error.__name__}, got {result!r}"]
    problems = []
    if kind == "hang" and not isinstance(result, ProviderTimeout):
        problems.append(f"{label}: a hang must end as a timeout")
    if expected.hint and fault.retry_after and result.retry_after != pytest.approx(7.0, abs=1.0):
        problems.append(f"{label}: retry_after {result.retry_after} instead of 7")
    if expected.hint and not fault.retry_after and result.retry_after is not None:
        problems.append(f"{label}: retry_after {result.retry_after} without a hint")
    text = f"{result.message} {result.upstream_message or ''} {result.provider_code or ''}"
    problems += [f"{label}: the error shows a secret" for s in secrets if s in text]
    return problems


def _data_url(data: bytes, mime: str) -> str:
    import base64

    return f"data:{mime};base64," + base64.b64encode(data).decode()


def _toml(value: Any) -> str:
    """``value`` as a TOML value: a nested table (models listed in config) as an inline one."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _toml_key(key: Any) -> str:
    text = str(key)
    return (
        text
        if text and all(c.isascii() and (c.isalnum() or c in "_-") for c in text)
        else _toml(text)
    )
