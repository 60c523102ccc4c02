"""docs/webhooks.md: its verification examples run for real, and the page keeps up with the code.

The Python and Node.js examples are run as their readers would run them, against bodies signed
by the gateway's own signing code. The Node.js one needs ``node`` on PATH (it skips with the
reason without it, and fails under ``CI=true``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from tests.helpers import ROOT
from tryon_core.webhooks import EVENT_HEADER, EVENTS, ID_HEADER, SIGNATURE_HEADER
from tryon_core.webhooks.signing import signature_header

DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
SECRET = "whsec_docs-example-secret"
BODY = json.dumps({"id": "gen_1", "status": "completed", "note": "caf\u00e9 \u2713"}).encode()


def node() -> str:
    found = shutil.which("node")
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("CI=true but node is not on PATH: the JavaScript example must run")
    pytest.skip("the JavaScript verification example needs node on PATH")


def run_example(command: list[str], header: str, body: bytes, secret: str = SECRET) -> str:
    env = {**os.environ, "TRYON_WEBHOOK_SECRET": secret}
    done = subprocess.run(
        [*command, header], input=body, capture_output=True, env=env, timeout=60, check=False
    )
    out = done.stdout.decode().strip()
    assert (done.returncode == 0) == (out == "valid"), (done.returncode, out, done.stderr)
    return out


def commands() -> list[list[str]]:
    return [
        [sys.executable, str(EXAMPLES / "verify_webhook.py")],
        [node(), str(EXAMPLES / "verify_webhook.mjs")],
    ]


@pytest.mark.parametrize("language", ["python", "javascript"])
def test_the_verification_examples_accept_a_signed_body(language: str) -> None:
    command = commands()[0] if language == "python" else commands()[1]
    header = signature_header(SECRET, BODY)
    assert run_example(command, header, BODY) == "valid"


@pytest.mark.parametrize("language", ["python", "javascript"])
def test_the_verification_examples_refuse_what_is_not(language: str) -> None:
    command = commands()[0] if language == "python" else commands()[1]
    header = signature_header(SECRET, BODY)
    stale = signature_header(SECRET, BODY, timestamp=int(time.time()) - 301)
    digest = header.rsplit("=", 1)[1]
    cases = {
        "another body": (header, BODY.replace(b"completed", b"failed"), SECRET),
        "another secret": (header, BODY, "whsec_someone-else"),
        "a replay": (stale, BODY, SECRET),
        "no timestamp": (f"v1={digest}", BODY, SECRET),
        "no signature": (header.split(",")[0], BODY, SECRET),
        "a short signature": (header[:-2], BODY, SECRET),
        "not hex": (header[:-2] + "zz", BODY, SECRET),
    }
    for case, (sent, body, secret) in cases.items():
        assert run_example(command, sent, body, secret) == "invalid", case


def test_the_page_shows_the_examples_as_they_are() -> None:
    text = (DOCS / "webhooks.md").read_text()
    blocks = re.findall(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```", text, re.S)
    assert {path for path, _ in blocks} == {
        "docs/examples/verify_webhook.py",
        "docs/examples/verify_webhook.mjs",
    }
    for path, block in blocks:
        assert block == (ROOT / path).read_text(), f"docs/webhooks.md: {path} is stale"


def test_the_page_names_the_headers_and_events_and_its_json_parses() -> None:
    text = (DOCS / "webhooks.md").read_text()
    for name in (SIGNATURE_HEADER, ID_HEADER, EVENT_HEADER, *EVENTS):
        assert f"`{name}`" in text, f"docs/webhooks.md does not name `{name}`"
    for block in re.findall(r"```json\n(.*?)```", text, re.S):
        json.loads(block)
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        assert (DOCS / target).exists(), f"docs/webhooks.md links to missing {target}"


def test_the_page_anchors_resolve() -> None:
    text = (DOCS / "webhooks.md").read_text()
    for target, fragment in re.findall(r"\]\(([^)#\s]*)#([^)\s]+)\)", text):
        page = (DOCS / (target or "webhooks.md")).read_text()
        headings = re.findall(r"^#+ (.+)$", page, re.M)
        anchors = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}
        assert fragment in anchors, f"docs/webhooks.md: #{fragment} is not a heading of {target}"
