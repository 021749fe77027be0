#!/usr/bin/env bash
# Stop every process of the native stack that our scripts started (by recorded PID).
# Data stays in .local/ unless LOCAL_WIPE=1.
set -euo pipefail
source "$(dirname "$0")/lib/kafka.sh"

for pidfile in "$LOCAL_DIR"/*/pid "$LOCAL_DIR"/*/*/pid; do
  [[ -f $pidfile ]] || continue
  stop_tracked "$pidfile" "${KAFKA_STOP_TIMEOUT:-30}" &
done
wait
if [[ ${LOCAL_WIPE:-0} == 1 ]]; then rm -rf "$LOCAL_DIR"; fi
log "native stack stopped"
