#!/usr/bin/env bash
# Rehearse docker-compose.yml (with docker-compose.dev.yml) without a Docker engine, and check
# what it builds. Runs what the compose services run, from what they run it with:
#   kafka-config  scripts/compose-render.sh, on the certificates and secrets of `make init`
#   kafka-1..3    each broker's rendered start.sh (format with the SCRAM users once, start),
#                 under its compose hostname and port 9092 like the other two, on a loopback
#                 address of its own (127.0.0.1N)
#   healthcheck   the brokers' healthcheck command of docker-compose.yml, for each broker
#   kafka-init    the rendered init.sh (topics and ACLs as the admin)
#   kafka-ui      its Kafka client properties, from its compose environment
#   firestore     the emulator, under its compose name and port
#   simulator, analytics, dashboard, attacker   their binaries with exactly the environment, command and secrets
#                 (at /run/secrets) compose gives them (tools/compose_service.py), each in a
#                 mount namespace of its own whose /etc/hosts has the compose names
# and checks: RF, min ISR and partitions of each topic, the ACLs of acls.conf, a record
# written as `simulator` and read back as `analytics` in its group; analytics' compose
# healthcheck passes; the simulator's sessions reach Firestore through analytics; the attack
# suite passes against the stack; the dashboard's healthcheck passes and it shows the
# sessions and analytics healthy; the services stop cleanly on SIGTERM (exit 0) within the
# stop_grace_period. (That compose sets only variables the services read is
# checked by tests/deploy.)
# What differs from the containers: /opt/kafka/bin is a directory of shims running the same
# Kafka version from the Maven jars (scripts/kafka-fetch.sh), volumes are directories, the
# services are the debug builds, and one replica of each runs. The JVMs resolve the compose
# names through a hosts file (-Djdk.net.hosts.file). Every process started is stopped by PID
# on exit, whatever happens. Needs root for the mount namespaces (unshare).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# Clients address the brokers as the compose services do: kafka-N:9092.
KAFKA_HOST_PATTERN=kafka-%d KAFKA_BASE_PORT=9092 KAFKA_PORT_STRIDE=0
source "$here/lib/kafka.sh"
source "$here/lib/tools.sh"
require_kafka_libs
unshare --mount true 2> /dev/null || die "the compose rehearsal needs root (unshare --mount) for the services' mount namespaces"
ensure_tools_venv
(cd "$REPO_ROOT" && cargo build --quiet --bin simulator --bin analytics --bin attacker --bin dashboard)
[[ -s $CERTS_DIR/ca.crt && -s $(password_file admin) ]] || die "run 'make init' (or scripts/local-up.sh) first"

WORK="$LOCAL_DIR/compose-rehearsal"
RENDERED="$WORK/rendered"
SHIMS="$WORK/opt-kafka/bin"
HOSTS="$WORK/hosts"
TIMEOUT=${REHEARSAL_TIMEOUT:-120}
FIRESTORE_ADDRESS=127.0.0.20
SERVICES=(simulator analytics dashboard attacker)
address() { echo "127.0.0.1$1"; }
pidfile() { echo "$LOCAL_DIR/compose-$1/pid"; }

cleanup() {
  local process stops=()
  for process in "${SERVICES[@]}" firestore $(all_nodes | sed 's/^/kafka-/'); do
    stop_tracked "$(pidfile "$process")" 30 & stops+=($!)
  done
  wait "${stops[@]}"
}
trap cleanup EXIT
cleanup
rm -rf "$WORK" && mkdir -p "$SHIMS"

# compose_service SERVICE: SERVICE_ENV, SERVICE_ARGS, SERVICE_SECRETS, SERVICE_HEALTH as
# `make compose-dev-up` gives them (no .env: every variable at its default).
compose_service() {
  eval "$(cd "$REPO_ROOT" && env -i PATH="$PATH" GOOGLE_APPLICATION_CREDENTIALS_FILE=/dev/null \
    "$TOOLS_VENV/bin/python" tools/compose_service.py docker-compose.yml docker-compose.dev.yml "$1")"
}

