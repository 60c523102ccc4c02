"""The ``tryon`` command: serve, worker, keys, accounts, credits, usage, models, console, db. Every
command honours --config."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec

from tryon_core import accounts, billing, key_limits
from tryon_core.amounts import MAX_CREDITS
from tryon_core.config import MAX_LIMIT, MAX_WORKERS, Settings, load_settings
from tryon_core.db import Database, create_database
from tryon_core.errors import ConfigError, InvalidRequest, TryOnError
from tryon_core.gateway import build_catalog
from tryon_core.limit_periods import LIMIT_RESETS
from tryon_core.usage_command import usage_command
from tryon_core.usage_report import GROUPINGS

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        settings = load_settings(getattr(args, "config", None))
        result: int = args.handler(settings, args)
        return result
    except ConfigError as exc:
        print(f"tryon: configuration error: {exc}", file=sys.stderr)
        return 2
    except TryOnError as exc:
        print(f"tryon: {exc.message}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `tryon keys list | head`: the reader left; that is fine
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (silence the flush at exit)
        return 0


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="configuration file (default: $TRYON_CONFIG, else config/tryon.toml)",
    )
    parser = argparse.ArgumentParser(
        prog="tryon", description="tryon-core: the virtual try-on gateway.", parents=[common]
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    serve = commands.add_parser("serve", parents=[common], help="run the gateway")
    serve.add_argument("--host", help="override server.host")
    serve.add_argument("--port", type=int, help="override server.port")
    serve.add_argument(
        "--workers",
        dest="processes",
        type=int,
        metavar="N",
        help="override server.workers: N processes serving the port (about one per CPU core)",
    )
    serve.add_argument(
        "--no-workers",
        dest="workers",
        action="store_false",
        help="serve the API alone: accept async jobs, never run them (`tryon worker` does)",
    )
    _logging_options(serve)
    serve.set_defaults(handler=_serve)

    worker = commands.add_parser(
        "worker",
        parents=[common],
        help="run async jobs, with no HTTP server",
        description="Run async jobs ([jobs] workers at once) taken from the job queue ([redis] "
        "url) or found by the sweep, plus the sweeper, retention and webhook deliveries, until "
        "SIGTERM or SIGINT; running jobs then get [jobs] shutdown_grace_seconds.",
    )
    _logging_options(worker)
    worker.set_defaults(handler=_worker)

    keys = commands.add_parser("keys", help="API keys").add_subparsers(metavar="ACTION")
    create = keys.add_parser("create", parents=[common], help="create a key (shown once)")
    create.add_argument("--name", required=True)
    create.add_argument("--account", metavar="ID", help="add the key to this account")
    create.add_argument(
        "--credits", metavar="N", default="0", help=f"grant this many credits (0 to {MAX_CREDITS})"
    )
    create.add_argument(
        "--scope",
        choices=accounts.SCOPES,
        default="inference",
        help="inference (try-ons, jobs, files, credits; the default) or management (keys, "
        "demo sessions, webhooks)",
    )
    _limit_options(create, keep="no limit of its own")
    create.add_argument("--json", action="store_true")
    create.set_defaults(handler=_run(_keys_create))
    listing = keys.add_parser("list", parents=[common], help="list keys")
    listing.add_argument("--account", metavar="ID")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_run(_keys_list))
    revoke = keys.add_parser("revoke", parents=[common], help="revoke a key at once")
    revoke.add_argument("id")
    revoke.add_argument("--json", action="store_true")
    revoke.set_defaults(handler=_run(_keys_revoke))
    set_limit = keys.add_parser(
        "set-limit",
        parents=[common],
        help="change a key's limits (an option left out is kept; 'none' clears it)",
    )
    set_limit.add_argument("id")
    _limit_options(set_limit, keep="unchanged")
    set_limit.add_argument("--json", action="store_true")
    set_limit.set_defaults(handler=_run(_keys_set_limit))

    account = commands.add_parser("accounts", help="accounts").add_subparsers(metavar="ACTION")
    operator = account.add_parser(
        "operator", parents=[common], help="mark an account operator (for the console), or not"
    )
    operator.add_argument("account_id")
    operator.add_argument("--off", action="store_true", help="unmark it")
    operator.add_argument("--json", action="store_true")
    operator.set_defaults(handler=_run(_accounts_operator))

    credit = commands.add_parser("credits", help="account credits").add_subparsers(metavar="ACTION")
    grant = credit.add_parser("grant", parents=[common], help="add credits to an account")
    grant.add_argument("account_id")
    grant.add_argument(
        "credits", help=f"credits to add, or take back if negative (at most {MAX_CREDITS})"
    )
    grant.add_argument("--note", default="")
    grant.add_argument("--json", action="store_true")
    grant.set_defaults(handler=_run(_credits_grant))
    show = credit.add_parser("show", parents=[common], help="an account's balance")
    show.add_argument("account_id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=_run(_credits_show))

    usage = commands.add_parser(
        "usage",
        parents=[common],
        help="spend per account, key and model over a period",
        description="Generations created in the period (UTC) and the credits they were charged, "
        "grouped by account, by key and by model (the one that served, else the last tried).",
    )
    usage.add_argument(
        "--since", metavar="WHEN", help="a date or ISO time, UTC (default: this month's first day)"
    )
    usage.add_argument(
        "--until",
        metavar="WHEN",
        help="a date (that day included) or ISO time (excluded), UTC (default: next month)",
    )
    usage.add_argument("--account", metavar="ID", help="only this account")
    usage.add_argument(
        "--by", choices=GROUPINGS, help="one grouping only (default: all three, one table each)"
    )
    usage.add_argument("--json", action="store_true")
    usage.set_defaults(handler=_run(usage_command))

    listed = commands.add_parser("models", parents=[common], help="list the enabled models")
    listed.add_argument("--json", action="store_true")
    listed.set_defaults(handler=_models)

    plugins = commands.add_parser("plugins", help="provider plugins").add_subparsers(
        metavar="ACTION"
    )
    listing_plugins = plugins.add_parser(
        "list",
        parents=[common],
        help="installed plugins, their versions, providers and models, and what is enabled",
    )
    listing_plugins.add_argument("--json", action="store_true")
    listing_plugins.set_defaults(handler=_plugins_list)
    scaffold = plugins.add_parser(
        "new",
        help="scaffold a provider plugin package that installs and passes its tests",
        description="Write a new provider plugin package, tryon-NAME, into DIR: adapter, "
        "config, fake upstream, contract and gateway tests, README. Its tests pass as they "
        "stand; edit the adapter and the fake to speak your provider's protocol.",
    )
    scaffold.add_argument("name", metavar="NAME", help="the provider's name: a-z, 0-9, _")
    scaffold.add_argument(
        "--dir", default=".", metavar="DIR", help="where to create tryon-NAME/ (default: .)"
    )
    scaffold.set_defaults(handler=_plugins_new)

    fakes = commands.add_parser("fakes", help="fake upstreams").add_subparsers(metavar="ACTION")
    fake_serve = fakes.add_parser(
        "serve", parents=[common], help="serve every installed provider's fake on one port"
    )
    fake_serve.add_argument("--host", default="127.0.0.1")
    fake_serve.add_argument("--port", type=int, default=9100)
    fake_serve.set_defaults(handler=_fakes_serve)

    console = commands.add_parser("console", help="the web console").add_subparsers(
        metavar="ACTION"
    )
    link = console.add_parser(
        "link",
        parents=[common],
        help="print a one-time sign-in link for the console",
        description="Print a link that signs in to the web console once, within "
        "[console] link_minutes. Without --account: the first operator account, else the "
        "only account (with several accounts and no operator, name one).",
    )
    link.add_argument(
        "--account",
        metavar="ID",
        help="the account to sign in to (default: the first operator, else the only account)",
    )
    link.add_argument("--json", action="store_true")
    link.set_defaults(handler=_console_link)

    db = commands.add_parser("db", help="database").add_subparsers(metavar="ACTION")
    upgrade = db.add_parser("upgrade", parents=[common], help="apply migrations")
    upgrade.set_defaults(handler=_run(_db_upgrade))
    return parser


def _logging_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        help="override logging.level (default: info)",
    )
    command.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="override logging.format: text (readable, the default) or json (one object a line)",
    )


def _apply_logging_options(settings: Settings, args: argparse.Namespace) -> None:
    if args.log_level:
        settings.logging.level = args.log_level
    if args.log_format:
        settings.logging.format = args.log_format


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from tryon_core.server import serve

    _apply_logging_options(settings, args)

    if args.host:
        settings.server.host = args.host
    if args.port is not None:
        settings.server.port = args.port
    if args.processes is not None:
        if not 1 <= args.processes <= MAX_WORKERS:
            raise ConfigError(f"--workers takes a whole number from 1 to {MAX_WORKERS}")
        settings.server.workers = args.processes
    return serve(settings, workers=args.workers)


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from tryon_core.roles import run_worker

    _apply_logging_options(settings, args)
    run_worker(settings)
    return 0


def _fakes_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from tryon_core.plugins import collect_providers, make_plugin_manager
    from tryon_core.testing.fakes import load_fake, mount_fakes

    registry = collect_providers(make_plugin_manager(blocked=settings.plugins.blocked))
    apps = {name: load_fake(spec.fake) for name, spec in registry.providers.items() if spec.fake}
    if not apps:
        print("no installed plugin ships a fake upstream", file=sys.stderr)
        return 1
    for name in sorted(apps):
        print(f"fake {name:10} http://{args.host}:{args.port}/{name}")
    uvicorn.run(mount_fakes(apps), host=args.host, port=args.port, log_level="warning")
    return 0


def _limit_options(parser: argparse.ArgumentParser, *, keep: str) -> None:
    """The options of a key's limits (docs/operations.md#limits); left out: ``keep``."""
    parser.add_argument(
        "--limit",
        metavar="N",
        help=f"credits the key may use per --limit-reset period (0 to {MAX_CREDITS}), or none; "
        f"left out: {keep}",
    )
    parser.add_argument(
        "--limit-reset",
        choices=LIMIT_RESETS,
        help="when the credit limit starts over, in UTC (weeks begin on Monday); "
        "on create the default is none (never)",
    )
    for option, what in (
        ("--requests-per-minute", "requests that start a generation per minute"),
        ("--concurrent-generations", "generations at once"),
    ):
        parser.add_argument(
            option,
            metavar="N",
            help=f"{what}, this key's own (1 to {MAX_LIMIT}), or none for the [limits] "
            f"default; left out: {keep}",
        )


