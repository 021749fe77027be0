# shellcheck shell=bash
# Shared by every script: repository paths, logging, and PID-tracked process control.
# Sourced, never executed.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# Runtime state of the native stack (data, logs, PIDs, rendered configs). Git-ignored.
LOCAL_DIR="${LOCAL_DIR:-$REPO_ROOT/.local}"
CERTS_DIR="${CERTS_DIR:-$REPO_ROOT/certs}"
SECRETS_DIR="${SECRETS_DIR:-$REPO_ROOT/secrets}"
CACHE_DIR="${CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ecommerce-analytics}"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# pid_alive PIDFILE: true if the process recorded in PIDFILE runs and is the one we started
# (its command line contains the marker stored beside the PID), so a recycled PID is never
# mistaken for ours.
pid_alive() {
  local pidfile=$1 pid marker
  [[ -f $pidfile ]] || return 1
  read -r pid marker < "$pidfile" || return 1
  [[ -n $pid && -r /proc/$pid/cmdline ]] || return 1
  [[ -z $marker ]] && return 0
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$marker"
}

# start_tracked PIDFILE MARKER LOGFILE CMD...: start CMD in its own session, record its PID.
start_tracked() {
  local pidfile=$1 marker=$2 logfile=$3; shift 3
  mkdir -p "$(dirname "$pidfile")" "$(dirname "$logfile")"
  setsid "$@" >> "$logfile" 2>&1 < /dev/null &
  echo "$! $marker" > "$pidfile"
}

# stop_tracked PIDFILE [TIMEOUT_S]: SIGTERM, wait, then SIGKILL; removes PIDFILE.
stop_tracked() {
  local pidfile=$1 timeout=${2:-30} pid marker
  if ! pid_alive "$pidfile"; then rm -f "$pidfile"; return 0; fi
  read -r pid marker < "$pidfile"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + timeout))
  while kill -0 "$pid" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid ($(ps -o comm= -p "$pid" 2>/dev/null || echo '?'): $marker) did not stop within ${timeout}s; killing"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$pidfile"
}

# kill_tracked PIDFILE: SIGKILL at once (crash simulation).
kill_tracked() {
  local pidfile=$1 pid
  if pid_alive "$pidfile"; then
    read -r pid _ < "$pidfile"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$pidfile"
}

# random_secret: 32 URL-safe characters, never printed by callers.
random_secret() { openssl rand -base64 48 | tr -dc 'A-Za-z0-9' | head -c 32; }

# metric ADDR NAME: the sum of every sample of the Prometheus metric NAME (all its labels) that
# the service at ADDR (host:port) exposes on /metrics; empty if it does not answer.
metric() {
  local text
  text=$(curl -sf "http://$1/metrics") || return 0
  awk -v n="$2" '$1 == n || index($1, n "{") == 1 {s += $2} END {print s + 0}' <<< "$text"
}

# wait_tcp HOST PORT TIMEOUT_S
wait_tcp() {
  local host=$1 port=$2 timeout=$3 deadline=$((SECONDS + $3))
  until (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; do
    (( SECONDS < deadline )) || return 1
    sleep 0.2
  done
}

# maven_fetch OUTDIR GROUP:ARTIFACT:VERSION[:TYPE]...: copy the artifacts and their runtime
# dependencies from Maven Central into OUTDIR, replaced whole so it is never left half
# filled. The generated POM and Maven's log stay in OUTDIR.maven/; the log's tail is shown
# on failure.
maven_fetch() {
  local out=$1 coord group artifact version type; shift
  local work="$out.maven"
  command -v mvn >/dev/null || die "maven (mvn) is required to fetch from Maven Central"
  mkdir -p "$work"
  {
    echo '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
    echo '<groupId>local.ecommerce-analytics</groupId><artifactId>fetch</artifactId><version>1</version>'
    echo '<packaging>pom</packaging><dependencies>'
    for coord in "$@"; do
      IFS=: read -r group artifact version type <<< "$coord"
      echo "<dependency><groupId>$group</groupId><artifactId>$artifact</artifactId><version>$version</version><type>${type:-jar}</type></dependency>"
    done
    echo '</dependencies></project>'
  } > "$work/pom.xml"
  rm -rf "$out.tmp"
  if ! mvn -q -B -f "$work/pom.xml" dependency:copy-dependencies \
       -DincludeScope=runtime -DoutputDirectory="$out.tmp" > "$work/mvn.log" 2>&1; then
    tail -20 "$work/mvn.log" >&2
    return 1
  fi
  rm -rf "$out" && mv "$out.tmp" "$out"
}
