#!/usr/bin/env bash
# Benchmark: the dashboard's freshness, from an event's production to its effect on an open
# page, at a steady rate with several pages open (real chromium, crates/dashboard/e2e/
# freshness.mjs), beside the baseline measured in the same run: analytics' own freshness
# (Kafka timestamp to durable aggregate, its analytics_freshness_seconds). Also the
# dashboard's CPU and peak RSS. Probes: twice a second a product_viewed of a product named
# after its production time, through Kafka's console producer, among the simulator's load;
# the dashboard lists every product (--top 100000), so a probe shows once it is counted.
# One run per number of open pages in DASH_PAGES (default: 1, then 10), each on a fresh
# analytics and emulator: the freshness one page sees, and what ten pages cost.
#   DASH_RATE=2000 DASH_SECONDS=60 DASH_PAGES="1 10" DASH_PUSH_SECONDS=2 DASH_WARM_SECONDS=45 scripts/bench-dashboard.sh
set -euo pipefail
PAGES="${DASH_PAGES:-1 10}"
if [[ $PAGES == *" "* ]]; then
  for pages in $PAGES; do DASH_PAGES=$pages "$0"; done
  exit 0
fi
source "$(dirname "$0")/lib/kafka.sh"
source "$(dirname "$0")/lib/bench.sh"
cd "$REPO_ROOT"

RATE="${DASH_RATE:-2000}"
SECONDS_LIVE="${DASH_SECONDS:-60}"
PUSH="${DASH_PUSH_SECONDS:-2}"
WARM_SECONDS="${DASH_WARM_SECONDS:-45}"
RUN="dash-$(date +%s)"
WORK="$LOCAL_DIR/bench-dashboard"
ADMIN_ADDR=127.0.0.1:9466
DASH_ADDR=127.0.0.1:4010
bench_setup
log "building (release): simulator, analytics, dashboard"
cargo build --release --quiet -p simulator -p analytics -p dashboard
fresh_emulator
# Warm-up, as in bench-analytics: the brokers, the emulator and analytics at the same rate on
# a topic and project of their own (runs right after the cluster starts were seen to fall
# behind for minutes).
new_topic "$RUN-warm"
log "warm-up: simulator and analytics at $RATE events/s for ${WARM_SECONDS}s"
GCLOUD_PROJECT=$RUN-warm EVENTS_TOPIC=$RUN-warm DLQ_TOPIC=$RUN-warm-dlq ANALYTICS_GROUP=$RUN-warm ANALYTICS_ADMIN_ADDR=$ADMIN_ADDR \
  start_analytics "$WORK/analytics.pid" "$WORK/analytics-warm.log" admin
target/release/simulator --topic "$RUN-warm" --users 1000 --rate "$RATE" --duration "${WARM_SECONDS}s" \
  --progress-seconds 3600 2> "$WORK/sim-warm.txt"
stop_tracked "$WORK/analytics.pid" 60
new_topic "$RUN"
GCLOUD_PROJECT=$RUN EVENTS_TOPIC=$RUN DLQ_TOPIC=$RUN-dlq ANALYTICS_GROUP=$RUN ANALYTICS_ADMIN_ADDR=$ADMIN_ADDR \
  start_analytics "$WORK/analytics.pid" "$WORK/analytics.log" admin
GCLOUD_PROJECT=$RUN DASHBOARD_ADDR=$DASH_ADDR DASHBOARD_ANALYTICS_ADMIN=$ADMIN_ADDR DASHBOARD_PUSH_SECONDS=$PUSH \
  start_tracked "$WORK/dashboard.pid" target/release/dashboard "$WORK/dashboard.log" target/release/dashboard --top 100000
wait_tcp "${DASH_ADDR%:*}" "${DASH_ADDR#*:}" 30 || die "the dashboard did not start"

