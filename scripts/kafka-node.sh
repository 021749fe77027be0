#!/usr/bin/env bash
# Control one node of the native cluster: start | stop (graceful) | kill (SIGKILL) | status.
#   scripts/kafka-node.sh stop 2
# Used by local-up/local-down and by the broker-failure tests.
set -euo pipefail
source "$(dirname "$0")/lib/kafka.sh"

cmd=${1:?usage: kafka-node.sh start|stop|kill|status NODE}
n=${2:?usage: kafka-node.sh start|stop|kill|status NODE}
[[ $n =~ ^[0-9]+$ ]] && (( n >= 1 && n <= KAFKA_NODES )) || die "node must be 1..$KAFKA_NODES"
dir=$(node_dir "$n")
pidfile=$(node_pidfile "$n")

case $cmd in
  start)
    if pid_alive "$pidfile"; then exit 0; fi
    [[ -f $dir/data/meta.properties ]] || die "node $n is not formatted: run scripts/local-up.sh"
    require_kafka_libs
    check_node_ports "$n"
    # shellcheck disable=SC2086 # KAFKA_HEAP_OPTS holds several flags
    start_tracked "$pidfile" "$dir/server.properties" "$dir/server.log" \
      java $KAFKA_HEAP_OPTS -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$KAFKA_CONFIG_DIR/log4j2.properties" -Dkafka.logs.dir="$dir" \
        -cp "$KAFKA_LIBS/*" kafka.Kafka "$dir/server.properties"
    ;;
  stop) stop_tracked "$pidfile" "${KAFKA_STOP_TIMEOUT:-30}" ;;
  kill) kill_tracked "$pidfile" ;;
  status) pid_alive "$pidfile" ;;
  *) die "unknown command $cmd" ;;
esac
