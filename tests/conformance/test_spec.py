"""Loading and validating specs: the bundled ones load, and broken ones fail with one clear
line that names the file and the place."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from conformance.errors import SpecError
from conformance.properties import known_property_names
from conformance.spec import default_specs_dir, load_specs, load_yaml
from conformance.steps import STEPS

SPECS = default_specs_dir()
SMALL_SET = (
    "schema.json",
    "regression.schema.json",
    "connection.yaml",
    "heartbeat.yaml",
    "channels.yaml",
)


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


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        # A stated rule needs its quote...
        ("    quote: >-\n", "    unquoted: >-\n", r"'quote' is a required property"),
        # ... from a docs page with an anchor;
        ("/#websocket-data-messages", "/", r"does not match"),
        # an inference needs its reasoning, an observation who was observed.
        ("    basis: stated\n", "    basis: inferred\n", r"'reasoning' is a required property"),
        ("    basis: stated\n", "    basis: observed\n", r"'observed_in' is a required property"),
        ("    basis: stated\n", "", r"'basis' is a required property"),
    ],
)
def test_a_requirement_must_say_what_it_rests_on(
    specs_copy: Path, old: str, new: str, error: str
) -> None:
    path = specs_copy / "connection.yaml"
    text = path.read_text()
    start = text.index("  - id: PROTO-CONN-04")
    end = text.index("  - id: PROTO-CONN-05")
    block = text[start:end]
    assert old in block
    path.write_text(text[:start] + block.replace(old, new, 1) + text[end:])
    with pytest.raises(SpecError, match=rf"^connection\.yaml: .*{error}"):
        load_specs(specs_copy)


def test_a_variant_pattern_that_is_not_a_regular_expression_is_refused(specs_copy: Path) -> None:
    path = specs_copy / "channels.yaml"
    text = path.read_text()
    assert "recognised_by: 'unconsumed" in text
    path.write_text(text.replace("recognised_by: 'unconsumed", "recognised_by: '(unconsumed", 1))
    with pytest.raises(SpecError, match=r"^channels\.yaml: CHAN-SUB-09: a variant's recognised_by"):
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


def test_a_check_needing_what_no_target_can_declare_is_refused(specs_copy: Path) -> None:
    path = specs_copy / "connection.yaml"
    text = path.read_text()
    assert "capabilities: [quota_app]" in text
    path.write_text(text.replace("capabilities: [quota_app]", "capabilities: [quota_apps]"))
    with pytest.raises(SpecError, match=r"PROTO-CONN-11/over-quota needs 'quota_apps', which no"):
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


# -- models ------------------------------------------------------------------------------------


@pytest.fixture
def small_specs(tmp_path: Path) -> Path:
    """Three stable spec files and the schemas: the tests below stay independent of what other
    spec files (and their models) the bundled set gains."""
    target = tmp_path / "small-specs"
    target.mkdir()
    for name in SMALL_SET:
        shutil.copy(SPECS / name, target / name)
    return target


def _add_models(path: Path, text: str) -> None:
    """Put a top-level ``models:`` block before the file's requirements."""
    original = path.read_text()
    path.write_text(original.replace("\nrequirements:", f"\n{text}\nrequirements:", 1))


def test_models_load_and_merge_across_files(small_specs: Path) -> None:
    assert load_specs(small_specs).models == {}
    _add_models(small_specs / "heartbeat.yaml", "models:\n  delivery: {users: 3, tabs: [1, 3]}")
    _add_models(small_specs / "channels.yaml", "models:\n  other: {}")
    specs = load_specs(small_specs)
    heartbeat = next(f for f in specs.files if f.path.name == "heartbeat.yaml")
    assert heartbeat.models == {"delivery": {"users": 3, "tabs": [1, 3]}}
    assert specs.models == {"delivery": {"users": 3, "tabs": [1, 3]}, "other": {}}


def test_a_model_defined_twice_names_both_files(small_specs: Path) -> None:
    _add_models(small_specs / "heartbeat.yaml", "models:\n  delivery: {users: 3}")
    _add_models(small_specs / "channels.yaml", "models:\n  delivery: {users: 4}")
    with pytest.raises(
        SpecError, match=r"^heartbeat\.yaml: model 'delivery' is also defined in channels\.yaml$"
    ):
        load_specs(small_specs)


