#!/usr/bin/env bash
# Restart the Soketi that certify-soketi.sh or simulate-soketi.sh started, gracefully: the restart
# command of their target file (restart: {command: ..., within: 30}).
#
#   scripts/soketi-restart.sh [SOKETI_DIR]
#
#   SOKETI_DIR   the scratch folder the running Soketi was started from, holding soketi.pid and
#                soketi.json (default: $SOKETI_DIR, else ${TMPDIR:-/tmp}/pusher-conformance-soketi)
#
# Sends SIGTERM to the PID in SOKETI_DIR/soketi.pid (Soketi then closes every socket with 4200,
# answers new handshakes with a 4200 close for shutdownGracePeriod, and exits), waits for it to
# exit and the port to be free, starts Soketi again with the same soketi.json on the same port in
# a session of its own (so it outlives this command and its process group), records the new PID
# in soketi.pid (the final stop of the calling script reads it), and returns once the port
# accepts connections. When no Soketi runs (it crashed), it only starts one: the suite also
# restarts a target that died mid-run with this command. Progress goes to SOKETI_DIR/restart.log; stderr gets one line, and only on
# failure, when the exit status is 1 (2: usage).
set -euo pipefail

LOG_NAME=soketi-restart
# shellcheck source=scripts/soketi-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/soketi-lib.sh"

RESTART_STOP_TIMEOUT=10  # seconds Soketi may drain after SIGTERM before it counts as stuck
RESTART_FREE_TIMEOUT=5   # seconds for the port to be released after the old process exited
RESTART_START_TIMEOUT=15 # seconds for the new process to accept connections

[[ $# -le 1 ]] || { echo "soketi-restart: usage: soketi-restart.sh [SOKETI_DIR]" >&2; exit 2; }
[[ $# -eq 0 ]] || SOKETI_DIR="$1"
RESTART_LOG="$SOKETI_DIR/restart.log"

note() { echo "$(date '+%H:%M:%S.%3N') $*" >>"$RESTART_LOG" 2>/dev/null || true; }
fail() {
    note "FAILED: $*"
    echo "soketi-restart: $*" >&2
    exit 1
}

[[ -d "$SOKETI_DIR" ]] || fail "no Soketi scratch folder $SOKETI_DIR"
old="$(soketi_recorded_pid)"
soketi_config_is_loopback || fail "$SOKETI_ERROR"

began=$SECONDS
stuck=""
if soketi_is_running "$old"; then
    note "SIGTERM to Soketi pid $old"
    if ! soketi_signal_and_wait "$old" TERM "$RESTART_STOP_TIMEOUT"; then
        stuck="Soketi pid $old did not exit within ${RESTART_STOP_TIMEOUT}s of SIGTERM; killed it"
        note "$stuck"
        kill -KILL "$old" 2>/dev/null || true
        sleep 0.5
    fi
    note "Soketi pid $old exited after $((SECONDS - began))s"
else
    # It crashed (or was stopped): a restart after a crash is a start.
    note "no running Soketi (pid file names ${old:-nothing}): starting it"
fi

for _ in $(seq 1 $((RESTART_FREE_TIMEOUT * 10))); do
    port_listening || break
    sleep 0.1
done
if port_listening; then
    fail "port $PORT still in use ${RESTART_FREE_TIMEOUT}s after Soketi pid $old exited${stuck:+ ($stuck)}"
fi

echo "--- restarted by soketi-restart.sh at $(date '+%H:%M:%S') ---" >>"$SOKETI_DIR/soketi.log"
soketi_launch --detach || fail "$SOKETI_ERROR${stuck:+ ($stuck)}"
new=$SOKETI_LAUNCHED
note "started Soketi pid $new"
soketi_wait_ready "$new" "$RESTART_START_TIMEOUT" || fail "$SOKETI_ERROR${stuck:+ ($stuck)}"
note "Soketi pid $new accepts connections on $HOST:$PORT ($((SECONDS - began))s after SIGTERM)"
[[ -z "$stuck" ]] || fail "$stuck (restarted as pid $new)"
