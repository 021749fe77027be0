#!/usr/bin/env bash
# Rehearse the Kafka half of docker-compose.yml without a Docker engine, and check what it
# builds. Runs what the compose services run, from what they run it with:
#   kafka-config  scripts/compose-render.sh, on the certificates and secrets of `make init`
#   kafka-1..3    each broker's rendered start.sh (format with the SCRAM users once, start),
#                 under its compose hostname and port 9092 like the other two, on a loopback
#                 address of its own (127.0.0.1N)
#   healthcheck   the brokers' healthcheck command of docker-compose.yml, for each broker
#   kafka-init    the rendered init.sh (topics and ACLs as the admin)
# then checks the cluster: RF, min ISR and partitions of each topic, the ACLs of acls.conf,
# and a record written as `simulator` and read back as `analytics` in its group, over
# SASL_SSL with the brokers' names verified.
# Two things differ from the containers, and only them: /opt/kafka/bin is a directory of
# shims running the same Kafka version from the Maven jars (scripts/kafka-fetch.sh), and each
# broker's data volume is a directory. The JVMs resolve kafka-N through a hosts file
# (-Djdk.net.hosts.file). Every process started is stopped by PID on exit, whatever happens.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# Clients address the brokers as the compose services do: kafka-N:9092.
KAFKA_HOST_PATTERN=kafka-%d KAFKA_BASE_PORT=9092 KAFKA_PORT_STRIDE=0
source "$here/lib/kafka.sh"
require_kafka_libs
[[ -s $CERTS_DIR/ca.crt && -s $(password_file admin) ]] || die "run 'make init' (or scripts/local-up.sh) first"

WORK="$LOCAL_DIR/compose-rehearsal"
RENDERED="$WORK/rendered"
SHIMS="$WORK/opt-kafka/bin"
HOSTS="$WORK/hosts"
TIMEOUT=${REHEARSAL_TIMEOUT:-120}
address() { echo "127.0.0.1$1"; }
pidfile() { echo "$LOCAL_DIR/compose-kafka-$1/pid"; }

cleanup() {
  local n stops=()
  for n in $(all_nodes); do stop_tracked "$(pidfile "$n")" 30 & stops+=($!); done
  wait "${stops[@]}"
}
trap cleanup EXIT
cleanup
rm -rf "$WORK" && mkdir -p "$SHIMS"

# --- the image: /opt/kafka/bin, and the compose network's names ------------------------------
for n in $(all_nodes); do echo "$(address "$n") kafka-$n"; done > "$HOSTS"
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
  sed -i -e "s#/opt/kafka/bin/#$SHIMS/#g" -e "s#/var/lib/kafka/data#$WORK/kafka-$n-data#g" \
    "$RENDERED/kafka/node-$n/start.sh" "$RENDERED/kafka/node-$n/server.properties"
done
sed -i "s#/opt/kafka/bin/#$SHIMS/#g" "$RENDERED/kafka/init.sh"

# --- kafka-1..3 --------------------------------------------------------------------------------
for n in $(all_nodes); do
  mkdir -p "$WORK/kafka-$n-data"
  # The marker is in the command line of start.sh and of the broker it execs.
  start_tracked "$(pidfile "$n")" \
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

# The brokers' healthcheck, as docker-compose.yml says it ($$ is compose's escape for $).
health=$(grep -o '"/opt/kafka/bin/kafka-broker-api-versions.sh [^"]*"' "$REPO_ROOT/docker-compose.yml" | tr -d '"')
[[ -n $health ]] || fail "no broker healthcheck found in docker-compose.yml"
health=${health//\$\$/\$}
health=${health//\/opt\/kafka\/bin\//$SHIMS/}
health=${health//\/rendered/$RENDERED}
deadline=$((SECONDS + TIMEOUT))
for n in $(all_nodes); do
  until sh -c "hostname() { echo kafka-$n; }; $health"; do
    pid_alive "$(pidfile "$n")" || fail "kafka-$n exited"
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
log "compose rehearsal passed: simulator wrote, analytics read back, over SASL_SSL to kafka-1..3"
