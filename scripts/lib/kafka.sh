# shellcheck shell=bash
# Kafka helpers for the native cluster: the source of truth (config/kafka), node layout,
# and running Kafka's Java tools from the Maven-fetched jars. Sourced, never executed.
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

KAFKA_CONFIG_DIR="$REPO_ROOT/config/kafka"
# shellcheck source=config/kafka/cluster.conf
source "$KAFKA_CONFIG_DIR/cluster.conf"

KAFKA_HOST="${KAFKA_HOST:-127.0.0.1}"
# Node n listens for clients on KAFKA_BASE_PORT + (n-1)*KAFKA_PORT_STRIDE, replication on +1,
# and the controller quorum on +2 (19092/19093/19094, 19192/..., 19292/... by default). Every
# port stays below the kernel's ephemeral range (check_node_ports).
KAFKA_BASE_PORT="${KAFKA_BASE_PORT:-19092}"
KAFKA_PORT_STRIDE="${KAFKA_PORT_STRIDE:-100}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}"
KAFKA_LIBS="$CACHE_DIR/kafka-$KAFKA_VERSION/libs"
KAFKA_STATE="$LOCAL_DIR/kafka"
ADMIN_PROPERTIES="$KAFKA_STATE/admin.properties"
CLIENT_ENV="$KAFKA_STATE/client.env"

client_port()     { echo $((KAFKA_BASE_PORT + ($1 - 1) * KAFKA_PORT_STRIDE)); }
internal_port()   { echo $(( $(client_port "$1") + 1 )); }
controller_port() { echo $(( $(client_port "$1") + 2 )); }
node_ports()      { echo "$(client_port "$1") $(internal_port "$1") $(controller_port "$1")"; }
node_dir()        { echo "$KAFKA_STATE/node-$1"; }
node_pidfile()    { echo "$KAFKA_STATE/node-$1/pid"; }

all_nodes() { seq 1 "$KAFKA_NODES"; }

# check_node_ports N: refuse a listener port inside the kernel's ephemeral range. Any outgoing
# connection on the machine may hold such a port as its source port just when the broker
# binds it, and the broker then dies at startup ("Unable to start acceptor").
check_node_ports() {
  local lo=32768 hi=60999 p
  [[ -r /proc/sys/net/ipv4/ip_local_port_range ]] && read -r lo hi < /proc/sys/net/ipv4/ip_local_port_range
  for p in $(node_ports "$1"); do
    (( p < lo || p > hi )) \
      || die "node $1: port $p lies in the ephemeral port range $lo-$hi; choose KAFKA_BASE_PORT/KAFKA_PORT_STRIDE below $lo"
  done
}

# Node n's host: KAFKA_HOST for the native cluster, or KAFKA_HOST_PATTERN (printf, e.g.
# kafka-%d) where every node has a host of its own (docker compose).
node_host() {
  if [[ -n ${KAFKA_HOST_PATTERN:-} ]]; then printf "$KAFKA_HOST_PATTERN" "$1"; else echo "$KAFKA_HOST"; fi
}

bootstrap_servers() {
  local n out=()
  for n in $(all_nodes); do out+=("$(node_host "$n"):$(client_port "$n")"); done
  (IFS=,; echo "${out[*]}")
}

quorum_voters() {
  local n out=()
  for n in $(all_nodes); do out+=("$n@$(node_host "$n"):$(controller_port "$n")"); done
  (IFS=,; echo "${out[*]}")
}

super_users() {
  local n out=("User:admin")
  for n in $(all_nodes); do out+=("User:CN=kafka-$n"); done
  (IFS=';'; echo "${out[*]}")
}

# Users of config/kafka/users.conf, one per line.
kafka_users() { grep -vE '^\s*(#|$)' "$KAFKA_CONFIG_DIR/users.conf" | awk '{print $1}'; }

password_file() { echo "$SECRETS_DIR/kafka/$1.password"; }

# start_analytics PIDFILE LOG [USER]: the release analytics binary in the background as USER
# (default: its own `analytics` principal), configured by the caller's environment
# (GCLOUD_PROJECT, FIRESTORE_EMULATOR_HOST, EVENTS_TOPIC, DLQ_TOPIC, ANALYTICS_GROUP, ...).
# ANALYTICS_BIN: another build to run (a benchmark's baseline); the release build by default.
start_analytics() {
  local pidfile=$1 logfile=$2 user=${3:-analytics} bin=${ANALYTICS_BIN:-target/release/analytics}
  KAFKA_SASL_USERNAME=$user KAFKA_SASL_PASSWORD_FILE=$(password_file "$user") \
    RUST_LOG="${RUST_LOG:-info,librdkafka=warn}" \
    start_tracked "$pidfile" "$bin" "$logfile" "$bin"
}
read_password() {
  local f; f=$(password_file "$1")
  [[ -s $f ]] || die "missing $f: run 'make init' first"
  printf '%s' "$(< "$f")"
}

