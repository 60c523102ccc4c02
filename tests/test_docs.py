"""The documentation keeps up with the code (in the spirit of datasette's test_docs.py).

Each test fails, naming what is missing, when the code grows something the docs do not cover:
a route (docs/api.md), a configuration key or a changed default (docs/configuration.md and
config/tryon.example.toml), a CLI command or option (docs/cli.md), a hook (docs/plugins.md),
an error ``type`` (docs/api.md). It also checks that JSON shown in the docs parses, that code
blocks marked ``<!-- file: PATH -->`` are exactly that file, and that relative links resolve.
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import tomllib
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from tests.helpers import ROOT
from tryon_core import errors, hookspecs
from tryon_core.api.app import ROUTES
from tryon_core.cli import _parser
from tryon_core.config import Settings
from tryon_core.provider import ProviderConfig

DOCS = ROOT / "docs"
OWN_DOCS = ["configuration.md", "cli.md", "api.md", "billing.md", "plugins.md"]


def read(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def sections(markdown: str, level: int) -> dict[str, str]:
    """Heading text -> the text under it, up to the next heading of the same or a higher level."""
    found: dict[str, str] = {}
    pattern = re.compile(rf"^(#{{1,{level}}}) (.+)$", re.M)
    matches = list(pattern.finditer(markdown))
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        if len(match.group(1)) == level:
            end = following.start() if following else len(markdown)
            found[match.group(2).strip()] = markdown[match.end() : end]
    return found


# -- routes -------------------------------------------------------------------------------------


def documented_routes() -> list[str]:
    """``METHOD /path`` for every route handler, with ``{name:type}`` written ``{name}``."""
    routes = []
    for handler in ROUTES:
        for path in sorted(handler.paths):
            plain = re.sub(r"\{(\w+):\w+\}", r"{\1}", path)
            routes += [f"{method} {plain}" for method in sorted(handler.http_methods)]
    return routes


@pytest.mark.parametrize("route", documented_routes())
def test_every_route_is_in_the_api_docs(route: str) -> None:
    assert f"`{route}`" in read("api.md"), f"docs/api.md does not mention `{route}`"


# -- configuration ------------------------------------------------------------------------------


def struct_keys(struct: type[msgspec.Struct], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted.key, default)`` for every leaf of a config Struct, walking nested Structs.

    ``[models."SLUG"]`` is walked as ``models.*``; ``[providers.NAME]`` sections are free-form in
    Settings and are covered by :class:`ProviderConfig` (``providers.*``).
    """
    for field in msgspec.structs.fields(struct):
        key = f"{prefix}{field.name}"
        kind = field.type
        if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
            yield from struct_keys(kind, f"{key}.")
        elif key == "models":
            yield from struct_keys(kind.__args__[1], "models.*.")
        elif key == "providers":
            yield from struct_keys(ProviderConfig, "providers.*.")
        else:
            default = field.default
            if default is msgspec.NODEFAULT:
                default = field.default_factory()
            yield key, default


CONFIG_KEYS = list(struct_keys(Settings))


def config_sections() -> dict[str, dict[str, str]]:
    """docs/configuration.md: section -> {key: default cell} from each ``## `[section]` `` table."""
    tables: dict[str, dict[str, str]] = {}
    for heading, body in sections(read("configuration.md"), 2).items():
        match = re.match(r"`\[(\w+)", heading)
        if not match:
            continue
        name = match.group(1)
        section = {"models": "models.*", "providers": "providers.*"}.get(name, name)
        rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \|", body, re.M)
        tables[section] = {key: cell.strip() for key, cell in rows}
    return tables


def toml_value(cell: str) -> Any:
    if cell == "unset":
        return None
    return tomllib.loads(f"value = {cell.strip('`')}")["value"]


@pytest.mark.parametrize(("key", "default"), CONFIG_KEYS, ids=[k for k, _ in CONFIG_KEYS])
def test_every_config_key_is_documented_with_its_default(key: str, default: Any) -> None:
    section, name = key.rsplit(".", 1)
    table = config_sections().get(section)
    assert table is not None, f"docs/configuration.md has no ## `[{section}]` section"
    assert name in table, f"docs/configuration.md: [{section}] table lacks `{name}`"
    documented = toml_value(table[name])
    if isinstance(default, tuple):
        default = list(default)
    assert documented == default, (
        f"docs/configuration.md says [{section}] {name} defaults to {table[name]}, "
        f"the code says {default!r}"
    )


