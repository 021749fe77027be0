#!/usr/bin/env bash
# Start the native secure 3-node KRaft cluster on 127.0.0.1 and wait until it is ready:
# quorum formed, every broker registered, topics and ACLs in place. Set LOCAL_FRESH=1 to
# wipe previous data first. On failure prints the broker log tails and stops what it started.
set -euo pipefail
source "$(dirname "$0")/lib/kafka.sh"
here=$(dirname "$0")

READY_TIMEOUT="${KAFKA_READY_TIMEOUT:-120}"

"$here/kafka-fetch.sh"
"$here/certs.sh"
"$here/secrets.sh"

if [[ ${LOCAL_FRESH:-0} == 1 ]]; then
  "$here/local-down.sh"
  rm -rf "$KAFKA_STATE"
fi
mkdir -p "$KAFKA_STATE" && chmod 700 "$KAFKA_STATE"
render_admin_properties
render_client_env

if [[ ! -f $KAFKA_STATE/cluster.id ]]; then
  log "formatting $KAFKA_NODES KRaft nodes"
  for n in $(all_nodes); do rm -rf "$(node_dir "$n")"; done
  kafka_java kafka.tools.StorageTool random-uuid > "$KAFKA_STATE/cluster.id.tmp"
  for n in $(all_nodes); do
    render_broker_properties "$n"
    args="$(node_dir "$n")/format.args"
    write_format_args "$args" "$(node_dir "$n")/server.properties" "$(< "$KAFKA_STATE/cluster.id.tmp")"
    kafka_java "@$args" > "$(node_dir "$n")/format.log" 2>&1 \
      || { rm -f "$args"; cat "$(node_dir "$n")/format.log" >&2; die "formatting node $n failed"; }
    rm -f "$args"
  done
  mv "$KAFKA_STATE/cluster.id.tmp" "$KAFKA_STATE/cluster.id"
fi

started=()
for n in $(all_nodes); do
  render_broker_properties "$n"
  if ! "$here/kafka-node.sh" status "$n"; then
    "$here/kafka-node.sh" start "$n"
    started+=("$n")
  fi
done

fail() {
  log "cluster not ready: $*"
  for n in $(all_nodes); do
    echo "---- node $n: tail of $(node_dir "$n")/server.log" >&2
    grep -E ' (ERROR|WARN|FATAL) ' "$(node_dir "$n")/server.log" 2>/dev/null | tail -n 15 >&2 || true
    tail -n 10 "$(node_dir "$n")/server.log" >&2 || true
  done
  for n in "${started[@]}"; do "$here/kafka-node.sh" stop "$n" || true; done
  exit 1
}

deadline=$((SECONDS + READY_TIMEOUT))
for n in $(all_nodes); do
  wait_tcp "$KAFKA_HOST" "$(client_port "$n")" $((deadline - SECONDS)) \
    || fail "node $n does not listen on $(client_port "$n") after ${READY_TIMEOUT}s"
done
# Ready = every broker is registered and unfenced, as a client sees it through the secure listener.
until brokers=$(admin_tool org.apache.kafka.tools.BrokerApiVersionsCommand 2>/dev/null | grep -c '^[^ ].*(id: ' || true) \
      && (( brokers == KAFKA_NODES )); do
  for n in $(all_nodes); do "$here/kafka-node.sh" status "$n" || fail "node $n exited"; done
  (( SECONDS < deadline )) || fail "$brokers of $KAFKA_NODES brokers registered after ${READY_TIMEOUT}s"
  sleep 1
done
log "quorum formed, $KAFKA_NODES brokers registered"

"$here/kafka-bootstrap.sh" || fail "topic/ACL bootstrap failed"
log "cluster ready: $(bootstrap_servers) (client settings in $CLIENT_ENV)"
