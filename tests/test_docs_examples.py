"""Every example the documentation tells a user to copy, run for real.

* ``docs/examples/quickstart.sh`` and ``tryon_client.py`` against a real ``tryon serve``
  subprocess on a free 127.0.0.1 port;
* ``docs/examples/tryon-json.json`` posted to the gateway, its image URLs served locally and let
  through the egress guard with ``[fetch] allow_hosts``;
* ``docs/examples/production.toml`` validated the way ``tryon serve`` validates it;
* the two example plugins (``example_plugin/``, ``upstream_plugin/``): their own tests (the
  contract kit among them) run with pytest as their authors run them, and their scenarios
  through the HTTP API, Acme's against its fake, mounted as ``tryon fakes serve`` mounts it;
* docs/plugins.md's warning that ``AsyncTestClient`` blocks a fake served in the test's loop;
* README's "Offline against every provider": ``tryon fakes serve`` and ``tryon serve`` as
  subprocesses, its curl flow with a fault and the fallback, and docs/providers.md's faults;
* the worked examples inside docs/api.md (routing order) and docs/billing.md (ledger rows,
  the 402 body), read from the Markdown and checked against what the gateway does.
"""

from __future__ import annotations

import base64
import functools
import http.server
import importlib
import io
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from PIL import Image
from sqlalchemy import select

from tests.helpers import ROOT, SAMPLES, auth, data_url, new_key, own_database
from tests.server_logs import session_log
from tryon_core import Capabilities, ModelSpec, ProviderConfig, ProviderSpec, hookimpl
from tryon_core.api import create_app
from tryon_core.cli import main
from tryon_core.config import parse_settings
from tryon_core.db.schema import ledger
from tryon_core.errors import ConfigError, ProviderUnavailable
from tryon_core.plugins import collect_providers, make_plugin_manager
from tryon_core.testing import ScriptedProvider
from tryon_core.testing.contract import STANDARD_FAULTS
from tryon_core.testing.fakes import FAULT_KINDS, FakeState, Fault, load_fake, mount_fakes
from tryon_core.testing.server import serve_app, serve_app_in_thread

DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
PNG = b"\x89PNG\r\n\x1a\n"
JPEG = b"\xff\xd8\xff"
SERVE = "from tryon_core.cli import main; raise SystemExit(main())"

Client = AsyncTestClient[Litestar]

pytest_plugins = ["pytester"]


def example_module(folder: str, name: str) -> ModuleType:
    """Import a module that lives in docs/examples/FOLDER, as its own tests would."""
    path = str(EXAMPLES / folder)
    if path not in sys.path:
        sys.path.insert(0, path)
    return importlib.import_module(name)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def block_after(markdown: str, marker: str) -> str:
    """The first fenced code block after ``<!-- marker -->``."""
    tail = markdown.split(f"<!-- {marker} -->", 1)[1]
    match = re.search(r"```[a-z]*\n(.*?)```", tail, re.S)
    assert match, f"no code block after the {marker} marker"
    return match.group(1)


def table_after(markdown: str, marker: str) -> list[list[str]]:
    """The body rows of the first Markdown table after ``<!-- marker -->``."""
    tail = markdown.split(f"<!-- {marker} -->", 1)[1].lstrip("\n")
    rows = []
    for line in tail.splitlines():
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    assert len(rows) > 2, f"no table after the {marker} marker"
    return rows[2:]


