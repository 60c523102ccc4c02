"""``tryon plugins new NAME``: a provider plugin package that installs and passes its tests.

The package is the documented example plugin (docs/examples/upstream_plugin: Acme Try-On, a
made-up submit-then-poll API, and a fake of it) with its names made NAME's. The example is
tested with the core, so a new package starts from code that works; its author then edits the
adapter and the fake to speak the real provider's protocol. An installed wheel carries the
example in ``tryon_core/scaffold_template``.
"""

from __future__ import annotations

import re
from pathlib import Path

from tryon_core.errors import InvalidRequest

__all__ = ["scaffold", "template_folder"]

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
_TEMPLATE = "acme"
_FILES = {  # template file -> the new package's file ({m}: the module name)
    "pyproject.toml": "pyproject.toml",
    "README.md": "README.md",
    "tryon_acme.py": "{m}.py",
    "tryon_acme_fake.py": "{m}_fake.py",
    "test_tryon_acme.py": "test_{m}.py",
}


def template_folder() -> Path:
    packaged = Path(__file__).with_name("scaffold_template")
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "docs" / "examples" / "upstream_plugin"


def scaffold(name: str, parent: Path) -> Path:
    """Write ``tryon-NAME/`` under ``parent`` and return its path; refuses a bad name or an
    existing folder (nothing is overwritten)."""
    if not _NAME.match(name) or name == _TEMPLATE:
        raise InvalidRequest(
            f"{name!r} is not a provider name: use a-z, 0-9 and _, starting with a letter "
            "(at most 31 characters)",
            param="name",
        )
    module = f"tryon_{name}"
    target = parent / f"tryon-{name.replace('_', '-')}"
    if target.exists():
        raise InvalidRequest(f"{target} exists already; nothing was written", param="dir")
    source = template_folder()
    texts = {
        new.format(m=module): rename((source / old).read_text(encoding="utf-8"), name)
        for old, new in _FILES.items()
    }
    target.mkdir(parents=True)
    for file, text in texts.items():
        (target / file).write_text(text, encoding="utf-8")
    return target


def rename(text: str, name: str) -> str:
    """The template's text with Acme's names made ``name``'s."""
    title = "".join(part.capitalize() for part in name.split("_"))
    text = text.replace("tryon_acme", f"tryon_{name}")
    text = text.replace("tryon-acme", f"tryon-{name.replace('_', '-')}")
    text = text.replace("ACME", name.upper())
    text = text.replace("Acme", title)
    return text.replace("acme", name)
