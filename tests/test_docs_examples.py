"""Every example the documentation tells a user to copy, run for real.

* ``docs/examples/quickstart.sh`` and ``tryon_client.py`` against a real ``tryon serve``
  subprocess on a free 127.0.0.1 port;
* ``docs/examples/tryon-json.json`` posted to the gateway, its image URLs served locally and let
  through the egress guard with ``[fetch] allow_hosts``;
* ``docs/examples/production.toml`` validated the way ``tryon serve`` validates it;
* the two example plugins (``example_plugin/``, ``upstream_plugin/``) through the HTTP API;
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
from tryon_core import Capabilities, ModelSpec, ProviderConfig, ProviderSpec, hookimpl
from tryon_core.api import create_app
from tryon_core.cli import main
from tryon_core.config import parse_settings
from tryon_core.db.schema import ledger
from tryon_core.errors import ConfigError, ProviderUnavailable
from tryon_core.plugins import collect_providers, make_plugin_manager
from tryon_core.testing import ScriptedProvider

DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
PNG = b"\x89PNG\r\n\x1a\n"
JPEG = b"\xff\xd8\xff"
SERVE = "from tryon_core.cli import main; raise SystemExit(main())"

Client = AsyncTestClient[Litestar]


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
    log = (root / "serve.log").open("w")
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
                pytest.fail(f"tryon serve exited: {(root / 'serve.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"tryon serve did not start: {(root / 'serve.log').read_text()[-2000:]}"
                )
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
        "key",
        "balance",
    }
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


def test_serve_port_override_reaches_the_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/cli.md: --host/--port move the links too, unless [server] public_url is set."""
    import uvicorn

    served: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.update(app=app, **options))
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


# -- example plugin: example/mirror ---------------------------------------------------------------


async def test_example_plugin_authors_test(tmp_path: Path) -> None:
    """docs/examples/example_plugin/test_tryon_example.py, the test docs/plugins.md shows."""
    module = example_module("example_plugin", "test_tryon_example")
    await module.test_mirror_through_the_gateway(tmp_path)


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


# -- example plugin: acme/tryon-v1 against a fake upstream ----------------------------------------


class FakeAcme:
    """Acme's protocol (see tryon_acme.py) on 127.0.0.1, answering as ``scenario`` says."""

    def __init__(self) -> None:
        self.scenario = "ok"
        self.authorizations: list[str | None] = []
        self.polls = 0
        self.downloads = 0
        self.result = (SAMPLES / "garment.png").read_bytes()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                fake.authorizations.append(self.headers.get("Authorization"))
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if fake.scenario == "rate_limited":
                    self.reply(429, {"error": {"code": "busy"}}, {"Retry-After": "7"})
                elif fake.scenario == "bad_key":
                    self.reply(401, {"error": {"code": "unauthorized"}})
                else:
                    self.reply(201, {"id": "task_42", "status": "queued"})

            def do_GET(self) -> None:
                if self.path == "/v1/files/task_42.png":
                    fake.downloads += 1
                    self.send_response(200)
                    self.send_header("Content-Type", "image/png")
                    self.send_header("Content-Length", str(len(fake.result)))
                    self.end_headers()
                    self.wfile.write(fake.result)
                    return
                fake.polls += 1
                if fake.polls == 1:
                    self.reply(200, {"status": "running"})
                elif fake.scenario == "refused":
                    error = {"code": "content_policy", "message": "nope"}
                    self.reply(200, {"status": "failed", "error": error})
                else:
                    # Results are links; "foreign_url" names another (private) host for it.
                    host = "localhost" if fake.scenario == "foreign_url" else "127.0.0.1"
                    port = fake.httpd.server_address[1]
                    url = f"http://{host}:{port}/v1/files/task_42.png"
                    self.reply(200, {"status": "succeeded", "image_url": url})

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def acme() -> Iterator[FakeAcme]:
    fake = FakeAcme()
    thread = threading.Thread(target=fake.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.httpd.shutdown()
        fake.httpd.server_close()


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
        environ={"ACME_API_KEY": "sk-acme-test"},
    )


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
    acme: FakeAcme,
    scenario: str,
    status: int,
    models: list[str],
    charged: int,
) -> None:
    plugins = [
        example_module("upstream_plugin", "tryon_acme"),
        example_module("example_plugin", "tryon_example"),
    ]
    acme.scenario = scenario
    app = create_app(
        acme_settings(tmp_path, acme.url), extra_plugins=plugins, load_entry_points=False
    )
    async with AsyncTestClient(app=app) as client:
        key, _ = await new_key(client, credits=10)
        response = await client.post(
            "/api/v1/tryon",
            json={
                "model": "acme/tryon-v1",
                "person_images": data_url(SAMPLES / "person.jpg", "image/jpeg"),
                "garment_images": data_url(SAMPLES / "garment.png", "image/png"),
            },
            headers=auth(key),
        )
        assert response.status_code == status, response.text
        assert "sk-acme-test" not in response.text
        body = response.json()
        attempts = body["attempts"] if status == 200 else body["error"]["metadata"]["attempts"]
        assert [a["model"] for a in attempts] == models
        first = attempts[0]
        expected_error = {
            "ok": None,
            "rate_limited": ("rate_limit_exceeded", "429"),
            "bad_key": ("provider_misconfigured", "401"),
            "refused": ("content_policy_violation", "content_policy"),
            "foreign_url": ("bad_response", None),
        }[scenario]
        if expected_error is None:
            assert first["status"] == "succeeded" and first["task_id"] == "task_42"
        else:
            assert (first["error"]["type"], first["error"]["code"]) == expected_error
        if status == 400:
            assert body["error"]["type"] == "content_policy_violation"
            assert first["task_id"] == "task_42"
        credits = (await client.get("/api/v1/credits", headers=auth(key))).json()
        assert (credits["balance"], credits["reserved"]) == (10 - charged, 0)
    assert acme.authorizations == ["Bearer sk-acme-test"]
    assert acme.downloads == (1 if scenario == "ok" else 0)


def test_upstream_plugin_needs_its_secret(tmp_path: Path) -> None:
    plugins = [
        example_module("upstream_plugin", "tryon_acme"),
        example_module("example_plugin", "tryon_example"),
    ]
    settings = acme_settings(tmp_path, "http://127.0.0.1:9", api_key="")
    with pytest.raises(ConfigError, match=r"providers\.acme\.api_key is required"):
        create_app(settings, extra_plugins=plugins, load_entry_points=False)


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
