"""Loading and validating specs: the bundled ones load, and broken ones fail with one clear
line that names the file and the place."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conformance.errors import SpecError
from conformance.properties import known_property_names
from conformance.spec import default_specs_dir, load_specs, load_yaml
from conformance.steps import STEPS

SPECS = default_specs_dir()


def test_bundled_specs_load_and_meet_the_foundation_bar() -> None:
    specs = load_specs(known_properties=known_property_names())
    active = [r for r in specs.requirements if r.status == "active"]
    assert len(active) >= 20
    assert all(r.checks for r in active)
    properties = {c.property_name for c in specs.checks if c.property_name}
    assert len(properties) >= 2
    for requirement in specs.requirements:
        assert requirement.source
        assert requirement.level in ("MUST", "SHOULD", "MAY")
        if requirement.status != "active":
            assert requirement.justification


def test_every_step_kind_in_the_schema_is_implemented() -> None:
    schema = json.loads((SPECS / "schema.json").read_text())
    check = schema["properties"]["requirements"]["items"]["properties"]["checks"]["items"]
    kinds = {next(iter(s["required"])) for s in check["properties"]["exchange"]["items"]["oneOf"]}
    assert kinds == set(STEPS)


def test_on_stays_a_string() -> None:
    assert load_yaml("on: c1\nyes: no\nflag: true") == {"on": "c1", "yes": "no", "flag": True}


@pytest.fixture
def specs_copy(tmp_path: Path) -> Path:
    target = tmp_path / "specs"
    shutil.copytree(SPECS, target)
    return target


def test_schema_error_names_file_and_place(specs_copy: Path) -> None:
    path = specs_copy / "connection.yaml"
    path.write_text(path.read_text().replace("level: MUST", "level: MUSTY", 1))
    with pytest.raises(SpecError, match=r"^connection\.yaml: at requirements/0/level: 'MUSTY'"):
        load_specs(specs_copy)


def test_duplicate_requirement_ids_are_refused(specs_copy: Path) -> None:
    path = specs_copy / "heartbeat.yaml"
    path.write_text(path.read_text().replace("id: PROTO-PING-07", "id: PROTO-CONN-05", 1))
    with pytest.raises(SpecError, match=r"PROTO-CONN-05 is also defined in connection\.yaml"):
        load_specs(specs_copy)


def test_unknown_property_is_refused(specs_copy: Path) -> None:
    path = specs_copy / "heartbeat.yaml"
    path.write_text(path.read_text().replace("property: websocket_ping_answered", "property: nope"))
    with pytest.raises(SpecError, match="unknown property 'nope'"):
        load_specs(specs_copy, known_properties=known_property_names())


def test_invalid_yaml_is_one_line(specs_copy: Path) -> None:
    (specs_copy / "broken.yaml").write_text("area: [unclosed\n")
    with pytest.raises(SpecError, match=r"^broken\.yaml: not valid YAML") as info:
        load_specs(specs_copy)
    assert "\n" not in str(info.value)


def test_spec_hash_changes_with_content(specs_copy: Path) -> None:
    before = load_specs(specs_copy).sha256
    path = specs_copy / "channels.yaml"
    path.write_text(path.read_text() + "\n# a comment changes the hash too\n")
    assert load_specs(specs_copy).sha256 != before


def test_unverifiable_requirement_needs_justification(specs_copy: Path) -> None:
    path = specs_copy / "connection.yaml"
    text = path.read_text()
    start = text.index("    justification: >\n      What hosted Pusher does today")
    end = text.index("  - id: PROTO-CONN-03")
    path.write_text(text[:start] + "\n" + text[end:])
    with pytest.raises(SpecError, match=r"connection\.yaml: at requirements/1"):
        load_specs(specs_copy)
