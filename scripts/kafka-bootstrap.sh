#!/usr/bin/env bash
# Create the topics and ACLs of config/kafka/{topics,acls}.conf on a running cluster, as the
# admin super user. Idempotent: existing topics are left alone, ACLs are set-like.
set -euo pipefail
source "$(dirname "$0")/lib/kafka.sh"

while read -r topic partitions rf configs; do
  args=(--create --if-not-exists --topic "$topic" --partitions "$partitions" --replication-factor "$rf")
  IFS=, read -ra kvs <<< "$configs"
  for kv in "${kvs[@]}"; do args+=(--config "$kv"); done
  admin_tool org.apache.kafka.tools.TopicCommand "${args[@]}" >/dev/null
  log "topic $topic: $partitions partitions, RF $rf, $configs"
done < <(expand_table topics.conf)

acl_args=()
while read -r principal resource pattern name operations; do
  args=(--add --allow-principal "User:$principal" --resource-pattern-type "$pattern" "--$resource" "$name")
  IFS=, read -ra ops <<< "$operations"
  for op in "${ops[@]}"; do args+=(--operation "$op"); done
  admin_tool org.apache.kafka.tools.AclCommand "${args[@]}" >/dev/null
  log "acl: User:$principal may $operations $resource $name"
done < <(expand_table acls.conf)

# Create the group coordinator's internal topic now, as the super user, rather than on the
# first FindCoordinator of an application principal (which would race its first join).
admin_tool org.apache.kafka.tools.consumer.group.ConsumerGroupCommand --describe --group "$ANALYTICS_GROUP" >/dev/null 2>&1 || true
for _ in $(seq 1 60); do
  admin_tool org.apache.kafka.tools.TopicCommand --describe --topic __consumer_offsets 2>/dev/null | grep -q 'PartitionCount' && break
  sleep 1
done
admin_tool org.apache.kafka.tools.TopicCommand --describe --topic __consumer_offsets 2>/dev/null | grep -q 'PartitionCount' \
  || die "__consumer_offsets was not created"
log "group coordinator ready"