def _limits(args: argparse.Namespace) -> dict[str, Any]:
    """The limits the options give, as :func:`tryon_core.key_limits.set_limits` takes them."""
    wanted: dict[str, Any] = {}
    if args.limit is not None:
        wanted["limit"] = _number(args.limit, "--limit", 0, MAX_CREDITS)
    if args.limit_reset is not None:
        wanted["limit_reset"] = args.limit_reset
    for field in ("requests_per_minute", "concurrent_generations"):
        text = getattr(args, field)
        if text is not None:
            wanted[field] = _number(text, "--" + field.replace("_", "-"), 1, MAX_LIMIT)
    return wanted


def _number(text: str, option: str, low: int, high: int) -> int | None:
    """A whole number from ``low`` to ``high``, or None for ``none``; else a one-line error."""
    if text.strip().lower() == "none":
        return None
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise InvalidRequest(f"{option} takes a whole number from {low} to {high}, or none.")
    return value


def _key_data(info: accounts.KeyInfo) -> dict[str, Any]:
    """A key as ``--json`` shows it: its record and what is left of its limit now."""
    standing = key_limits.standing(info)
    data: dict[str, Any] = msgspec.to_builtins(info)
    for internal in ("credit_limit", "limit_used", "limit_period_start"):
        del data[internal]
    return {**data, "limit": standing.limit, "limit_remaining": standing.remaining}