def example_toml_keys() -> set[str]:
    """Every ``section.key`` config/tryon.example.toml sets or shows in a comment."""
    keys: set[str] = set()
    section = ""
    for line in (ROOT / "config" / "tryon.example.toml").read_text().splitlines():
        header = re.match(r"^#?\s*\[([^\]]+)\]", line)
        if header:
            name = header.group(1)
            parts = re.match(r'(\w+)(?:\.("[^"]*"|\w+))?$', name)
            assert parts, f"unexpected table header {name!r}"
            top, sub = parts.groups()
            if top in ("models", "providers"):
                section = f"{top}.*"
            elif sub:  # [routing.fallbacks]: the table is the key
                keys.add(f"{top}.{sub}")
                section = f"{top}.{sub}"
            else:
                section = top
            continue
        assignment = re.match(r"^#?\s*(\w+)\s*=", line)
        if assignment and section:
            keys.add(f"{section}.{assignment.group(1)}")
    return keys


@pytest.mark.parametrize("key", [k for k, _ in CONFIG_KEYS])
def test_every_config_key_is_in_the_example_file(key: str) -> None:
    if key.startswith("providers.*."):
        # Common provider keys are described in a comment of the example file.
        name = key.rsplit(".", 1)[1]
        assert re.search(rf"\b{name}\b", (ROOT / "config" / "tryon.example.toml").read_text())
        return
    assert key in example_toml_keys(), f"config/tryon.example.toml does not show {key}"


# -- command line -------------------------------------------------------------------------------


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def cli_commands() -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """``("keys create", parser)`` for every runnable command."""
    for name, sub in subcommands(_parser()).items():
        nested = subcommands(sub)
        if nested:
            for action, leaf in nested.items():
                yield f"{name} {action}", leaf
        else:
            yield name, sub


CLI_COMMANDS = list(cli_commands())


@pytest.mark.parametrize(("command", "parser"), CLI_COMMANDS, ids=[c for c, _ in CLI_COMMANDS])
def test_every_cli_command_and_option_is_documented(
    command: str, parser: argparse.ArgumentParser
) -> None:
    headed = sections(read("cli.md"), 2)
    body = headed.get(f"`tryon {command}`")
    assert body is not None, f"docs/cli.md has no ## `tryon {command}` section"
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if action.option_strings:
            option = max(action.option_strings, key=len)
            if option == "--config":
                continue  # documented once, for every command
            assert option in body, f"docs/cli.md: `tryon {command}` does not describe {option}"
        else:
            assert action.dest.upper() in body, (
                f"docs/cli.md: `tryon {command}` does not name its argument {action.dest.upper()}"
            )


def test_common_cli_options_and_exit_codes_are_documented() -> None:
    text = read("cli.md")
    assert "--config PATH" in text and "--json" in text
    for status in ("`0`", "`1`", "`2`"):
        assert f"| {status} |" in text, f"docs/cli.md: exit status {status} is not in the table"


# -- plugins ------------------------------------------------------------------------------------


HOOKS = [
    (name, function)
    for name, function in vars(hookspecs).items()
    if callable(function) and hasattr(function, f"{hookspecs.PROJECT}_spec")
]


@pytest.mark.parametrize(("name", "function"), HOOKS, ids=[n for n, _ in HOOKS])
def test_every_hook_is_documented(name: str, function: Any) -> None:
    headed = {h: b for h, b in sections(read("plugins.md"), 2).items() if f"`{name}`" in h}
    assert headed, f"docs/plugins.md has no ## heading for the hook `{name}`"
    (body,) = headed.values()
    parameters = list(inspect.signature(function).parameters)
    assert f"{name}({', '.join(parameters)}" in body
    for label in ("When it runs", "Parameters", "Returns", "May raise"):
        assert f"**{label}**" in body, f"docs/plugins.md: `{name}` lacks '{label}'"
    for parameter in parameters:
        assert f"`{parameter}`" in body, f"docs/plugins.md: `{name}` lacks `{parameter}`"