def link_path(url: str) -> str:
    """A signed link without its host: the test client serves the app under its own name."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


# -- a real `tryon serve` -------------------------------------------------------------------------


class Server:
    def __init__(self, url: str, config: Path, env: dict[str, str], root: Path) -> None:
        self.url = url
        self.config = config
        self.env = env
        self.root = root

    def cli(self, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
        """``tryon ARGS --config CONFIG``, in this process (a subprocess takes seconds)."""
        capsys.readouterr()
        try:
            code = main([*args, "--config", str(self.config)])
        except SystemExit as exc:  # argparse's usage errors
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("serve")
    port = free_port()
    config = root / "tryon.toml"
    # The port is given on the command line only: the links the API returns follow it.
    config.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{root}/tryon.db"\n'
        f'[storage]\npath = "{root}/files"\n'
        "[providers.local]\nenabled = true\n"
    )
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("TRYON_CONFIG", None)
    log_path = session_log(root / "serve.log")  # scanned for secrets at the session's end
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, "serve", "--config", str(config), "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"tryon serve exited: {log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"tryon serve did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        yield Server(url, config, env, root)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_quickstart_script(server: Server, tmp_path: Path) -> None:
    out = tmp_path / "result.png"
    env = {
        **server.env,
        "TRYON_CONFIG": str(server.config),
        "TRYON_URL": server.url,
        "TRYON": "tryon",
        "OUT": str(out),
    }
    done = subprocess.run(
        ["bash", str(EXAMPLES / "quickstart.sh")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert out.read_bytes().startswith(PNG)
    lines = done.stdout.strip().splitlines()
    tryon = json.loads(lines[0])
    assert tryon["model"] == "local/overlay" and tryon["usage"] == {"credits": 1}
    credits = json.loads(lines[-1])
    assert (credits["balance"], credits["reserved"]) == (9, 0)


def test_python_client(server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = server.cli(
        capsys, "keys", "create", "--name", "client", "--credits", "3", "--json"
    )
    assert code == 0, err
    key = json.loads(out)["key"]
    out = tmp_path / "result.jpg"
    run = functools.partial(
        subprocess.run,
        cwd=ROOT,
        env={**server.env, "TRYON_URL": server.url, "TRYON_KEY": key},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    args = [sys.executable, str(EXAMPLES / "tryon_client.py"), "samples/person.jpg"]
    done = run([*args, "samples/garment.png", str(out)])
    assert done.returncode == 0, done.stderr
    assert "local/overlay charged 1 credit(s)" in done.stdout
    assert out.read_bytes().startswith(JPEG)

    # The same client against an empty account prints the error envelope and exits 1.
    _, broke, _ = server.cli(capsys, "keys", "create", "--name", "broke", "--json")
    env = {**server.env, "TRYON_URL": server.url, "TRYON_KEY": json.loads(broke)["key"]}
    refused = run([*args, "samples/garment.png", str(out)], env=env)
    assert refused.returncode == 1
    assert refused.stderr.startswith("402 payment_required: Insufficient credits")


def test_async_job_example(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/examples/async_job.py: submit, follow the WebSocket, download; and a refusal."""
    code, out, err = server.cli(
        capsys, "keys", "create", "--name", "jobs", "--credits", "2", "--json"
    )
    assert code == 0, err
    key = json.loads(out)["key"]
    result = tmp_path / "job.png"
    command = [sys.executable, str(EXAMPLES / "async_job.py"), "samples/person.jpg"]
    env = {**server.env, "TRYON_URL": server.url, "TRYON_KEY": key}
    done = subprocess.run(
        [*command, "samples/garment.png", str(result)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("submitted gen_")
    assert lines[-2] == "completed"
    assert lines[-1] == f"saved {result}; charged 1 credits"
    assert all(line.split()[0] in ("queued", "processing") for line in lines[1:-2])
    assert result.read_bytes().startswith(PNG)

    _, broke, _ = server.cli(capsys, "keys", "create", "--name", "jobs-broke", "--json")
    refused = subprocess.run(
        [*command, "samples/garment.png", str(result)],
        cwd=ROOT,
        env={**env, "TRYON_KEY": json.loads(broke)["key"]},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert refused.returncode == 1
    assert refused.stderr.startswith("Insufficient credits")


def test_demo_page_server_snippet_mints_a_token_the_page_can_use(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """server_snippet.py with a management key prints the page's link; with the token in it,
    a client on that origin does what demo.js does: models, an async try-on, its WebSocket
    (here: polling), the result file. Another origin is refused."""
    _, out, _ = server.cli(capsys, "keys", "create", "--name", "shop", "--credits", "5", "--json")
    account = json.loads(out)["account_id"]
    _, out, _ = server.cli(
        capsys, "keys", "create", "--name", "admin", "--account", account,
        "--scope", "management", "--json",
    )  # fmt: skip
    admin = json.loads(out)["key"]
    origin = "http://localhost:8001"
    snippet = subprocess.run(
        [sys.executable, str(EXAMPLES / "demo_page" / "server_snippet.py"), origin],
        env={**server.env, "TRYON_URL": server.url, "TRYON_ADMIN_KEY": admin},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert snippet.returncode == 0, snippet.stderr
    link = snippet.stdout.strip()
    assert link.startswith(f"{origin}/index.html#gateway=")
    fragment = dict(p.split("=", 1) for p in urlsplit(link).fragment.split("&"))
    token = fragment["token"]
    assert token.startswith("tryon_demo_") and admin not in link
    page = {"Authorization": f"Bearer {token}", "Origin": origin}
    with httpx.Client(base_url=server.url, timeout=60) as http:
        preflight = http.options(
            "/api/v1/tryon",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert preflight.headers["access-control-allow-origin"] == origin
        models = http.get("/api/v1/models", headers=page).json()["data"]
        assert "local/overlay" in [m["id"] for m in models]
        accepted = http.post(
            "/api/v1/tryon",
            files={
                "person_images": (SAMPLES / "person.jpg").read_bytes(),
                "garment_images": (SAMPLES / "garment.png").read_bytes(),
            },
            data={"mode": "async", "model": "local/overlay"},
            headers=page,
        )
        assert accepted.status_code == 202, accepted.text
        job_url = f"/api/v1/tryon/{accepted.json()['jobId']}"
        for _ in range(300):
            job = http.get(job_url, headers=page).json()
            if job["status"] in ("completed", "failed"):
                break
            time.sleep(0.05)
        assert job["status"] == "completed", job
        image = http.get(link_path(job["images"][0]["url"]))
        assert image.status_code == 200 and image.headers["content-type"].startswith("image/")
        elsewhere = http.get(job_url, headers=page | {"Origin": "http://localhost:8002"})
        assert elsewhere.status_code == 403
        assert elsewhere.json()["error"]["type"] == "origin_not_allowed"


def test_demo_page_is_static_and_uses_only_what_a_token_may() -> None:
    folder = EXAMPLES / "demo_page"
    html = (folder / "index.html").read_text()
    script = (folder / "demo.js").read_text()
    assert re.findall(r"<script[^>]*>(.*?)</script>", html, re.S) == [""]  # no inline script
    assert 'src="demo.js"' in html and 'href="demo.css"' in html
    assert not re.search(r"\son[a-z]+=", html)  # no inline handlers either
    used = set(re.findall(r"/api/v1/[a-z/${}.A-Za-z]*", script))
    assert used == {"/api/v1/models", "/api/v1/tryon", "/api/v1/tryon/${jobId}/ws"}
    assert "tryon_" not in script.replace("tryon_demo_", "")  # never a key


def test_cli_json_outputs_match_docs(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    """The fields docs/cli.md lists for every --json output, and its exit statuses."""

    def json_of(*args: str) -> Any:
        code, out, err = server.cli(capsys, *args, "--json")
        assert code == 0, err
        return json.loads(out)

    created = json_of("keys", "create", "--name", "d")
    assert set(created) == {
        "id",
        "account_id",
        "name",
        "prefix",
        "created_at",
        "last_used_at",
        "revoked_at",
        "scope",
        "limit_reset",
        "requests_per_minute",
        "concurrent_generations",
        "limit",
        "limit_remaining",
        "key",
        "balance",
    }
    assert created["scope"] == "inference"
    assert created["key"].startswith(created["prefix"]) and len(created["prefix"]) == 12
    account = created["account_id"]
    assert json_of("credits", "grant", account, "5") == {"account_id": account, "balance": 5}
    assert json_of("credits", "grant", account, "-2")["balance"] == 3
    shown = json_of("credits", "show", account)
    assert set(shown) == {"id", "name", "balance", "reserved", "created_at"}
    listed = json_of("keys", "list", "--account", account)
    assert [k["id"] for k in listed] == [created["id"]] and "key" not in listed[0]
    revoked = json_of("keys", "revoke", created["id"])
    assert revoked["revoked_at"] and set(revoked) == set(listed[0])
    assert json_of("keys", "revoke", created["id"])["revoked_at"] == revoked["revoked_at"]
    models = json_of("models")
    assert [set(m) for m in models] == [{"id", "name", "provider", "credits"}]
    assert (models[0]["id"], models[0]["provider"]) == ("local/overlay", "local")

    code, out, _ = server.cli(capsys, "keys", "create", "--name", "e", "--credits", "1")
    assert code == 0 and out.splitlines()[0].startswith("tryon_") and "not shown again" in out
    code, out, _ = server.cli(capsys, "db", "upgrade")
    assert (code, out) == (0, "database is up to date\n")
    code, _, err = server.cli(capsys, "credits", "show", "acct_missing")
    assert (code, err) == (1, "tryon: No account 'acct_missing'.\n")
    code, _, err = server.cli(capsys, "credits", "grant", account, "-100")
    assert (code, err) == (1, "tryon: The balance cannot go below zero.\n")
    code, _, err = server.cli(capsys, "credits", "grant", account, "0")
    assert code == 1
    code, _, err = server.cli(capsys, "keys", "create")
    assert code == 2 and "--name" in err
    manager = json_of(
        "keys", "create", "--name", "m", "--account", account, "--scope", "management"
    )
    assert manager["scope"] == "management" and manager["account_id"] == account
    assert json_of("accounts", "operator", account) == {"account_id": account, "operator": True}
    off = json_of("accounts", "operator", account, "--off")
    assert off == {"account_id": account, "operator": False}
    code, _, err = server.cli(capsys, "accounts", "operator", "acct_missing")
    assert (code, err) == (1, "tryon: No account 'acct_missing'.\n")


def test_serve_port_override_reaches_the_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/cli.md: --host/--port move the links too, unless [server] public_url is set."""
    import uvicorn

    served: dict[str, Any] = {}

    def run(server: uvicorn.Server, sockets: Any = None) -> None:
        """Note what would be served instead of serving it."""
        served.update(app=server.config.app, port=server.config.port)
        server.started = True

    monkeypatch.setattr(uvicorn.Server, "run", run)
    config = tmp_path / "tryon.toml"
    base = (
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/db.sqlite"\n'
        f'[storage]\npath = "{tmp_path}/files"\n'
    )
    config.write_text(base)
    assert main(["serve", "--config", str(config), "--port", "9123"]) == 0
    assert served["port"] == 9123
    assert served["app"].state.gateway.file_url("file_x").startswith("http://127.0.0.1:9123/")

    config.write_text(base + '[server]\npublic_url = "https://tryon.example.com"\n')
    assert main(["serve", "--config", str(config), "--port", "9124"]) == 0
    assert served["port"] == 9124
    link = served["app"].state.gateway.file_url("file_x")
    assert link.startswith("https://tryon.example.com/api/v1/files/file_x?")


# -- the JSON request body and the egress guard ---------------------------------------------------


@pytest.fixture
def image_host() -> Iterator[str]:
    """samples/ over plain HTTP on 127.0.0.1, standing in for https://images.example.com."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(SAMPLES))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


async def test_json_request_body_with_image_urls(tmp_path: Path, image_host: str) -> None:
    settings = parse_settings(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/db.sqlite"\n'
        f'[storage]\npath = "{tmp_path}/files"\n'
        f'[fetch]\nallow_hosts = ["{image_host}"]\n'
        "[providers.local]\nenabled = true\n"
    )
    text = (EXAMPLES / "tryon-json.json").read_text()
    body = json.loads(text.replace("https://images.example.com", f"http://{image_host}"))
    async with AsyncTestClient(app=create_app(settings)) as client:
        key, _ = await new_key(client, credits=5)
        response = await client.post("/api/v1/tryon", json=body, headers=auth(key))
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["model"] == "local/overlay" and result["usage"] == {"credits": 1}
        (image,) = result["images"]
        assert image["content_type"] == "image/jpeg"
        download = await client.get(link_path(image["url"]))
        assert download.content.startswith(JPEG)

        # allow_hosts matches "host:port" as written in the URL: the same server under the
        # name "localhost" is still refused, before anything is fetched or charged.
        port = image_host.rsplit(":", 1)[1]
        body["person_images"] = f"http://localhost:{port}/person.jpg"
        refused = await client.post("/api/v1/tryon", json=body, headers=auth(key))
        assert refused.status_code == 400
        error = refused.json()["error"]
        assert (error["type"], error["param"]) == ("forbidden_url", "person_images[0]")
        credits = (await client.get("/api/v1/credits", headers=auth(key))).json()
        assert credits["balance"] == 4


# -- the production configuration -----------------------------------------------------------------


def test_production_config_is_valid(tmp_path: Path) -> None:
    text = (EXAMPLES / "production.toml").read_text()
    environ = {"TRYON_DB_PASSWORD": "s3cret", "TRYON_SIGNING_SECRET": "sign-me"}
    settings = parse_settings(text, environ=environ)
    assert settings.database.url == "postgresql+asyncpg://tryon:s3cret@db.internal:5432/tryon"
    assert settings.storage.signing_secret == "sign-me"
    assert settings.server.base_url == "https://tryon.example.com"
    # Everything `tryon serve` checks before it listens (providers, slugs, egress policy, image
    # limits), with the file store moved somewhere writable.
    local = msgspec.structs.replace(settings.storage, path=str(tmp_path / "files"))
    app = create_app(msgspec.structs.replace(settings, storage=local))
    assert app.state.gateway.catalog.entries["local/overlay"].credits == 2
    with pytest.raises(ConfigError, match="TRYON_DB_PASSWORD"):
        parse_settings(text, environ={})


# -- the example plugins' own tests, as their authors run them ------------------------------------


def run_plugin_tests(pytester: pytest.Pytester, folder: str) -> pytest.RunResult:
    """``uv run pytest`` in docs/examples/FOLDER, with its pyproject.toml's pytest settings."""
    path = EXAMPLES / folder
    return pytester.runpytest_inprocess(
        *("-c", str(path / "pyproject.toml"), "--rootdir", str(path)),
        *("-p", "no:cacheprovider", "-q", "-rs", str(path)),
    )


def test_example_plugin_tests_pass(pytester: pytest.Pytester) -> None:
    """test_tryon_example.py: the contract kit (its upstream checks skipped) and the gateway."""
    result = run_plugin_tests(pytester, "example_plugin")
    outcomes = result.parseoutcomes()
    assert (outcomes.get("passed"), outcomes.get("skipped"), outcomes.get("failed", 0)) == (
        4,
        3,
        0,
    ), result.stdout.str()
    result.stdout.fnmatch_lines(["*no upstream, so no upstream faults*"])


def test_upstream_plugin_tests_pass(pytester: pytest.Pytester) -> None:
    """test_tryon_acme.py: every contract test against Acme's fake; only the keyed-task one is
    skipped (Acme's upstream takes no caller-chosen task name)."""
    result = run_plugin_tests(pytester, "upstream_plugin")
    outcomes = result.parseoutcomes()
    assert (outcomes.get("passed"), outcomes.get("skipped", 0), outcomes.get("failed", 0)) == (
        6,
        1,
        0,
    ), result.stdout.str()
    result.stdout.fnmatch_lines(["*no model with keyed_tasks*"])


def test_upstream_plugin_test_covers_every_fault_of_its_fake() -> None:
    """The fake renders every fault kind, and the contract knows what each must become."""
    tests = example_module("upstream_plugin", "test_tryon_acme")
    fake = example_module("upstream_plugin", "tryon_acme_fake").create_app()
    assert set(fake.state.fake.supported) == set(FAULT_KINDS)
    for kind in FAULT_KINDS:
        assert tests.TestAcmeContract.expectation(kind) == STANDARD_FAULTS[kind]


# -- example plugin: example/mirror ---------------------------------------------------------------


def test_example_plugin_package() -> None:
    folder = EXAMPLES / "example_plugin"
    project = tomllib.loads((folder / "pyproject.toml").read_text())
    entry_points = project["project"]["entry-points"]["tryon"]
    assert entry_points == {"example": "tryon_example"}
    assert (folder / "tryon_example.py").is_file()
    plugin = example_module("example_plugin", entry_points["example"])
    registry = collect_providers(
        make_plugin_manager(extra_plugins=[plugin], load_entry_points=False)
    )
    assert list(registry.models) == ["example/mirror"]
    assert registry.providers["example"].fake is None


def test_example_plugin_loads_through_its_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What an installed wheel provides: the module and the entry point pyproject.toml declares."""
    folder = EXAMPLES / "example_plugin"
    project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
    site = tmp_path / "site"
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    lines = [f"{name} = {target}" for name, target in project["entry-points"]["tryon"].items()]
    (info / "entry_points.txt").write_text("[tryon]\n" + "\n".join(lines) + "\n")
    (site / "tryon_example.py").write_text((folder / "tryon_example.py").read_text())
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "tryon_example", raising=False)

    assert "example/mirror" in collect_providers(make_plugin_manager()).models
    blocked = collect_providers(make_plugin_manager(blocked=["example"]))
    assert "example/mirror" not in blocked.models


async def test_example_plugin_config_keys(tmp_path: Path) -> None:
    plugin = example_module("example_plugin", "tryon_example")
    base = (
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/db.sqlite"\n'
        f'[storage]\npath = "{tmp_path}/files"\n[providers.example]\nenabled = true\n'
    )
    with pytest.raises(ConfigError, match=r"providers\.example: .*diagonal"):
        create_app(
            parse_settings(base + 'direction = "diagonal"\n'),
            extra_plugins=[plugin],
            load_entry_points=False,
        )
    app = create_app(
        parse_settings(base + 'direction = "vertical"\n'),
        extra_plugins=[plugin],
        load_entry_points=False,
    )
    person = Image.new("RGB", (100, 200), (255, 255, 255))
    person.paste((0, 0, 0), (0, 0, 100, 100))  # dark top half
    buffer = io.BytesIO()
    person.save(buffer, format="PNG")
    async with AsyncTestClient(app=app) as client:
        key, _ = await new_key(client)
        response = await client.post(
            "/api/v1/tryon",
            json={
                "person_images": "data:image/png;base64,"
                + base64.b64encode(buffer.getvalue()).decode(),
                "garment_images": [data_url(SAMPLES / "garment.png", "image/png")],
                "n": 2,
            },
            headers=auth(key),
        )
        # example/mirror returns at most one image.
        assert (
            response.status_code == 422 and response.json()["error"]["type"] == "no_capable_model"
        )
        response = await client.post(
            "/api/v1/tryon",
            json={
                "person_images": "data:image/png;base64,"
                + base64.b64encode(buffer.getvalue()).decode(),
                "garment_images": [data_url(SAMPLES / "garment.png", "image/png")],
            },
            headers=auth(key),
        )
        assert response.status_code == 200, response.text
        image = await client.get(link_path(response.json()["images"][0]["url"]))
        flipped = Image.open(io.BytesIO(image.content)).convert("RGB")
        assert flipped.getpixel((50, 10)) == (255, 255, 255)
        assert flipped.getpixel((50, 190)) == (0, 0, 0)


# -- example plugin: acme/tryon-v1 against its fake -----------------------------------------------

ACME_KEY = "sk-acme-test"  # the fake accepts this key only; it must never reach a client


def acme_plugins() -> list[ModuleType]:
    return [
        example_module("upstream_plugin", "tryon_acme"),
        example_module("example_plugin", "tryon_example"),
    ]


class AcmeFake:
    def __init__(self, app: Any, url: str) -> None:
        self.app = app
        self.url = url

    @property
    def state(self) -> FakeState:
        state: FakeState = self.app.state.fake
        return state


@pytest.fixture(scope="module")
def acme_server() -> Iterator[AcmeFake]:
    app = example_module("upstream_plugin", "tryon_acme_fake").create_app(api_key=ACME_KEY)
    with serve_app_in_thread(app) as url:
        yield AcmeFake(app, url)


@pytest.fixture
def acme(acme_server: AcmeFake) -> AcmeFake:
    acme_server.state.reset()
    acme_server.app.state.acme.public_url = None
    return acme_server


def acme_settings(
    tmp_path: Path, upstream: str, api_key: str = 'api_key = "${ACME_API_KEY}"\n'
) -> Any:
    return parse_settings(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/db.sqlite"\n'
        f'[storage]\npath = "{tmp_path}/files"\n'
        "[providers.acme]\nenabled = true\n"
        f'{api_key}base_url = "{upstream}"\npoll_interval = 0.01\ntimeout = 10\n'
        "[providers.example]\nenabled = true\n"
        '[routing.fallbacks]\n"acme/tryon-v1" = ["example/mirror"]\n',
        environ={"ACME_API_KEY": ACME_KEY},
    )


def tryon_body(model: str) -> dict[str, Any]:
    return {
        "model": model,
        "person_images": data_url(SAMPLES / "person.jpg", "image/jpeg"),
        "garment_images": data_url(SAMPLES / "garment.png", "image/png"),
    }


@pytest.mark.parametrize(
    ("scenario", "status", "models", "charged"),
    [
        ("ok", 200, ["acme/tryon-v1"], 4),
        ("rate_limited", 200, ["acme/tryon-v1", "example/mirror"], 1),
        ("bad_key", 200, ["acme/tryon-v1", "example/mirror"], 1),
        ("foreign_url", 200, ["acme/tryon-v1", "example/mirror"], 1),
        ("refused", 400, ["acme/tryon-v1"], 0),
    ],
)
async def test_upstream_plugin(
    tmp_path: Path,
    acme: AcmeFake,
    scenario: str,
    status: int,
    models: list[str],
    charged: int,
) -> None:
    """docs/plugins.md: a success, faults that fall back and charge only the model that served,
    a result link to another private host, a refusal that stops at once and costs nothing."""
    if scenario == "rate_limited":
        acme.state.inject(Fault(kind="rate_limit", retry_after=7))
    elif scenario == "bad_key":
        acme.state.inject("auth")
    elif scenario == "refused":
        acme.state.inject("content_refused")
    elif scenario == "foreign_url":  # the same fake, under a name the egress guard refuses
        acme.app.state.acme.public_url = acme.url.replace("127.0.0.1", "localhost")
    app = create_app(
        acme_settings(tmp_path, acme.url), extra_plugins=acme_plugins(), load_entry_points=False
    )
    async with AsyncTestClient(app=app) as client:
        key, _ = await new_key(client, credits=10)
        response = await client.post(
            "/api/v1/tryon", json=tryon_body("acme/tryon-v1"), headers=auth(key)
        )
        assert response.status_code == status, response.text
        assert ACME_KEY not in response.text
        body = response.json()
        attempts = body["attempts"] if status == 200 else body["error"]["metadata"]["attempts"]
        assert [a["model"] for a in attempts] == models
        first = attempts[0]
        expected_error = {
            "ok": None,
            "rate_limited": ("rate_limit_exceeded", "rate_limited"),
            "bad_key": ("provider_misconfigured", "unauthorized"),
            "refused": ("content_policy_violation", "content_policy"),
            "foreign_url": ("bad_response", None),
        }[scenario]
        if expected_error is None:
            assert first["status"] == "succeeded"
            assert first["task_id"] == next(iter(acme.state.tasks))
        else:
            assert (first["error"]["type"], first["error"]["code"]) == expected_error
        if scenario == "foreign_url":
            assert "forbidden_url" in first["error"]["message"]
        if scenario == "refused":
            assert body["error"]["type"] == "content_policy_violation"
            assert first["task_id"] == next(iter(acme.state.tasks))
        credits = (await client.get("/api/v1/credits", headers=auth(key))).json()
        assert (credits["balance"], credits["reserved"]) == (10 - charged, 0)
    assert {r.headers["authorization"] for r in acme.state.requests} == {f"Bearer {ACME_KEY}"}


def test_upstream_plugin_needs_its_secret(tmp_path: Path) -> None:
    settings = acme_settings(tmp_path, "http://127.0.0.1:9", api_key="")
    with pytest.raises(ConfigError, match=r"providers\.acme\.api_key is required"):
        create_app(settings, extra_plugins=acme_plugins(), load_entry_points=False)


def test_upstream_plugin_package() -> None:
    folder = EXAMPLES / "upstream_plugin"
    project = tomllib.loads((folder / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["tryon"] == {"acme": "tryon_acme"}
    modules = project["tool"]["hatch"]["build"]["targets"]["wheel"]["only-include"]
    assert sorted(modules) == sorted(p.name for p in folder.glob("tryon_*.py"))
    registry = collect_providers(
        make_plugin_manager(extra_plugins=acme_plugins()[:1], load_entry_points=False)
    )
    spec = registry.providers["acme"]
    assert list(registry.models) == ["acme/tryon-v1"]
    assert spec.fake is not None
    assert isinstance(load_fake(spec.fake), Litestar)


def test_acme_operator_config_in_plugin_docs(tmp_path: Path) -> None:
    """The [providers.acme] section docs/plugins.md gives operators starts a gateway."""
    config = block_after((DOCS / "plugins.md").read_text(), "acme-operator-config")
    settings = parse_settings(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/db.sqlite"\n'
        f'[storage]\npath = "{tmp_path}/files"\n[providers.local]\nenabled = true\n' + config,
        environ={"ACME_API_KEY": ACME_KEY},
    )
    app = create_app(settings, extra_plugins=acme_plugins()[:1])
    entry = app.state.gateway.catalog.entries["acme/tryon-v1"]
    assert (entry.credits, entry.config.timeout, entry.config.api_key) == (4, 90.0, ACME_KEY)
    assert settings.routing.fallbacks == {"acme/tryon-v1": ["local/overlay"]}


async def test_acme_behind_fakes_serve(tmp_path: Path) -> None:
    """docs/plugins.md: Acme's fake mounted under /acme, as `tryon fakes serve` does, and the
    [providers.acme] section it shows; then a quota fault queued over HTTP."""
    fake = example_module("upstream_plugin", "tryon_acme_fake").create_app()
    plugins_md = (DOCS / "plugins.md").read_text()
    section = block_after(plugins_md, "acme-fakes-config")
    curl = re.search(r"`curl -X POST (\S+) -d '([^']+)'`", plugins_md)
    assert curl, "docs/plugins.md: no curl line that queues a fault for Acme's fake"
    with serve_app_in_thread(mount_fakes({"acme": fake})) as url:
        settings = parse_settings(
            f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/db.sqlite"\n'
            f'[storage]\npath = "{tmp_path}/files"\n'
            + section.replace("http://127.0.0.1:9100", url)
            + '[providers.example]\nenabled = true\n[routing.fallbacks]\n"acme/tryon-v1" = '
            '["example/mirror"]\n'
        )
        app = create_app(settings, extra_plugins=acme_plugins(), load_entry_points=False)
        async with AsyncTestClient(app=app) as client:
            key, _ = await new_key(client, credits=10)
            served = await client.post(
                "/api/v1/tryon", json=tryon_body("acme/tryon-v1"), headers=auth(key)
            )
            assert served.status_code == 200, served.text
            assert served.json()["model"] == "acme/tryon-v1"

            async with httpx.AsyncClient() as http:
                target = curl.group(1).replace("http://127.0.0.1:9100", url)
                queued = await http.post(target, content=curl.group(2))
            assert queued.json() == {"queued": 1}
            fallback = await client.post(
                "/api/v1/tryon", json=tryon_body("acme/tryon-v1"), headers=auth(key)
            )
            body = fallback.json()
            assert body["model"] == "example/mirror", fallback.text
            assert body["attempts"][0]["error"]["type"] == "provider_misconfigured"
    paths = [r.path for r in fake.state.fake.requests]
    assert paths[0] == "/acme/v1/tasks" and all(p.startswith("/acme/v1/tasks") for p in paths)


# -- docs/plugins.md's warning: AsyncTestClient blocks the test's event loop ----------------------


def acme_gateway(tmp_path: Path, upstream: str, timeout: float = 10) -> Litestar:
    return create_app(
        parse_settings(
            f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/db.sqlite"\n'
            f'[storage]\npath = "{tmp_path}/files"\n'
            f'[providers.acme]\nenabled = true\napi_key = "test-key"\nbase_url = "{upstream}"\n'
            f"poll_interval = 0.01\ntimeout = {timeout}\n"
        ),
        extra_plugins=acme_plugins()[:1],
        load_entry_points=False,
    )


async def test_a_fake_in_the_test_loop_cannot_answer_the_async_test_client(tmp_path: Path) -> None:
    fake = example_module("upstream_plugin", "tryon_acme_fake").create_app()
    async with serve_app(fake) as url:
        app = acme_gateway(tmp_path, url, timeout=1)
        async with AsyncTestClient(app=app) as client:
            key, _ = await new_key(client, credits=10)
            response = await client.post(
                "/api/v1/tryon", json=tryon_body("acme/tryon-v1"), headers=auth(key)
            )
    assert response.status_code == 504, response.text
    assert response.json()["error"]["type"] == "timeout"


async def test_a_gateway_served_with_serve_app_shares_the_loop_with_the_fake(
    tmp_path: Path,
) -> None:
    fake = example_module("upstream_plugin", "tryon_acme_fake").create_app()
    async with serve_app(fake) as upstream:
        app = acme_gateway(tmp_path, upstream)
        async with serve_app(app) as gateway, httpx.AsyncClient(base_url=gateway) as http:
            key, _ = await new_key(app, credits=10)
            response = await http.post(
                "/api/v1/tryon", json=tryon_body("acme/tryon-v1"), headers=auth(key)
            )
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "acme/tryon-v1"


# -- README: offline against every provider, with the real commands -------------------------------


def readme_offline_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Offline against every provider\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def json_documents(text: str) -> list[Any]:
    """Every JSON document printed one after the other (curl -s adds no newline)."""
    decoder, documents, position = json.JSONDecoder(), [], 0
    while position < len(text):
        if text[position].isspace():
            position += 1
            continue
        document, position = decoder.raw_decode(text, position)
        documents.append(document)
    return documents


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("w") as out:
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_for(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            pytest.fail(f"{process.args} exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{process.args} did not start: {log.read_text()[-2000:]}")
        time.sleep(0.2)


def test_readme_offline_against_every_provider(tmp_path: Path) -> None:
    """README's two servers, as subprocesses on free ports, then its curl flow run by bash: a
    try-on on Kling's fake, a rate limit injected, the fallback to fal and what it charged.
    Then docs/providers.md's fault examples: a 503 that falls back, a refusal that stops."""
    servers, flow = readme_offline_blocks()
    commands = [line.split("#")[0].strip() for line in servers.strip().splitlines()]
    assert commands == [
        "uv run tryon fakes serve",
        "uv run tryon serve --config config/tryon.fakes.toml",
    ]
    fakes_port, gateway_port = free_port(), free_port()
    config = tmp_path / "tryon.fakes.toml"
    text = (ROOT / "config" / "tryon.fakes.toml").read_text()
    for old, new in [
        ("http://127.0.0.1:9100", f"http://127.0.0.1:{fakes_port}"),
        ("sqlite+aiosqlite:///var/tryon-fakes.db", f"sqlite+aiosqlite:///{tmp_path}/tryon.db"),
        ('path = "var/files-fakes"', f'path = "{tmp_path}/files"'),
    ]:
        assert old in text, f"config/tryon.fakes.toml no longer has {old}"
        text = text.replace(old, new)
    config.write_text(text)

    def local(command: str) -> str:
        return (
            command.replace("uv run tryon", "tryon")
            .replace("config/tryon.fakes.toml", str(config))
            .replace("127.0.0.1:9100", f"127.0.0.1:{fakes_port}")
            .replace("127.0.0.1:8000", f"127.0.0.1:{gateway_port}")
        )

    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("TRYON_CONFIG", None)
    processes = []
    try:
        for command, port, name in zip(
            commands, (fakes_port, gateway_port), ("fakes", "gateway"), strict=True
        ):
            args = shlex.split(local(command))[1:]  # after "tryon"
            log = session_log(tmp_path / f"{name}.log")  # scanned at the session's end
            processes.append(
                (start([sys.executable, "-c", SERVE, *args, "--port", str(port)], env, log), log)
            )
        wait_for(f"http://127.0.0.1:{fakes_port}/kling/_fake/faults", *processes[0])
        wait_for(f"http://127.0.0.1:{gateway_port}/healthz", *processes[1])

        done = subprocess.run(
            ["bash", "-e", "-c", local(flow) + '\necho "KEY=$KEY"\n'],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        printed, _, key = done.stdout.rstrip().rpartition("KEY=")
        first, queued, second, credits = json_documents(printed)
        registry = collect_providers(make_plugin_manager())
        price = {slug: model.credits for slug, (_, model) in registry.models.items()}
        assert first["model"] == "kling/kolors-v1-5", first
        assert first["usage"] == {"credits": price["kling/kolors-v1-5"]}
        assert queued == {"queued": 1}
        assert second["model"] == "fal/kling-kolors-v1-5", second
        assert [(a["model"], a["status"]) for a in second["attempts"]] == [
            ("kling/kolors-v1-5", "failed"),
            ("fal/kling-kolors-v1-5", "succeeded"),
        ]
        assert second["attempts"][0]["error"]["type"] == "rate_limit_exceeded"
        assert second["usage"] == {"credits": price["fal/kling-kolors-v1-5"]}
        spent = price["kling/kolors-v1-5"] + price["fal/kling-kolors-v1-5"]
        assert (credits["balance"], credits["reserved"]) == (100 - spent, 0)

        # docs/providers.md: a 503 at Kling falls back to fal, whose refusal stops at once.
        examples = block_after((DOCS / "providers.md").read_text(), "fault-examples")
        queued_faults = subprocess.run(
            ["bash", "-e", "-c", local(examples)],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert json_documents(queued_faults.stdout) == [{"queued": 1}, {"queued": 1}]
        refused = httpx.post(
            f"http://127.0.0.1:{gateway_port}/api/v1/tryon",
            headers=auth(key),
            data={"model": "kling/kolors-v1-5"},
            files={
                "person_images": ("person.jpg", (SAMPLES / "person.jpg").read_bytes()),
                "garment_images": ("garment.png", (SAMPLES / "garment.png").read_bytes()),
            },
            timeout=30,
        )
        assert refused.status_code == 400, refused.text
        error = refused.json()["error"]
        assert error["type"] == "content_policy_violation"
        assert [(a["model"], a["error"]["type"]) for a in error["metadata"]["attempts"]] == [
            ("kling/kolors-v1-5", "provider_unavailable"),
            ("fal/kling-kolors-v1-5", "content_policy_violation"),
        ]
        after = httpx.get(f"http://127.0.0.1:{gateway_port}/api/v1/credits", headers=auth(key))
        assert after.json()["balance"] == credits["balance"]  # a refusal costs nothing
    finally:
        for process, _ in processes:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# -- worked examples inside the Markdown ----------------------------------------------------------


class AlwaysDown:
    """A plugin whose models always fail with a fallback-class error."""

    def __init__(self, name: str, prices: dict[str, int]) -> None:
        self.name = name
        self.prices = prices

    @hookimpl
    def tryon_register_providers(self, registrar: Any) -> None:
        registrar.add_provider(
            ProviderSpec(
                name=self.name,
                config_type=ProviderConfig,
                models=tuple(
                    ModelSpec(slug=slug, name=slug, description="", credits=price)
                    for slug, price in self.prices.items()
                ),
                adapter_factory=lambda _config: self,
            )
        )

    async def run(self, request: Any, context: Any) -> Any:
        raise ProviderUnavailable("down")


async def test_routing_examples_in_api_docs(tmp_path: Path) -> None:
    markdown = (DOCS / "api.md").read_text()
    config = block_after(markdown, "routing-example-config")
    rows = table_after(markdown, "routing-example")
    settings = parse_settings(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/db.sqlite"\n'
        f'[storage]\npath = "{tmp_path}/files"\n[providers.vendor]\nenabled = true\n'
        + config.replace("[routing]\n", "[routing]\nfailure_threshold = 1000\n")
    )
    plugin = AlwaysDown("vendor", {"vendor/a": 1, "vendor/b": 2, "vendor/c": 3})
    app = create_app(settings, extra_plugins=[plugin], load_entry_points=False)
    images = {
        "person_images": data_url(SAMPLES / "person.jpg", "image/jpeg"),
        "garment_images": data_url(SAMPLES / "garment.png", "image/png"),
    }
    async with AsyncTestClient(app=app) as client:
        key, _ = await new_key(client)
        for request_cell, order_cell in rows:
            request = json.loads(request_cell.strip("`"))
            expected = re.findall(r"`([^`]+)`", order_cell)
            response = await client.post(
                "/api/v1/tryon", json={**images, **request}, headers=auth(key)
            )
            assert response.status_code == 502, response.text
            tried = [a["model"] for a in response.json()["error"]["metadata"]["attempts"]]
            assert tried == expected, f"{request_cell}: tried {tried}"


async def test_billing_worked_example(tmp_path: Path) -> None:
    markdown = (DOCS / "billing.md").read_text()
    expected_rows = [
        (kind.strip("`"), int(amount), int(reserved))
        for kind, amount, reserved, *_ in table_after(markdown, "ledger-example")
    ]
    payment_required = json.loads(block_after(markdown, "payment-required-example"))
    studio = ScriptedProvider(
        name="studio",
        models=[
            ModelSpec(
                slug="studio/pro",
                name="Pro",
                description="",
                credits=5,
                capabilities=Capabilities(max_outputs=2),
            ),
            ModelSpec(
                slug="studio/lite",
                name="Lite",
                description="",
                credits=3,
                capabilities=Capabilities(max_outputs=2),
            ),
        ],
    )
    studio.script("studio/pro", ProviderUnavailable("down"))
    settings = parse_settings(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/db.sqlite"\n'
        f'[storage]\npath = "{tmp_path}/files"\n[providers.studio]\nenabled = true\n'
    )
    app = create_app(settings, extra_plugins=[studio], load_entry_points=False)
    request = {
        "models": ["studio/pro", "studio/lite"],
        "n": 2,
        "person_images": data_url(SAMPLES / "person.jpg", "image/jpeg"),
        "garment_images": data_url(SAMPLES / "garment.png", "image/png"),
    }
    async with AsyncTestClient(app=app) as client:
        key, account_id = await new_key(client, credits=10)
        response = await client.post("/api/v1/tryon", json=request, headers=auth(key))
        assert response.status_code == 200, response.text
        assert response.json()["usage"] == {"credits": 6}
        async with own_database(client) as database, database.reading() as conn:
            rows = (
                await conn.execute(
                    select(ledger.c.kind, ledger.c.amount, ledger.c.reserved_delta)
                    .where(ledger.c.account_id == account_id)
                    .order_by(ledger.c.id)
                )
            ).all()
        assert [tuple(row) for row in rows] == expected_rows
        credits = (await client.get("/api/v1/credits", headers=auth(key))).json()
        assert credits["balance"] == sum(amount for _, amount, _ in expected_rows)
        assert credits["reserved"] == sum(reserved for _, _, reserved in expected_rows)

        again = await client.post("/api/v1/tryon", json=request, headers=auth(key))
        assert again.status_code == 402
        assert again.json() == payment_required
