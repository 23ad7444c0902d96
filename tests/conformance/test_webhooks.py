"""The suite's webhook receiver: listen URLs, records and rules, signatures, the HTTP control
path the xdist workers read, and the webhook steps against a real receiver."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from conformance.context import CheckContext, RunSettings
from conformance.errors import CheckFailed, PreconditionFailed, UsageError
from conformance.spec import Check
from conformance.steps import STEPS
from conformance.target import Target, load_target_file, target_from_mapping
from conformance.webhooks import (
    ReceiverState,
    WebhookReceiver,
    WebhookRecord,
    parse_listen_url,
    signature_problems,
    webhook_signature,
)

KEY, SECRET = "app-key", "app-secret"


def body(*events: dict[str, Any], time_ms: int = 1700000000000) -> bytes:
    return json.dumps({"time_ms": time_ms, "events": list(events)}).encode()


def signed_headers(raw: bytes, secret: str = SECRET) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Pusher-Key": KEY,
        "X-Pusher-Signature": hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest(),
    }


class TestListenUrl:
    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1:9000/hooks",
            "http://localhost:1/",
            "http://[::1]:5/x",
            "http://127.0.0.2:7",
        ],
    )
    def test_loopback_accepted(self, url: str) -> None:
        _, port, path = parse_listen_url(url)
        assert port > 0
        assert path.startswith("/")

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            ("http://0.0.0.0:9000/", "loopback"),
            ("http://192.168.1.5:9000/", "loopback"),
            ("http://example.com:9000/", "loopback"),
            ("https://127.0.0.1:9000/", "http://"),
            ("http://127.0.0.1/", "port"),
            ("http://127.0.0.1:x/", "invalid port"),
        ],
    )
    def test_refused_with_one_line(self, url: str, message: str) -> None:
        with pytest.raises(UsageError, match=message):
            parse_listen_url(url)


class TestTargetFile:
    GOOD: dict[str, Any] = {
        "ws_url": "ws://127.0.0.1:6001",
        "http_url": "http://127.0.0.1:6001",
        "app_id": "1",
        "key": KEY,
        "secret": SECRET,
        "capabilities": ["webhooks"],
        "webhooks": {"listen": "http://127.0.0.1:9000/hooks"},
    }

    def test_listen_entry(self, tmp_path: Path) -> None:
        path = tmp_path / "t.yaml"
        path.write_text(json.dumps(self.GOOD), encoding="utf-8")
        target = load_target_file(path)
        assert target.webhook_listen == "http://127.0.0.1:9000/hooks"
        assert target.public()["webhook_listen"] == "http://127.0.0.1:9000/hooks"

    @pytest.mark.parametrize(
        "webhooks",
        [{"listen": "http://10.0.0.1:9000/"}, {"url": "http://127.0.0.1:1/"}, "x", {"listen": 5}],
    )
    def test_bad_entries(self, webhooks: object) -> None:
        with pytest.raises(UsageError):
            target_from_mapping({**self.GOOD, "webhooks": webhooks})


class TestState:
    def test_records_in_order_and_rules(self) -> None:
        state = ReceiverState()
        pattern = {"name": "channel_occupied", "channel": "a"}
        from conformance.webhooks import ReplyRule

        state.rules.append(ReplyRule(pattern, 500, times=1))
        other = state.receive(
            "POST", "/h", [], body({"name": "channel_occupied", "channel": "b"}), 1
        )
        first = state.receive("POST", "/h", [], body(pattern), 2)
        second = state.receive("POST", "/h", [], body(pattern), 3)
        assert [other.status, first.status, second.status] == [200, 500, 200]
        assert [r.seq for r in state.since(1)] == [2, 3]
        assert [r.seq for r in state.since(0, since_time=2.5)] == [3]
        assert state.rules == []

    def test_not_json_has_no_events(self) -> None:
        record = ReceiverState().receive("POST", "/h", [], b"nope", 1)
        assert record.events() == []
        assert WebhookRecord.from_json(record.to_json()) == record


class TestSignature:
    def test_good_and_bad(self) -> None:
        raw = body({"name": "cache_miss", "channel": "cache-a"})
        good = ReceiverState().receive("POST", "/", list(signed_headers(raw).items()), raw, 1)
        assert signature_problems(good, KEY, SECRET) == []
        bad = ReceiverState().receive(
            "POST", "/", list(signed_headers(raw, "other").items()), raw, 1
        )
        assert any("X-Pusher-Signature" in p for p in signature_problems(bad, KEY, SECRET))
        assert any("X-Pusher-Key" in p for p in signature_problems(good, "k2", SECRET))

    def test_vector(self) -> None:
        raw = (
            b'{"time_ms":1327078148132,"events":[{"name":"channel_occupied",'
            b'"channel":"test_channel"}]}'
        )
        assert webhook_signature("7ad3773142a6692b25b8", raw) == (
            "709fdb84c03664445f7698120b0edf0acc1ab1c8c6e93a0368c61841d6b998aa"
        )


@pytest.fixture
def receiver() -> Any:
    started = WebhookReceiver("http://127.0.0.1:0/pusher/webhooks").start()
    yield started
    started.stop()


def context(control: str | None, runner: asyncio.Runner) -> CheckContext:
    target = Target("t", "ws://127.0.0.1:1", "http://127.0.0.1:1", "1", KEY, SECRET)
    settings = RunSettings(response_timeout=1.0, webhook_control=control)
    check = Check("WH-00", "c", "t", "exchange", {})
    return CheckContext(target, settings, check, runner)


async def post(url: str, raw: bytes, headers: dict[str, str]) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=raw, headers=headers) as r,
    ):
        return r.status


def test_receiver_binds_a_free_port(receiver: WebhookReceiver) -> None:
    assert receiver.port != 0
    assert receiver.listen_url.endswith("/pusher/webhooks")
    assert receiver.token in receiver.control_url


def test_a_busy_port_is_a_usage_error(receiver: WebhookReceiver) -> None:
    with pytest.raises(UsageError, match="cannot listen"):
        WebhookReceiver(f"http://127.0.0.1:{receiver.port}/x").start()


def test_steps_against_a_real_receiver(receiver: WebhookReceiver) -> None:
    pattern = {"name": "channel_occupied", "channel": "ch-1"}
    with asyncio.Runner() as runner:
        ctx = context(receiver.control_url, runner)

        async def scenario() -> None:
            await STEPS["webhook_reply"].run(ctx, {"event": pattern, "status": 500})
            raw = body(pattern)
            statuses = [await post(receiver.listen_url, raw, signed_headers(raw)) for _ in range(2)]
            assert statuses == [500, 200]
            args = {"event": pattern, "signed": True, "single": True, "method": "POST"}
            await STEPS["expect_webhook"].run(ctx, args)
            await STEPS["expect_webhook"].run(ctx, args)
            await STEPS["expect_webhook_count"].run(ctx, {"event": pattern, "count": 2})
            await STEPS["expect_no_webhook"].run(ctx, {"event": {"name": "channel_vacated"}})
            with pytest.raises(CheckFailed, match="expected 0"):
                await STEPS["expect_no_webhook"].run(ctx, {"event": pattern})
            with pytest.raises(CheckFailed, match="no webhook event matching"):
                await STEPS["expect_webhook"].run(ctx, {"event": pattern, "within": 0.3})
            bad = body({"name": "cache_miss", "channel": "ch-1"})
            await post(receiver.listen_url, bad, {"Content-Type": "text/plain"})
            with pytest.raises(CheckFailed, match="Content-Type"):
                await STEPS["expect_webhook"].run(
                    ctx,
                    {
                        "event": {"name": "cache_miss"},
                        "headers": {"Content-Type": {"regex": "^application/json$"}},
                    },
                )
            await ctx.aclose()

        runner.run(scenario())


def test_steps_without_a_receiver_are_preconditions() -> None:
    with asyncio.Runner() as runner:
        ctx = context(None, runner)
        with pytest.raises(PreconditionFailed, match="no webhook receiver"):
            runner.run(STEPS["expect_webhook"].run(ctx, {"event": {}}))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--capability", "webhooks"], "needs webhooks"),
        (["--capability", "webhooks", "--webhook-listen", "http://10.0.0.1:80/"], "loopback"),
        (["--webhook-listen", "http://127.0.0.1/"], "port"),
    ],
)
def test_cli_refuses_bad_webhook_settings(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from conformance.cli import main

    flags = ["--ws-url", "ws://127.0.0.1:1", "--http-url", "http://127.0.0.1:1"]
    flags += ["--app-id", "1", "--key", "k", "--secret", "s"]
    assert main(["run", *flags, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_workers_get_the_listen_url() -> None:
    target = target_from_mapping({**TestTargetFile.GOOD, "name": "t"})
    assert Target.from_wire(target.to_wire()) == target
