#!/usr/bin/env bash
# Certify Soketi 1.6.1 (a real Pusher Channels server) with the conformance suite.
#
#   scripts/certify-soketi.sh [--peers DIR] [--restart] [conformance run options...]
#
#   --peers DIR   folder holding Soketi's package.json and soketi.json
#                 (default: ../shared/peers/soketi relative to the repo root; or $SOKETI_PEERS)
#   --restart     let the shutdown checks (RECON-13) restart Soketi: the suite then runs a
#                 temporary copy of fixtures/targets/soketi.yaml with
#                 restart: {command: scripts/soketi-restart.sh SOKETI_DIR, within: 30};
#                 without it those checks are inconclusive (nothing can restart the target)
#   SOKETI_DIR    scratch install folder (default: ${TMPDIR:-/tmp}/pusher-conformance-soketi);
#                 reused when Soketi is already installed there with the same package.json
#   REPORT_DIR    report folder (default: soketi-report)
#
# Soketi runs only with the peers' loopback config (every socket bound to 127.0.0.1), is started
# with `node` directly so the recorded PID is the server's, and is always stopped by that PID
# (SIGINT, then SIGKILL) on exit; after a restart, by the PID the restart recorded. The script
# exits with the suite's exit code (0 all pass, 1 a requirement failed, 2+ usage/harness problems).
set -euo pipefail

LOG_NAME=certify-soketi
SOKETI_ACTION=certified
# shellcheck source=scripts/soketi-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/soketi-lib.sh"

RESTART=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --peers | --peers=*)
            soketi_parse_peers "$@"
            shift "$PEERS_SHIFT"
            ;;
        --restart)
            RESTART=1
            shift
            ;;
        *) break ;;
    esac
done
REPORT_DIR="${REPORT_DIR:-soketi-report}"

# --- (a) install into the scratch folder --------------------------------------------------------
soketi_install

# --- (b) start it -------------------------------------------------------------------------------
trap soketi_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
soketi_start

# --- (c) run the suite --------------------------------------------------------------------------
cd "$REPO_ROOT"
TARGET_FILE=fixtures/targets/soketi.yaml
if ((RESTART)); then
    soketi_restart_target
    log "target file $TARGET_FILE (fixtures/targets/soketi.yaml with a restart command)"
fi
set +e
conformance run --target "$TARGET_FILE" --report-dir "$REPORT_DIR" "$@"
rc=$?
set -e

# --- (d) the EXIT trap stops Soketi; (e) exit with the suite's code ------------------------------
exit "$rc"
