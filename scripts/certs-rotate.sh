#!/usr/bin/env bash
# `make certs-rotate`: keep the running native cluster's certificates valid without losing
# data. Reissues the broker certificates that expire within CERT_RENEW_DAYS (30; all of them
# with --all) from the same CA, then restarts, one at a time, each node whose served
# certificate differs from its file, waiting after each until every partition is fully
# replicated again (RF 3, min ISR 2: producers with acks=all never stop). Ends with the
# certificates' status.
set -euo pipefail
source "$(dirname "$0")/lib/kafka.sh"
here=$(dirname "$0")

if [[ ${1:-} == --all ]]; then
  for n in $(all_nodes); do "$here/certs.sh" --renew "$n"; done
else
  "$here/certs.sh"
fi

# fingerprint: the SHA-256 fingerprint of a PEM certificate on stdin.
fingerprint() { openssl x509 -noout -fingerprint -sha256 2>/dev/null | cut -d= -f2; }
served() {
  openssl s_client -connect "$(node_host "$1"):$(client_port "$1")" -servername localhost \
    -CAfile "$CERTS_DIR/ca.crt" < /dev/null 2>/dev/null | fingerprint
}

for n in $(all_nodes); do
  "$here/kafka-node.sh" status "$n" || { log "node $n is not running: it serves the new certificate when started"; continue; }
  if [[ $(served "$n") == "$(fingerprint < "$CERTS_DIR/kafka-$n.crt")" ]]; then continue; fi
  log "node $n: restarting to serve its new certificate"
  "$here/kafka-node.sh" stop "$n"
  "$here/kafka-node.sh" start "$n"
  wait_tcp "$(node_host "$n")" "$(client_port "$n")" 120 || die "node $n did not come back"
  deadline=$((SECONDS + 180))
  until [[ $(served "$n") == "$(fingerprint < "$CERTS_DIR/kafka-$n.crt")" ]] \
        && under=$(admin_tool org.apache.kafka.tools.TopicCommand --describe --under-replicated-partitions 2>/dev/null) \
        && [[ -z $under ]]; do
    (( SECONDS < deadline )) || die "node $n: partitions still under-replicated after 180s"
    sleep 2
  done
  log "node $n: serving its new certificate, every partition fully replicated"
done
"$here/certs.sh" --status