def test_a_model_must_be_an_object(small_specs: Path) -> None:
    _add_models(small_specs / "heartbeat.yaml", "models:\n  delivery: 3")
    with pytest.raises(SpecError, match=r"^heartbeat\.yaml: at models/delivery: 3 is not of type"):
        load_specs(small_specs)


# -- regression cases --------------------------------------------------------------------------

CASE = """\
regression_of: PROTO-PING-07
id: regression-0a1b2c3d
title: Counterexample found by a property
found: {profile: ci, seed: 0, target: reference server, failure: "no pong"}
property: websocket_ping_answered
params: {pings: 1}
"""


def _case(specs_dir: Path, name: str = "PROTO-PING-07-0a1b2c3d.yaml", text: str = CASE) -> Path:
    path = specs_dir / "regressions" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def test_a_regression_case_becomes_a_check_of_its_requirement(small_specs: Path) -> None:
    before = load_specs(small_specs)
    path = _case(small_specs)
    specs = load_specs(small_specs, known_properties=known_property_names())
    requirement = specs.requirement("PROTO-PING-07")
    assert [c.id for c in requirement.checks] == ["ws-pings", "regression-0a1b2c3d"]
    check = requirement.checks[-1]
    assert check.kind == "property"
    assert check.property_name == "websocket_ping_answered"
    assert check.params == {"pings": 1}
    assert check.regression_file == path.resolve()
    assert check.full_id == "PROTO-PING-07/regression-0a1b2c3d"
    assert [c.path for c in specs.regressions] == [path.resolve()]
    assert specs.regressions[0].found["failure"] == "no pong"
    # The spec file's own requirement carries it too: that is what pytest collects.
    heartbeat = next(f for f in specs.files if f.path.name == "heartbeat.yaml")
    assert heartbeat.requirements == tuple(
        r for r in specs.requirements if r.area == heartbeat.area
    )
    assert check in next(r for r in heartbeat.requirements if r.id == "PROTO-PING-07").checks
    assert len(specs.checks) == len(before.checks) + 1
    assert specs.sha256 != before.sha256


def test_regression_cases_load_in_file_name_order(small_specs: Path) -> None:
    _case(small_specs, "PROTO-PING-07-b.yaml", CASE.replace("0a1b2c3d", "bbbb"))
    _case(small_specs, "PROTO-PING-07-a.yaml", CASE.replace("0a1b2c3d", "aaaa"))
    checks = load_specs(small_specs).requirement("PROTO-PING-07").checks
    assert [c.id for c in checks] == ["ws-pings", "regression-aaaa", "regression-bbbb"]


def test_a_worker_loads_only_the_cases_its_controller_loaded(small_specs: Path) -> None:
    _case(small_specs)
    _case(small_specs, "PROTO-PING-07-later.yaml", CASE.replace("0a1b2c3d", "later"))
    specs = load_specs(small_specs, regressions=["PROTO-PING-07-0a1b2c3d.yaml"])
    assert [c.check.id for c in specs.regressions] == ["regression-0a1b2c3d"]
    with pytest.raises(SpecError, match=r"regression case\(s\) gone from .*: gone\.yaml"):
        load_specs(small_specs, regressions=["gone.yaml"])


