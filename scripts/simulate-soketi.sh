#!/usr/bin/env bash
# Simulate users against Soketi 1.6.1 (a real Pusher Channels server): `conformance simulate`
# with Soketi as the target, restarts included.
#
#   scripts/simulate-soketi.sh [--peers DIR] [conformance simulate options...]
#   e.g. scripts/simulate-soketi.sh --scenario restart-under-load --users 20 --duration 15 --no-progress
#
#   --peers DIR   folder holding Soketi's package.json and soketi.json
#                 (default: ../shared/peers/soketi relative to the repo root; or $SOKETI_PEERS)
#   SOKETI_DIR    scratch install folder (default: ${TMPDIR:-/tmp}/pusher-conformance-soketi);
#                 reused when Soketi is already installed there with the same package.json
#
# The other options go to `conformance simulate` unchanged (its --report-dir and --scenario FILE
# are read from the current directory). Its --target-file is a temporary copy of
# fixtures/targets/soketi.yaml with restart: {command: scripts/soketi-restart.sh SOKETI_DIR,
# within: 30}, which stops Soketi gracefully (SIGTERM), starts it again with the same config on
# the same port and records the new PID. Soketi runs only with the peers' loopback config (every
# socket bound to 127.0.0.1), is started with `node` directly so the recorded PID is the
# server's, and is always stopped on exit by the PID recorded last (SIGINT, then SIGKILL). The
# script exits with simulate's exit code (0 ready, 1 not ready, 2 usage, 3 undecided); its own
# problems (install, port in use, no start) exit 2.
set -euo pipefail

LOG_NAME=simulate-soketi
# shellcheck source=scripts/soketi-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/soketi-lib.sh"

soketi_parse_peers "$@"
shift "$PEERS_SHIFT"

# --- (a) install into the scratch folder --------------------------------------------------------
soketi_install

# --- (b) start it, with a target file that can restart it ---------------------------------------
trap soketi_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
soketi_start
soketi_restart_target
log "target file $TARGET_FILE (fixtures/targets/soketi.yaml with a restart command)"

# --- (c) simulate -------------------------------------------------------------------------------
set +e
conformance simulate --target-file "$TARGET_FILE" "$@"
rc=$?
set -e

# --- (d) the EXIT trap stops Soketi (the restarted one too); (e) exit with simulate's code -------
exit "$rc"
