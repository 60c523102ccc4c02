"""The documentation keeps up with the code (in the spirit of datasette's test_docs.py).

Each test fails, naming what is missing, when the code grows something the docs do not cover:
a route (docs/api.md), a configuration key or a changed default (docs/configuration.md and
config/tryon.example.toml), a CLI command or option (docs/cli.md), a hook (docs/plugins.md),
an error ``type`` (docs/api.md), an installed model, its price and capabilities, a provider's
config key or default, what a fake's fault becomes (docs/providers.md). It also checks that
JSON shown in the docs parses, that code blocks marked ``<!-- file: PATH -->`` are exactly that
file and ``<!-- excerpt: PATH -->`` a part of it, and that relative links resolve.
"""

from __future__ import annotations

import argparse
import importlib.util
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
from tryon_core.model_options import options_schema
from tryon_core.plugins import collect_providers, make_plugin_manager
from tryon_core.provider import CATEGORIES, ProviderConfig
from tryon_core.testing.fakes import FAULT_KINDS, load_fake

DOCS = ROOT / "docs"
OWN_DOCS = ["configuration.md", "cli.md", "api.md", "billing.md", "plugins.md", "providers.md"]


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
            methods = getattr(handler, "http_methods", None) or {"WEBSOCKET"}
            routes += [f"{method} {plain}" for method in sorted(methods)]
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
        match = re.match(r"`\[(\w+)(?:\.([a-z_]+)\])?", heading)
        if not match:
            continue
        name = ".".join(part for part in match.groups() if part)  # [limits.account]
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


# -- providers ----------------------------------------------------------------------------------

INSTALLED = collect_providers(make_plugin_manager())


def table_rows(markdown: str, marker: str) -> list[dict[str, str]]:
    """The body rows of the Markdown table after ``<!-- marker -->``, as header -> cell."""
    tail = markdown.split(f"<!-- {marker} -->", 1)[1].lstrip("\n")
    lines = []
    for line in tail.splitlines():
        if not line.startswith("|"):
            break
        lines.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    header, _, *rows = lines
    return [dict(zip(header, row, strict=True)) for row in rows]


def documented_models() -> dict[str, dict[str, str]]:
    return {
        row["Model"].strip("`"): row for row in table_rows(read("providers.md"), "models-table")
    }


@pytest.mark.parametrize("slug", sorted(INSTALLED.models))
def test_every_model_option_is_in_the_providers_doc(slug: str) -> None:
    _, model = INSTALLED.models[slug]
    documented = [
        row["Option"].strip("`")
        for row in table_rows(read("providers.md"), "options-table")
        if row["Model"].strip("`") == slug
    ]
    declared = [] if model.options is None else list(options_schema(model.options)["properties"])
    assert documented == declared, f"docs/providers.md: the options table of {slug} is stale"


EN_DASH = "\N{EN DASH}"


def span(most: int) -> str:
    return "1" if most == 1 else f"1{EN_DASH}{most}"


@pytest.mark.parametrize("slug", sorted(INSTALLED.models))
def test_every_installed_model_is_in_the_providers_doc_with_its_price(slug: str) -> None:
    row = documented_models().get(slug)
    assert row is not None, f"docs/providers.md: the models table lacks `{slug}`"
    spec, model = INSTALLED.models[slug]
    assert row["Credits"] == str(model.credits), (
        f"docs/providers.md prices {slug} at {row['Credits']} credits, "
        f"its ModelSpec at {model.credits}"
    )
    caps = model.capabilities
    categories = ", ".join(f"`{c}`" for c in caps.categories)
    expected = {
        "Provider": f"`{spec.name}`",
        "Execution": caps.execution,
        "Garments": span(caps.max_garments),
        "`n`": span(caps.max_outputs),
        "Categories": "all" if set(caps.categories) == set(CATEGORIES) else categories,
        "Seed": "yes" if caps.supports_seed else "no",
        "Prompt": "yes" if caps.uses_prompt else "no",
    }
    documented = {column: row[column] for column in expected}
    assert documented == expected, f"docs/providers.md: the row of {slug} is stale"


def test_the_providers_doc_lists_no_model_that_is_not_installed() -> None:
    extra = sorted(set(documented_models()) - set(INSTALLED.models))
    assert not extra, f"docs/providers.md lists models no installed plugin registers: {extra}"


def test_every_installed_provider_is_in_the_providers_doc() -> None:
    rows = table_rows(read("providers.md"), "providers-table")
    assert {row["Provider"].strip("`") for row in rows} == set(INSTALLED.providers)


