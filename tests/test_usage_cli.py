"""``tryon usage`` after known traffic through the HTTP API: tables and --json, per account, key
and model, over a period; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.helpers import auth, own_database
from tryon_core import accounts, billing
from tryon_core.cli import main
from tryon_core.errors import ContentRefused
from tryon_core.testing import ScriptedProvider
from tryon_core.usage_command import period

Traffic = dict[str, str]


async def traffic(app: Litestar, scripted: ScriptedProvider, body: Callable[..., Any]) -> Traffic:
    """Account A: key shop (two alpha, one refused by gamma), key kiosk (one beta); account B:
    key other (one alpha). Returns the ids."""
    async with AsyncTestClient(app=app) as client:
        made: Traffic = {}
        async with own_database(client) as database, database.transaction() as conn:
            for account, keys in (("a", ("shop", "kiosk")), ("b", ("other",))):
                made[account] = await accounts.create_account(conn, name=account)
                await billing.grant(conn, made[account], 100)
                for name in keys:
                    info, secret = await accounts.create_key(
                        conn, account_id=made[account], name=name
                    )
                    made[name], made[f"{name}_secret"] = info.id, secret
        scripted.script("scripted/gamma", ContentRefused("refused"))
        for key, model, status in (
            ("shop", "scripted/alpha", 200),
            ("shop", "scripted/gamma", 400),
            ("shop", "scripted/alpha", 200),
            ("kiosk", "scripted/beta", 200),
            ("other", "scripted/alpha", 200),
        ):
            response = await client.post(
                "/api/v1/tryon", json=body(model=model), headers=auth(made[f"{key}_secret"])
            )
            assert response.status_code == status, response.text
    return made


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> str:
    path = tmp_path / "usage.toml"
    path.write_text(f'[database]\nurl = "{database_url}"\n[storage]\npath = "{tmp_path}/files"\n')
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_usage_per_account_key_and_model_as_json_and_tables(
    make_app: Callable[..., Litestar],
    database_url: str,
    config: str,
    scripted: ScriptedProvider,
    tryon_body: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    made = asyncio.run(traffic(make_app(database_url), scripted, tryon_body))
    now = datetime.now(UTC)
    window = ("--since", (now - timedelta(days=1)).isoformat(), "--until", now.isoformat())

    code, out, _ = run(capsys, "usage", *window, "--json", "--config", config)
    assert code == 0
    report = json.loads(out)
    a, b = made["a"], made["b"]
    counts = ("generations", "succeeded", "failed", "credits")
    assert report["by_account"] == [
        {"account_id": a, **dict(zip(counts, (4, 3, 1, 8), strict=True))},
        {"account_id": b, **dict(zip(counts, (1, 1, 0, 3), strict=True))},
    ]
    assert [
        (r["account_id"], r["key_id"], r["key_name"], *(r[c] for c in counts))
        for r in report["by_key"]
    ] == [
        (a, made["shop"], "shop", 3, 2, 1, 6),
        (b, made["other"], "other", 1, 1, 0, 3),
        (a, made["kiosk"], "kiosk", 1, 1, 0, 2),
    ]
    assert [(r["model"], *(r[c] for c in counts)) for r in report["by_model"]] == [
        ("scripted/alpha", 3, 3, 0, 9),
        ("scripted/beta", 1, 1, 0, 2),
        ("scripted/gamma", 1, 0, 1, 0),  # a failure counts against the model that failed
    ]

    code, out, _ = run(
        capsys, "usage", *window, "--account", a, "--by", "model", "--config", config
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("usage from ") and "by model" in lines
    table = lines[lines.index("by model") + 1 :]
    assert table[0].split() == ["MODEL", "GENERATIONS", "SUCCEEDED", "FAILED", "CREDITS"]
    assert [line.split() for line in table[1:]] == [
        ["scripted/alpha", "2", "2", "0", "6"],
        ["scripted/beta", "1", "1", "0", "2"],
        ["scripted/gamma", "1", "0", "1", "0"],
    ]
    assert "by account" not in lines and "by key" not in lines

    code, out, _ = run(capsys, "usage", *window, "--config", config)
    assert code == 0
    assert {"by account", "by key", "by model"} <= set(out.splitlines())
    assert f"{a}  {made['shop']} (shop)" in out
    assert [a, "4", "3", "1", "8"] in [line.split() for line in out.splitlines()]

    later = ("--since", (now + timedelta(hours=1)).isoformat())
    code, out, _ = run(
        capsys, "usage", *later, "--until", "2999-01-01", "--json", "--config", config
    )
    assert code == 0
    empty = json.loads(out)
    assert empty["by_account"] == empty["by_key"] == empty["by_model"] == []
    code, out, _ = run(capsys, "usage", *later, "--until", "2999-01-01", "--config", config)
    assert out.count("nothing in this period") == 3


def test_usage_periods_and_their_mistakes(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    now = datetime(2026, 2, 14, 9, 30, tzinfo=UTC)
    assert period(None, None, now=now) == (
        datetime(2026, 2, 1, tzinfo=UTC),
        datetime(2026, 3, 1, tzinfo=UTC),
    )
    december = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
    assert period(None, None, now=december)[1] == datetime(2027, 1, 1, tzinfo=UTC)
    assert period("2026-01-01", "2026-01-31", now=now) == (
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 2, 1, tzinfo=UTC),  # the --until day is taken in whole
    )
    assert period("2026-01-01T10:00:00+02:00", "2026-01-01T12:00", now=now) == (
        datetime(2026, 1, 1, 8, tzinfo=UTC),
        datetime(2026, 1, 1, 12, tzinfo=UTC),  # no offset: UTC
    )
    for argv, says in (
        (("--since", "yesterday"), "--since takes a date"),
        (("--until", "2026-02-30"), "--until takes a date"),
        (("--since", "2026-03-01", "--until", "2026-02-01"), "must come before"),
    ):
        code, out, err = run(capsys, "usage", *argv, "--config", config)
        assert code == 1 and out == "", argv
        assert err.startswith("tryon: ") and says in err and len(err.splitlines()) == 1
    with pytest.raises(SystemExit) as refused:
        main(["usage", "--by", "day", "--config", config])
    assert refused.value.code == 2 and "invalid choice" in capsys.readouterr().err
