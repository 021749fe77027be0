#!/usr/bin/env bash
# Generate the private CA and per-broker certificates into certs/ (git-ignored).
#   scripts/certs.sh          create what is missing
#   scripts/certs.sh --force  regenerate everything (restart the cluster afterwards)
# Outputs: ca.crt (PEM, for librdkafka and the brokers' truststore), ca.key (encrypted with
# ca.password), kafka-N.p12 (broker keystores, password in keystore.password), and an
# unrelated impostor CA (impostor-ca.crt) for the security suite's "wrong trust" attacks.
set -euo pipefail
source "$(dirname "$0")/lib/kafka.sh"

DAYS="${CERT_DAYS:-365}"
# Host names the brokers are reached by: native (localhost, 127.0.0.1) and compose (kafka-N).
EXTRA_SANS="${CERT_EXTRA_SANS:-}"

if [[ ${1:-} == --force ]]; then rm -rf "$CERTS_DIR"; fi
mkdir -p "$CERTS_DIR" && chmod 700 "$CERTS_DIR"
cd "$CERTS_DIR"
umask 077

new_ca() { # new_ca PREFIX CN
  local prefix=$1 cn=$2
  random_secret > "$prefix.password"
  openssl req -x509 -newkey rsa:3072 -sha256 -days "$DAYS" -subj "/O=ecommerce-analytics/CN=$cn" \
    -keyout "$prefix.key" -passout "file:$prefix.password" -out "$prefix.crt" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  chmod 644 "$prefix.crt"
}

if [[ ! -f ca.crt ]]; then
  log "creating CA"
  new_ca ca "ecommerce-analytics local CA"
  rm -f kafka-*.p12
fi
[[ -f impostor-ca.crt ]] || new_ca impostor-ca "impostor CA"
[[ -f keystore.password ]] || random_secret > keystore.password

for n in $(all_nodes); do
  [[ -f kafka-$n.p12 ]] && continue
  log "creating certificate for kafka-$n"
  sans="DNS:localhost,IP:127.0.0.1,DNS:kafka-$n,DNS:kafka-$n.kafka${EXTRA_SANS:+,$EXTRA_SANS}"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kafka-$n" -keyout "kafka-$n.key" -out "kafka-$n.csr" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n' \
    "$sans" > "kafka-$n.ext"
  openssl x509 -req -in "kafka-$n.csr" -CA ca.crt -CAkey ca.key -passin file:ca.password -CAcreateserial \
    -days "$DAYS" -sha256 -extfile "kafka-$n.ext" -out "kafka-$n.crt" 2>/dev/null
  openssl pkcs12 -export -in "kafka-$n.crt" -inkey "kafka-$n.key" -certfile ca.crt -name "kafka-$n" \
    -out "kafka-$n.p12" -passout file:keystore.password
  rm -f "kafka-$n.csr" "kafka-$n.ext" "kafka-$n.key"
  openssl verify -CAfile ca.crt "kafka-$n.crt" >/dev/null || die "kafka-$n.crt does not verify"
done
log "certificates ready in $CERTS_DIR"