def _limit_text(info: accounts.KeyInfo) -> str:
    standing = key_limits.standing(info)
    parts = []
    if standing.limit is not None:
        period = "" if standing.reset == "none" else f" {standing.reset}"
        parts.append(f"limit {standing.remaining}/{standing.limit}{period}")
    if info.requests_per_minute is not None:
        parts.append(f"{info.requests_per_minute}/min")
    if info.concurrent_generations is not None:
        parts.append(f"{info.concurrent_generations} at once")
    return "".join(f"  {part}" for part in parts)


Command = Callable[[Database, argparse.Namespace], Awaitable[Any]]


def _run(command: Command) -> Callable[[Settings, argparse.Namespace], int]:
    """Open the database (migrated), run one command, print its result."""

    def handler(settings: Settings, args: argparse.Namespace) -> int:
        async def go() -> Any:
            database = create_database(settings.database.url, timeout=settings.database.timeout)
            try:
                if settings.database.migrate_on_start or command is _db_upgrade:
                    await database.upgrade()
                return await command(database, args)
            finally:
                await database.dispose()

        result = asyncio.run(go())
        if isinstance(result, tuple):
            human, data = result
            print(
                json.dumps(data, indent=2, default=str) if getattr(args, "json", False) else human
            )
        return 0

    return handler


