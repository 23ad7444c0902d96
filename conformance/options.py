"""The options of ``conformance run``, declared once.

The command line and the pytest plugin accept the same options (the plugin spells them
``--conformance-<flag>``). Each is declared here a single time, and both parsers are built from
that declaration, so a flag, its check or its default cannot drift between the two. The values
end up in a frozen ``RunOptions``, built by the same code from either parser's result and checked
as a whole on construction: a ``RunOptions`` that exists is one a run can start from.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from .errors import UsageError
from .nodes import refuse_declared
from .profiles import PROFILES
from .spec import REGRESSIONS_SUBDIR, Check, Requirement, SpecSet
from .target import CONNECTION_FIELDS, KNOWN_CAPABILITIES, webhook_listen_url
from .tls import refuse_both_trust_choices

__all__ = [
    "LEVELS",
    "RUN_OPTIONS",
    "STASHED_OPTIONS",
    "STASHED_SPECS",
    "OptionsCarrier",
    "RunOption",
    "RunOptions",
    "add_pytest_options",
    "add_run_arguments",
    "options_of",
    "positive_float",
    "positive_int",
    "regressions_dir",
    "require_selection",
    "selected",
]

LEVELS = ("MUST", "SHOULD", "MAY")

#: The title of the target flags' section in ``conformance run --help``.
TARGET_SECTION = "target (default: start the bundled reference server)"


# -- value checks: each turns one command-line word into a value, or says what is wrong ------


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def _capability(text: str) -> str:
    try:
        refuse_declared([text])
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if text not in KNOWN_CAPABILITIES:
        raise argparse.ArgumentTypeError(
            f"unknown capability: {text} (known: {', '.join(sorted(KNOWN_CAPABILITIES))})"
        )
    return text


def _listen_url(text: str) -> str:
    """A webhook listen URL is refused as it is parsed, so that a typo never waits for a server
    to be reached first."""
    try:
        webhook_listen_url({"listen": text}, ())
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


# -- the declaration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RunOption:
    """One option of ``conformance run``: everything both parsers need to accept it."""

    #: The ``RunOptions`` field that holds its value.
    name: str
    #: Its command-line spelling(s); the pytest plugin uses the long one behind ``--conformance-``.
    flags: tuple[str, ...]
    help: str | None = None
    metavar: str | None = None
    #: Turns the word given on the command line into the value, raising on a bad one.
    parse: Callable[[str], Any] | None = None
    default: Any = None
    choices: tuple[str, ...] | None = None
    #: ``value``: takes one word; ``switch``: takes none; ``repeated``: may be given many times.
    form: Literal["value", "switch", "repeated"] = "value"
    #: In the target section of ``--help`` (the flags that say which server to test).
    about_target: bool = False
    #: Options sharing a name here exclude each other on the command line.
    exclusive: str | None = None
    #: Given to the command line only: pytest has its own (``-v``).
    cli_only: bool = False

    @property
    def long_flag(self) -> str:
        return next(flag for flag in self.flags if flag.startswith("--"))

    @property
    def pytest_flag(self) -> str:
        return "--conformance-" + self.long_flag.removeprefix("--")

    @property
    def pytest_dest(self) -> str:
        return "conformance_" + self.name

    def argparse_settings(self) -> dict[str, Any]:
        """Keyword arguments of ``add_argument``, the same for either parser."""
        settings: dict[str, Any] = {"help": self.help}
        if self.form == "switch":
            return {**settings, "action": "store_true"}
        if self.form == "repeated":
            settings.update(action="append", default=list(self.default or ()))
        else:
            settings["default"] = self.default
        if self.parse is not None:
            settings["type"] = self.parse
        if self.choices is not None:
            settings["choices"] = list(self.choices)
        if self.choices is None:
            # Named after the field, not the pytest destination, under either parser.
            settings["metavar"] = self.metavar or self.name.upper()
        return settings


def _target(name: str, flag: str, **details: Any) -> RunOption:
    return RunOption(name, (flag,), about_target=True, **details)


# fmt: off
RUN_OPTIONS: tuple[RunOption, ...] = (
    _target("target_file", "--target", metavar="FILE", help="target file (YAML)"),
    _target("ws_url", "--ws-url", metavar="URL", help="WebSocket base URL, e.g. ws://HOST:PORT"),
    _target("http_url", "--http-url", metavar="URL", help="HTTP API base URL"),
    _target("app_id", "--app-id"),
    _target("key", "--key"),
    _target("secret", "--secret"),
    _target(
        "capabilities", "--capability", form="repeated", parse=_capability, metavar="NAME",
        help=f"declare an optional feature: {', '.join(sorted(KNOWN_CAPABILITIES))}",
    ),
    _target("activity_timeout", "--activity-timeout", parse=positive_float, metavar="SECONDS"),
    _target("pong_timeout", "--pong-timeout", parse=positive_float, metavar="SECONDS"),
    _target("max_event_bytes", "--max-event-bytes", parse=positive_int, metavar="BYTES"),
    _target(
        "webhook_listen", "--webhook-listen", parse=_listen_url, metavar="URL",
        help="loopback URL the target posts webhooks to; the suite listens there",
    ),
    _target(
        "ca_file", "--ca-file", metavar="PEM",
        help="trust this CA (PEM) for a wss:// or https:// target, on top of the system store",
    ),
    _target(
        "insecure", "--insecure", form="switch",
        help="do not verify the target's TLS certificate at all (warned about, and the report "
        "says so); not with --ca-file",
    ),
    _target(
        "bundled_nodes", "--bundled-nodes", parse=positive_int, metavar="N",
        help="start redis-server and N bundled reference-server nodes sharing it, and certify "
        "them as one cluster (2 to 5; PUSHER_REF_FAULTS then breaks node 1 only)",
    ),
    RunOption("report_dir", ("--report-dir",), default="conformance-report", metavar="DIR"),
    RunOption(
        "baseline", ("--baseline",), metavar="FILE",
        help="the deviations accepted for this target, each with a reason (YAML): the run "
        "fails only on new ones and lists the fixed ones",
    ),
    RunOption(
        "strict", ("--strict",), form="switch",
        help="a DISPUTED MUST (broken, but its reading is inferred or observed, not stated in "
        "the docs) fails the run like a FAIL",
    ),
    RunOption("profile", ("--profile",), default="ci", choices=tuple(sorted(PROFILES))),
    RunOption("seed", ("--seed",), parse=_whole_number),
    RunOption(
        "max_examples", ("--max-examples",), parse=positive_int, metavar="N",
        help="hypothesis examples per property check (overrides the profile and the specs)",
    ),
    RunOption(
        "timeout_multiplier", ("--timeout-multiplier",), parse=positive_float, default=1.0,
        metavar="X",
    ),
    RunOption(
        "checks", ("--check",), form="repeated", metavar="GLOB",
        help="only these checks (REQ-ID/check-id or REQ-ID; globs allowed)",
    ),
    RunOption("levels", ("--level",), form="repeated", choices=LEVELS),
    RunOption(
        "concurrency", ("-n", "--concurrency"), parse=positive_int, default=8, metavar="N",
        help="checks run side by side (default 8; 1: one at a time)",
    ),
    RunOption(
        "keep_transcripts", ("--keep-transcripts",), form="switch",
        help="write wire logs for passing checks too",
    ),
    RunOption(
        "specs_dir", ("--specs",), metavar="DIR", help="specs directory (default: the bundled one)"
    ),
    RunOption(
        "regressions_dir", ("--regressions-dir",), metavar="DIR", exclusive="saving",
        help="where properties save the counterexamples they find as regression cases "
        "(default: SPECS/regressions in a writable checkout, else REPORT-DIR/regressions)",
    ),
    RunOption(
        "no_save_regressions", ("--no-save-regressions",), form="switch", exclusive="saving",
        help="save no regression cases",
    ),
    RunOption(
        "cache_dir", ("--cache-dir",), metavar="DIR",
        help="where hypothesis keeps the tables it builds once per machine (default: "
        "$HYPOTHESIS_STORAGE_DIRECTORY, else $XDG_CACHE_HOME/pusher-conformance, else "
        "~/.cache/pusher-conformance)",
    ),
    RunOption(
        "verbose", ("-v", "--verbose"), form="switch", cli_only=True, help="one line per check"
    ),
)
# fmt: on


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Give ``conformance run``'s parser every option (target flags in a section of their own)."""
    target_section = parser.add_argument_group(TARGET_SECTION)
    exclusive: dict[str, argparse._MutuallyExclusiveGroup] = {}
    for option in RUN_OPTIONS:
        where: argparse._ActionsContainer = target_section if option.about_target else parser
        if option.exclusive is not None:
            if option.exclusive not in exclusive:
                exclusive[option.exclusive] = where.add_mutually_exclusive_group()
            where = exclusive[option.exclusive]
        where.add_argument(*option.flags, dest=option.name, **option.argparse_settings())


