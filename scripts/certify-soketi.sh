#!/usr/bin/env bash
# Certify Soketi 1.6.1 (a real Pusher Channels server) with the conformance suite.
#
#   scripts/certify-soketi.sh [--peers DIR] [conformance run options...]
#
#   --peers DIR   folder holding Soketi's package.json and soketi.json
#                 (default: ../shared/peers/soketi relative to the repo root; or $SOKETI_PEERS)
#   SOKETI_DIR    scratch install folder (default: ${TMPDIR:-/tmp}/pusher-conformance-soketi);
#                 reused when Soketi is already installed there with the same package.json
#   REPORT_DIR    report folder (default: soketi-report)
#
# Soketi runs only with the peers' loopback config (every socket bound to 127.0.0.1), is started
# with `node` directly so the recorded PID is the server's, and is always stopped by that PID
# (SIGINT, then SIGKILL) on exit. The script exits with the suite's exit code
# (0 all pass, 1 a requirement failed, 2+ usage/harness problems).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HOST=127.0.0.1
PORT=6001
START_TIMEOUT=30 # seconds to wait for Soketi to accept connections
STOP_TIMEOUT=5   # seconds between SIGINT and SIGKILL

PEERS="${SOKETI_PEERS:-$REPO_ROOT/../shared/peers/soketi}"
if [[ "${1:-}" == "--peers" ]]; then
    [[ $# -ge 2 ]] || { echo "certify-soketi: --peers needs a folder" >&2; exit 2; }
    PEERS="$2"
    shift 2
elif [[ "${1:-}" == --peers=* ]]; then
    PEERS="${1#--peers=}"
    shift
fi
SOKETI_DIR="${SOKETI_DIR:-${TMPDIR:-/tmp}/pusher-conformance-soketi}"
REPORT_DIR="${REPORT_DIR:-soketi-report}"
SERVER_JS="node_modules/@soketi/soketi/bin/server.js"

log() { echo "certify-soketi: $*" >&2; }
die() { log "$*"; exit 2; }

port_listening() {
    ss -ltnH 2>/dev/null | awk '{print $4}' | grep -Eq "(^|[:.])${PORT}\$"
}

# --- (a) install into the scratch folder --------------------------------------------------------
for f in package.json soketi.json; do
    [[ -f "$PEERS/$f" ]] || die "missing $PEERS/$f (pass --peers DIR or set SOKETI_PEERS to the folder with Soketi's package.json and soketi.json)"
done
command -v node >/dev/null || die "node is not installed"
command -v npm >/dev/null || die "npm is not installed"
command -v ss >/dev/null || die "ss (iproute2) is needed to check the port"
command -v conformance >/dev/null || die "the 'conformance' command is not installed (pip install -e $REPO_ROOT)"

mkdir -p "$SOKETI_DIR"
if [[ -f "$SOKETI_DIR/$SERVER_JS" ]] && cmp -s "$PEERS/package.json" "$SOKETI_DIR/package.json"; then
    log "reusing Soketi in $SOKETI_DIR"
else
    log "installing Soketi into $SOKETI_DIR (npm install, log: $SOKETI_DIR/install.log)"
    cp "$PEERS/package.json" "$SOKETI_DIR/package.json"
    (cd "$SOKETI_DIR" && npm install --no-audit --no-fund >"$SOKETI_DIR/install.log" 2>&1) ||
        die "npm install failed; see $SOKETI_DIR/install.log"
    [[ -f "$SOKETI_DIR/$SERVER_JS" ]] || die "npm install did not produce $SOKETI_DIR/$SERVER_JS"
fi
# Always take the config fresh from the peers folder: it is what keeps Soketi on loopback.
cp "$PEERS/soketi.json" "$SOKETI_DIR/soketi.json"

# --- (b) start it -------------------------------------------------------------------------------
if port_listening; then
    die "port $PORT is already in use; refusing to start Soketi (something else would be certified)"
fi

SOKETI_PID=""
stop_soketi() {
    [[ -n "$SOKETI_PID" ]] || return 0
    if kill -0 "$SOKETI_PID" 2>/dev/null; then
        log "stopping Soketi (pid $SOKETI_PID)"
        kill -INT "$SOKETI_PID" 2>/dev/null || true
        for _ in $(seq 1 $((STOP_TIMEOUT * 10))); do
            kill -0 "$SOKETI_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$SOKETI_PID" 2>/dev/null; then
            log "Soketi did not exit after SIGINT; sending SIGKILL"
            kill -KILL "$SOKETI_PID" 2>/dev/null || true
        fi
    fi
    wait "$SOKETI_PID" 2>/dev/null || true
    SOKETI_PID=""
    for _ in $(seq 1 20); do
        port_listening || break
        sleep 0.1
    done
    if port_listening; then
        log "WARNING: port $PORT is still in use after stopping Soketi"
    else
        log "port $PORT is free"
    fi
}
trap stop_soketi EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "starting Soketi (log: $SOKETI_DIR/soketi.log)"
# `exec node` so that $! is the server process itself, not a wrapper shell.
(cd "$SOKETI_DIR" && exec node "$SERVER_JS" start --config=soketi.json) >"$SOKETI_DIR/soketi.log" 2>&1 &
SOKETI_PID=$!
echo "$SOKETI_PID" >"$SOKETI_DIR/soketi.pid"
log "Soketi pid $SOKETI_PID"

deadline=$((SECONDS + START_TIMEOUT))
until (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; do
    if ! kill -0 "$SOKETI_PID" 2>/dev/null; then
        tail -n 20 "$SOKETI_DIR/soketi.log" >&2 || true
        die "Soketi exited before it accepted connections"
    fi
    if ((SECONDS >= deadline)); then
        tail -n 20 "$SOKETI_DIR/soketi.log" >&2 || true
        die "Soketi did not accept connections on $HOST:$PORT within ${START_TIMEOUT}s"
    fi
    sleep 0.2
done
log "Soketi accepts connections on $HOST:$PORT"

# --- (c) run the suite --------------------------------------------------------------------------
cd "$REPO_ROOT"
set +e
conformance run --target fixtures/targets/soketi.yaml --report-dir "$REPORT_DIR" "$@"
rc=$?
set -e

# --- (d) the EXIT trap stops Soketi; (e) exit with the suite's code ------------------------------
exit "$rc"
