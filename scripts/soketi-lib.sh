# Shared parts of the Soketi scripts: install Soketi 1.6.1, start it with the loopback config, wait
# for it, stop it by its PID. Sourced (not run) by certify-soketi.sh, simulate-soketi.sh and
# soketi-restart.sh, after they set LOG_NAME (the prefix of their messages):
#
#   LOG_NAME=certify-soketi
#   source "$(dirname "${BASH_SOURCE[0]}")/soketi-lib.sh"
#
# Soketi runs only with the peers' soketi.json (every socket bound to 127.0.0.1, UDP discovery
# included), copied into the scratch folder $SOKETI_DIR. The PID of the running server is kept in
# $SOKETI_DIR/soketi.pid: a restart (soketi-restart.sh) replaces the process and rewrites the file,
# and the final stop reads it again, so it stops whichever process is running then.
#
# What Soketi 1.6.1 does when told to stop (dist/cli/cli.js, dist/server.js, dist/ws-handler.js):
# SIGINT, SIGTERM and SIGHUP all run the same server.stop(): it marks the server closing, sends
# every open socket pusher:error 4200 and a close with code 4200 (no reason text), then waits
# shutdownGracePeriod ms (3000 by default, 200 in the peers' soketi.json) during which a new
# WebSocket gets pusher:error 4200 and a 4200 close instead of connection_established; then it
# closes its listening sockets and exits. It does not wait for the clients' close handshakes.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HOST=127.0.0.1
PORT=6001
START_TIMEOUT=30 # seconds to wait for Soketi to accept connections
STOP_TIMEOUT=5   # seconds between SIGINT and SIGKILL

PEERS="${SOKETI_PEERS:-$REPO_ROOT/../shared/peers/soketi}"
SOKETI_DIR="${SOKETI_DIR:-${TMPDIR:-/tmp}/pusher-conformance-soketi}"
SERVER_JS="node_modules/@soketi/soketi/bin/server.js"
SOKETI_PID=""         # the process this script started (the one it may `wait` for)
SOKETI_TEMP_FILES=()  # removed by soketi_cleanup
SOKETI_ERROR=""       # why the last soketi_* function that returned non-zero failed

log() { echo "${LOG_NAME:-soketi}: $*" >&2; }
die() { log "$*"; exit 2; }

port_listening() {
    ss -ltnH 2>/dev/null | awk '{print $4}' | grep -Eq "(^|[:.])${PORT}\$"
}

# True when PID is a live (not zombie) Soketi server process started from $SOKETI_DIR, so that a
# PID the kernel has since handed to something else (or another folder's Soketi) is never
# signalled. Soketi sets process.title = 'soketi-server', which replaces its command line.
soketi_is_running() {
    local pid="$1" cwd
    [[ "$pid" =~ ^[0-9]+$ ]] && pid_alive "$pid" || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -Eq "^soketi-server|soketi/bin/server\.js" || return 1
    cwd="$(readlink "/proc/$pid/cwd" 2>/dev/null)" || return 1
    [[ "$cwd" == "$(cd "$SOKETI_DIR" 2>/dev/null && pwd -P)" ]]
}