# probes: a new session each, its product named after its production time (ms).
template=$(tr -d '\n' < crates/events/tests/golden/product_viewed.json)
probes() {
  python3 -u -c '
import json, sys, time, uuid, datetime
e = json.loads(sys.argv[1]); end = time.time() + float(sys.argv[2])
while time.time() < end:
    ms = int(time.time() * 1000); session = str(uuid.uuid4())
    e["event_id"] = str(uuid.uuid4()); e["session_id"] = session
    e["timestamp"] = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    e["parameters"]["product"]["id"] = "probe-%d" % ms; e["parameters"]["product"]["name"] = "probe %d" % ms
    print(session + "|" + json.dumps(e))
    time.sleep(0.5)' "$template" "$((SECONDS_LIVE + 20))"
}
log "load: $RATE events/s for ${SECONDS_LIVE}s (+10 s warm-up), probes twice a second, $PAGES pages open, a push at the latest every ${PUSH}s"
target/release/simulator --topic "$RUN" --users 1000 --rate "$RATE" --duration "$((SECONDS_LIVE + 20))s" \
  --progress-seconds 3600 2> "$WORK/sim.txt" &
sim=$!
probes | kafka_java org.apache.kafka.tools.ConsoleProducer --bootstrap-server "$(bootstrap_servers)" \
  --command-config "$ADMIN_PROPERTIES" --topic "$RUN" --reader-property parse.key=true --reader-property "key.separator=|" \
  --command-property linger.ms=0 > "$WORK/probes.log" 2>&1 &
producer=$!
sleep 10
# CPU seconds of the browser's processes, and of the others sharing the two cores.
browser_cpu() { ps -C chromium,chrome,headless_shell -o times= 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }
cpus() { echo "$(cpu_of "$WORK/dashboard.pid") $(cpu_of "$WORK/analytics.pid") $(cpu_of "$LOCAL_DIR/firestore/pid") $(browser_cpu)"; }
node crates/dashboard/e2e/freshness.mjs "http://$DASH_ADDR/" "$PAGES" "$SECONDS_LIVE" > "$WORK/freshness.json" &
browser=$!
sleep 8
read -r cpu0 a0 e0 b0 <<< "$(cpus)"
sleep $((SECONDS_LIVE - 9))
read -r cpu1 a1 e1 b1 <<< "$(cpus)"
wait "$browser"
read -r dpid _ < "$WORK/dashboard.pid"
rss=$(awk '/^VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$dpid/status")
p50=$(metric "$ADMIN_ADDR" 'analytics_freshness_seconds{quantile="0.5"}')
p99=$(metric "$ADMIN_ADDR" 'analytics_freshness_seconds{quantile="0.99"}')
wait "$sim" || true
kill "$producer" 2>/dev/null || true

python3 - "$WORK/freshness.json" "$p50" "$p99" "$cpu0" "$cpu1" "$SECONDS_LIVE" "$rss" "$PAGES" "$RATE" "$PUSH" \
  "$((SECONDS_LIVE - 9))" "$a0" "$a1" "$e0" "$e1" "$b0" "$b1" <<'PY'
import json, sys
f = json.load(open(sys.argv[1]))
a50, a99, c0, c1, secs, rss, pages, rate, push, window, a0, a1, e0, e1, b0, b1 = sys.argv[2:]
secs = window
fmt = lambda v: "?" if v in (None, "") else "%.2f s" % float(v)
print(f"\n== bench-dashboard (2 cores; {rate} events/s; {pages} pages open; a push at the latest every {push} s) ==")
print(f"event produced -> durable aggregate (analytics, the baseline)  p50 {fmt(a50)}  p99 {fmt(a99)}")
print(f"event produced -> shown on the page (the dashboard)           p50 {fmt(f['p50'])}  p99 {fmt(f['p99'])}  max {fmt(f['max'])}  ({f['samples']} probes, target p99 < 3 s)")
if f["p99"] is not None and a99 not in ("", None):
    print(f"the page adds                                                 p50 {float(f['p50']) - float(a50):.2f} s  p99 {float(f['p99']) - float(a99):.2f} s")
cpu = float(c1) - float(c0)
print(f"dashboard CPU {cpu:.1f} s over {secs} s ({100 * cpu / float(secs):.1f}% of one core), peak RSS {rss} MiB, {f['pushes']} pushes seen by one page")
w = float(window)
share = lambda x0, x1: f"{100 * (float(x1) - float(x0)) / w:.0f}%"
print(f"CPU over {window} s, in one core's worth: analytics {share(a0, a1)}, emulator {share(e0, e1)}, the browser's {pages} pages {share(b0, b1)} (2 cores: 200%)")
PY