def add_pytest_options(group: pytest.OptionGroup) -> None:
    """Give the plugin's option group every option, as ``--conformance-<flag>``."""
    for option in RUN_OPTIONS:
        if not option.cli_only:
            group.addoption(
                option.pytest_flag, dest=option.pytest_dest, **option.argparse_settings()
            )


# -- the parsed values ---------------------------------------------------------------------------


def _refuse_both_saving_choices(regressions_dir: str | None, no_save: bool) -> None:
    if regressions_dir and no_save:
        raise UsageError("give either --regressions-dir or --no-save-regressions, not both")


@dataclass(frozen=True)
class RunOptions:
    """What ``conformance run`` was asked to do, checked as a whole (each value was checked as
    it was parsed). Paths are kept as given: they are resolved where they are used."""

    target_file: str | None = None
    ws_url: str | None = None
    http_url: str | None = None
    app_id: str | None = None
    key: str | None = None
    secret: str | None = None
    capabilities: tuple[str, ...] = ()
    activity_timeout: float | None = None
    pong_timeout: float | None = None
    max_event_bytes: int | None = None
    webhook_listen: str | None = None
    ca_file: str | None = None
    insecure: bool = False
    bundled_nodes: int | None = None
    report_dir: str = "conformance-report"
    baseline: str | None = None
    strict: bool = False
    profile: str = "ci"
    seed: int | None = None
    max_examples: int | None = None
    timeout_multiplier: float = 1.0
    checks: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    concurrency: int = 8
    keep_transcripts: bool = False
    specs_dir: str | None = None
    regressions_dir: str | None = None
    no_save_regressions: bool = False
    cache_dir: str | None = None
    verbose: bool = False

    def __post_init__(self) -> None:
        # The target flags: all of them (a target) or none (a target file or the bundled server).
        if self.target_file and self.target_flags_given:
            raise UsageError(
                "give either --target FILE or the --ws-url/--http-url/... flags, not both"
            )
        missing = [
            f"--{name.replace('_', '-')}" for name in CONNECTION_FIELDS if not getattr(self, name)
        ]
        if self.target_flags_given and missing:
            raise UsageError(f"a target given by flags also needs {', '.join(missing)}")
        _refuse_both_saving_choices(self.regressions_dir, self.no_save_regressions)
        refuse_both_trust_choices(self.ca_file, self.insecure)
        if self.bundled_nodes is not None and (self.target_file or self.target_flags_given):
            raise UsageError(
                "--bundled-nodes starts a cluster of its own: give it without --target or "
                "the target flags"
            )

    @classmethod
    def from_values(cls, value_of: Callable[[RunOption], Any]) -> RunOptions:
        """The one way both parsers' results become options: ``value_of`` reads one option's
        parsed value (``None`` or a list when it was not given)."""
        values: dict[str, Any] = {}
        for option in RUN_OPTIONS:
            value = value_of(option)
            if option.form == "repeated":
                value = tuple(value or ())
            elif option.form == "switch":
                value = bool(value)
            values[option.name] = value
        return cls(**values)

    @classmethod
    def from_namespace(cls, namespace: argparse.Namespace) -> RunOptions:
        return cls.from_values(lambda option: getattr(namespace, option.name))

    @classmethod
    def from_pytest(cls, config: pytest.Config) -> RunOptions:
        def value_of(option: RunOption) -> Any:
            if option.cli_only:
                return option.default
            return config.getoption(option.pytest_dest)

        return cls.from_values(value_of)

    @property
    def target_flags_given(self) -> bool:
        return any(getattr(self, name) for name in CONNECTION_FIELDS)

    @property
    def selected_levels(self) -> frozenset[str]:
        return frozenset(self.levels or LEVELS)

    def selects(self, check: Check, requirement: Requirement) -> bool:
        return selected(check, requirement, self.checks, self.selected_levels)

    def replay_prefix(self) -> str:
        """The start of a command that runs again against the same target and specs (the
        secret is left as ``$SECRET``: a replay line is printed and stored in reports)."""
        words = ["conformance", "run"]

        def add(flag: str, value: str | None) -> None:
            words.extend((flag, shlex.quote(value or "")))

        if self.target_file:
            add("--target", self.target_file)
        elif self.target_flags_given:
            add("--ws-url", self.ws_url)
            add("--http-url", self.http_url)
            add("--app-id", self.app_id)
            add("--key", self.key)
            words += ["--secret", "$SECRET"]
        elif self.bundled_nodes:
            add("--bundled-nodes", str(self.bundled_nodes))
        for capability in self.capabilities:
            add("--capability", capability)
        if self.webhook_listen:
            add("--webhook-listen", self.webhook_listen)
        if self.ca_file:
            add("--ca-file", self.ca_file)
        if self.insecure:
            words.append("--insecure")
        if self.specs_dir:
            add("--specs", self.specs_dir)
        return " ".join(words)


