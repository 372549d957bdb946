"""The documentation: /docs works offline in a real browser; every request body in the OpenAPI schema carries an
example that the API accepts; docs/settings.md is what the code generates; the documented replay command works on
the shipped sample."""

from __future__ import annotations

import base64
import gzip
import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from forewarn.core.credentials import new_credential
from forewarn.core.model import Agreement, Party
from forewarn.http import app as http_app
from forewarn.http.app import create_app
from forewarn.service.compose import build_service
from forewarn.service.settings import Settings
from tests.conftest import require_or_skip
from tests.server_support import Server, free_port

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("docs") / "forewarn.sqlite")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.mark.slow
def test_docs_page_renders_offline_in_chromium(server: Server) -> None:
    """Swagger UI renders the API from the service alone: every request stays on 127.0.0.1 and any other host is
    unreachable (as offline), yet the operations and the request body examples are on the page."""
    if not CHROMIUM.is_file():
        require_or_skip("Chromium missing: apt-get install chromium (/usr/bin/chromium)")
    if not (http_app.SWAGGER_DIR / "swagger-ui-bundle.js").is_file():
        require_or_skip("Swagger UI not installed: run npm ci && npm run swagger")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        require_or_skip("the playwright python package is not installed")
    requests: list[str] = []
    errors: list[str] = []
    expect.set_options(timeout=20_000)  # a shared machine may be slow; nothing here is timed
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=[
            "--no-sandbox", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"])
        try:
            page = browser.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server.url + "/docs")
            expect(page.locator(".swagger-ui .info .title")).to_contain_text("Forewarn")
            filing = page.locator(".opblock-post", has_text="/v1/operations").first
            expect(filing).to_be_visible()
            filing.locator(".opblock-summary").click()
            expect(filing.locator(".body-param__example, .microlight").first).to_contain_text("activity_class")
        finally:
            browser.close()
    assert not errors, errors
    assert requests and all(urlsplit(u).hostname == "127.0.0.1" for u in requests if not u.startswith("data:")), \
        requests


def test_docs_route_serves_local_assets(tmp_path: Path) -> None:
    """The /docs page names only the service's own copy of Swagger UI (no CDN), and there is no CDN-backed ReDoc."""
    with TestClient(create_app(Settings(db=tmp_path / "f.sqlite"), run_worker=False)) as client:
        html = client.get("/docs").text
        assert client.get("/redoc").status_code == 404
    assert "cdn" not in html.lower()
    assert "/docs/assets/swagger-ui-bundle.js" in html or "npm run swagger" in html


# ------------------------------------------------------------------------------------- request body examples
EXAMPLE_NOW = datetime(2015, 11, 17, 3, 0, tzinfo=UTC)
"""The service clock when the examples are posted: they are dated on the built-in scenario's day."""


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def request_examples(spec: dict[str, Any]) -> dict[tuple[str, str], tuple[str, Any]]:
    """(method, path) -> (media type, example) of every request body in ``spec``; the example is the media
    type's own, else the body schema's first ``examples`` entry, else (a form) one built from the examples of
    its fields. A body without any is reported with example ``None``."""
    found: dict[tuple[str, str], tuple[str, Any]] = {}
    for path, item in spec["paths"].items():
        for method, op in item.items():
            body = op.get("requestBody")
            if body is None:
                continue
            media, content = next(iter(body["content"].items()))
            schema = _resolve(spec, content.get("schema", {}))
            example: Any = content.get("example")
            if example is None and content.get("examples"):
                example = next(iter(content["examples"].values()))["value"]
            if example is None and schema.get("examples"):
                example = schema["examples"][0]
            if example is None and schema.get("properties"):
                fields = {k: v["examples"][0] for k, v in schema["properties"].items() if v.get("examples")}
                if set(schema.get("required", [])) <= set(fields):
                    example = fields
            found[(method.upper(), path)] = (media, example)
    return found


SCOPES = {"coalition": ["notices:file", "read", "ack", "sites:register", "tracks:feed", "keys:manage"],
          "russia": ["notices:file", "read", "ack"], "operator": ["admin"]}
CREDENTIALS = {pid: new_credential(pid, scopes, EXAMPLE_NOW)[0] for pid, scopes in SCOPES.items()}
"""Made once (hashing a secret is slow on purpose); every world stores the same ones."""


class ExampleWorld:
    """A fresh service on its own SQLite file at :data:`EXAMPLE_NOW`: the parties the examples name (coalition,
    russia, and an admin) with credentials, an agreement binding the first two, and a signing key of coalition's."""

    def __init__(self, tmp: Path) -> None:
        settings = Settings(db=tmp / "examples.sqlite")
        self.service = build_service(settings)
        self.client = TestClient(create_app(settings, service=self.service, clock=lambda: EXAMPLE_NOW,
                                            run_worker=False))
        self.tokens: dict[str, str] = {}
        for pid, scopes in SCOPES.items():
            self.service.put_party(Party(id=pid, name=pid.title()))
            with self.service.repo.transaction():
                self.service.repo.put_credential(CREDENTIALS[pid])
            self.tokens[pid] = self.client.app.state.runtime.token_for(pid, scopes)[0]
        self.service.put_agreement(Agreement(id="mou", name="MoU", parties=["coalition", "russia"]), EXAMPLE_NOW)
        raw = Ed25519PrivateKey.generate().public_key().public_bytes(serialization.Encoding.Raw,
                                                                     serialization.PublicFormat.Raw)
        self.key_id = self.service.ledger.register_key(
            "coalition", base64.urlsafe_b64encode(raw).rstrip(b"=").decode(), EXAMPLE_NOW).key_id

    def post(self, path: str, media: str, body: Any, party: str) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[party]}"}
        if media == "application/x-www-form-urlencoded":
            return self.client.post(path, data=body, headers=headers)
        return self.client.post(path, json=body, headers=headers)


