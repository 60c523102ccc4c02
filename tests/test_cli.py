"""The tryon command, through main() as a user runs it; every command honours --config."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tryon_core import accounts
from tryon_core.billing import MAX_CREDITS
from tryon_core.cli import main
from tryon_core.db import create_database


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "tryon.toml"
    path.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/cli.db"\n'
        f'[storage]\npath = "{tmp_path}/files"\n[providers.local]\nenabled = true\n'
    )
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_keys_and_credits_round_trip(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "keys", "create", "--name", "shop", "--credits", "25", "--json", "--config", config
    )
    assert code == 0
    created = json.loads(out)
    assert created["key"].startswith("tryon_") and created["account_id"].startswith("acct_")
    assert created["balance"] == 25 and created["name"] == "shop"
    account = created["account_id"]

    code, out, _ = run(
        capsys, "keys", "create", "--name", "second", "--account", account, "--config", config
    )
    assert code == 0 and out.startswith("tryon_") and "not shown again" in out

    code, out, _ = run(capsys, "--config", config, "credits", "grant", account, "10")
    assert code == 0 and "balance 35" in out
    code, out, _ = run(capsys, "credits", "show", account, "--json", "--config", config)
    assert json.loads(out)["balance"] == 35

    code, out, _ = run(capsys, "keys", "list", "--json", "--config", config)
    listed = json.loads(out)
    assert [k["name"] for k in listed] == ["shop", "second"]
    assert all("key" not in k and created["key"] not in json.dumps(k) for k in listed)

    code, out, _ = run(capsys, "keys", "revoke", created["id"], "--config", config)
    assert code == 0 and "revoked" in out
    code, out, _ = run(capsys, "keys", "list", "--config", config)
    assert "revoked" in out.splitlines()[0]


def test_errors_are_messages_not_tracebacks(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "credits", "show", "acct_missing", "--config", config)
    assert code == 1 and "No account" in err
    code, _, err = run(capsys, "keys", "revoke", "key_missing", "--config", config)
    assert code == 1 and "No key" in err
    code, _, err = run(capsys, "credits", "grant", "acct_missing", "5", "--config", config)
    assert code == 1 and "No account" in err


def test_bad_config_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nport = 'x'\n")
    code, _, err = run(capsys, "models", "--config", str(bad))
    assert code == 2 and "server.port" in err


def test_config_from_environment(
    config: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRYON_CONFIG", config)
    code, out, _ = run(capsys, "db", "upgrade")
    assert code == 0 and "up to date" in out


def test_models_lists_the_enabled_models(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "models", "--json", "--config", config)
    assert code == 0
    assert {m["id"] for m in json.loads(out)} == {"local/overlay"}


def test_an_unreachable_database_is_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "down.toml"
    config.write_text('[database]\nurl = "postgresql+asyncpg://nobody@127.0.0.1:1/none"\n')
    code, _, err = run(capsys, "keys", "list", "--config", str(config))
    assert code == 1 and "database is unavailable" in err


OUT_OF_RANGE = [
    "9223372036854775807",
    "9223372036854775808",
    "1000000000001",
    pytest.param("9" * 5000, id="5000-digits"),
]
NOT_WHOLE = ["1.5", "abc", "2**63", "1e3", ""]


def one_line_error(err: str) -> str:
    assert err.startswith("tryon: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("credits", [*OUT_OF_RANGE, *NOT_WHOLE, "-5"])
def test_keys_create_refuses_credits_outside_the_range_in_one_line(
    config: str, capsys: pytest.CaptureFixture[str], credits: str
) -> None:
    code, _, err = run(
        capsys, "keys", "create", "--name", "x", f"--credits={credits}", "--config", config
    )
    assert code == 1
    assert "from 0 to 1000000000000" in one_line_error(err)
    code, out, _ = run(capsys, "keys", "list", "--json", "--config", config)
    assert code == 0 and json.loads(out) == []  # nothing was created


@pytest.mark.parametrize("credits", [*OUT_OF_RANGE, *NOT_WHOLE, "-1000000000001"])
def test_credits_grant_refuses_amounts_outside_the_range_in_one_line(
    config: str, capsys: pytest.CaptureFixture[str], credits: str
) -> None:
    account = create(capsys, config, credits=7)
    code, _, err = run(capsys, "credits", "grant", "--config", config, account, "--", credits)
    assert code == 1
    assert "from -1000000000000 to 1000000000000" in one_line_error(err)
    assert show(capsys, config, account) == {"balance": 7, "reserved": 0}


def test_an_account_holds_at_most_the_maximum(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The probe's overflow: the most credits, then a grant of 1. Refused; the balance stays
    an integer and the account can still be taken down to zero and refilled. Both databases."""
    config = str(tmp_path / "both.toml")
    Path(config).write_text(f'[database]\nurl = "{database_url}"\n')
    account = create(capsys, config, credits=MAX_CREDITS)
    code, _, err = run(capsys, "credits", "grant", account, "1", "--config", config)
    assert code == 1 and "at most 1000000000000" in one_line_error(err)
    assert show(capsys, config, account) == {"balance": MAX_CREDITS, "reserved": 0}

    code, out, _ = run(capsys, "credits", "grant", account, f"-{MAX_CREDITS}", "--config", config)
    assert code == 0 and "balance 0" in out
    code, out, _ = run(capsys, "credits", "grant", account, str(MAX_CREDITS), "--config", config)
    assert code == 0 and f"balance {MAX_CREDITS}" in out
    balance = show(capsys, config, account)["balance"]
    assert type(balance) is int and balance == MAX_CREDITS