# True while PID has not exited (a zombie has).
pid_alive() {
    local state
    state="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
    [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

soketi_pid_file() { echo "$SOKETI_DIR/soketi.pid"; }

soketi_recorded_pid() {
    local pid=""
    [[ -f "$(soketi_pid_file)" ]] && read -r pid <"$(soketi_pid_file)" || true
    echo "$pid"
}

# soketi_parse_peers ARGS...: a leading --peers DIR / --peers=DIR sets PEERS; PEERS_SHIFT says how
# many arguments it took (the caller shifts them).
soketi_parse_peers() {
    PEERS_SHIFT=0
    if [[ "${1:-}" == "--peers" ]]; then
        [[ $# -ge 2 ]] || die "--peers needs a folder"
        PEERS="$2"
        PEERS_SHIFT=2
    elif [[ "${1:-}" == --peers=* ]]; then
        PEERS="${1#--peers=}"
        PEERS_SHIFT=1
    fi
}

# --- install into the scratch folder -------------------------------------------------------------
soketi_install() {
    local f
    for f in package.json soketi.json; do
        [[ -f "$PEERS/$f" ]] || die "missing $PEERS/$f (pass --peers DIR or set SOKETI_PEERS to the folder with Soketi's package.json and soketi.json)"
    done
    command -v node >/dev/null || die "node is not installed"
    command -v npm >/dev/null || die "npm is not installed"
    command -v ss >/dev/null || die "ss (iproute2) is needed to check the port"
    command -v conformance >/dev/null || die "the 'conformance' command is not installed (pip install -e $REPO_ROOT)"

    mkdir -p "$SOKETI_DIR"
    SOKETI_DIR="$(cd "$SOKETI_DIR" && pwd -P)" # absolute: the restart command runs elsewhere
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
}

# True when $SOKETI_DIR/soketi.json binds the server, the metrics server and the UDP cluster
# discovery to 127.0.0.1 and listens on $PORT: never start Soketi with anything else.
soketi_config_is_loopback() {
    [[ -f "$SOKETI_DIR/soketi.json" ]] || { SOKETI_ERROR="no $SOKETI_DIR/soketi.json"; return 1; }
    node -e '
        const c = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
        const loop = ["host", "metrics.host", "cluster.address", "cluster.unicast"]
            .every(k => c[k] === "127.0.0.1");
        process.exit(loop && String(c.port) === process.argv[2] ? 0 : 1);
    ' "$SOKETI_DIR/soketi.json" "$PORT" 2>/dev/null || {
        SOKETI_ERROR="$SOKETI_DIR/soketi.json does not bind every socket to 127.0.0.1 on port $PORT; refusing to start Soketi"
        return 1
    }
}

# --- start ---------------------------------------------------------------------------------------
# soketi_launch [--detach]: start Soketi in the background with the loopback config, set
# SOKETI_LAUNCHED to its PID and record it in the PID file. `exec node` so that the PID is the
# server process itself, not a wrapper shell. --detach (for a restart command, which exits while
# the server runs on) gives it a session of its own, no inherited descriptors but its log, and
# appends to the log instead of replacing it.
soketi_launch() {
    SOKETI_LAUNCHED=""
    soketi_config_is_loopback || return 1
    if [[ "${1:-}" == --detach ]]; then
        command -v setsid >/dev/null || { SOKETI_ERROR="setsid (util-linux) is needed to restart Soketi"; return 1; }
        (cd "$SOKETI_DIR" && exec setsid node "$SERVER_JS" start --config=soketi.json) \
            </dev/null >>"$SOKETI_DIR/soketi.log" 2>&1 &
    else
        (cd "$SOKETI_DIR" && exec node "$SERVER_JS" start --config=soketi.json) \
            >"$SOKETI_DIR/soketi.log" 2>&1 &
    fi
    SOKETI_LAUNCHED=$!
    echo "$SOKETI_LAUNCHED" >"$(soketi_pid_file)"
}

# soketi_wait_ready PID TIMEOUT: wait until $HOST:$PORT accepts connections while PID runs.
soketi_wait_ready() {
    local pid="$1" timeout="$2" deadline
    deadline=$((SECONDS + timeout))
    until (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; do
        if ! soketi_is_running "$pid"; then
            SOKETI_ERROR="Soketi exited before it accepted connections (log: $SOKETI_DIR/soketi.log)"
            return 1
        fi
        if ((SECONDS >= deadline)); then
            SOKETI_ERROR="Soketi did not accept connections on $HOST:$PORT within ${timeout}s (log: $SOKETI_DIR/soketi.log)"
            return 1
        fi
        sleep 0.2
    done
}

# soketi_start: the scripts' first start (the port must be free), then wait for it.
soketi_start() {
    if port_listening; then
        die "port $PORT is already in use; refusing to start Soketi (something else would be ${SOKETI_ACTION:-tested})"
    fi
    log "starting Soketi (log: $SOKETI_DIR/soketi.log)"
    soketi_launch || die "$SOKETI_ERROR"
    SOKETI_PID=$SOKETI_LAUNCHED
    log "Soketi pid $SOKETI_PID"
    if ! soketi_wait_ready "$SOKETI_PID" "$START_TIMEOUT"; then
        tail -n 20 "$SOKETI_DIR/soketi.log" >&2 || true
        die "$SOKETI_ERROR"
    fi
    log "Soketi accepts connections on $HOST:$PORT"
}

# soketi_signal_and_wait PID SIGNAL TIMEOUT: send SIGNAL, wait up to TIMEOUT seconds for PID to
# exit; non-zero when it is still running.
soketi_signal_and_wait() {
    local pid="$1" sig="$2" timeout="$3"
    kill "-$sig" "$pid" 2>/dev/null || true
    for _ in $(seq 1 $((timeout * 10))); do
        pid_alive "$pid" || return 0
        sleep 0.1
    done
    ! pid_alive "$pid"
}

# --- stop ----------------------------------------------------------------------------------------
# soketi_stop: stop the Soketi this script started and whichever the PID file names now (a
# restart replaced it), each by its PID: SIGINT, then SIGKILL; then check the port.
soketi_stop() {
    local recorded pid
    # Nothing started here: leave the PID file alone (it may be another run's).
    [[ -n "$SOKETI_PID" ]] || return 0
    recorded="$(soketi_recorded_pid)"
    for pid in $(printf '%s\n' "$SOKETI_PID" "$recorded" | awk 'NF && !seen[$0]++'); do
        # Our own child is ours while it runs; the PID file's process only when it is Soketi.
        if [[ "$pid" == "$SOKETI_PID" ]] && kill -0 "$pid" 2>/dev/null ||
            soketi_is_running "$pid"; then
            log "stopping Soketi (pid $pid)"
            if ! soketi_signal_and_wait "$pid" INT "$STOP_TIMEOUT"; then
                log "Soketi did not exit after SIGINT; sending SIGKILL"
                kill -KILL "$pid" 2>/dev/null || true
            fi
        fi
    done
    wait "$SOKETI_PID" 2>/dev/null || true
    SOKETI_PID=""
    if [[ "$(soketi_recorded_pid)" == "$recorded" ]]; then
        rm -f "$(soketi_pid_file)"
    fi
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

# soketi_cleanup: the EXIT trap of the scripts that start Soketi.
soketi_cleanup() {
    soketi_stop
    if ((${#SOKETI_TEMP_FILES[@]})); then
        rm -f "${SOKETI_TEMP_FILES[@]}"
    fi
}

# --- target file ---------------------------------------------------------------------------------
# A word quoted for sh -c, and a YAML single-quoted scalar.
sh_quote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
yaml_quote() { printf "'%s'" "${1//\'/\'\'}"; }

# soketi_restart_target: write a temporary target file, fixtures/targets/soketi.yaml plus a
# restart entry running soketi-restart.sh on this scratch folder; its path goes to TARGET_FILE
# (removed by soketi_cleanup).
soketi_restart_target() {
    local file command
    file="$(mktemp "${TMPDIR:-/tmp}/soketi-target.XXXXXX")" || die "could not create a temporary target file"
    SOKETI_TEMP_FILES+=("$file")
    TARGET_FILE="$file"
    command="$(sh_quote "$REPO_ROOT/scripts/soketi-restart.sh") $(sh_quote "$SOKETI_DIR")"
    {
        cat "$REPO_ROOT/fixtures/targets/soketi.yaml"
        printf '\n# Added by %s: a graceful restart (SIGTERM, wait, start again on port %s).\n' "$LOG_NAME" "$PORT"
        printf 'restart:\n  command: %s\n  within: 30\n' "$(yaml_quote "$command")"
    } >"$file"
}
