#!/usr/bin/env bash
# Deploy on Kubernetes with Strimzi: install the operator pinned in config/kafka/cluster.conf
# (STRIMZI_VERSION) into the `ecommerce` namespace, apply k8s/ in order, wait for each stage,
# and print how to watch the pipeline. Needs kubectl pointed at a cluster, and the images
# (make docker-build; load or push them where the cluster pulls from).
#   STRIMZI_VERSION=1.2.0 scripts/k8s-start.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib/common.sh"
source "$REPO_ROOT/config/kafka/cluster.conf"
command -v kubectl >/dev/null || die "kubectl not found"
NS=ecommerce
K8S="$REPO_ROOT/k8s"
OPERATOR_URL="https://github.com/strimzi/strimzi-kafka-operator/releases/download/$STRIMZI_VERSION/strimzi-cluster-operator-$STRIMZI_VERSION.yaml"

kubectl apply -f "$K8S/00-namespace.yaml"
log "installing the Strimzi $STRIMZI_VERSION operator (watching namespace $NS)"
curl -fsSL "$OPERATOR_URL" | sed "s/namespace: .*/namespace: $NS/" | kubectl -n "$NS" apply -f -
kubectl -n "$NS" rollout status deployment/strimzi-cluster-operator --timeout=300s

log "Kafka: 3 KRaft nodes, TLS + SCRAM-SHA-512 listener, simple authorization"
kubectl apply -f "$K8S/10-kafka.yaml"
kubectl -n "$NS" wait kafka/ecommerce --for=condition=Ready --timeout=900s

log "topics and users (ACLs from config/kafka/acls.conf)"
kubectl apply -f "$K8S/20-topics.yaml" -f "$K8S/30-users.yaml"
kubectl -n "$NS" wait kafkatopic --all --for=condition=Ready --timeout=300s
kubectl -n "$NS" wait kafkauser --all --for=condition=Ready --timeout=300s

log "services and network policies"
kubectl apply -f "$K8S/40-services.yaml" -f "$K8S/50-network-policies.yaml"
kubectl -n "$NS" rollout status deployment/simulator --timeout=300s
kubectl -n "$NS" rollout status deployment/analytics --timeout=300s

cat <<HELP
The pipeline runs. Watch it:
  kubectl -n $NS logs -f deployment/analytics
  kubectl -n $NS port-forward svc/analytics-admin 9464 && curl -s localhost:9464/metrics
Attack it (fails if any attack succeeds):
  kubectl -n $NS create configmap impostor-ca --from-file=ca.crt=certs/impostor-ca.crt
  kubectl apply -f k8s/attacker/attacker-job.yaml && kubectl -n $NS logs -f job/attacker
HELP
