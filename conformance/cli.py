"""``conformance``: certify a Pusher Channels server from the command line.

``run`` checks the arguments itself (so that mistakes end with one clear line and status 2, and an
unreachable target with status 3 in a few seconds), then hands over to pytest with the plugin.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from . import __version__
from .errors import ConformanceError, TargetUnreachable, UsageError
from .outcomes import ExitCode
from .plugin import selected
from .profiles import PROFILES
from .properties import known_property_names
from .spec import SpecSet, default_specs_dir, load_specs
from .target import (
    KNOWN_CAPABILITIES,
    check_reachable,
    load_target_file,
    target_from_mapping,
    webhook_listen_url,
)

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _parser() -> _Parser:
    parser = _Parser(prog="conformance", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"pusher-conformance {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    run = sub.add_parser("run", help="run the suite against a target (default: the bundled server)")
    target = run.add_argument_group("target (default: start the bundled reference server)")
    target.add_argument("--target", metavar="FILE", help="target file (YAML)")
    target.add_argument("--ws-url", metavar="URL")
    target.add_argument("--http-url", metavar="URL")
    target.add_argument("--app-id")
    target.add_argument("--key")
    target.add_argument("--secret")
    target.add_argument(
        "--capability", action="append", default=[], metavar="NAME",
        help=f"declare an optional feature: {', '.join(sorted(KNOWN_CAPABILITIES))}",
    )  # fmt: skip
    target.add_argument("--activity-timeout", type=_positive_float, metavar="SECONDS")
    target.add_argument("--pong-timeout", type=_positive_float, metavar="SECONDS")
    target.add_argument("--max-event-bytes", type=int, metavar="BYTES")
    target.add_argument(
        "--webhook-listen", metavar="URL",
        help="loopback URL the target posts webhooks to; the suite listens there",
    )  # fmt: skip
    run.add_argument("--report-dir", default="conformance-report", metavar="DIR")
    run.add_argument("--profile", default="ci", choices=sorted(PROFILES))
    run.add_argument("--seed", type=int)
    run.add_argument(
        "--max-examples",
        type=_positive_int,
        metavar="N",
        help="hypothesis examples per property check (overrides the profile and the specs)",
    )
    run.add_argument("--timeout-multiplier", type=_positive_float, default=1.0, metavar="X")
    run.add_argument(
        "--check",
        action="append",
        default=[],
        metavar="GLOB",
        help="only these checks (REQ-ID/check-id or REQ-ID; globs allowed)",
    )
    run.add_argument("--level", action="append", default=[], choices=["MUST", "SHOULD", "MAY"])
    run.add_argument(
        "-n",
        "--concurrency",
        type=_positive_int,
        default=8,
        metavar="N",
        help="checks run side by side (default 8; 1: one at a time)",
    )
    run.add_argument(
        "--keep-transcripts", action="store_true", help="write wire logs for passing checks too"
    )
    run.add_argument("--specs", metavar="DIR", help="specs directory (default: the bundled one)")
    saving = run.add_mutually_exclusive_group()
    saving.add_argument(
        "--regressions-dir",
        metavar="DIR",
        help="where properties save the counterexamples they find as regression cases "
        "(default: SPECS/regressions in a writable checkout, else REPORT-DIR/regressions)",
    )
    saving.add_argument(
        "--no-save-regressions", action="store_true", help="save no regression cases"
    )
    run.add_argument("-v", "--verbose", action="store_true", help="one line per check")

    listing = sub.add_parser("list", help="list requirements and their checks")
    listing.add_argument("--specs", metavar="DIR")
    listing.add_argument("--json", action="store_true")

    validate = sub.add_parser("validate-specs", help="validate the spec files")
    validate.add_argument("--specs", metavar="DIR")
    return parser


def _load(specs: str | None) -> SpecSet:
    return load_specs(Path(specs) if specs else None, known_properties=known_property_names())


def _replay_prefix(args: argparse.Namespace) -> str:
    parts = ["conformance", "run"]
    if args.target:
        parts += ["--target", args.target]
    elif args.ws_url:
        parts += [
            "--ws-url",
            args.ws_url,
            "--http-url",
            args.http_url or "",
            "--app-id",
            args.app_id or "",
            "--key",
            args.key or "",
            "--secret",
            "$SECRET",
        ]
    for capability in args.capability:
        parts += ["--capability", capability]
    if args.webhook_listen:
        parts += ["--webhook-listen", args.webhook_listen]
    if args.specs:
        parts += ["--specs", args.specs]
    return " ".join(shlex.quote(p) if not p.startswith("$") else p for p in parts)


def _run(args: argparse.Namespace) -> int:
    specs = _load(args.specs)
    flags = {k: getattr(args, k) for k in ("ws_url", "http_url", "app_id", "key", "secret")}
    if args.target and any(flags.values()):
        raise UsageError("give either --target FILE or the --ws-url/--http-url/... flags, not both")
    if args.target:
        target = load_target_file(args.target)
    elif any(flags.values()):
        missing = [f"--{k.replace('_', '-')}" for k, v in flags.items() if not v]
        if missing:
            raise UsageError(f"a target given by flags also needs {', '.join(missing)}")
        target = target_from_mapping({"name": "command-line target", **flags})
    else:
        target = None
    unknown = set(args.capability) - KNOWN_CAPABILITIES
    if unknown:
        raise UsageError(
            f"unknown capability: {', '.join(sorted(unknown))} "
            f"(known: {', '.join(sorted(KNOWN_CAPABILITIES))})"
        )
    levels = frozenset(args.level or ("MUST", "SHOULD", "MAY"))
    if not any(
        selected(c, r, tuple(args.check), levels) for r in specs.requirements for c in r.checks
    ):
        raise UsageError(f"no check matches {', '.join(args.check) or 'the selected levels'}")
    if args.webhook_listen:
        webhook_listen_url({"listen": args.webhook_listen}, ())  # one clear line if it is bad
    if target is not None:
        listen = args.webhook_listen or target.webhook_listen
        webhook_listen_url(
            {"listen": listen} if listen else None, target.capabilities | set(args.capability)
        )
        check_reachable(target)

    specs_dir = Path(args.specs).resolve() if args.specs else default_specs_dir()
    report_dir = Path(args.report_dir).resolve()
    report_dir.mkdir(parents=True, exist_ok=True)
    ini = Path(tempfile.mkdtemp(prefix="conformance-")) / "pytest.ini"
    ini.write_text("[pytest]\n", encoding="utf-8")
    pytest_args = [
        *[str(f.path) for f in specs.files],
        "--conformance",
        "-c", str(ini), "--rootdir", str(specs_dir.parent),
        "-p", "no:cacheprovider", "-p", "no:benchmark", "-p", "no:asyncio",
        "--conformance-specs", str(specs_dir),
        "--conformance-report-dir", str(report_dir),
        "--conformance-profile", args.profile,
        "--conformance-timeout-multiplier", str(args.timeout_multiplier),
        "--conformance-replay-prefix", _replay_prefix(args),
        "-r", "N", "--tb", "short",
        "-W", "ignore::pytest.PytestAssertRewriteWarning",
    ]  # fmt: skip
    pytest_args.append("-v" if args.verbose else "-q")
    if args.seed is not None:
        pytest_args += ["--conformance-seed", str(args.seed)]
    if args.max_examples is not None:
        pytest_args += ["--conformance-max-examples", str(args.max_examples)]
    if args.target:
        pytest_args += ["--conformance-target", args.target]
    for name, value in flags.items():
        if value:
            pytest_args += [f"--conformance-{name.replace('_', '-')}", value]
    for name in ("activity_timeout", "pong_timeout", "max_event_bytes"):
        value = getattr(args, name)
        if value is not None:
            pytest_args += [f"--conformance-{name.replace('_', '-')}", str(value)]
    for capability in args.capability:
        pytest_args += ["--conformance-capability", capability]
    if args.webhook_listen:
        pytest_args += ["--conformance-webhook-listen", args.webhook_listen]
    for pattern in args.check:
        pytest_args += ["--conformance-check", pattern]
    for level in args.level:
        pytest_args += ["--conformance-level", level]
    if args.keep_transcripts:
        pytest_args.append("--conformance-keep-transcripts")
    if args.regressions_dir:
        pytest_args += ["--conformance-regressions-dir", str(Path(args.regressions_dir).resolve())]
    if args.no_save_regressions:
        pytest_args.append("--conformance-no-save-regressions")
    pytest_args += ["--conformance-concurrency", str(args.concurrency)]
    code = int(pytest.main(pytest_args))
    ini.unlink(missing_ok=True)
    ini.parent.rmdir()
    if code in (0, 1, 3):
        return code
    if code == int(pytest.ExitCode.USAGE_ERROR):
        return int(ExitCode.USAGE)
    if code == int(pytest.ExitCode.INTERRUPTED):
        return 130
    return int(ExitCode.NOT_DECIDED)


def _list(args: argparse.Namespace) -> int:
    specs = _load(args.specs)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "id": r.id,
                        "area": r.area,
                        "level": r.level,
                        "title": r.title,
                        "status": r.status,
                        "capability": r.capability,
                        "checks": [c.full_id for c in r.checks],
                        "regression_cases": [
                            c.regression_file.name for c in r.checks if c.regression_file
                        ],
                    }
                    for r in specs.requirements
                ],
                indent=2,
            )
        )
        return 0
    for requirement in specs.requirements:
        status = "" if requirement.status == "active" else f" ({requirement.status})"
        print(f"{requirement.id:<16} {requirement.level:<6} {requirement.title}{status}")
        for check in requirement.checks:
            kind = f"property {check.property_name}" if check.property_name else "exchange"
            if check.regression_file is not None:
                kind += f", regression case {check.regression_file.name}"
            print(f"    {check.full_id}  [{kind}]")
    return 0


def _validate(args: argparse.Namespace) -> int:
    specs = _load(args.specs)
    active = [r for r in specs.requirements if r.status == "active"]
    print(
        f"ok: {len(specs.files)} files, {len(specs.requirements)} requirements "
        f"({len(active)} with checks, {len(specs.checks)} checks"
        f"{f', {len(specs.regressions)} of them regression cases' if specs.regressions else ''}"
        f"), sha256 {specs.sha256[:16]}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        if args.command == "run":
            return _run(args)
        if args.command == "list":
            return _list(args)
        if args.command == "validate-specs":
            return _validate(args)
        _parser().print_help()
        return int(ExitCode.USAGE)
    except UsageError as exc:
        print(f"conformance: error: {exc}", file=sys.stderr)
        return int(ExitCode.USAGE)
    except TargetUnreachable as exc:
        print(f"conformance: {exc}", file=sys.stderr)
        return int(ExitCode.NOT_DECIDED)
    except ConformanceError as exc:
        print(f"conformance: error: {exc}", file=sys.stderr)
        return int(ExitCode.NOT_DECIDED)
    except KeyboardInterrupt:
        print("conformance: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (``| head``) went away: nothing left to say.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
