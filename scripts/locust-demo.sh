#!/usr/bin/env bash
# A simulate scenario on Locust's master and two workers, everything on loopback:
# a reference server, a headless master and two worker processes, bounded in time.
#
#   scripts/locust-demo.sh                  # admin-alerts, 200 virtual users, 30 s
#   SCENARIO=restart-under-load VIRTUAL_USERS=500 RUN_TIME=60s scripts/locust-demo.sh
#   RESTART_AT=15 scripts/locust-demo.sh    # restart the server 15 s into the run
#
# Needs the Locust extra: pip install -e '.[locust]' (run it with that environment active, or
# set PYTHON and LOCUST). Prints the master's figures, the ledger and verdict of
# `conformance simulate`, then Locust's aggregated statistics; exits with the master's status
# (the verdict: 0 ready, 1 not ready, 3 inconclusive; 2 a usage mistake). Every process it
# starts is stopped, by its PID, when it exits. Logs and reports go to $OUT_DIR.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python}"
LOCUST="${LOCUST:-locust}"
SCENARIO="${SCENARIO:-admin-alerts}"
VIRTUAL_USERS="${VIRTUAL_USERS:-200}"
SPAWN_RATE="${SPAWN_RATE:-50}"
RUN_TIME="${RUN_TIME:-30s}"
WORKERS="${WORKERS:-2}"
RESTART_AT="${RESTART_AT:-}"
OUT_DIR="${OUT_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/locust-demo.XXXXXX")}"
LOCUSTFILE="$REPO_ROOT/conformance/simulate/locustfile.py"
HOST=127.0.0.1

log() { echo "locust-demo: $*" >&2; }
die() { log "$*"; exit 2; }
command -v "$LOCUST" >/dev/null || die "no $LOCUST: pip install -e '.[locust]' (or set LOCUST)"
mkdir -p "$OUT_DIR"

PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.5
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT

# --- the server: a reference server on a free loopback port, read from its ready line -------------
KEY="$("$PYTHON" -c 'import secrets; print(secrets.token_hex(10))')"
SECRET="$("$PYTHON" -c 'import secrets; print(secrets.token_hex(16))')"
start_server() { # $1: the port (0: a free one)
    "$PYTHON" -m reference_server --host "$HOST" --port "$1" --app-id 4242 --key "$KEY" \
        --secret "$SECRET" >"$OUT_DIR/server.out" 2>>"$OUT_DIR/server.log" &
    SERVER=$!
    PIDS+=("$SERVER")
}
start_server 0
for _ in $(seq 100); do
    [[ -s "$OUT_DIR/server.out" ]] && break
    sleep 0.1
done
PORT="$("$PYTHON" -c 'import json, sys; print(json.loads(open(sys.argv[1]).readline())["port"])' \
    "$OUT_DIR/server.out")" || die "the reference server did not start (log: $OUT_DIR/server.log)"
cat >"$OUT_DIR/target.yaml" <<EOF
name: reference-server (loopback)
ws_url: ws://$HOST:$PORT
http_url: http://$HOST:$PORT
app_id: "4242"
key: "$KEY"
secret: "$SECRET"
EOF
log "reference server on $HOST:$PORT; logs and reports in $OUT_DIR"

# --- Locust: the master on loopback (headless: no web UI), then the workers -------------------
MASTER_PORT="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# One more Locust user than virtual users: the publisher (fixed_count = 1).
timeout --signal=TERM 600 "$LOCUST" -f "$LOCUSTFILE" --master --headless --only-summary \
    --master-bind-host "$HOST" --master-bind-port "$MASTER_PORT" \
    --expect-workers "$WORKERS" --expect-workers-max-wait 60 \
    -u "$((VIRTUAL_USERS + 1))" -r "$SPAWN_RATE" -t "$RUN_TIME" \
    --scenario "$SCENARIO" --target-file "$OUT_DIR/target.yaml" \
    --report-dir "$OUT_DIR/report" >"$OUT_DIR/master.out" 2>"$OUT_DIR/master.log" &
MASTER=$!
PIDS+=("$MASTER")
for n in $(seq "$WORKERS"); do
    "$LOCUST" -f "$LOCUSTFILE" --worker --master-host "$HOST" --master-port "$MASTER_PORT" \
        >"$OUT_DIR/worker$n.out" 2>"$OUT_DIR/worker$n.log" &
    PIDS+=($!)
done
log "master (pid $MASTER) and $WORKERS worker(s) on $HOST:$MASTER_PORT: $((VIRTUAL_USERS + 1))" \
    "users (one publishes) for $RUN_TIME"
if [[ -n "$RESTART_AT" ]]; then
    # Counted from the start of the spawning, as the run time is.
    until grep -q "Sending spawn jobs" "$OUT_DIR/master.log" 2>/dev/null; do sleep 0.2; done
    sleep "$RESTART_AT"
    log "restarting the server (SIGTERM: it drains, closing every socket with 4200)"
    kill -TERM "$SERVER"
    while kill -0 "$SERVER" 2>/dev/null; do sleep 0.1; done
    start_server "$PORT"
    log "server back on $HOST:$PORT"
fi
status=0
wait "$MASTER" || status=$?
grep -E "conformance simulate|All users spawned|exceeded cpu|ERROR" "$OUT_DIR/master.log" >&2 || true
cat "$OUT_DIR/master.out"
# Locust's own aggregated statistics (across the workers), which it logs when it shuts down.
sed -n '/Shutting down/,$p' "$OUT_DIR/master.log" | tail -n +2
log "master exited with $status"
exit "$status"
