#!/usr/bin/env bash
# Start the Firestore emulator (preinstalled with the Google Cloud CLI) on 127.0.0.1, tracked
# by PID, and wait until it answers. Writes .local/firestore/env (FIRESTORE_EMULATOR_HOST).
# FIRESTORE_HOST, FIRESTORE_PORT and FIRESTORE_STATE run another instance elsewhere.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

HOST="${FIRESTORE_HOST:-127.0.0.1}"
PORT="${FIRESTORE_PORT:-8681}"
HEAP="${FIRESTORE_HEAP:-4g}"
# The JVM's C1 compiler only: its C2 compiler kept compiling through minutes of analytics'
# load (a drain of 305 k events: 5.6-9.2 s of the emulator's 15-19 s of CPU, even after a
# warm-up as large), taking a core from the stack on a 2-core machine. C1-compiled code serves
# about a fifth slower; the emulator used a third less CPU in all (bench-analytics, 2026-12-07).
# FIRESTORE_JAVA_OPTS= (empty) gives the JVM's defaults back.
JAVA_OPTS="${FIRESTORE_JAVA_OPTS--XX:TieredStopAtLevel=1}"
EMU_JAR="${FIRESTORE_EMULATOR_JAR:-/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar}"
STATE="${FIRESTORE_STATE:-$LOCAL_DIR/firestore}"
mkdir -p "$STATE"

[[ -f $EMU_JAR ]] || die "Firestore emulator not found at $EMU_JAR (it ships with google-cloud-cli-firestore-emulator)"
if pid_alive "$STATE/pid"; then log "Firestore emulator already running"; exit 0; fi
# Java directly (not the gcloud wrapper, which leaves java orphaned when killed); bounded heap.
# shellcheck disable=SC2086 # JAVA_OPTS holds several flags
start_tracked "$STATE/pid" "cloud-firestore-emulator" "$STATE/emulator.log" \
  java "-Xmx$HEAP" $JAVA_OPTS -Duser.language=en -cp "$EMU_JAR" com.google.cloud.datastore.emulator.firestore.CloudFirestore \
  start --host="$HOST" --port="$PORT"
for _ in $(seq 1 150); do
  if curl -sf "http://$HOST:$PORT/" 2>/dev/null | grep -q Ok; then
    echo "FIRESTORE_EMULATOR_HOST=$HOST:$PORT" > "$STATE/env"
    log "Firestore emulator ready on $HOST:$PORT"
    exit 0
  fi
  pid_alive "$STATE/pid" || { tail -20 "$STATE/emulator.log" >&2; die "Firestore emulator exited"; }
  sleep 0.2
done
tail -20 "$STATE/emulator.log" >&2
stop_tracked "$STATE/pid"
die "Firestore emulator did not answer within 30s"
