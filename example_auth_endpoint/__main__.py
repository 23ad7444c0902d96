"""``python -m example_auth_endpoint [--port N] [--faults a,b]``: serve the example endpoints
on 127.0.0.1 (``/pusher/auth`` and ``/pusher/user-auth``) until interrupted."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from aiohttp import web

from .app import APP_KEY, APP_SECRET, ExampleAuthApp, build_app
from .faults import Fault, FaultyAuthApp, parse_faults


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m example_auth_endpoint", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--app-key", default=APP_KEY)
    parser.add_argument("--app-secret", default=APP_SECRET)
    parser.add_argument(
        "--faults", default="", metavar="A,B",
        help=f"deliberate bugs to switch on: {', '.join(f.value for f in Fault)}",
    )  # fmt: skip
    args = parser.parse_args(argv)
    try:
        faults = parse_faults(args.faults)
    except ValueError as exc:
        print(f"example_auth_endpoint: {exc}", file=sys.stderr)
        return 2
    auth = (
        FaultyAuthApp(faults, key=args.app_key, secret=args.app_secret)
        if faults
        else ExampleAuthApp(args.app_key, args.app_secret)
    )
    print(f"example auth endpoint on http://{args.host}:{args.port}/pusher/auth", flush=True)
    web.run_app(build_app(auth), host=args.host, port=args.port, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
