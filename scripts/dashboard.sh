#!/usr/bin/env bash
# `make dashboard`: the dashboard against the running local stack (the Firestore emulator and
# the analytics instance on 127.0.0.1:9464), in the foreground until Ctrl-C. The project is
# GCLOUD_PROJECT, else the one the running `make demo` writes to.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/common.sh"
cd "$REPO_ROOT"
[[ -f $LOCAL_DIR/firestore/env ]] || die "no Firestore emulator is running: start 'make demo DEMO_SECONDS=0' (or scripts/firestore-up.sh)"
set -a; source "$LOCAL_DIR/firestore/env"; set +a
if [[ -z ${GCLOUD_PROJECT:-} ]]; then
  [[ -s $LOCAL_DIR/demo/project ]] || die "no project: set GCLOUD_PROJECT, or start 'make demo DEMO_SECONDS=0'"
  GCLOUD_PROJECT=$(< "$LOCAL_DIR/demo/project")
fi
export GCLOUD_PROJECT DASHBOARD_ADDR="${DASHBOARD_ADDR:-127.0.0.1:4001}"
export DASHBOARD_ANALYTICS_ADMIN="${DASHBOARD_ANALYTICS_ADMIN:-127.0.0.1:9464}"
cargo build --release -p dashboard
log "dashboard of project $GCLOUD_PROJECT"
exec target/release/dashboard