def test_every_request_body_has_an_example_the_api_accepts(tmp_path: Path) -> None:
    """Each request body example of openapi.json, posted (each on a fresh service, with what it refers to in
    place) by a party allowed to, is accepted: 2xx, or for the token form's placeholder credentials a 401 (the
    form itself is valid). An example the API refused with 422 would fail here."""
    world = ExampleWorld(tmp_path / "schema")
    spec = world.client.get("/openapi.json").json()
    examples = request_examples(spec)
    assert ("POST", "/v1/operations") in examples and len(examples) >= 10
    missing = [f"{m} {p}" for (m, p), (_, ex) in examples.items() if ex is None]
    assert not missing, f"request bodies without an example: {missing}"
    operation_example = examples[("POST", "/v1/operations")][1]
    for n, ((method, template), (media, example)) in enumerate(sorted(examples.items())):
        assert method == "POST", template
        world = ExampleWorld(tmp_path / str(n))
        admin = template.startswith(("/v1/parties", "/v1/agreements")) and "/keys" not in template
        path = template.format(party_id="coalition", operation_id=operation_example["id"], key_id=world.key_id,
                               client_id=CREDENTIALS["coalition"].client_id)
        if template.endswith("/enable"):  # what it enables is a disabled party
            world.service.disable_party("coalition", EXAMPLE_NOW)
        if template.endswith("/amend"):
            filed = world.post("/v1/operations", "application/json", operation_example, "coalition")
            assert filed.status_code == 201, filed.text
        response = world.post(path, media, example, "operator" if admin else "coalition")
        expected = {401} if template == "/v1/token" else {200, 201}
        assert response.status_code in expected, f"{method} {template}: {response.status_code} {response.text}"


# ------------------------------------------------------------------------------------------- shipped sample
def documented_commands(page: Path) -> list[list[str]]:
    """The ``forewarn ...`` lines of the ```bash blocks of a markdown page, split as a shell would."""
    commands: list[list[str]] = []
    in_block = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_block = line.strip() == "```bash" and not in_block
        elif in_block and line.startswith("forewarn "):
            commands.append(shlex.split(line.split("#", 1)[0]))
    return commands


@pytest.mark.slow
def test_documented_replay_runs_on_the_shipped_sample(tmp_path: Path) -> None:
    """examples/README.md's commands (demo, then replay of the shipped real traffic) run from the repository root
    as written, with the database moved into a temporary folder; every record of the sample is accepted."""
    commands = documented_commands(ROOT / "examples" / "README.md")
    assert [c[1] for c in commands] == ["demo", "replay"]
    sample = ROOT / "examples" / "traffic-paris-10min.json.gz"
    assert sample.is_file() and sample.stat().st_size < 400_000
    assert "MIT License" in (ROOT / "examples" / "LICENSE-traffic.txt").read_text(encoding="utf-8")
    outputs = []
    for command in commands:
        argv = [str(tmp_path / a) if a.endswith(".sqlite") else a for a in command[1:]]
        if command[1] == "demo":
            argv += ["--out", str(tmp_path / "out")]
        proc = subprocess.run([sys.executable, "-m", "forewarn", *argv], cwd=ROOT, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        outputs.append(proc.stdout)
    with gzip.open(sample) as f:
        records = len(json.load(f))
    summary = " ".join(outputs[-1].split())
    # every record is accepted but the sample's one-second altitude spikes of real ADS-B (rejected as such)
    spikes = re.search(r"impossible_vertical_speed │ (\d+) │", summary)
    rejected = int(spikes.group(1)) if spikes else 0
    assert f"positions read │ {records} │" in summary and f"accepted │ {records - rejected} │" in summary, outputs[-1]
    assert f"rejected │ {rejected} │" in summary and rejected < 50


# ------------------------------------------------------------------------------------------- docs/api.md
@pytest.mark.slow
def test_api_page_curl_examples_work_against_a_real_server(tmp_path: Path) -> None:
    """docs/api.md's bash blocks, run in order as written (the server on a free port instead of 8000): every curl
    is answered 2xx, except the documented 409 of cancelling the completed operation."""
    if shutil.which("curl") is None:
        require_or_skip("curl missing: apt-get install curl")
    port = free_port()
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "docs" / "api.md").read_text(encoding="utf-8"), flags=re.S)
    script = ["set -u"]
    for block in blocks:
        block = block.replace(
            "forewarn serve --scenario raqqa-2015 --db api.sqlite &",
            f"{sys.executable} -m forewarn serve --scenario raqqa-2015 --db api.sqlite --port {port} >serve.log 2>&1 &"
            f" SERVER=$!; for i in $(seq 60); do curl -sf {'$FW'}/v1/health >/dev/null && break; sleep 1; done",
        ).replace("http://127.0.0.1:8000", f"http://127.0.0.1:{port}")
        if "TOKEN=" not in block:
            block = re.sub(r"^curl -s ", "curl -s -o /dev/null -w '%{http_code} %{url_effective}\\n' ", block,
                           flags=re.M)
        script.append(block)
    script.append("kill $SERVER")
    # FW is set before the server's start-up loop uses it
    text = "\n".join(script).replace("set -u", f"set -u\nFW=http://127.0.0.1:{port}", 1)
    proc = subprocess.run(["bash", "-c", text], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    answers = [line.split(" ", 1) for line in proc.stdout.splitlines() if line[:3].isdigit()]
    assert len(answers) >= 30, proc.stdout + proc.stderr
    bad = [(code, url) for code, url in answers
           if not code.startswith("2") and not (code == "409" and url.endswith("/cancel"))]
    assert not bad, bad
