"""Control characters in names (issue 20): a party, site or agreement name holding C0/C1 controls (an ANSI escape,
a carriage return) or bidirectional overrides is refused with 422 at validation, and changes nothing;
``forewarn list`` escapes anything unprintable already stored (written before the check), so it never reaches the
operator's terminal raw."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from forewarn.cli.main import app as cli
from forewarn.cli.terminal import escaped
from forewarn.core.model import Party, ProtectedSite
from forewarn.core.text import STORED
from tests.api_support import World, make_world
from tests.test_api import assert_error

HOSTILE = ["Red\x1b[2J\x1b[31mCross", "a\rb", "left\u202eright", "bell\x07", "c1\x9bcsi", "iso\u2066late",
           "zero\u200bwidth", "nl\nline"]
"""Names an attacker would register to rewrite an operator's screen."""


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path)
    with w.client:
        yield w


@pytest.mark.parametrize("name", HOSTILE)
def test_names_with_control_or_bidi_characters_are_refused(world: World, name: str) -> None:
    c = world.client
    admin = world.auth("admin")
    assert_error(c.post("/v1/parties", headers=admin, json={"id": "evil", "name": name}), 422, "invalid_input")
    assert world.service.repo.get_party("evil") is None
    site = {"id": "h1", "name": name, "category": "hospital", "point": [38.0, 35.0]}
    assert_error(c.post("/v1/sites", headers=world.auth("usa"), json=site), 422, "invalid_input")
    assert world.service.repo.get_site("h1") is None
    agreement = {"id": "a1", "name": name, "parties": ["usa", "rus"],
                 "default_minima": {"horizontal_m": 9260, "vertical_m": 305, "time_s": 600}}
    assert_error(c.post("/v1/agreements", headers=admin, json=agreement), 422, "invalid_input")
    assert world.service.repo.get_agreement("a1") is None


def test_ordinary_names_in_any_script_are_kept(world: World) -> None:
    for name in ("Médecins Sans Frontières", "الهلال الأحمر", "Красный Крест", "Tab-free name (2)"):
        r = world.client.post("/v1/parties", headers=world.auth("admin"), json={"id": "p", "name": name})
        assert r.status_code == 201 and r.json()["name"] == name


def test_the_cli_refuses_them_too(tmp_path: Path) -> None:
    done = CliRunner().invoke(cli, ["party", "add", "evil", "--name", "x\x1b[31m", "--db", str(tmp_path / "c.db")])
    assert done.exit_code == 2 and "\x1b[31m" not in done.output


def test_forewarn_list_escapes_what_is_already_stored(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from forewarn.cli import main

    monkeypatch.setattr(main.console, "width", 400)  # made at import: COLUMNS of the runner comes too late
    repo = world.service.repo
    stored = Party.model_validate({"id": "old", "name": "Old\x1b[2J\x1b[31mName\u202e[red]x[/red]"}, context=STORED)
    site = ProtectedSite.model_validate({"id": "s1", "name": "Clinic\x1b]0;pwned\x07", "registered_by": "old",
                                         "point": (38.0, 35.0)}, context=STORED)
    with repo.transaction():
        repo.put_party(stored)
        repo.put_site(site)
    db = str(world.service.settings.db)
    runner = CliRunner()
    for what, expected in (("parties", "Old\\x1b[2J\\x1b[31mName\\u202e[red]x[/red]"),
                           ("sites", "Clinic\\x1b]0;pwned\\x07")):
        out = runner.invoke(cli, ["list", what, "--db", db])
        assert out.exit_code == 0, out.output
        assert "\x1b" not in out.output and "\u202e" not in out.output and "\x07" not in out.output
        assert expected in out.output  # escaped, and rich markup in a name shown literally
    as_json = runner.invoke(cli, ["list", "parties", "--db", db, "--json"])
    assert "\x1b" not in as_json.output and "\\u001b" in as_json.output


def test_escaped_keeps_printable_text() -> None:
    assert escaped("Ünïcödé 中文 ok") == "Ünïcödé 中文 ok"
    assert escaped("a\x1bb\u202ec\x85") == "a\\x1bb\\u202ec\\x85"