def test_no_regressions_directory_changes_nothing(small_specs: Path) -> None:
    before = load_specs(small_specs)
    (small_specs / "regressions").mkdir(exist_ok=True)
    (small_specs / "regressions" / "README.md").write_text("not a case\n")
    assert load_specs(small_specs).sha256 == before.sha256


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            CASE.replace("PROTO-PING-07", "NOPE-99"),
            r"^regressions/X\.yaml: regression_of names unknown requirement NOPE-99$",
        ),
        (
            CASE.replace("PROTO-PING-07", "PROTO-CONN-02"),
            r"^regressions/X\.yaml: requirement PROTO-CONN-02 \(connection\.yaml\) is "
            r"unverifiable, not active",
        ),
        (
            CASE.replace("websocket_ping_answered", "nope"),
            r"^regressions/X\.yaml: names unknown property 'nope' \(known: ",
        ),
        (CASE + "  nested: [unclosed\n", r"^regressions/X\.yaml: not valid YAML"),
        (
            CASE.replace("regression-0a1b2c3d", "counterexample"),
            r"^regressions/X\.yaml: at id: 'counterexample' does not match",
        ),
        (CASE + "extra: 1\n", r"^regressions/X\.yaml: at \(top level\): Additional properties"),
        (
            CASE.replace("params: {pings: 1}", "params: [1]"),
            r"^regressions/X\.yaml: at params: \[1\] is not of type 'object'",
        ),
    ],
)
def test_a_bad_regression_case_is_one_line_naming_the_file(
    small_specs: Path, text: str, message: str
) -> None:
    _case(small_specs, "X.yaml", text)
    with pytest.raises(SpecError, match=message) as info:
        load_specs(small_specs, known_properties=known_property_names())
    assert "\n" not in str(info.value)


def test_a_regression_check_id_must_be_unique(small_specs: Path) -> None:
    _case(small_specs, "A.yaml")
    _case(small_specs, "B.yaml")
    with pytest.raises(
        SpecError,
        match=r"^regressions/B\.yaml: check id PROTO-PING-07/regression-0a1b2c3d is also used "
        r"by regressions/A\.yaml$",
    ):
        load_specs(small_specs)


def test_a_regression_check_id_may_not_shadow_a_spec_check(small_specs: Path) -> None:
    path = small_specs / "heartbeat.yaml"
    path.write_text(path.read_text().replace("- id: ws-pings", "- id: regression-0a1b2c3d", 1))
    _case(small_specs)
    with pytest.raises(
        SpecError,
        match=r"^regressions/PROTO-PING-07-0a1b2c3d\.yaml: PROTO-PING-07 already has a check "
        r"regression-0a1b2c3d in heartbeat\.yaml$",
    ):
        load_specs(small_specs)


# -- where each id lives -----------------------------------------------------------------------


def _spec_text(area: str, prefixes: list[str], ids: list[str]) -> str:
    """A minimal valid spec file: requirements without checks need no property or step."""
    requirements = "".join(
        f"  - id: {rid}\n"
        "    level: MAY\n"
        "    title: A placeholder\n"
        "    statement: Holds an id so the layout rules have something to judge.\n"
        '    source: "peer behaviour: none, a test of the suite"\n'
        "    basis: observed\n"
        "    observed_in: [this suite's tests]\n"
        "    status: n/a\n"
        "    justification: A test fixture.\n"
        for rid in ids
    )
    return (
        f"area: {area}\nprefixes: [{', '.join(prefixes)}]\ntitle: Layout probe\n"
        f"requirements:\n{requirements}"
    )


def test_bundled_files_declare_the_prefixes_they_hold() -> None:
    for spec_file in load_specs().files:
        held = {r.id.rsplit("-", 1)[0] for r in spec_file.requirements}
        assert held == set(spec_file.prefixes), spec_file.path.name


def test_ids_sort_numerically_and_prefixes_alphabetically(small_specs: Path) -> None:
    text = _spec_text("probe", ["PROBE-A", "PROBE-B"], ["PROBE-A-09", "PROBE-A-10", "PROBE-B-02"])
    (small_specs / "probe.yaml").write_text(text.replace("PROBE-A-10", "PROBE-A-100"))
    ids = [r.id for r in load_specs(small_specs).requirements if r.area == "probe"]
    assert ids == ["PROBE-A-09", "PROBE-A-100", "PROBE-B-02"]