# A config table (topics.conf, acls.conf) without comments, with cluster.conf variables expanded.
expand_table() {
  grep -vE '^\s*(#|$)' "$KAFKA_CONFIG_DIR/$1" | EVENTS_TOPIC=$EVENTS_TOPIC \
    EVENTS_TOPIC_PARTITIONS=$EVENTS_TOPIC_PARTITIONS DLQ_TOPIC=$DLQ_TOPIC \
    DLQ_TOPIC_PARTITIONS=$DLQ_TOPIC_PARTITIONS REPLICATION_FACTOR=$REPLICATION_FACTOR \
    MIN_INSYNC_REPLICAS=$MIN_INSYNC_REPLICAS EVENTS_TOPIC_RETENTION_MS=$EVENTS_TOPIC_RETENTION_MS \
    DLQ_TOPIC_RETENTION_MS=$DLQ_TOPIC_RETENTION_MS ANALYTICS_GROUP=$ANALYTICS_GROUP INJECTOR_GROUP=$INJECTOR_GROUP envsubst
}

# The Kafka tool calls that create config/kafka's topics and ACLs, one per line:
# `topics ARGS...` (kafka-topics) or `acls ARGS...` (kafka-acls). Names hold no spaces.
bootstrap_calls() {
  local topic partitions rf configs principal resource pattern name operations kv op
  while read -r topic partitions rf configs; do
    local args=(--create --if-not-exists --topic "$topic" --partitions "$partitions" --replication-factor "$rf")
    IFS=, read -ra kvs <<< "$configs"
    for kv in "${kvs[@]}"; do args+=(--config "$kv"); done
    echo "topics ${args[*]}"
  done < <(expand_table topics.conf)
  while read -r principal resource pattern name operations; do
    local args=(--add --allow-principal "User:$principal" --resource-pattern-type "$pattern" "--$resource" "$name")
    IFS=, read -ra ops <<< "$operations"
    for op in "${ops[@]}"; do args+=(--operation "$op"); done
    echo "acls ${args[*]}"
  done < <(expand_table acls.conf)
}

require_kafka_libs() {
  [[ -f $KAFKA_LIBS/.complete ]] || die "Kafka $KAFKA_VERSION jars missing in $KAFKA_LIBS: run scripts/kafka-fetch.sh"
}

# kafka_java CLASS ARGS...: run a Kafka tool in a short-lived JVM tuned for start-up speed.
kafka_java() {
  require_kafka_libs
  java -Xmx384m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xshare:auto \
    -Dlog4j2.configurationFile="$KAFKA_CONFIG_DIR/tools-log4j2.properties" \
    -cp "$KAFKA_LIBS/*" "$@"
}

# admin_tool CLASS ARGS...: a tool authenticated as the admin super user.
admin_tool() {
  local class=$1; shift
  kafka_java "$class" --bootstrap-server "$(bootstrap_servers)" --command-config "$ADMIN_PROPERTIES" "$@"
}