# --- the image: /opt/kafka/bin, and the compose network's names ------------------------------
{
  echo "127.0.0.1 localhost"
  for n in $(all_nodes); do echo "$(address "$n") kafka-$n"; done
  echo "$FIRESTORE_ADDRESS firestore"
  # Analytics' admin port, as the dashboard reaches it (the services share the host's network).
  echo "127.0.0.1 analytics"
} > "$HOSTS"
shim() {
  local name=$1; shift
  cat > "$SHIMS/$name" <<SHIM
#!/bin/sh
exec java -Djdk.net.hosts.file=$HOSTS -Dlog4j2.configurationFile=$KAFKA_CONFIG_DIR/$1 $2 -cp "$KAFKA_LIBS/*" $3 "\$@"
SHIM
  chmod +x "$SHIMS/$name"
}
TOOL_JVM="-Xmx384m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
shim kafka-storage.sh tools-log4j2.properties "$TOOL_JVM" kafka.tools.StorageTool
shim kafka-topics.sh tools-log4j2.properties "$TOOL_JVM" org.apache.kafka.tools.TopicCommand
shim kafka-acls.sh tools-log4j2.properties "$TOOL_JVM" org.apache.kafka.tools.AclCommand
shim kafka-broker-api-versions.sh tools-log4j2.properties "$TOOL_JVM" org.apache.kafka.tools.BrokerApiVersionsCommand
shim kafka-console-producer.sh tools-log4j2.properties "$TOOL_JVM" org.apache.kafka.tools.ConsoleProducer
shim kafka-console-consumer.sh tools-log4j2.properties "$TOOL_JVM" org.apache.kafka.tools.consumer.ConsoleConsumer
shim kafka-server-start.sh log4j2.properties "$KAFKA_HEAP_OPTS -XX:+UseG1GC" kafka.Kafka

# --- kafka-config ------------------------------------------------------------------------------
RENDERED=$RENDERED CERTS_IN=$CERTS_DIR SECRETS_IN=$SECRETS_DIR "$here/compose-render.sh"
# The container paths of the rendered files, and only those, become this machine's.
for n in $(all_nodes); do
  sed -i -e "s#/opt/kafka/bin/#$SHIMS/#g" -e "s#/opt/kafka/libs#$KAFKA_LIBS#g" \
    -e "s#/var/lib/kafka/data#$WORK/kafka-$n-data#g" \
    "$RENDERED/kafka/node-$n/start.sh" "$RENDERED/kafka/node-$n/server.properties"
done
sed -i "s#/opt/kafka/bin/#$SHIMS/#g" "$RENDERED/kafka/init.sh"

# --- kafka-1..3 --------------------------------------------------------------------------------
for n in $(all_nodes); do
  mkdir -p "$WORK/kafka-$n-data"
  # The marker is in the command line of start.sh and of the broker it execs.
  start_tracked "$(pidfile "kafka-$n")" \
    "$RENDERED/kafka/node-$n/" "$WORK/kafka-$n.log" /bin/sh "$RENDERED/kafka/node-$n/start.sh"
done

fail() {
  log "compose rehearsal failed: $*"
  for n in $(all_nodes); do
    echo "---- kafka-$n: $WORK/kafka-$n.log" >&2
    grep -E ' (ERROR|FATAL) ' "$WORK/kafka-$n.log" | tail -n 10 >&2 || true
    tail -n 5 "$WORK/kafka-$n.log" >&2 || true
  done
  exit 1
}

