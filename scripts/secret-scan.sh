#!/usr/bin/env bash
# secret-scan.sh CMD...: run CMD while watching the command line and the environment of every
# process on the machine (/proc/PID/cmdline is readable by every local user) for one of the
# generated secrets: the SCRAM passwords and the keystore password. Fails, naming the process
# (never the secret), if one shows up; otherwise exits with CMD's status.
# secret-scan.sh --self-test: shows that a secret on a command line is caught.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

patterns=$(mktemp); found=$(mktemp)
trap 'rm -f "$patterns" "$found"' EXIT
chmod 600 "$patterns"
for f in "$SECRETS_DIR"/kafka/*.password "$CERTS_DIR/keystore.password"; do
  [[ -s $f ]] && { cat "$f"; echo; }
done > "$patterns"
[[ -s $patterns ]] || die "no secrets to look for: run 'make init' first"

if [[ ${1:-} == --self-test ]]; then
  planted=$(random_secret)
  echo "$planted" >> "$patterns"
  set -- sh -c 'sleep 1' "$planted"
  unset planted
  expect_found=1
fi

"$@" & pid=$!
scan() {
  local f
  # One grep over every process's arguments and environment; its own hold no secret.
  grep -alF -f "$patterns" /proc/[0-9]*/cmdline /proc/[0-9]*/environ 2>/dev/null | while read -r f; do
    # The process's name only: its arguments may hold the secret.
    echo "$(basename "$f") of pid $(cut -d/ -f3 <<< "$f") ($(cat "${f%/*}/comm" 2>/dev/null))"
  done >> "$found" || true
}
while kill -0 "$pid" 2>/dev/null; do scan; sleep 0.05; done
status=0; wait "$pid" || status=$?

if [[ ${expect_found:-0} == 1 ]]; then
  [[ -s $found ]] || die "secret-scan self-test: a secret on a command line was not seen"
  log "secret-scan self-test: a secret on a command line is caught"
  exit 0
fi
if [[ -s $found ]]; then
  log "a secret appeared in the arguments or environment of a process:"
  sort -u "$found" >&2
  exit 1
fi
log "no secret in any process's arguments or environment while '$*' ran"
exit "$status"