# render_template FILE NAME...: FILE with each ${NAME} replaced by the value of the shell
# variable NAME. Done in this shell (no envsubst): secrets never enter a process's
# environment or arguments.
render_template() {
  local file=$1 line name; shift
  shopt -u patsub_replacement 2>/dev/null || true  # a '&' in a value stays a '&'
  while IFS= read -r line || [[ -n $line ]]; do
    for name in "$@"; do line=${line//\$\{$name\}/${!name}}; done
    printf '%s\n' "$line"
  done < "$file"
}

# render_broker_properties NODE: write node N's server.properties (mode 600: it holds secrets).
render_broker_properties() {
  local n=$1 dir; dir=$(node_dir "$n")
  mkdir -p "$dir/data" && chmod 700 "$dir"
  local out="$dir/server.properties"
  (
    umask 077
    local host; host=$(node_host "$n")
    local NODE_ID=$n QUORUM_VOTERS; QUORUM_VOTERS=$(quorum_voters)
    local CLIENT_LISTENER="$host:$(client_port "$n")" CLIENT_ADVERTISED="$host:$(client_port "$n")"
    local INTERNAL_LISTENER="$host:$(internal_port "$n")" INTERNAL_ADVERTISED="$host:$(internal_port "$n")"
    local CONTROLLER_LISTENER="$host:$(controller_port "$n")"
    local KEYSTORE_LOCATION="$CERTS_DIR/kafka-$n.p12" KEYSTORE_PASSWORD
    KEYSTORE_PASSWORD=$(< "$CERTS_DIR/keystore.password")
    local TRUSTSTORE_LOCATION="$CERTS_DIR/ca.crt" SUPER_USERS LOG_DIRS="${KAFKA_LOG_DIRS:-$dir/data}"
    SUPER_USERS=$(super_users)
    render_template "$KAFKA_CONFIG_DIR/broker.properties" NODE_ID QUORUM_VOTERS \
      CLIENT_LISTENER CLIENT_ADVERTISED INTERNAL_LISTENER INTERNAL_ADVERTISED CONTROLLER_LISTENER \
      KEYSTORE_LOCATION KEYSTORE_PASSWORD TRUSTSTORE_LOCATION SUPER_USERS LOG_DIRS > "$out"
    if [[ ${KAFKA_NATIVE_OVERRIDES:-1} == 1 ]]; then
      { echo; echo "# native-overrides.properties"; cat "$KAFKA_CONFIG_DIR/native-overrides.properties"; } >> "$out"
    fi
  )
}

# write_format_args FILE PROPERTIES CLUSTER_ID: the StorageTool call that formats a node with
# the SCRAM users, as a Java argument file (mode 600) for `java ... @FILE`: the passwords are
# never on a command line (`ps`, /proc/PID/cmdline are readable by every local user).
write_format_args() {
  local file=$1 props=$2 id=$3 user
  # Every password must exist: a missing one would otherwise format an empty password.
  for user in $(kafka_users); do read_password "$user" > /dev/null; done
  (
    umask 077
    {
      # --cluster-id=ID: a base64url id may start with '-', which a separate argument would
      # make look like an option.
      printf 'kafka.tools.StorageTool format --cluster-id="%s" -c "%s"\n' "$id" "$props"
      for user in $(kafka_users); do
        printf -- '--add-scram "%s=[name=%s,password=%s]"\n' "$SASL_MECHANISM" "$user" "$(read_password "$user")"
      done
    } > "$file"
  )
}

# render_client_properties USER FILE [KEY=VALUE...]: Java client properties for USER over
# SASL_SSL with hostname verification, plus extra lines (mode 600: it holds the password).
render_client_properties() {
  local user=$1 file=$2; shift 2
  mkdir -p "$(dirname "$file")"
  (
    umask 077
    cat > "$file" <<PROPS
bootstrap.servers=$(bootstrap_servers)
security.protocol=SASL_SSL
sasl.mechanism=$SASL_MECHANISM
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$user" password="$(read_password "$user")";
ssl.truststore.type=PEM
ssl.truststore.location=$CERTS_DIR/ca.crt
ssl.endpoint.identification.algorithm=https
PROPS
    local kv
    for kv in "$@"; do echo "$kv" >> "$file"; done
  )
}

# The admin's client properties for the Java tools.
render_admin_properties() { render_client_properties admin "$ADMIN_PROPERTIES"; }

# What clients (services, tests) need to reach the cluster. Holds no secret: passwords are
# read from secrets/kafka/<user>.password through KAFKA_SASL_PASSWORD_FILE.
render_client_env() {
  cat > "$CLIENT_ENV" <<ENV
KAFKA_BROKERS=$(bootstrap_servers)
KAFKA_SSL_CA_LOCATION=$CERTS_DIR/ca.crt
KAFKA_SASL_MECHANISM=$SASL_MECHANISM
KAFKA_EVENTS_TOPIC=$EVENTS_TOPIC
KAFKA_DLQ_TOPIC=$DLQ_TOPIC
KAFKA_ANALYTICS_GROUP=$ANALYTICS_GROUP
KAFKA_INJECTOR_GROUP=$INJECTOR_GROUP
KAFKA_IMPOSTOR_CA_LOCATION=$CERTS_DIR/impostor-ca.crt
KAFKA_SECRETS_DIR=$SECRETS_DIR/kafka
KAFKA_REPLICATION_FACTOR=$REPLICATION_FACTOR
KAFKA_MIN_INSYNC_REPLICAS=$MIN_INSYNC_REPLICAS
KAFKA_EVENTS_TOPIC_PARTITIONS=$EVENTS_TOPIC_PARTITIONS
KAFKA_NODES=$KAFKA_NODES
KAFKA_SCRIPTS_DIR=$REPO_ROOT/scripts
ENV
}