# Each broker's healthcheck, as compose gives it (a CMD-SHELL: sh -c COMMAND), with the
# image's paths made this machine's and `hostname` answering the broker's name.
deadline=$((SECONDS + TIMEOUT))
for n in $(all_nodes); do
  compose_service "kafka-$n"
  [[ ${SERVICE_HEALTH[0]:-} == sh ]] || fail "kafka-$n has no CMD-SHELL healthcheck in docker-compose.yml"
  health=${SERVICE_HEALTH[2]//\/opt\/kafka\/bin\//$SHIMS/}
  health=${health//\/rendered/$RENDERED}
  until sh -c "hostname() { echo kafka-$n; }; $health"; do
    pid_alive "$(pidfile "kafka-$n")" || fail "kafka-$n exited"
    (( SECONDS < deadline )) || fail "kafka-$n not healthy within ${TIMEOUT}s"
    sleep 2
  done
  log "kafka-$n healthy (the compose healthcheck passes)"
done

# --- kafka-init --------------------------------------------------------------------------------
sh "$RENDERED/kafka/init.sh" > "$WORK/init.log" 2>&1 || { cat "$WORK/init.log" >&2; fail "init.sh failed"; }
log "kafka-init: $(tail -n 1 "$WORK/init.log")"

# --- what the stack built ----------------------------------------------------------------------
ADMIN="$RENDERED/kafka/admin.properties"
BOOTSTRAP=$(bootstrap_servers)
while read -r topic partitions rf configs; do
  described=$("$SHIMS/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN" --describe --topic "$topic")
  grep -q "PartitionCount: $partitions	ReplicationFactor: $rf" <<< "$described" \
    || fail "$topic: want $partitions partitions with RF $rf, got: $(head -n 1 <<< "$described")"
  grep -q "min.insync.replicas=$MIN_INSYNC_REPLICAS" <<< "$described" \
    || fail "$topic: min.insync.replicas is not $MIN_INSYNC_REPLICAS"
  [[ $(grep -c "Isr: [0-9],[0-9],[0-9]" <<< "$described") == "$partitions" ]] \
    || fail "$topic: not every partition has 3 in-sync replicas"
done < <(expand_table topics.conf)
# The ACLs as "principal resource pattern name operation" lines, from the cluster and from
# acls.conf.
acls=$("$SHIMS/kafka-acls.sh" --bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN" --list)
actual=$(awk '
  /ResourcePattern\(/ {
    type = $0; sub(/.*resourceType=/, "", type); sub(/,.*/, "", type)
    name = $0; sub(/.*name=/, "", name); sub(/,.*/, "", name)
    pattern = $0; sub(/.*patternType=/, "", pattern); sub(/\).*/, "", pattern)
  }
  /permissionType=ALLOW/ {
    who = $0; sub(/.*principal=User:/, "", who); sub(/,.*/, "", who)
    op = $0; sub(/.*operation=/, "", op); sub(/,.*/, "", op)
    print tolower(who " " type " " pattern " " name " " op)
  }' <<< "$acls" | sort)
expected=$(expand_table acls.conf | while read -r principal resource pattern name operations; do
  IFS=, read -ra ops <<< "$operations"
  for op in "${ops[@]}"; do echo "$principal $resource $pattern $name $op"; done
done | tr '[:upper:]' '[:lower:]' | sort)
[[ -n $expected && $actual == "$expected" ]] \
  || fail "the cluster's ACLs differ from acls.conf: $(diff <(echo "$expected") <(echo "$actual") | tr '\n' ' ')"
log "topics (partitions, RF $REPLICATION_FACTOR, min ISR $MIN_INSYNC_REPLICAS, all in sync) and the $(wc -l <<< "$expected") ACLs of config/kafka"

# kafka-ui: the client properties its compose environment gives kafbat's Kafka clients
# (KAFKA_CLUSTERS_0_PROPERTIES_A_B=v is a.b=v; a ${key} placeholder is resolved, as Spring
# does, from the file SPRING_CONFIG_ADDITIONALLOCATION names), used by an admin client.
compose_service kafka-ui
install -m 600 /dev/null "$WORK/kafka-ui.properties"  # it holds the admin password
{
  for var in "${SERVICE_ENV[@]}"; do
    value=${var#*=}
    case ${var%%=*} in
      KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS) echo "bootstrap.servers=$value" ;;
      SPRING_CONFIG_ADDITIONALLOCATION) spring_file=${value/#\/rendered/$RENDERED} ;;
    esac
  done
  for var in "${SERVICE_ENV[@]}"; do
    name=${var%%=*}
    [[ $name == KAFKA_CLUSTERS_0_PROPERTIES_* ]] || continue
    name=$(tr 'A-Z_' 'a-z.' <<< "${name#KAFKA_CLUSTERS_0_PROPERTIES_}")
    value=${var#*=}
    if [[ $value =~ ^\$\{(.+)\}$ ]]; then
      value=$(grep -m1 "^${BASH_REMATCH[1]}=" "$spring_file" | cut -d= -f2-) || fail "kafka-ui: ${BASH_REMATCH[1]} not in $spring_file"
    fi
    echo "$name=${value/#\/rendered/$RENDERED}"
  done
} >> "$WORK/kafka-ui.properties"
"$SHIMS/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" --command-config "$WORK/kafka-ui.properties" --list \
  | grep -qx "$EVENTS_TOPIC" || fail "kafka-ui's client properties do not list the topics"
log "kafka-ui's client properties connect and list the topics"

render_client_properties simulator "$WORK/simulator.properties" acks=all
render_client_properties analytics "$WORK/analytics.properties" "group.id=$ANALYTICS_GROUP"
record="rehearsal-$RANDOM$RANDOM"
echo "$record" | "$SHIMS/kafka-console-producer.sh" --bootstrap-server "$BOOTSTRAP" \
  --command-config "$WORK/simulator.properties" --topic "$EVENTS_TOPIC" \
  || fail "simulator could not produce"
read_back=$("$SHIMS/kafka-console-consumer.sh" --bootstrap-server "$BOOTSTRAP" \
  --command-config "$WORK/analytics.properties" --topic "$EVENTS_TOPIC" --from-beginning \
  --max-messages 1 --timeout-ms 60000 2>/dev/null) || true
[[ $read_back == "$record" ]] || fail "analytics read back '$read_back', not the record simulator wrote"
log "simulator wrote, analytics read back, over SASL_SSL to kafka-1..3"

# --- firestore, simulator, analytics -----------------------------------------------------------
FIRESTORE_HOST=$FIRESTORE_ADDRESS FIRESTORE_PORT=8080 FIRESTORE_STATE="$(dirname "$(pidfile firestore)")" \
  FIRESTORE_HEAP=1g "$here/firestore-up.sh"

# run_service SERVICE: its binary as its container runs it: only compose's environment, its
# secrets at /run/secrets/NAME, the compose names in /etc/hosts (a mount namespace of its own).
run_service() {
  local service=$1 binary="$REPO_ROOT/target/debug/$1"
  compose_service "$service"
  # shellcheck disable=SC2016 # the inner script's variables are its own
  start_tracked "$(pidfile "$service")" "$binary" "$WORK/$service.log" \
    unshare --mount --propagation private bash -c '
      set -e
      mount --bind "$1" /etc/hosts; shift
      mount -t tmpfs -o mode=755 tmpfs /run
      mkdir /run/secrets
      while [ "$1" != -- ]; do
        touch "/run/secrets/${1%%=*}"
        mount --bind "${1#*=}" "/run/secrets/${1%%=*}"
        shift
      done
      shift
      exec env -i PATH=/usr/local/bin:/usr/bin:/bin "$@"
    ' container "$HOSTS" "${SERVICE_SECRETS[@]}" -- "${SERVICE_ENV[@]}" "$binary" "${SERVICE_ARGS[@]}"
}

# wait_exit SERVICE SECONDS: the service's exit status, once it exits or has been killed for
# running longer than SECONDS. (A child that exited stays a zombie until waited for.)
wait_exit() {
  local pid deadline=$((SECONDS + $2)) status=0
  read -r pid _ < "$(pidfile "$1")"
  while [[ $(ps -o stat= -p "$pid" 2>/dev/null | tr -d ' ') == [^Z]* ]] && (( SECONDS < deadline )); do sleep 0.5; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" || status=$?
  rm -f "$(pidfile "$1")"
  return "$status"
}

# stop_service SERVICE: SIGTERM, as `docker compose stop` does; it must exit 0 within the
# stop_grace_period (60 s), or it is killed and the rehearsal fails.
stop_service() {
  local pid status=0
  read -r pid _ < "$(pidfile "$1")"
  kill -TERM "$pid"
  wait_exit "$1" 60 || status=$?
  (( status == 0 )) || { tail -n 5 "$WORK/$1.log" >&2; fail "$1 exited with status $status on SIGTERM"; }
  log "$1 stopped cleanly on SIGTERM"
}

# wait_healthy SERVICE SECONDS HEALTHCHECK...: until the service's compose healthcheck
# passes; the rehearsal fails if the service exits first or the time runs out.
wait_healthy() {
  local service=$1 limit=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" > /dev/null 2>&1; do
    pid_alive "$(pidfile "$service")" || { tail -n 5 "$WORK/$service.log" >&2; fail "$service exited"; }
    (( SECONDS < deadline )) || fail "$service's compose healthcheck did not pass within ${limit}s"
    sleep 1
  done
  log "$service healthy (its compose healthcheck passes)"
}

run_service analytics
analytics_health=("${SERVICE_HEALTH[@]}")
run_service simulator
wait_healthy analytics 90 "${analytics_health[@]}"

# Grafana's pipeline dashboard (config/grafana) queries only metrics the running analytics
# exports.
curl -fsS http://127.0.0.1:9464/metrics > "$WORK/metrics.txt"
missing=$(python3 - "$WORK/metrics.txt" "$REPO_ROOT/config/grafana/dashboards/pipeline.json" <<'PY'
import json, re, sys
live = open(sys.argv[1]).read()
families = set(re.findall(r"^# TYPE (\S+)", live, re.M)) | set(re.findall(r"^([a-z_]+)[{ ]", live, re.M))
panels = json.load(open(sys.argv[2]))["panels"]
used = {m for p in panels for t in p["targets"] for m in re.findall(r"\b(analytics_[a-z_]+)", t["expr"])}
print(" ".join(sorted(m for m in used if m not in families and re.sub(r"_(sum|count)$", "", m) not in families)))
PY
)
[[ -z $missing ]] || fail "Grafana's pipeline dashboard queries metrics analytics does not export: $missing"
log "Grafana's pipeline dashboard: every metric it queries is in the live analytics' /metrics"

# The simulator's sessions, counted by analytics, in the emulator's database of the project
# compose names.
lifetime_sessions() {
  FIRESTORE_EMULATOR_HOST=$FIRESTORE_ADDRESS:8080 GCLOUD_PROJECT=ecommerce-dev \
    "$REPO_ROOT/target/debug/analytics" report --json --top 0 2>/dev/null \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)[-1]["sessions_started"])' 2>/dev/null || echo 0
}
sessions=0
deadline=$((SECONDS + 90))
until (( sessions > 0 )); do
  for service in simulator analytics; do
    pid_alive "$(pidfile "$service")" || { tail -n 5 "$WORK/$service.log" >&2; fail "$service exited"; }
  done
  (( SECONDS < deadline )) || fail "no session reached Firestore within 90s"
  sleep 2
  sessions=$(lifetime_sessions)
done
log "$sessions sessions from the simulator counted in Firestore (analytics report: lifetime)"

# dashboard: its compose healthcheck passes; it shows the sessions Firestore holds and the
# analytics instance healthy, found through the compose name `analytics`.
run_service dashboard
wait_healthy dashboard 60 "${SERVICE_HEALTH[@]}"
shown=$(curl -fsS http://127.0.0.1:4000/api/overview \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["lifetime"]["sessions_started"])')
(( shown > 0 )) || fail "the dashboard shows no session"
instances=$(curl -fsS http://127.0.0.1:4000/api/pipeline \
  | python3 -c 'import json, sys; print(" ".join(i["address"] for i in json.load(sys.stdin)["instances"] if i["up"] and i["healthy"]))')
[[ -n $instances ]] || fail "the dashboard does not see analytics healthy"
log "dashboard: $shown sessions shown, analytics healthy at $instances"
stop_service dashboard

# attacker: the suite against this stack, as `make attacker-up` runs it; exit 0 only if every
# attack is refused (its poison checks read what analytics wrote to Firestore).
run_service attacker
status=0
wait_exit attacker 300 || status=$?
(( status == 0 )) || { tail -n 60 "$WORK/attacker.log" >&2; fail "the attack suite against the compose stack failed (status $status)"; }
log "attack suite against the compose stack passed: $(tail -n 1 "$WORK/attacker.log")"
stop_service simulator
stop_service analytics
log "compose rehearsal passed"
