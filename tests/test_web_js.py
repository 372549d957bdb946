"""The page's pure JavaScript helpers, run in Node.js (skipped without it): what the timeline says."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

RENDER_JS = Path(__file__).resolve().parent.parent / "src" / "forewarn" / "web" / "static" / "js" / "render.js"


def _subject(payload: dict[str, object]) -> str:
    """``deliverySubject(payload)`` of render.js, evaluated by Node.js."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js missing")
    script = (f"import {{ deliverySubject }} from {json.dumps(RENDER_JS.as_uri())};\n"
              f"process.stdout.write(deliverySubject({json.dumps(payload)}));\n")
    done = subprocess.run([node, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60,
                          check=True)
    return done.stdout


def test_a_site_registration_delivery_says_which_site() -> None:
    site = {"id": "h1", "name": "Raqqa hospital", "category": "hospital"}
    text = _subject({"type": "site_registration", "from_party": "un-ocha", "site": site})
    assert text == "protected site Raqqa hospital (h1) registered by un-ocha"


def test_a_notice_delivery_and_its_escalation_say_which_operation() -> None:
    notice = {"type": "notice", "kind": "notify", "from_party": "rus", "operation": {"id": "ru-op-1"}}
    assert _subject(notice) == "notice notify of ru-op-1 from rus"
    assert _subject(notice | {"type": "escalation"}) == "notice notify of ru-op-1 from rus"
