"""``conformance``: certify a Pusher Channels server from the command line.

``run`` checks the arguments itself (so that mistakes end with one clear line and status 2, and an
unreachable target with status 3 in a few seconds), then hands over to pytest with the plugin,
passing the checked options along as they are (conformance/options.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from . import __version__
from .auth_endpoint.command import (
    add_auth_endpoint_arguments,
    auth_endpoint_command,
    load_auth_endpoint_specs,
)
from .baseline import load_baseline
from .bench.command import add_bench_arguments, bench_command
from .clients.command import add_client_arguments, client_command, load_client_specs
from .diff import add_diff_arguments, diff_command
from .docs_map import DocsPage, MapCounts, load_docs_map
from .errors import ConformanceError, SpecError, TargetUnreachable, UsageError
from .matrix import add_matrix_arguments, matrix_command
from .options import OptionsCarrier, RunOptions, add_run_arguments, require_selection
from .outcomes import ExitCode
from .properties import known_property_names
from .proxy.command import add_proxy_arguments, proxy_command
from .quotes import Quoted, check_quotes
from .simulate.command import add_simulate_arguments, simulate_command
from .smoke import add_smoke_arguments, smoke_command
from .spec import SUBJECTS, SpecSet, Subject, default_specs_dir, load_specs
from .target import check_reachable, target_from_options

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _parser() -> _Parser:
    parser = _Parser(prog="conformance", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"pusher-conformance {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    run = sub.add_parser("run", help="run the suite against a target (default: the bundled server)")
    add_run_arguments(run)

    listing = sub.add_parser("list", help="list requirements and their checks")
    listing.add_argument("--specs", metavar="DIR")
    listing.add_argument("--json", action="store_true")
    listing.add_argument(
        "--subject",
        choices=[*SUBJECTS, "all"],
        help="whose requirements: server (the default), client, auth-endpoint or all",
    )

    validate = sub.add_parser("validate-specs", help="validate the spec files")
    validate.add_argument("--specs", metavar="DIR")

    quotes = sub.add_parser(
        "check-quotes",
        help="hold every quoted docs sentence to a checkout of the public Pusher docs",
    )
    quotes.add_argument("docs", metavar="DOCS_DIR", help="a checkout of the Pusher docs repository")
    quotes.add_argument("--specs", metavar="DIR")

    proxy = sub.add_parser(
        "proxy", help="run the fault-injecting proxy in front of a server (docs/proxy.md)"
    )
    add_proxy_arguments(proxy)

    difference = sub.add_parser(
        "diff", help="what changed between two runs (their results.json); exit 1 if any got worse"
    )
    add_diff_arguments(difference)

    matrix = sub.add_parser(
        "matrix", help="an interop matrix (HTML and Markdown) from several runs' results.json"
    )
    add_matrix_arguments(matrix)

    simulation = sub.add_parser(
        "simulate",
        help="virtual users against a server, with a readiness verdict (docs/simulate.md)",
    )
    add_simulate_arguments(simulation)

    client = sub.add_parser(
        "client",
        help="certify a client library through its driver (docs/client-certification.md)",
        usage="conformance client [options] -- COMMAND...",
    )
    add_client_arguments(client)

    smoke = sub.add_parser(
        "smoke",
        help="a post-deployment check of a live deployment, in seconds (docs/smoke.md)",
    )
    add_smoke_arguments(smoke)

    auth_endpoint = sub.add_parser(
        "auth-endpoint",
        help="certify an app's channel-auth endpoint (docs/auth-endpoint-certification.md)",
    )
    add_auth_endpoint_arguments(auth_endpoint)

    bench = sub.add_parser(
        "bench",
        help="throughput, latency and memory of a server, side by side with Soketi (docs/bench.md)",
    )
    add_bench_arguments(bench)
    return parser


def _load(specs: str | None) -> SpecSet:
    return load_specs(Path(specs) if specs else None, known_properties=known_property_names())


#: How each subject loads its specs, held to the checks its command knows.
_LOADERS: dict[Subject, Callable[[str | None], SpecSet]] = {
    "server": _load,
    "client": load_client_specs,
    "auth-endpoint": load_auth_endpoint_specs,
}


def _load_subjects(specs: str | None) -> dict[Subject, SpecSet]:
    """Every subject that has spec files, each validated against its own registry."""
    loaded: dict[Subject, SpecSet] = {}
    for subject in SUBJECTS:
        try:
            loaded[subject] = _LOADERS[subject](specs)
        except SpecError as exc:
            if f"no spec files of subject {subject}" not in str(exc):
                raise
    return loaded


def _run(options: RunOptions) -> int:
    specs = _load(options.specs_dir)
    target = target_from_options(options)
    require_selection(specs, options)
    if options.baseline:  # a mistake in it ends the run before it starts
        load_baseline(options.baseline, (r.id for r in specs.requirements))
    if target is not None:
        check_reachable(target)

    specs_dir = Path(options.specs_dir).resolve() if options.specs_dir else default_specs_dir()
    report_dir = Path(options.report_dir).resolve()
    report_dir.mkdir(parents=True, exist_ok=True)
    ini = Path(tempfile.mkdtemp(prefix="conformance-")) / "pytest.ini"
    ini.write_text("[pytest]\n", encoding="utf-8")
    # Only what pytest itself needs is spelled out: the plugin gets the options from the carrier.
    pytest_args = [
        *[str(f.path) for f in specs.files],
        "--conformance",
        "-c", str(ini), "--rootdir", str(specs_dir.parent),
        "-p", "no:cacheprovider", "-p", "no:benchmark", "-p", "no:asyncio", "-p", "no:locust",
        "-r", "N", "--tb", "short",
        "-W", "ignore::pytest.PytestAssertRewriteWarning",
        "-v" if options.verbose else "-q",
    ]  # fmt: skip
    code = int(pytest.main(pytest_args, plugins=[OptionsCarrier(options, specs)]))
    ini.unlink(missing_ok=True)
    ini.parent.rmdir()
    if code in (0, 1, 3):
        return code
    if code == int(pytest.ExitCode.USAGE_ERROR):
        return int(ExitCode.USAGE)
    if code == int(pytest.ExitCode.INTERRUPTED):
        return 130
    return int(ExitCode.NOT_DECIDED)


def _listed(args: argparse.Namespace) -> dict[Subject, SpecSet]:
    """The spec sets ``list`` shows: the server's unless ``--subject`` says otherwise, each
    subject's held to its own registry (``all``: every subject that has spec files)."""
    subject: str = args.subject or "server"
    if subject == "all":
        return _load_subjects(args.specs)
    chosen = next(s for s in SUBJECTS if s == subject)
    return {chosen: _LOADERS[chosen](args.specs)}


