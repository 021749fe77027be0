#!/usr/bin/env bash
# Fetch the pinned Apache Kafka jars (broker, tools, log4j2 binding) from Maven Central into
# a cache outside git. Idempotent: does nothing when the cache is complete.
set -euo pipefail
source "$(dirname "$0")/lib/kafka.sh"

if [[ -f $KAFKA_LIBS/.complete ]]; then exit 0; fi
command -v mvn >/dev/null || die "maven (mvn) is required to fetch Kafka jars"
command -v java >/dev/null || die "java 17+ is required to run Kafka"

work="$CACHE_DIR/kafka-$KAFKA_VERSION"
mkdir -p "$work"
cat > "$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.ecommerce-analytics</groupId><artifactId>kafka-libs</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_$KAFKA_SCALA_VERSION</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
  </dependencies>
</project>
POM
log "fetching Kafka $KAFKA_VERSION from Maven Central into $KAFKA_LIBS"
rm -rf "$KAFKA_LIBS.tmp"
if ! mvn -q -B -f "$work/pom.xml" dependency:copy-dependencies \
     -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS.tmp" > "$work/mvn.log" 2>&1; then
  tail -20 "$work/mvn.log" >&2
  die "maven could not fetch Kafka $KAFKA_VERSION"
fi
for jar in "kafka_$KAFKA_SCALA_VERSION-$KAFKA_VERSION.jar" "kafka-tools-$KAFKA_VERSION.jar" "log4j-slf4j-impl-$LOG4J_VERSION.jar"; do
  [[ -f $KAFKA_LIBS.tmp/$jar ]] || die "fetched libs lack $jar"
done
rm -rf "$KAFKA_LIBS" && mv "$KAFKA_LIBS.tmp" "$KAFKA_LIBS"
touch "$KAFKA_LIBS/.complete"
log "Kafka $KAFKA_VERSION ready ($(ls "$KAFKA_LIBS" | wc -l) jars)"