def test_plugin_reference_covers_every_field() -> None:
    """ProviderSpec, ModelSpec, Capabilities, ProviderConfig, ProviderRequest, ProviderContext."""
    from tryon_core import provider

    text = read("plugins.md")
    for struct in (
        provider.ProviderSpec,
        provider.ModelSpec,
        provider.Capabilities,
        provider.ProviderConfig,
        provider.ProviderRequest,
        provider.ProviderContext,
        provider.InputImage,
    ):
        for field in msgspec.structs.fields(struct):
            assert f"`{field.name}`" in text, (
                f"docs/plugins.md lacks {struct.__name__}.{field.name}"
            )


def test_every_provider_error_is_in_the_plugin_guide() -> None:
    text = read("plugins.md")
    for cls in error_classes():
        if issubclass(cls, errors.ProviderError):
            assert f"`{cls.__name__}`" in text, f"docs/plugins.md does not mention {cls.__name__}"


# -- errors -------------------------------------------------------------------------------------


def error_classes() -> list[type[errors.TryOnError]]:
    return [
        cls
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.TryOnError)
    ]


def error_rows() -> dict[str, str]:
    """docs/api.md error table: `type` -> status cell."""
    rows = re.findall(r"^\| (\d{3}) \| `([a-z_]+)` \|", read("api.md"), re.M)
    return {kind: status for status, kind in rows}


@pytest.mark.parametrize("cls", error_classes(), ids=lambda cls: cls.__name__)
def test_every_error_class_type_is_in_the_api_docs(cls: type[errors.TryOnError]) -> None:
    rows = error_rows()
    assert cls.type in rows, f"docs/api.md error table lacks `{cls.type}` ({cls.__name__})"
    assert rows[cls.type] == str(cls.status), (
        f"docs/api.md gives `{cls.type}` status {rows[cls.type]}, {cls.__name__} has {cls.status}"
    )


def raised_types() -> set[str]:
    """``type="..."`` overrides written where errors are raised, anywhere in the core, and the
    types the HTTP edge writes itself (``envelope(STATUS, "message", "type")``)."""
    found: set[str] = set()
    for path in (ROOT / "src" / "tryon_core").rglob("*.py"):
        if "testing" in path.parts:
            continue
        text = path.read_text()
        found |= set(re.findall(r'\btype="([a-z_]+)"', text))
        found |= set(re.findall(r'envelope\(\s*\d{3},\s*"[^"]*",\s*"([a-z_]+)"', text))
    return found


@pytest.mark.parametrize("kind", sorted(raised_types()))
def test_every_raised_error_type_is_in_the_api_docs(kind: str) -> None:
    assert kind in error_rows(), f"docs/api.md error table lacks `{kind}`"


# -- the Markdown itself ------------------------------------------------------------------------


@pytest.mark.parametrize("name", OWN_DOCS)
def test_json_blocks_parse(name: str) -> None:
    for block in re.findall(r"```json\n(.*?)```", read(name), re.S):
        json.loads(block)


@pytest.mark.parametrize("name", OWN_DOCS)
def test_file_blocks_match_their_files(name: str) -> None:
    for path, block in re.findall(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```", read(name), re.S):
        assert block == (ROOT / path).read_text(), f"docs/{name}: the block for {path} is stale"


@pytest.mark.parametrize("name", OWN_DOCS)
def test_relative_links_resolve(name: str) -> None:
    text = read(name)
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" in target:
            continue
        assert (DOCS / target).exists(), f"docs/{name} links to missing {target}"


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@pytest.mark.parametrize("name", OWN_DOCS)
def test_anchors_resolve(name: str) -> None:
    for target, fragment in re.findall(r"\]\(([^)#\s]*)#([^)\s]+)\)", read(name)):
        page = target or name
        headings = re.findall(r"^#+ (.+)$", read(page), re.M)
        anchors = {anchor(h) for h in headings}
        assert fragment in anchors, f"docs/{name}: #{fragment} is not a heading of {page}"