def _list(args: argparse.Namespace) -> int:
    listed = _listed(args)
    # Without --subject the output is what it always was; with it, each entry names its subject.
    named = args.subject is not None
    if args.json:
        entries: list[dict[str, Any]] = []
        for subject, specs in listed.items():
            for r in specs.requirements:
                entry: dict[str, Any] = {"subject": subject} if named else {}
                entry |= {
                    "id": r.id,
                    "area": r.area,
                    "level": r.level,
                    "title": r.title,
                    "status": r.status,
                    "basis": r.basis,
                    "capability": r.capability,
                    "checks": [c.full_id for c in r.checks],
                    "regression_cases": [
                        c.regression_file.name for c in r.checks if c.regression_file
                    ],
                }
                entries.append(entry)
        print(json.dumps(entries, indent=2))
        return 0
    for subject, specs in listed.items():
        if len(listed) > 1:
            print(f"== {subject}: {len(specs.requirements)} requirements")
        for requirement in specs.requirements:
            status = "" if requirement.status == "active" else f" ({requirement.status})"
            print(f"{requirement.id:<16} {requirement.level:<6} {requirement.title}{status}")
            for check in requirement.checks:
                kind = f"property {check.property_name}" if check.property_name else "exchange"
                if check.regression_file is not None:
                    kind += f", regression case {check.regression_file.name}"
                print(f"    {check.full_id}  [{kind}]")
    return 0


def _load_docs_map(args: argparse.Namespace, specs: SpecSet) -> tuple[DocsPage, ...]:
    return load_docs_map(
        Path(args.specs) if args.specs else None,
        requirement_ids=(r.id for r in specs.requirements),
    )


def _validate(args: argparse.Namespace) -> int:
    subjects = _load_subjects(args.specs)
    specs = subjects["server"]
    # A docs rule may name the requirements of any subject.
    pages = load_docs_map(
        Path(args.specs) if args.specs else None,
        requirement_ids=(r.id for loaded in subjects.values() for r in loaded.requirements),
    )
    active = [r for r in specs.requirements if r.status == "active"]
    counts = MapCounts.of(pages)
    docs = (
        f"; docs map: {counts.pages} pages, {counts.rules} rules ({counts.mapped} mapped, "
        f"{counts.omitted} omitted, {counts.not_yet_tested} not yet tested)"
        if pages
        else ""
    )
    print(
        f"ok: {len(specs.files)} files, {len(specs.requirements)} requirements "
        f"({len(active)} with checks, {len(specs.checks)} checks"
        f"{f', {len(specs.regressions)} of them regression cases' if specs.regressions else ''}"
        f"), sha256 {specs.sha256[:16]}"
        f"{docs}"
    )
    for subject, other in subjects.items():
        if subject != "server":
            print(
                f"ok: {subject}: {len(other.files)} files, {len(other.requirements)} "
                f"requirements, {len(other.checks)} checks"
            )
    return 0


def _check_quotes(args: argparse.Namespace) -> int:
    docs = Path(args.docs)
    if not docs.is_dir():
        raise UsageError(f"check-quotes: {docs} is not a directory")
    # Every subject's quotes: an auth endpoint's requirement quotes the docs like a server's.
    specs = load_specs(Path(args.specs) if args.specs else None, subject=None)
    quoted = [Quoted(r.id, r.source, r.quote) for r in specs.requirements if r.quote]
    quoted += [
        Quoted(f"{page.name} rule {n}", page.page.rstrip("/") + "/" + rule.anchor, rule.quote)
        for page in _load_docs_map(args, specs)
        for n, rule in enumerate(page.rules, 1)
    ]
    problems = list(check_quotes(docs, quoted))
    for problem in problems:
        print(f"{problem.owner}: {problem.problem}")
    print(f"{len(quoted) - len({p.owner for p in problems})} of {len(quoted)} quotes found")
    return 1 if problems else 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        if args.command == "run":
            return _run(RunOptions.from_namespace(args))
        if args.command == "list":
            return _list(args)
        if args.command == "validate-specs":
            return _validate(args)
        if args.command == "check-quotes":
            return _check_quotes(args)
        if args.command == "proxy":
            return proxy_command(args)
        if args.command == "matrix":
            return matrix_command(args)
        if args.command == "diff":
            return diff_command(args)
        if args.command == "client":
            return client_command(args)
        if args.command == "simulate":
            return simulate_command(args)
        if args.command == "smoke":
            return smoke_command(args)
        if args.command == "auth-endpoint":
            return auth_endpoint_command(args)
        if args.command == "bench":
            return bench_command(args)
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
