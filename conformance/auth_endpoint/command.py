"""``conformance auth-endpoint``: certify an app's channel-authorization endpoint (and, given
``--user-auth-url``, its user-authentication endpoint) against a policy (docs/auth-endpoint-
certification.md).

Exit status as ``run``: 0 every MUST kept, 1 a MUST broken (or, with ``--strict``, disputed),
2 a usage mistake (one line naming it), 3 undecided (the endpoint is unreachable, or a check
could not decide).
"""

from __future__ import annotations

import argparse
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path

from ..errors import UsageError
from ..options import positive_float
from ..report import write_all
from ..results import build_report
from ..spec import SpecSet, load_specs
from ..target import check_listening
from .checks import CHECKS, check_names
from .files import load_credentials, load_policy
from .probe import HttpProbe, checked_url
from .runner import Setup, run_checks

__all__ = ["add_auth_endpoint_arguments", "auth_endpoint_command"]


def _examples(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text!r}")
    return value


def add_auth_endpoint_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", required=True, help="the channel-authorization endpoint (e.g. .../pusher/auth)"
    )
    parser.add_argument(
        "--as", dest="users", action="append", required=True, metavar="USER",
        help="a user to certify as (repeatable); each must be in both files",
    )  # fmt: skip
    parser.add_argument(
        "--credentials", required=True, metavar="FILE",
        help="YAML/JSON: per user, the headers and/or cookies that log them in",
    )  # fmt: skip
    parser.add_argument(
        "--policy", required=True, metavar="FILE",
        help="YAML/JSON: per user, their id and the channels they may read",
    )  # fmt: skip
    parser.add_argument("--app-key", required=True, metavar="KEY")
    parser.add_argument("--app-secret", required=True, metavar="SECRET")
    parser.add_argument(
        "--user-auth-url", metavar="URL",
        help="the user-authentication (sign-in) endpoint, certified too when given",
    )  # fmt: skip
    parser.add_argument(
        "--report-dir", metavar="DIR", default="auth-endpoint-report",
        help="where results.json, junit.xml, summary.md and summary.html go",
    )  # fmt: skip
    parser.add_argument(
        "--strict", action="store_true", help="a DISPUTED MUST (inferred rule) fails the run"
    )
    parser.add_argument(
        "--examples", type=_examples, default=50, metavar="N",
        help="hypothesis examples per check after the fixed cases (default 50; 0: fixed only)",
    )  # fmt: skip
    parser.add_argument(
        "--seed", type=int, metavar="N", help="replay a run's choices (default: random)"
    )
    parser.add_argument(
        "--timeout", type=positive_float, default=10.0, metavar="SECONDS",
        help="per request (default 10)",
    )  # fmt: skip
    parser.add_argument("--specs", metavar="DIR", help=argparse.SUPPRESS)


def load_auth_endpoint_specs(specs_dir: str | None = None) -> SpecSet:
    return load_specs(
        Path(specs_dir) if specs_dir else None,
        known_properties=check_names(),
        subject="auth-endpoint",
    )


def _setup(args: argparse.Namespace) -> Setup:
    channel_url = checked_url(args.url, "--url")
    user_auth_url = (
        checked_url(args.user_auth_url, "--user-auth-url") if args.user_auth_url else None
    )
    credentials = load_credentials(Path(args.credentials))
    policy = load_policy(Path(args.policy))
    users = tuple(dict.fromkeys(args.users))
    for user in users:
        if user not in credentials.users:
            raise UsageError(f"--as {user}: not in the credentials file {args.credentials}")
        if user not in policy.users:
            raise UsageError(f"--as {user}: not in the policy file {args.policy}")
    if not args.app_key or ":" in args.app_key:
        raise UsageError("--app-key: a non-empty key without ':'")
    if not args.app_secret:
        raise UsageError("--app-secret: must not be empty")
    return Setup(
        channel_url=channel_url,
        user_auth_url=user_auth_url,
        policy=policy,
        credentials=credentials,
        users=users,
        app_key=args.app_key,
        app_secret=args.app_secret,
        examples=args.examples,
        seed=args.seed if args.seed is not None else secrets.randbelow(2**31),
    )


def auth_endpoint_command(args: argparse.Namespace) -> int:
    setup = _setup(args)  # the operator's files first: their mistakes are the likelier ones
    specs = load_auth_endpoint_specs(args.specs)
    check_listening(filter(None, (setup.channel_url, setup.user_auth_url)), "auth endpoint")
    started = datetime.now(UTC).isoformat(timespec="seconds")
    clock = time.monotonic()
    with HttpProbe(
        setup.channel_url, setup.user_auth_url, setup.credentials, timeout=args.timeout
    ) as probe:
        results = run_checks(specs, setup, probe, CHECKS)
    report = build_report(
        specs,
        results,
        target={
            "name": "auth endpoint",
            "kind": "auth-endpoint",
            "channel_auth_url": setup.channel_url,
            "user_auth_url": setup.user_auth_url,
            "capabilities": ["user_auth"] if setup.user_auth_url else [],
            "users": list(setup.users),
            "key": setup.app_key,  # never the secret (schemas/results.schema.json)
        },
        run={
            "profile": "auth-endpoint",
            "seed": setup.seed,
            "examples": setup.examples,
            "started_at": started,
            "duration_s": round(time.monotonic() - clock, 3),
        },
        strict=args.strict,
    )
    report_dir = Path(args.report_dir)
    write_all(report, report_dir)
    print(report.console())
    print(f"auth-endpoint: report written to {report_dir}/")
    return int(report.exit)