def create(capsys: pytest.CaptureFixture[str], config: str, *, credits: int) -> str:
    code, out, _ = run(
        capsys,
        "keys",
        "create",
        "--name",
        "x",
        "--credits",
        str(credits),
        "--json",
        "--config",
        config,
    )
    assert code == 0
    account: str = json.loads(out)["account_id"]
    return account


def show(capsys: pytest.CaptureFixture[str], config: str, account: str) -> dict[str, int]:
    code, out, _ = run(capsys, "credits", "show", account, "--json", "--config", config)
    assert code == 0
    shown = json.loads(out)
    return {"balance": shown["balance"], "reserved": shown["reserved"]}


def test_keys_have_a_scope_and_accounts_can_be_marked_operator(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "keys", "create", "--name", "shop", "--json", "--config", config)
    shop = json.loads(out)
    assert (code, shop["scope"]) == (0, "inference")
    account = shop["account_id"]
    code, out, _ = run(
        capsys, "keys", "create", "--name", "admin", "--account", account,
        "--scope", "management", "--config", config,
    )  # fmt: skip
    assert code == 0 and out.startswith("tryon_") and "management key" in out
    code, out, _ = run(capsys, "keys", "list", "--json", "--config", config)
    assert [(k["name"], k["scope"]) for k in json.loads(out)] == [
        ("shop", "inference"),
        ("admin", "management"),
    ]
    code, out, _ = run(capsys, "keys", "list", "--config", config)
    assert [line.split()[3] for line in out.splitlines()] == ["inference", "management"]
    with pytest.raises(SystemExit) as usage:
        run(capsys, "keys", "create", "--name", "x", "--scope", "admin", "--config", config)
    assert usage.value.code == 2 and "management" in capsys.readouterr().err

    async def operator() -> bool:
        database = create_database(f"sqlite+aiosqlite:///{Path(config).parent}/cli.db")
        try:
            async with database.reading() as conn:
                return await accounts.is_operator(conn, account)
        finally:
            await database.dispose()

    assert asyncio.run(operator()) is False
    code, out, _ = run(capsys, "accounts", "operator", account, "--config", config)
    assert (code, out) == (0, f"account {account}: operator\n")
    assert asyncio.run(operator()) is True
    code, out, _ = run(
        capsys, "accounts", "operator", account, "--off", "--json", "--config", config
    )
    assert json.loads(out) == {"account_id": account, "operator": False}
    assert asyncio.run(operator()) is False
    code, _, err = run(capsys, "accounts", "operator", "acct_missing", "--config", config)
    assert (code, err) == (1, "tryon: No account 'acct_missing'.\n")


def test_keys_carry_limits_that_set_limit_changes(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys,
        "keys",
        "create",
        "--name",
        "capped",
        "--limit",
        "500",
        "--limit-reset",
        "monthly",
        "--concurrent-generations",
        "2",
        "--json",
        "--config",
        config,
    )
    assert code == 0
    created = json.loads(out)
    assert (created["limit"], created["limit_remaining"], created["limit_reset"]) == (
        500,
        500,
        "monthly",
    )
    assert (created["concurrent_generations"], created["requests_per_minute"]) == (2, None)
    code, out, _ = run(capsys, "keys", "list", "--config", config)
    assert "limit 500/500 monthly  2 at once" in out

    key_id = created["id"]
    code, out, _ = run(
        capsys, "keys", "set-limit", key_id, "--requests-per-minute", "60", "--config", config
    )
    assert code == 0 and "limit 500/500 monthly  60/min  2 at once" in out
    code, out, _ = run(
        capsys,
        "keys",
        "set-limit",
        key_id,
        "--limit",
        "none",
        "--concurrent-generations",
        "none",
        "--json",
        "--config",
        config,
    )
    changed = json.loads(out)
    assert (changed["limit"], changed["concurrent_generations"]) == (None, None)
    assert (changed["requests_per_minute"], changed["limit_reset"]) == (60, "monthly")


@pytest.mark.parametrize(
    "argv",
    [
        ["--limit", "-1"],
        ["--limit", "1000000000001"],
        ["--limit", "1.5"],
        ["--requests-per-minute", "0"],
        ["--concurrent-generations", "1000001"],
        ["--concurrent-generations", "two"],
    ],
)
def test_bad_limits_are_one_line_and_change_nothing(
    config: str, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, _, err = run(capsys, "keys", "create", "--name", "x", *argv, "--config", config)
    assert code == 1 and argv[0] in one_line_error(err)
    code, out, _ = run(capsys, "keys", "list", "--json", "--config", config)
    assert json.loads(out) == []  # nothing was created
    code, out, _ = run(capsys, "keys", "create", "--name", "y", "--json", "--config", config)
    key_id = json.loads(out)["id"]
    code, _, err = run(capsys, "keys", "set-limit", key_id, *argv, "--config", config)
    assert code == 1 and argv[0] in one_line_error(err)
    code, out, _ = run(capsys, "keys", "list", "--json", "--config", config)
    (key,) = json.loads(out)
    assert (key["limit"], key["requests_per_minute"], key["concurrent_generations"]) == (
        None,
        None,
        None,
    )


def test_set_limit_needs_a_known_key_and_an_option(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        capsys, "keys", "set-limit", "key_missing", "--limit", "5", "--config", config
    )
    assert code == 1 and "No key" in one_line_error(err)
    code, out, _ = run(capsys, "keys", "create", "--name", "y", "--json", "--config", config)
    code, _, err = run(capsys, "keys", "set-limit", json.loads(out)["id"], "--config", config)
    assert code == 1 and "--limit" in one_line_error(err)