@pytest.mark.parametrize("provider", sorted(INSTALLED.providers))
def test_every_provider_key_is_in_the_providers_doc_with_its_default(provider: str) -> None:
    body = sections(read("providers.md"), 3).get(f"`[providers.{provider}]`")
    assert body is not None, f"docs/providers.md has no ### `[providers.{provider}]` section"
    rows = {
        key: (default.strip(), meaning)
        for key, default, meaning in re.findall(r"^\| `(\w+)` \| ([^|]+) \| (.+) \|$", body, re.M)
    }
    config_type = INSTALLED.providers[provider].config_type
    fields = {
        field.name: field.default_factory() if field.default is msgspec.NODEFAULT else field.default
        for field in msgspec.structs.fields(config_type)
    }
    assert set(rows) == set(fields), (
        f"docs/providers.md: [providers.{provider}] documents {sorted(rows)}, "
        f"the config has {sorted(fields)}"
    )
    for name, default in fields.items():
        assert toml_value(rows[name][0]) == default, (
            f"docs/providers.md says [providers.{provider}] {name} defaults to {rows[name][0]}, "
            f"the code says {default!r}"
        )
        if name in config_type.secrets:
            assert "Secret, required" in rows[name][1], f"{provider}.{name} is a secret"


def test_the_provider_error_table_matches_the_error_classes() -> None:
    rows = {
        row["Error"].strip("`"): row for row in table_rows(read("providers.md"), "provider-errors")
    }
    classes = [
        cls
        for cls in error_classes()
        if issubclass(cls, errors.ProviderError) and cls is not errors.ProviderError
    ]
    assert set(rows) == {cls.__name__ for cls in classes}
    for cls in classes:
        row = rows[cls.__name__]
        assert row["Falls back"].strip("*") == ("yes" if cls.fallback else "no"), cls.__name__
        answer = row["Status and `type` if it is the answer"]
        assert answer.startswith(f"{cls.status} `{cls.type}`"), cls.__name__


def contract_tests() -> dict[str, Any]:
    """Each plugin's ProviderContract subclass (plugins/*/tests/test_*_contract.py), by provider."""
    from tryon_core.testing.contract import ProviderContract

    found: dict[str, Any] = {}
    for path in sorted((ROOT / "plugins").glob("*/tests/test_*_contract.py")):
        spec = importlib.util.spec_from_file_location(f"_docs_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for value in vars(module).values():
            is_class = isinstance(value, type) and issubclass(value, ProviderContract)
            if is_class and value is not ProviderContract:
                found[value.provider] = value
    return found


def test_the_fault_table_matches_the_fakes_and_the_contract_tests() -> None:
    """docs/providers.md's fault -> error table says what each plugin's contract test holds."""
    rows = table_rows(read("providers.md"), "fault-table")
    with_fakes = {name for name, spec in INSTALLED.providers.items() if spec.fake}
    columns = {c.strip("`") for c in rows[0]} - {"Fault kind", "What the fake does"}
    assert columns == with_fakes, "docs/providers.md: one column per provider with a fake"
    assert {row["Fault kind"].strip("`") for row in rows} == set(FAULT_KINDS)
    contracts = contract_tests()
    problems = []
    for provider in sorted(with_fakes):
        contract = contracts[provider]
        fake = load_fake(INSTALLED.providers[provider].fake or "", **contract.fake_options)
        supported = fake.state.fake.supported
        for row in rows:
            kind = row["Fault kind"].strip("`")
            if kind not in supported:
                expected = "—"
            else:
                error = contract.expectation(kind).error
                expected = "succeeds" if error is None else f"`{error.__name__}`"
            if row[f"`{provider}`"] != expected:
                problems.append(
                    f"{provider} {kind}: the doc says {row[f'`{provider}`']}, not {expected}"
                )
    assert not problems, "\n".join(problems)


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
        if "testing" in path.parts or path.name == "openapi.py":  # OpenAPI objects have a type too
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
def test_excerpt_blocks_are_in_their_files(name: str) -> None:
    """Blocks marked ``<!-- excerpt: PATH -->`` are a verbatim part of that file."""
    for path, block in re.findall(r"<!-- excerpt: (\S+) -->\n```\w*\n(.*?)```", read(name), re.S):
        assert block in (ROOT / path).read_text(), f"docs/{name}: the excerpt of {path} is stale"


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
