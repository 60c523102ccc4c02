"""``tryon console link``: a one-time sign-in link for the right account, that works once."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from litestar.testing import AsyncTestClient

from tests.console_helpers import page, post_form
from tryon_core.api import create_app
from tryon_core.cli import main
from tryon_core.config import load_settings


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "tryon.toml"
    path.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/cli.db"\n'
        f'[storage]\npath = "{tmp_path}/files"\n[providers.local]\nenabled = true\n'
        "[console]\nlink_minutes = 5\n"
    )
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def new_account(capsys: pytest.CaptureFixture[str], config: str, name: str) -> str:
    code, out, _ = run(capsys, "keys", "create", "--name", name, "--json", "--config", config)
    assert code == 0
    account: str = json.loads(out)["account_id"]
    return account


def test_without_accounts_there_is_nothing_to_link(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "console", "link", "--config", config)
    assert code == 1 and out == ""
    assert "no account yet" in err


async def test_the_only_account_gets_a_link_that_signs_in_once(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # the command runs its own event loop: in a thread, beside this test's
    account = await asyncio.to_thread(new_account, capsys, config, "shop")
    code, out, _ = await asyncio.to_thread(run, capsys, "console", "link", "--config", config)
    assert code == 0
    url = out.splitlines()[0]
    assert url.startswith("http://127.0.0.1:8000/sign-in/link?token=tcl_")
    assert f"account {account}, once, within 5 minutes" in out
    code, out, _ = await asyncio.to_thread(
        run, capsys, "console", "link", "--json", "--config", config
    )
    data = json.loads(out)
    assert data["account_id"] == account
    assert data["url"] != url  # a new link each time

    app = create_app(load_settings(config))
    async with AsyncTestClient(app=app) as client:
        link = urlsplit(url)
        path = f"{link.path}?{link.query}"
        token = link.query.removeprefix("token=")
        used = await post_form(client, "/sign-in/link", {"token": token}, from_page=path)
        assert used.status_code == 303
        assert account in (await page(client, "/")).text
        client.cookies.clear()
        again = await post_form(client, "/sign-in/link", {"token": token}, from_page=path)
        assert again.status_code == 401


def test_with_several_accounts_one_is_named(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    first = new_account(capsys, config, "one")
    new_account(capsys, config, "two")
    code, _, err = run(capsys, "console", "link", "--config", config)
    assert code == 1
    assert "2 accounts and none is an operator" in err and "--account" in err
    code, out, _ = run(capsys, "console", "link", "--account", first, "--json", "--config", config)
    assert code == 0 and json.loads(out)["account_id"] == first
    code, _, err = run(capsys, "console", "link", "--account", "acct_nope", "--config", config)
    assert code == 1 and "No account 'acct_nope'" in err
