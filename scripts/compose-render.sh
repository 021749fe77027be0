#!/usr/bin/env bash
# The one-shot `kafka-config` service of docker-compose.yml: render config/kafka (the same
# source of truth the native cluster uses) for three brokers named kafka-1..3 into the shared
# volume /rendered:
#   kafka/node-N/server.properties, kafka/node-N/start.sh   (per broker, mode 600)
#   kafka/admin.properties, kafka/init.sh, kafka/cluster.id  (the init service, the UI)
#   certs/                                                   (copied from /certs)
# Inputs, mounted read-only: /certs (make certs), /secrets/kafka/<user>.password (make secrets).
# RENDERED, CERTS_IN and SECRETS_IN move the three mounts (scripts/compose-rehearse.sh).
set -euo pipefail
RENDERED=${RENDERED:-/rendered}
CERTS_IN=${CERTS_IN:-/certs}
export KAFKA_HOST_PATTERN=kafka-%d KAFKA_BASE_PORT=9092 KAFKA_PORT_STRIDE=0 \
  LOCAL_DIR=$RENDERED SECRETS_DIR=${SECRETS_IN:-/secrets} CERTS_DIR=$RENDERED/certs \
  KAFKA_LOG_DIRS=/var/lib/kafka/data KAFKA_NATIVE_OVERRIDES=0
# shellcheck source=scripts/lib/kafka.sh
source "$(dirname "$0")/lib/kafka.sh"
KAFKA_UID=${KAFKA_UID:-1000}   # appuser of the apache/kafka image

install -d -m 700 "$CERTS_DIR" "$KAFKA_STATE"
cp "$CERTS_IN/ca.crt" "$CERTS_IN/keystore.password" "$CERTS_DIR/"
for n in $(all_nodes); do cp "$CERTS_IN/kafka-$n.p12" "$CERTS_DIR/"; done
[[ -s $KAFKA_STATE/cluster.id ]] \
  || head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' | sed 's/^-/A/' > "$KAFKA_STATE/cluster.id"

for n in $(all_nodes); do
  render_broker_properties "$n"
  props="$(node_dir "$n")/server.properties"
  # The SCRAM users go in a Java argument file, never on a command line.
  write_format_args "$(node_dir "$n")/format.args" "$props" "$(< "$KAFKA_STATE/cluster.id")"
  (
    umask 077
    cat > "$(node_dir "$n")/start.sh" <<START
#!/bin/sh
# kafka-$n: format the KRaft storage with the SCRAM users once, then run the broker.
set -e
if [ ! -f $KAFKA_LOG_DIRS/meta.properties ]; then
  java -Xmx384m -cp "/opt/kafka/libs/*" @$(node_dir "$n")/format.args
fi
exec /opt/kafka/bin/kafka-server-start.sh $props
START
  )
done

render_admin_properties
{
  echo "#!/bin/sh"
  echo "# Topics and ACLs of config/kafka, created as the admin super user (idempotent)."
  echo "set -e"
  while read -r tool args; do
    echo "/opt/kafka/bin/kafka-$tool.sh --bootstrap-server $(bootstrap_servers) --command-config $ADMIN_PROPERTIES $args"
  done < <(bootstrap_calls)
  echo "echo 'topics and ACLs in place'"
} > "$KAFKA_STATE/init.sh"

if [[ $(id -u) == 0 ]]; then chown -R "$KAFKA_UID:$KAFKA_UID" "$RENDERED"; fi
chmod -R go-rwx "$RENDERED"
log "rendered $KAFKA_NODES brokers, admin properties and init script into $RENDERED"
