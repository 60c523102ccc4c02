"""The contract kit itself: a correct plugin passes it, a plugin that maps faults wrongly fails."""

from __future__ import annotations

import textwrap

import pytest

pytest_plugins = ["pytester"]

PLUGIN = """
import base64
import httpx
from litestar import Request, post
from litestar.datastructures import State
from litestar.response import Response

from tryon_core import Capabilities, ModelSpec, OutputImage, ProviderConfig, ProviderSpec, hookimpl
from tryon_core.errors import {rate_error}, NoImage, ProviderUnavailable
from tryon_core.testing.fakes import FakeState, create_fake_app, result_image
from tryon_core.upstream import json_body, retry_after


class EchoConfig(ProviderConfig, kw_only=True, forbid_unknown_fields=True):
    secrets = ("api_key",)
    api_key: str | None = None


class EchoAdapter:
    def __init__(self, config):
        self.config = config

    async def run(self, request, context):
        response = await context.http.post(
            context.config.base_url + "/render",
            headers={{"Authorization": "Key " + context.config.api_key}},
            json={{"person": base64.b64encode(request.person.data).decode(),
                  "garment": base64.b64encode(request.garments[0].data).decode(),
                  "n": request.n}},
        )
        if response.status_code == 429:
            raise {rate_error}("busy", retry_after=retry_after(response))
        if response.status_code >= 500:
            raise ProviderUnavailable("down", provider_code=response.status_code)
        images = json_body(response, request.model)["images"]
        if not images:
            raise NoImage("nothing")
        return [OutputImage(data=base64.b64decode(i)) for i in images]


@post("/render", status_code=200)
async def render(request: Request, state: State) -> Response:
    body = await request.body()
    state.fake.record(request, body)
    if request.headers.get("authorization") != "Key secret-123":
        return Response({{"detail": "bad key"}}, status_code=401)
    fault = state.fake.next_fault()
    if fault and fault.kind == "rate_limit":
        headers = {{"Retry-After": str(int(fault.retry_after))}} if fault.retry_after else {{}}
        return Response({{"detail": "slow down"}}, status_code=429, headers=headers)
    if fault and fault.kind == "server_error":
        return Response({{"detail": "oops"}}, status_code=503)
    if fault and fault.kind == "hang":
        await FakeState.hang()
    data = await request.json()
    if fault and fault.kind == "no_image":
        return Response({{"images": []}})
    person, garment = base64.b64decode(data["person"]), base64.b64decode(data["garment"])
    images = [result_image(person, [garment], variant=i) for i in range(data["n"])]
    return Response({{"images": [base64.b64encode(i).decode() for i in images]}})


def create_app():
    return create_fake_app([render], faults=["rate_limit", "server_error", "hang", "no_image"])


class Plugin:
    @hookimpl
    def tryon_register_providers(self, registrar):
        registrar.add_provider(ProviderSpec(
            name="echo", config_type=EchoConfig, adapter_factory=EchoAdapter,
            fake="echo_plugin:create_app",
            models=(ModelSpec(slug="echo/one", name="Echo", description="test", credits=1,
                              capabilities=Capabilities(max_outputs=2)),),
        ))


plugin = Plugin()
"""

TESTS = """
from echo_plugin import plugin
from tryon_core.testing.contract import ProviderContract


class TestEchoContract(ProviderContract):
    plugin = plugin
    provider = "echo"
    config = {"api_key": "secret-123"}
"""


@pytest.mark.parametrize(
    ("rate_error", "passes"), [("RateLimited", True), ("ProviderUnavailable", False)]
)
def test_the_kit_passes_a_correct_plugin_and_fails_a_wrong_one(
    pytester: pytest.Pytester, rate_error: str, passes: bool
) -> None:
    pytester.makepyfile(echo_plugin=PLUGIN.format(rate_error=rate_error))
    pytester.makepyfile(test_echo=textwrap.dedent(TESTS))
    pytester.syspathinsert()
    result = pytester.runpytest_inprocess(
        "-q", "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning"
    )
    outcomes = result.parseoutcomes()
    if passes:
        assert outcomes.get("failed", 0) == 0, result.stdout.str()
        assert outcomes["passed"] >= 3
    else:
        assert outcomes.get("failed") == 1, result.stdout.str()
        result.stdout.fnmatch_lines(["*rate_limit*expected RateLimited*"])