def _credits(text: str, *, name: str, low: int) -> int:
    """A credit amount from the command line, or a one-line error stating the range."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not low <= value <= MAX_CREDITS:
        raise InvalidRequest(f"{name} takes a whole number of credits from {low} to {MAX_CREDITS}.")
    return value


async def _keys_create(database: Database, args: argparse.Namespace) -> tuple[str, Any]:
    credits = _credits(args.credits, name="--credits", low=0)
    limits = _limits(args)
    async with database.transaction() as conn:
        account_id = args.account or await accounts.create_account(conn, name=args.name)
        info, secret = await accounts.create_key(
            conn, account_id=account_id, name=args.name, scope=args.scope
        )
        if limits:
            info = await key_limits.set_limits(conn, info.id, limits)
        if credits:
            await billing.grant(conn, account_id, credits, note="keys create")
        account = await accounts.get_account(conn, account_id)
    data = {**_key_data(info), "key": secret, "balance": account.balance}
    human = (
        f"{secret}\n"
        f"  {info.scope} key {info.id} ({info.name}) for account {account_id}, "
        f"balance {account.balance}{_limit_text(info)}\n"
        "  Store the key now: it is not shown again."
    )
    return human, data


async def _keys_list(database: Database, args: argparse.Namespace) -> tuple[str, Any]:
    async with database.reading() as conn:
        found = await accounts.list_keys(conn, account_id=args.account)
    rows = [
        f"{k.id}  {k.prefix}…  {k.account_id}  {k.scope:10}  {k.name!r}"
        + _limit_text(k)
        + ("  revoked" if k.revoked_at else "")
        for k in found
    ]
    return "\n".join(rows) or "no keys", [_key_data(k) for k in found]


async def _keys_revoke(database: Database, args: argparse.Namespace) -> tuple[str, Any]:
    async with database.transaction() as conn:
        info = await accounts.revoke_key(conn, args.id)
    return f"revoked {info.id} ({info.prefix}…)", _key_data(info)


async def _keys_set_limit(database: Database, args: argparse.Namespace) -> tuple[str, Any]:
    limits = _limits(args)
    if not limits:
        raise InvalidRequest(
            "Give at least one of --limit, --limit-reset, --requests-per-minute, "
            "--concurrent-generations."
        )
    async with database.transaction() as conn:
        info = await key_limits.set_limits(conn, args.id, limits)
    return f"{info.id} ({info.prefix}…){_limit_text(info) or '  no limits of its own'}", _key_data(
        info
    )


async def _accounts_operator(database: Database, args: argparse.Namespace) -> tuple[str, Any]:
    on = not args.off
    async with database.transaction() as conn:
        await accounts.set_operator(conn, args.account_id, on)
    return (
        f"account {args.account_id}: {'operator' if on else 'not an operator'}",
        {"account_id": args.account_id, "operator": on},
    )


async def _credits_grant(database: Database, args: argparse.Namespace) -> tuple[str, Any]:
    credits = _credits(args.credits, name="CREDITS", low=-MAX_CREDITS)
    async with database.transaction() as conn:
        balance = await billing.grant(conn, args.account_id, credits, note=args.note)
    return (
        f"account {args.account_id}: balance {balance}",
        {"account_id": args.account_id, "balance": balance},
    )


async def _credits_show(database: Database, args: argparse.Namespace) -> tuple[str, Any]:
    async with database.reading() as conn:
        account = await accounts.get_account(conn, args.account_id)
    return (
        f"account {account.id}: balance {account.balance}, reserved {account.reserved}",
        msgspec.to_builtins(account),
    )


def _console_link(settings: Settings, args: argparse.Namespace) -> int:
    from tryon_core.console.links import new_sign_in_link

    async def command(database: Database, args: argparse.Namespace) -> tuple[str, Any]:
        async with database.transaction() as conn:
            url, account_id, expires = await new_sign_in_link(
                conn, settings, account_id=args.account
            )
        minutes = settings.console.link_minutes
        human = (
            f"{url}\n"
            f"  signs in to the console as account {account_id}, once, within {minutes} "
            f"minutes (until {expires:%Y-%m-%d %H:%M} UTC)"
        )
        return human, {"url": url, "account_id": account_id, "expires_at": expires.isoformat()}

    return _run(command)(settings, args)


async def _db_upgrade(database: Database, args: argparse.Namespace) -> tuple[str, Any]:
    return "database is up to date", {"status": "ok"}


def _plugins_list(settings: Settings, args: argparse.Namespace) -> int:
    from tryon_core.plugin_inventory import inventory, render

    plugins = inventory(settings)
    if args.json:
        print(msgspec.json.format(msgspec.json.encode(plugins), indent=2).decode())
    else:
        print(render(plugins))
    return 0


def _plugins_new(settings: Settings, args: argparse.Namespace) -> int:
    from tryon_core.scaffold import scaffold

    created = scaffold(args.name, Path(args.dir))
    print(f"created {created}")
    print(f"  cd {created} && uv venv && uv pip install -e '.[test]' && uv run pytest")
    return 0


def _models(settings: Settings, args: argparse.Namespace) -> int:
    catalog = build_catalog(settings)
    entries = sorted(catalog.entries.values(), key=lambda e: e.slug)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "id": e.slug,
                        "name": e.model.name,
                        "provider": e.provider.name,
                        "credits": e.credits,
                    }
                    for e in entries
                ],
                indent=2,
            )
        )
    else:
        for e in entries:
            print(f"{e.slug:32} {e.credits:>4} credits  {e.model.name}")
        if not entries:
            print("no models are enabled; enable a provider in the config")
    return 0
