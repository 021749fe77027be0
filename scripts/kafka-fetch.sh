#!/usr/bin/env bash
# Fetch the pinned Apache Kafka jars (broker, tools, log4j2 binding) from Maven Central into
# a cache outside git. Idempotent: does nothing when the cache is complete.
set -euo pipefail
source "$(dirname "$0")/lib/kafka.sh"

if [[ -f $KAFKA_LIBS/.complete ]]; then exit 0; fi
command -v java >/dev/null || die "java 17+ is required to run Kafka"

log "fetching Kafka $KAFKA_VERSION from Maven Central into $KAFKA_LIBS"
maven_fetch "$KAFKA_LIBS" "org.apache.kafka:kafka_$KAFKA_SCALA_VERSION:$KAFKA_VERSION" \
  "org.apache.kafka:kafka-tools:$KAFKA_VERSION" \
  "org.apache.logging.log4j:log4j-slf4j-impl:$LOG4J_VERSION" \
  || die "maven could not fetch Kafka $KAFKA_VERSION"
for jar in "kafka_$KAFKA_SCALA_VERSION-$KAFKA_VERSION.jar" "kafka-tools-$KAFKA_VERSION.jar" "log4j-slf4j-impl-$LOG4J_VERSION.jar"; do
  [[ -f $KAFKA_LIBS/$jar ]] || die "fetched libs lack $jar"
done
touch "$KAFKA_LIBS/.complete"
log "Kafka $KAFKA_VERSION ready ($(ls "$KAFKA_LIBS" | wc -l) jars)"
