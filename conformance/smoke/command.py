"""``conformance smoke``: a post-deployment check of a live Pusher-protocol deployment, in
seconds, with an exit code a deploy pipeline can act on (docs/smoke.md).

Exit status: 0 every step passed, 1 a step failed, 2 a usage mistake (one line naming it),
3 nothing answers at the target's address.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ..errors import TargetUnreachable, UsageError
from ..options import positive_float
from ..target import Target, check_listening, load_target_file, target_from_mapping, with_trust
from ..tls import insecure_warning
from .probe import SmokeSettings, run_smoke
from .render import render_lines
from .result import SmokeResult

__all__ = ["add_smoke_arguments", "smoke_command", "smoke_target"]

#: Seconds the reachability check may take of the deadline, at most.
REACH_CAP = 3.0


def add_smoke_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target", required=True, metavar="URL|FILE",
        help="the deployment's wss:// URL (with --app-id, --key, --secret) or a target file",
    )  # fmt: skip
    parser.add_argument(
        "--http-url", metavar="URL",
        help="with a URL target: the HTTP API base (default: https:// on the same host and port)",
    )  # fmt: skip
    parser.add_argument("--app-id", help="with a URL target: the app id")
    parser.add_argument("--key", help="with a URL target: the app key")
    parser.add_argument(
        "--secret", help="with a URL target: the app secret (signs channel auth and API calls)"
    )
    parser.add_argument("--health-url", metavar="URL", help="a health endpoint to GET (2xx)")
    parser.add_argument(
        "--ca-file", metavar="PEM", help="trust this CA too (a private CA's deployment)"
    )
    parser.add_argument(
        "--insecure", action="store_true",
        help="do not verify the target's TLS certificate at all (warned about); not with --ca-file",
    )  # fmt: skip
    parser.add_argument(
        "--plain-url", metavar="URL",
        help="where plain ws:// should be turned away (default: port 80 for a wss:// URL on"
        " port 443, else the wss:// URL's own port)",
    )  # fmt: skip
    parser.add_argument(
        "--allow-plain", action="store_true",
        help="a plain ws:// target (a local server): report the wss-only step as skipped",
    )  # fmt: skip
    parser.add_argument(
        "--timeout", type=positive_float, default=10.0, metavar="SECONDS",
        help="the whole run's deadline, cleanup included (default 10)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the result as JSON only")


def _url_target(url: str, args: argparse.Namespace, command: str) -> dict[str, object]:
    parts = urlsplit(url)
    secure = parts.scheme in ("wss", "https")
    ws_url = urlunsplit(("wss" if secure else "ws", parts.netloc, parts.path, "", ""))
    http_url = args.http_url or urlunsplit(
        ("https" if secure else "http", parts.netloc, parts.path, "", "")
    )
    missing = [
        f"--{flag}"
        for flag in ("app-id", "key", "secret")
        if not getattr(args, flag.replace("-", "_"))
    ]
    if missing:
        missing_text = ", ".join(missing)
        raise UsageError(
            f"{command}: a URL target also needs {missing_text} (or give a target file)"
        )
    return {
        "name": parts.netloc,
        "ws_url": ws_url,
        "http_url": http_url,
        "app_id": args.app_id,
        "key": args.key,
        "secret": args.secret,
    }


def smoke_target(args: argparse.Namespace, command: str = "smoke") -> Target:
    """The deployment ``--target`` names: a URL completed by the credential flags, or a target
    file (which then holds the credentials: giving both would leave one of them unused).
    ``command`` starts each error line (``conformance bench`` takes its targets the same way,
    without ``--health-url`` and ``--plain-url``)."""
    given = args.target
    if "://" in given:
        target = target_from_mapping(_url_target(given, args, command))
    else:
        flags = [
            f"--{flag}"
            for flag in ("http-url", "app-id", "key", "secret")
            if getattr(args, flag.replace("-", "_"))
        ]
        if flags:
            raise UsageError(
                f"{command}: {', '.join(flags)} go with a URL target; a target file holds them"
            )
        if not Path(given).is_file():
            raise UsageError(f"{command}: --target {given}: neither a URL nor a target file")
        target = load_target_file(given)
    target = with_trust(target, args.ca_file, args.insecure)
    for what, url, schemes in (
        ("--health-url", getattr(args, "health_url", None), ("http", "https")),
        ("--plain-url", getattr(args, "plain_url", None), ("ws", "http")),
    ):
        if url and (urlsplit(url).scheme not in schemes or not urlsplit(url).hostname):
            raise UsageError(
                f"{command}: {what} must be a {' or '.join(schemes)} URL with a host, got {url!r}"
            )
    return target


def smoke_command(args: argparse.Namespace) -> int:
    target = smoke_target(args)
    if target.insecure:
        print(f"smoke: {insecure_warning(target.ws_url)}", file=sys.stderr, flush=True)
    settings = SmokeSettings(
        target=target,
        deadline=args.timeout,
        health_url=args.health_url,
        plain_url=args.plain_url,
        allow_plain=args.allow_plain,
    )
    started = time.monotonic()
    try:
        # Listening only: an untrusted certificate is the connect step's finding, not exit 3.
        check_listening(
            (target.ws_url, target.http_url), "target", min(REACH_CAP, args.timeout / 3)
        )
    except TargetUnreachable as exc:
        result = SmokeResult(
            target=target.name,
            ws_url=target.ws_url,
            http_url=target.http_url,
            deadline_s=args.timeout,
            elapsed_s=time.monotonic() - started,
            unreachable=str(exc).removeprefix("target unreachable: "),
        )
    else:
        left = max(0.5, args.timeout - (time.monotonic() - started))
        result = asyncio.run(run_smoke(replace(settings, deadline=left)))
        result = replace(result, deadline_s=args.timeout, elapsed_s=time.monotonic() - started)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        for line in render_lines(result):
            print(line, flush=True)
    return result.exit_code
