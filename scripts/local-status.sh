#!/usr/bin/env bash
# Show the native cluster: node processes, quorum, topics. Exit 1 if a node is down.
set -euo pipefail
source "$(dirname "$0")/lib/kafka.sh"
here=$(dirname "$0")

down=0
for n in $(all_nodes); do
  if "$here/kafka-node.sh" status "$n"; then
    read -r pid _ < "$(node_pidfile "$n")"
    echo "node $n: up (pid $pid, client port $(client_port "$n"))"
  else
    echo "node $n: down"; down=1
  fi
done
if (( down == 0 )); then
  admin_tool org.apache.kafka.tools.MetadataQuorumCommand describe --status 2>/dev/null \
    | grep -E 'LeaderId|CurrentVoters|HighWatermark' || true
  admin_tool org.apache.kafka.tools.TopicCommand --describe --topic "$EVENTS_TOPIC" 2>/dev/null | head -1 || true
fi
exit $down
