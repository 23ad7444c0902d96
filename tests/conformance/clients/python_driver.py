"""A small Pusher client in Python that speaks the driver protocol (docs/client-driver.md):
the correct client the certifier's own tests run against, and, with ``--break MODE``, each
deliberately broken client that must fail the requirement it breaks.

Tests-only: it is a reading of the protocol page, kept small, not a client library.

    python tests/conformance/clients/python_driver.py [--break MODE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import ssl
import sys
from typing import Any

import aiohttp
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

BREAKS = {
    "reconnect-on-4009": "treats 4000-4099 like 4200-4299: comes straight back",
    "no-backoff": "comes back at once after 4100-4199",
    "never-ping": "never pings an idle connection",
    "no-pong": "does not answer the server's pusher:ping",
    "impatient": "gives up on a connection right after pinging it",
    "forget-channel": "forgets the last subscribed channel when resubscribing",
    "stale-auth": "resubscribes with the auth it got for the old socket id",
    "no-signin-repeat": "signs in on the first connection only",
    "stale-roster": "keeps the old presence members across a reconnection",
    "no-tls-switch": "ignores 4000's request for wss://",
}

DEFAULT_ACTIVITY_MS = 120_000
DEFAULT_PONG_MS = 30_000


def out(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


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
        self.task: asyncio.Task[None] | None = None
        self.http = aiohttp.ClientSession()

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
        if code == 4000:
            if self.broken != "no-tls-switch":
                self.tls = True
            return 0.0
        if code is not None and 4000 <= code < 4100:
            return 0.0 if self.broken == "reconnect-on-4009" else None
        if code is not None and 4100 <= code < 4200:
            return 0.0 if self.broken == "no-backoff" else 1.0
        if code is not None and 4200 <= code < 4300:
            return 0.0
        if code is not None and code >= 4300:
            return None
        return 1.0

    async def session(self) -> float | None:
        scheme, port = ("wss", self.o["wss_port"]) if self.tls else ("ws", self.o["ws_port"])
        url = f"{scheme}://{self.o['host']}:{port}/app/{self.o['key']}?protocol=7&client=py-test&version=0.1"
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
        self.ws = ws
        fatal: int | None = None
        try:
            fatal = await self.converse(ws)
        except ConnectionClosed:
            pass
        finally:
            self.ws = None
        if fatal is not None:
            with contextlib.suppress(Exception):
                await ws.close()
            return self.action_for(fatal)
        if self.retry_now:
            self.retry_now = False
            return 0.0
        received = ws.protocol.close_rcvd
        code = received.code if received is not None else None
        if code is not None and code not in (1000, 1005):
            out({"type": "error", "code": code, "message": received.reason if received else ""})
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
                    self.retry_now = True
                    await ws.close(1000, "pong timed out")
                    return None
            message = json.loads(text)
            event = message.get("event")
            data = message.get("data")
            if isinstance(data, str):
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
                if not established and isinstance(code, int):
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
            elif (
                event
                and not event.startswith("pusher:")
                and message.get("channel") in self.channels
            ):
                report = {
                    "type": "event",
                    "channel": message["channel"],
                    "event": event,
                    "data": data,
                }
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
                async with self.http.post(self.o["channel_auth_endpoint"], data=form) as response:
                    if response.status != 200:
                        out(
                            {
                                "type": "subscription_error",
                                "channel": name,
                                "status": response.status,
                            }
                        )
                        return
                    answer = await response.json()
                state["auth"] = answer
            payload["auth"] = answer["auth"]
            if "channel_data" in answer:
                payload["channel_data"] = answer["channel_data"]
                state["me"] = json.loads(answer["channel_data"]).get("user_id")
        await ws.send(json.dumps({"event": "pusher:subscribe", "data": payload}))

    async def send_signin(self, ws: ClientConnection) -> None:
        form = {"socket_id": self.socket_id}
        async with self.http.post(self.o["user_auth_endpoint"], data=form) as response:
            answer = await response.json()
        self.first_signin_done = True
        await ws.send(json.dumps({"event": "pusher:signin", "data": answer}))

    async def command(self, do: str, m: dict[str, Any]) -> dict[str, Any]:
        ws = self.ws if self.state == "connected" else None
        if do == "subscribe":
            self.channels.setdefault(m["channel"], {})
            if ws is not None:
                await self.send_subscribe(ws, m["channel"])
        elif do == "unsubscribe":
            self.channels.pop(m["channel"], None)
            if ws is not None:
                await ws.send(
                    json.dumps({"event": "pusher:unsubscribe", "data": {"channel": m["channel"]}})
                )
        elif do == "trigger":
            if not m["event"].startswith("client-"):
                return {"type": "failed", "why": "client events must start with client-"}
            if not m["channel"].startswith(("private-", "presence-")):
                return {"type": "failed", "why": "client events need a private or presence channel"}
            if ws is None:
                return {"type": "failed", "why": "not connected"}
            await ws.send(
                json.dumps({"event": m["event"], "channel": m["channel"], "data": m["data"]})
            )
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
    parser.add_argument("--break", dest="broken", choices=sorted(BREAKS))
    broken = parser.parse_args().broken
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
    if client is not None:
        await client.http.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
