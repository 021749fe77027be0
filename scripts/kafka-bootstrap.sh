#!/usr/bin/env bash
# Create the topics and ACLs of config/kafka/{topics,acls}.conf on a running cluster, as the
# admin super user. Idempotent: existing topics are left alone, ACLs are set-like.
set -euo pipefail
source "$(dirname "$0")/lib/kafka.sh"

while read -r tool args; do
  # shellcheck disable=SC2086 # the arguments are space-separated words without spaces
  case $tool in
    topics) admin_tool org.apache.kafka.tools.TopicCommand $args >/dev/null ;;
    acls) admin_tool org.apache.kafka.tools.AclCommand $args >/dev/null ;;
  esac
  log "$tool: $args"
done < <(bootstrap_calls)

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