#: Where the command line leaves its options for the plugin (see ``OptionsCarrier``).
STASHED_OPTIONS = pytest.StashKey[RunOptions]()


#: The specs the command line loaded, so that the plugin does not load (and validate) them again.
STASHED_SPECS = pytest.StashKey[SpecSet]()


class OptionsCarrier:
    """A pytest plugin object that hands options already parsed and checked by the command line
    to the conformance plugin, which would otherwise rebuild them from its own flags, and the
    specs the command line already loaded for them."""

    def __init__(self, options: RunOptions, specs: SpecSet | None = None) -> None:
        self.options = options
        self.specs = specs

    @pytest.hookimpl(tryfirst=True)
    def pytest_configure(self, config: pytest.Config) -> None:
        config.stash[STASHED_OPTIONS] = self.options
        if self.specs is not None:
            config.stash[STASHED_SPECS] = self.specs


def options_of(config: pytest.Config) -> RunOptions:
    """The command line's options when it started this run, else the plugin's own flags'."""
    stashed = config.stash.get(STASHED_OPTIONS, None)
    return stashed if stashed is not None else RunOptions.from_pytest(config)


# -- what the options choose ---------------------------------------------------------------------


def selected(
    check: Check, requirement: Requirement, selection: tuple[str, ...], levels: frozenset[str]
) -> bool:
    """Whether ``--check``/``--level`` select this check (globs on check or requirement id)."""
    if requirement.level not in levels:
        return False
    if not selection:
        return True
    return any(
        fnmatch.fnmatchcase(check.full_id, pattern) or fnmatch.fnmatchcase(requirement.id, pattern)
        for pattern in selection
    )


def require_selection(specs: SpecSet, options: RunOptions) -> None:
    """Refuse a selection that leaves nothing to run: an empty run would certify nothing."""
    if not any(options.selects(c, r) for r in specs.requirements for c in r.checks):
        raise UsageError(f"no check matches {', '.join(options.checks) or 'the selected levels'}")


def _installed(path: Path) -> bool:
    return any(part in ("site-packages", "dist-packages") for part in path.parts)


def regressions_dir(
    specs_dir: Path, report_dir: Path, *, given: str | None, save: bool
) -> Path | None:
    """Where new regression cases go: next to the specs they join when those are a writable
    source checkout (so they can be committed), otherwise into the report (a CI artifact)."""
    _refuse_both_saving_choices(given, not save)
    if not save:
        return None
    if given:
        return Path(given).resolve()
    in_specs = specs_dir / REGRESSIONS_SUBDIR
    existing = in_specs if in_specs.is_dir() else specs_dir
    if not _installed(specs_dir) and os.access(existing, os.W_OK):
        return in_specs
    return report_dir / REGRESSIONS_SUBDIR