@pytest.mark.parametrize(
    ("prefixes", "ids", "message"),
    [
        (
            ["PROBE"],
            ["PROBE-01", "PROTO-CONN-99"],
            r"^probe\.yaml: requirement PROTO-CONN-99 has id prefix PROTO-CONN, which this file "
            r"does not declare in prefixes \(PROBE\); it belongs in connection\.yaml$",
        ),
        (
            ["PROBE"],
            ["PROBE-01", "NOPE-01"],
            r"^probe\.yaml: requirement NOPE-01 has id prefix NOPE, which this file does not "
            r"declare in prefixes \(PROBE\); no spec file declares it$",
        ),
        (
            ["PROBE", "PROTO-PING"],
            ["PROBE-01"],
            r"^probe\.yaml: id prefix PROTO-PING is also declared by heartbeat\.yaml "
            r"\(each prefix has one home file\)$",
        ),
        (
            ["PROBE"],
            ["PROBE-02", "PROBE-10", "PROBE-09"],
            r"^probe\.yaml: requirement PROBE-09 is out of order: it comes after PROBE-10 ",
        ),
        (
            ["PROBE-A", "PROBE-B"],
            ["PROBE-B-01", "PROBE-A-02"],
            r"^probe\.yaml: requirement PROBE-A-02 is out of order: it comes after PROBE-B-01 ",
        ),
    ],
)
def test_a_misplaced_or_unordered_id_is_refused_naming_file_and_id(
    small_specs: Path, prefixes: list[str], ids: list[str], message: str
) -> None:
    (small_specs / "probe.yaml").write_text(_spec_text("probe", prefixes, ids))
    with pytest.raises(SpecError, match=message) as info:
        load_specs(small_specs)
    assert "\n" not in str(info.value)


def test_a_bundled_file_out_of_order_is_refused(small_specs: Path) -> None:
    path = small_specs / "heartbeat.yaml"
    path.write_text(path.read_text().replace("id: PROTO-PING-02", "id: PROTO-PING-09", 1))
    with pytest.raises(
        SpecError,
        match=r"^heartbeat\.yaml: requirement PROTO-PING-05 is out of order: it comes after "
        r"PROTO-PING-09 ",
    ):
        load_specs(small_specs)


def test_a_file_without_prefixes_is_refused(small_specs: Path) -> None:
    path = small_specs / "heartbeat.yaml"
    path.write_text(path.read_text().replace("prefixes: [PROTO-PING]\n", "", 1))
    with pytest.raises(
        SpecError, match=r"^heartbeat\.yaml: at \(top level\): 'prefixes' is a required property"
    ):
        load_specs(small_specs)


def test_the_format_doc_tells_where_each_id_lives() -> None:
    """The table in docs/spec-format.md is what a reader holding an id consults, so it must
    match the files' own declarations row for row."""
    doc = SPECS.parent / "docs" / "spec-format.md"
    if not doc.is_file():
        pytest.skip("docs are not installed with the package")
    text = doc.read_text()
    start = text.index("\n## Where each id lives\n")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end != -1 else len(text)]
    rows = re.findall(
        r"^\| `([A-Z]+(?:-[A-Z]+)*)` \| `specs/([a-z0-9-]+\.yaml)` \| `([a-z0-9-]+)` \|",
        section,
        re.M,
    )
    expected = [(prefix, f.path.name, f.area) for f in load_specs().files for prefix in f.prefixes]
    assert sorted(rows) == sorted(expected)


def test_a_load_holds_one_subject_but_ids_stay_unique_across_subjects(small_specs: Path) -> None:
    text = _spec_text("probe-client", ["PROBE"], ["PROBE-01"]).replace(
        "area: probe-client\n", "area: probe-client\nsubject: client\n"
    )
    (small_specs / "probe.yaml").write_text(text)
    server = load_specs(small_specs)
    client = load_specs(small_specs, subject="client")
    assert "PROBE-01" not in {r.id for r in server.requirements}
    assert [r.id for r in client.requirements] == ["PROBE-01"]
    assert server.sha256 != client.sha256
    assert {f.subject for f in load_specs(small_specs, subject=None).files} == {"server", "client"}
    (small_specs / "probe.yaml").write_text(text.replace("PROBE-01", "PROTO-CONN-01"))
    with pytest.raises(SpecError, match="PROTO-CONN-01 is also defined in"):
        load_specs(small_specs, subject="client")


def test_a_subject_without_files_is_one_clear_line(small_specs: Path) -> None:
    with pytest.raises(SpecError, match=r"^no spec files of subject auth-endpoint in "):
        load_specs(small_specs, subject="auth-endpoint")
