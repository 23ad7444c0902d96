"""A small Pusher client in Python that speaks the driver protocol (docs/client-driver.md):
the correct client the certifier's own tests run against; with ``--break MODE``, each
deliberately broken client that must fail the requirement it breaks; with ``--variant NAME``, a
client that does what a graded MAY allows and the correct one leaves out. The modes and what
they must do to a certification are in python_driver_breaks.yaml beside this file.

Tests-only: it is a reading of the protocol page, kept small, not a client library. It starts
for every check, so it imports little (urllib in a thread for the two auth requests).

    python tests/conformance/clients/python_driver.py [--break MODE | --variant NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode

CATALOGUE = Path(__file__).with_name("python_driver_breaks.yaml")

DEFAULT_ACTIVITY_MS = 120_000
DEFAULT_PONG_MS = 30_000
#: urllib without the environment's proxies: the auth endpoints are on 127.0.0.1.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def out(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def modes(kind: str) -> list[str]:
    """The names the catalogue gives under ``kind`` (``breaks`` or ``variants``)."""
    import yaml  # only when a mode is asked for: the correct client starts without it

    return sorted(yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))[kind])


async def post(url: str, fields: dict[str, Any], *, as_json: bool = False) -> tuple[int, Any]:
    """POST ``fields`` form-encoded (or as JSON); the status and the decoded JSON answer."""

    def call() -> tuple[int, Any]:
        if as_json:
            body, kind = json.dumps(fields).encode(), "application/json"
        else:
            body, kind = (
                urllib.parse.urlencode(fields).encode(),
                "application/x-www-form-urlencoded",
            )
        request = urllib.request.Request(url, body, {"Content-Type": kind}, method="POST")
        try:
            with HTTP.open(request, timeout=5) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, None

    return await asyncio.to_thread(call)


def ignore_ws_pings(ws: ClientConnection) -> None:
    """Leave the server's WebSocket ping frames unanswered (websockets answers them inside
    its protocol object, so the frame is dropped before it gets there)."""
    answer = ws.protocol.recv_frame

    def recv_frame(frame: Frame) -> None:
        if frame.opcode is not Opcode.PING:
            answer(frame)

    ws.protocol.recv_frame = recv_frame  # type: ignore[method-assign]


class Client:
    def __init__(self, options: dict[str, Any], broken: str | None) -> None:
        self.o = options
        self.broken = broken
        self.tls = bool(options.get("tls"))
        self.activity_ms = int(options.get("activity_timeout_ms") or DEFAULT_ACTIVITY_MS)
        self.pong_ms = int(options.get("pong_timeout_ms") or DEFAULT_PONG_MS)
        self.state = "initialized"
        self.socket_id: str | None = None
        self.ws: ClientConnection | None = None
        self.channels: dict[str, dict[str, Any]] = {}  # name -> {members, me, auth}
        self.wants_signin = False
        self.first_signin_done = False
        self.stopped = False
        self.connections = 0
        self.retry_now = False
        self.give_up = False
        self.backoffs = 0  # consecutive 4100-4199 closes
        self.task: asyncio.Task[None] | None = None

    def set_state(self, current: str) -> None:
        previous, self.state = self.state, current
        report: dict[str, Any] = {"type": "state", "previous": previous, "current": current}
        if current == "connected":
            report["socket_id"] = self.socket_id
        out(report)

    def start(self) -> None:
        self.task = asyncio.create_task(self.run())

    async def run(self) -> None:
        delay = 0.0
        while not self.stopped:
            if delay:
                await asyncio.sleep(delay)
            self.set_state("connecting")
            action = await self.session()
            for channel in self.channels.values():
                if self.broken != "stale-roster":
                    channel["members"] = []
            if action is None or self.stopped:
                self.set_state("disconnected")
                return
            delay = action

    def action_for(self, code: int | None) -> float | None:
        """Seconds before the next attempt, None for never."""
        backoff = code is not None and 4100 <= code < 4200
        self.backoffs = self.backoffs + 1 if backoff else 0
        if code == 4000:
            if self.broken != "no-tls-switch":
                self.tls = True
            return 0.0
        if code is not None and 4000 <= code < 4100:
            return 0.0 if self.broken == "reconnect-on-4009" else None
        if backoff:
            if self.broken == "no-backoff":
                return 0.0
            return min(2.0 ** (self.backoffs - 1), 8.0) if self.broken == "growing-backoff" else 1.0
        if code is not None and 4200 <= code < 4300:
            return 2.0 if self.broken == "slow-after-4200" else 0.0
        if code is not None and code >= 4300:
            return None
        return None if self.broken == "stays-away-after-drop" else 1.0

    async def session(self) -> float | None:
        scheme, port = ("wss", self.o["wss_port"]) if self.tls else ("ws", self.o["ws_port"])
        protocol = 5 if self.broken == "old-protocol" else 7
        url = (
            f"{scheme}://{self.o['host']}:{port}/app/{self.o['key']}"
            f"?protocol={protocol}&client=py-test&version=0.1"
        )
        context = (
            ssl.create_default_context(cafile=os.environ.get("CONFORMANCE_CA_FILE"))
            if self.tls
            else None
        )
        try:
            ws = await connect(
                url, ssl=context, ping_interval=None, open_timeout=5, close_timeout=1
            )
        except Exception as exc:
            out({"type": "error", "code": None, "message": f"connect failed: {exc}"})
            return 1.0
        if self.broken == "no-ws-pong":
            ignore_ws_pings(ws)
        self.ws = ws
        fatal: int | None = None
        try:
            if self.broken == "subscribes-early":
                for name in self.channels:
                    if not name.startswith(("private-", "presence-")):
                        await self.send_subscribe(ws, name)
            fatal = await self.converse(ws)
        except ConnectionClosed:
            pass
        finally:
            self.ws = None
        if fatal is not None:
            with contextlib.suppress(Exception):
                await ws.close()
            return self.action_for(fatal)
        if self.give_up:
            return None
        if self.retry_now:
            self.retry_now = False
            return 0.0
        received = ws.protocol.close_rcvd
        code = received.code if received is not None else None
        if code is not None and code not in (1000, 1005):
            reason = received.reason if received else ""
            if self.broken == "hides-close-code":
                out({"type": "error", "code": None, "message": "the connection was closed"})
            else:
                out({"type": "error", "code": code, "message": reason})
        return self.action_for(code)

    async def converse(self, ws: ClientConnection) -> int | None:
        """Read until the connection ends; a pusher:error before connection_established
        returns its code."""
        established = False
        activity_s = self.activity_ms / 1000
        while True:
            try:
                text = await asyncio.wait_for(ws.recv(), activity_s if established else 10)
            except TimeoutError:
                if not established:
                    return None
                if self.broken == "never-ping":
                    continue
                await ws.send(json.dumps({"event": "pusher:ping", "data": {}}))
                if self.broken == "impatient":
                    await ws.close()
                    return None
                try:
                    text = await asyncio.wait_for(ws.recv(), self.pong_ms / 1000)
                except TimeoutError:
                    if self.broken == "no-reconnect-after-pong-timeout":
                        self.give_up = True
                    else:
                        self.retry_now = True
                    await ws.close(1000, "pong timed out")
                    return None
            message = json.loads(text)
            event = message.get("event")
            data = message.get("data")
            # raw-data leaves the app's events undecoded (the protocol's own it still reads).
            raw = self.broken == "raw-data" and not str(event).startswith("pusher")
            if isinstance(data, str) and not raw:
                with contextlib.suppress(ValueError):
                    data = json.loads(data)
            if event == "pusher:connection_established":
                established = True
                self.socket_id = data["socket_id"]
                server_s = data.get("activity_timeout")
                if isinstance(server_s, int) and server_s > 0:
                    activity_s = min(self.activity_ms, server_s * 1000) / 1000
                self.set_state("connected")
                await self.after_connect(ws)
            elif event == "pusher:error":
                code = data.get("code") if isinstance(data, dict) else None
                if (
                    not established
                    and isinstance(code, int)
                    and self.broken != "ignores-handshake-error"
                ):
                    return code
                out({"type": "error", "code": code, "message": str(data)})
            elif event == "pusher:ping":
                if self.broken != "no-pong":
                    await ws.send(json.dumps({"event": "pusher:pong", "data": {}}))
            elif event == "pusher:signin_success":
                user = json.loads(data["user_data"])
                out({"type": "signed_in", "user_id": user.get("id")})
            elif event and event.startswith("pusher_internal:"):
                self.internal(event, message.get("channel"), data)
            elif event and not event.startswith("pusher:"):
                self.deliver(message, event, data)

    def deliver(self, message: dict[str, Any], event: str, data: Any) -> None:
        """An event on a channel the app subscribed to (and, broken, still listens on)."""
        channel = message.get("channel")
        if channel not in self.channels:
            return
        if self.broken == "loses-bindings" and self.connections > 1:
            return
        report = {"type": "event", "channel": channel, "event": event, "data": data}
        if "user_id" in message:
            report["user_id"] = message["user_id"]
        out(report)

    async def after_connect(self, ws: ClientConnection) -> None:
        self.connections += 1
        names = list(self.channels)
        if self.broken == "forget-channel" and self.connections > 1:
            names = names[:-1]
        for name in names:
            await self.send_subscribe(ws, name)
        if self.wants_signin and not (self.broken == "no-signin-repeat" and self.first_signin_done):
            await self.send_signin(ws)

    def internal(self, event: str, channel: str | None, data: Any) -> None:
        if channel not in self.channels:
            return
        state = self.channels[channel]
        if event == "pusher_internal:subscription_succeeded":
            report: dict[str, Any] = {"type": "subscribed", "channel": channel}
            if channel.startswith("presence-"):
                ids = list(data.get("presence", {}).get("ids", []))
                old = state.get("members") or []
                state["members"] = (
                    list(dict.fromkeys([*old, *ids])) if self.broken == "stale-roster" else ids
                )
                report["members"] = state["members"]
                report["me"] = state.get("me")
            out(report)
        elif event == "pusher_internal:member_added":
            state.setdefault("members", []).append(data["user_id"])
            out({"type": "members", "channel": channel, "members": state["members"]})
        elif event == "pusher_internal:member_removed":
            state["members"] = [m for m in state.get("members", []) if m != data["user_id"]]
            out({"type": "members", "channel": channel, "members": state["members"]})

    async def send_subscribe(self, ws: ClientConnection, name: str) -> None:
        payload: dict[str, Any] = {"channel": name}
        if name.startswith(("private-", "presence-")):
            state = self.channels[name]
            if self.broken == "stale-auth" and state.get("auth"):
                answer = state["auth"]
            else:
                form = {"socket_id": self.socket_id, "channel_name": name}
                status, answer = await post(
                    self.o["channel_auth_endpoint"], form, as_json=self.broken == "auth-as-json"
                )
                if status != 200 or not isinstance(answer, dict):
                    if self.broken == "ignores-auth-refusal":
                        await ws.send(json.dumps({"event": "pusher:subscribe", "data": payload}))
                        return
                    out({"type": "subscription_error", "channel": name, "status": status})
                    return
            state["auth"] = answer
            payload["auth"] = answer["auth"]
            if self.broken == "alters-auth":
                key, _, signature = str(answer["auth"]).partition(":")
                payload["auth"] = f"{key}:{signature.upper()}"
            if "channel_data" in answer:
                payload["channel_data"] = answer["channel_data"]
                state["me"] = json.loads(answer["channel_data"]).get("user_id")
        await ws.send(json.dumps({"event": "pusher:subscribe", "data": payload}))

    async def send_signin(self, ws: ClientConnection) -> None:
        status, answer = await post(self.o["user_auth_endpoint"], {"socket_id": self.socket_id})
        if status != 200 or not isinstance(answer, dict):
            out({"type": "signin_error", "status": status, "message": "user auth refused"})
            return
        self.first_signin_done = True
        if self.broken == "alters-user-data":
            compact = json.dumps(json.loads(answer["user_data"]), separators=(",", ":"))
            answer = {**answer, "user_data": compact}
        await ws.send(json.dumps({"event": "pusher:signin", "data": answer}))

    def refuses(self, event: str, channel: str) -> str | None:
        """Why a client event is not sent (None: it is)."""
        if self.broken == "client-events-anywhere":
            return None
        if not event.startswith("client-"):
            return "client events must start with client-"
        if not channel.startswith(("private-", "presence-")):
            return "client events need a private or presence channel"
        return None

    async def command(self, do: str, m: dict[str, Any]) -> dict[str, Any]:
        ws = self.ws if self.state == "connected" else None
        if do == "subscribe":
            self.channels.setdefault(m["channel"], {})
            early = self.broken == "subscribes-early" and not m["channel"].startswith(
                ("private-", "presence-")
            )
            if ws is None and early:
                ws = self.ws
            if ws is not None:
                await self.send_subscribe(ws, m["channel"])
        elif do == "unsubscribe":
            self.channels.pop(m["channel"], None)
            if ws is not None:
                await ws.send(
                    json.dumps({"event": "pusher:unsubscribe", "data": {"channel": m["channel"]}})
                )
        elif do == "trigger":
            why = self.refuses(m["event"], m["channel"])
            if why is not None:
                return {"type": "failed", "why": why}
            if ws is None:
                return {"type": "failed", "why": "not connected"}
            event = m["event"]
            if self.broken == "strips-client-prefix":
                event = event.removeprefix("client-")
            await ws.send(json.dumps({"event": event, "channel": m["channel"], "data": m["data"]}))
        elif do == "signin":
            self.wants_signin = True
            if ws is not None:
                await self.send_signin(ws)
        elif do in ("disconnect", "quit"):
            self.stopped = True
            if self.ws is not None:
                await self.ws.close()
            if self.task is not None:
                self.task.cancel()
        return {"type": "ok"}


async def main() -> int:
    parser = argparse.ArgumentParser()
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--break", dest="broken", metavar="MODE")
    choice.add_argument("--variant", metavar="NAME")
    args = parser.parse_args()
    for kind, name in (("breaks", args.broken), ("variants", args.variant)):
        if name is not None and name not in modes(kind):
            parser.error(f"unknown {kind[:-1]} {name}; known: {', '.join(modes(kind))}")
    broken = args.broken or args.variant
    out(
        {
            "type": "hello",
            "client": "python-test-client" + (f"+{broken}" if broken else ""),
            "version": "0.1",
            "features": ["private", "presence", "client-events", "signin", "tls"],
            "defaults": {
                "activity_timeout_ms": DEFAULT_ACTIVITY_MS,
                "pong_timeout_ms": DEFAULT_PONG_MS,
            },
        }
    )
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    client: Client | None = None
    while True:
        line = await reader.readline()
        if not line:
            break
        m = json.loads(line)
        do = m["do"]
        if do == "connect":
            client = Client(m, broken)
            client.start()
            out(
                {
                    "type": "ok",
                    "re": m["id"],
                    "settings": {
                        "activity_timeout_ms": client.activity_ms,
                        "pong_timeout_ms": client.pong_ms,
                    },
                }
            )
            continue
        if client is None:
            out(
                {"type": "failed", "re": m["id"], "why": "not connected"}
                if do != "quit"
                else {"type": "ok", "re": m["id"]}
            )
            if do == "quit":
                break
            continue
        reply = await client.command(do, m)
        out({**reply, "re": m["id"]})
        if do == "quit":
            break
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
