"""The deployment files agree with config/kafka (the source of truth), and each validator
that scripts/validate-deploy.sh runs really rejects a broken file, so a silently skipped
validation cannot pass. Run by scripts/validate-deploy.sh (in `make test`)."""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KAFKA = ROOT / "config" / "kafka"
BIN = Path(sys.executable).parent


def conf():
    """cluster.conf's defaults, with ${VAR:-default} taken as the default."""
    out = {}
    for line in (KAFKA / "cluster.conf").read_text().splitlines():
        m = re.match(r"^([A-Z_]+)=\$\{\1:-(.*)\}$", line.strip())
        if m:
            out[m.group(1)] = m.group(2)
    return out


def table(name):
    values = conf()
    rows = []
    for line in (KAFKA / name).read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        rows.append([re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], w) for w in line.split()])
    return rows


def docs(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def k8s(kind):
    return [d for f in sorted((ROOT / "k8s").rglob("*.yaml")) for d in docs(f) if d["kind"] == kind]


# The pinned Strimzi release's CRDs and parent POM (scripts/strimzi-crds.sh, run by
# scripts/validate-deploy.sh, which sets this).
STRIMZI_DIR = Path(os.environ["STRIMZI_DIR"])
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


# --- the source of truth ----------------------------------------------------------------

def test_compose_brokers_run_the_native_kafka_version_from_the_rendered_source_of_truth():
    version = conf()["KAFKA_VERSION"]
    brokers = [n for n in SERVICES if re.fullmatch(r"kafka-\d", n)]
    assert len(brokers) == int(conf()["KAFKA_NODES"]) == 3
    for name in brokers + ["kafka-init"]:
        assert SERVICES[name]["image"] == f"apache/kafka:${{KAFKA_VERSION:-{version}}}"
    for name in brokers:
        n = name.split("-")[1]
        assert SERVICES[name]["command"] == ["/bin/sh", f"/rendered/kafka/node-{n}/start.sh"]
        assert SERVICES[name]["depends_on"]["kafka-config"]["condition"] == "service_completed_successfully"
    # kafka-config renders config/kafka with the native scripts' own functions.
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert "COPY config/kafka config/kafka" in dockerfile
    assert "scripts/compose-render.sh" in dockerfile
    render = (ROOT / "scripts" / "compose-render.sh").read_text()
    assert "render_broker_properties" in render and "bootstrap_calls" in render


def test_no_kafka_port_is_published_and_nothing_is_plaintext():
    for name, svc in SERVICES.items():
        if name.startswith("kafka-") and name != "kafka-ui":
            assert "ports" not in svc, f"{name} publishes a Kafka port"
    lines = (ROOT / "docker-compose.yml").read_text().splitlines()
    config = "\n".join(l for l in lines if not l.lstrip().startswith("#"))
    assert "PLAINTEXT" not in config.upper()
    props = (KAFKA / "broker.properties").read_text()
    protocols = re.search(r"^listener.security.protocol.map=(.*)$", props, re.M).group(1)
    assert all(p.split(":")[1] in ("SASL_SSL", "SSL") for p in protocols.split(","))


def test_compose_services_are_replicated_healthy_limited_and_secret_free():
    for name in ("simulator", "analytics"):
        svc = SERVICES[name]
        assert svc["restart"] == "unless-stopped"
        assert "${" in str(svc["deploy"]["replicas"]) and svc["deploy"]["replicas"].endswith(":-2}")
        assert svc["deploy"]["resources"]["limits"]["memory"]
        assert svc["depends_on"]["kafka-init"]["condition"] == "service_completed_successfully"
        env = svc["environment"]
        assert env["KAFKA_SASL_PASSWORD_FILE"].startswith("/run/secrets/")
        assert "KAFKA_SASL_PASSWORD" not in env
    assert "healthcheck" in SERVICES["analytics"]
    for secret in COMPOSE["secrets"].values():
        assert "file" in secret, "secrets come from files made by make init"
    assert SERVICES["kafka-ui"]["ports"] == ["${KAFKA_UI_PORT:-8888}:8080"]
    assert SERVICES["attacker"]["profiles"] == ["attacker"]


def test_the_compose_dashboard_is_published_on_loopback_only_and_healthy():
    svc = SERVICES["dashboard"]
    assert svc["ports"] == ["127.0.0.1:${DASHBOARD_PORT:-4000}:4000"]
    assert svc["read_only"] is True and "healthcheck" in svc
    assert svc["environment"]["DASHBOARD_ANALYTICS_ADMIN"] == "analytics:9464"
    assert svc["secrets"] == ["gcp_credentials"], "no Kafka credential: it reads Firestore only"


GRAFANA = ROOT / "config" / "grafana"
METRIC = re.compile(r"\b(analytics_[a-z_]+)")


def grafana_metrics():
    """Every analytics metric the pipeline dashboard's panels query."""
    dashboard = json.loads((GRAFANA / "dashboards" / "pipeline.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    return dashboard, {m for e in exprs for m in METRIC.findall(e)}


def test_monitoring_is_provisioned_and_queries_only_what_analytics_exports():
    dashboard, metrics = grafana_metrics()
    (source,) = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert source["url"] == "http://prometheus:9090" and source["type"] == "prometheus"
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
        assert panel["targets"], panel["title"]
    (provider,) = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "pipeline.yml").read_text())["providers"]
    assert "./config/grafana/dashboards:" + provider["options"]["path"] + ":ro" in SERVICES["grafana"]["volumes"]
    assert undeclared(metrics) == set()
    assert len(metrics) >= 8
    scrape = yaml.safe_load((ROOT / "config" / "prometheus" / "prometheus.yml").read_text())["scrape_configs"]
    (sd,) = next(c for c in scrape if c["job_name"] == "analytics")["dns_sd_configs"]
    assert sd["names"] == ["analytics"] and sd["port"] == 9464
    for name in ("prometheus", "grafana"):
        assert SERVICES[name]["profiles"] == ["monitoring"]
        assert all(p.startswith("127.0.0.1:") for p in SERVICES[name]["ports"])
    env = SERVICES["grafana"]["environment"]
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer" and env["GF_AUTH_DISABLE_LOGIN_FORM"] == "true"


def undeclared(metrics):
    """The metrics analytics does not export: its /metrics is rendered in metrics.rs (the live
    /metrics is checked by the compose rehearsal); a summary's _sum and _count belong to its
    family."""
    declared = set(METRIC.findall((ROOT / "crates" / "analytics" / "src" / "metrics.rs").read_text()))
    return {m for m in metrics if m not in declared and re.sub(r"_(sum|count)$", "", m) not in declared}


def test_the_grafana_check_sees_a_misspelt_metric():
    assert undeclared({"analytics_consumer_lag", "analytics_flush_seconds_sum"}) == set()
    assert undeclared({"analytics_consumer_lagg"}) == {"analytics_consumer_lagg"}


def test_strimzi_topics_match_topics_conf():
    want = {row[0]: row for row in table("topics.conf")}
    got = {t["metadata"]["name"]: t["spec"] for t in k8s("KafkaTopic")}
    assert set(got) == set(want)
    for name, (_, partitions, rf, configs) in want.items():
        assert got[name]["partitions"] == int(partitions)
        assert got[name]["replicas"] == int(rf)
        for kv in configs.split(","):
            key, value = kv.split("=")
            assert str(got[name]["config"][key]) == value, (name, key)


def test_strimzi_users_and_acls_equal_the_source_of_truth():
    want = {}
    for principal, resource, pattern, name, ops in table("acls.conf"):
        want.setdefault(principal, set()).add((resource, pattern, name, frozenset(ops.split(","))))
    users = [r[0] for r in table("users.conf")]
    got = {}
    for user in k8s("KafkaUser"):
        assert user["spec"]["authentication"]["type"] == "scram-sha-512"
        rules = got.setdefault(user["metadata"]["name"], set())
        for acl in user["spec"]["authorization"]["acls"]:
            r = acl["resource"]
            assert acl.get("type", "allow") == "allow"
            rules.add((r["type"], r["patternType"], r["name"], frozenset(acl["operations"])))
    assert got == want
    # admin is Strimzi's own operators there; every other user has a KafkaUser.
    assert set(got) == set(users) - {"admin"}


def test_the_pinned_strimzi_release_is_built_on_the_native_kafka_version():
    # Strimzi builds each release against the Kafka version it runs by default, so the
    # operator of k8s/ runs the brokers the native and compose clusters run.
    pom = (STRIMZI_DIR / "strimzi.pom").read_text()
    assert f"<version>{conf()['STRIMZI_VERSION']}</version>" in pom
    (kafka_version,) = re.findall(r"<kafka\.version>([^<]+)</kafka\.version>", pom)
    assert kafka_version == conf()["KAFKA_VERSION"]


def test_strimzi_cluster_matches_the_native_one():
    c = conf()
    (kafka,) = k8s("Kafka")
    spec = kafka["spec"]["kafka"]
    assert spec["version"] == c["KAFKA_VERSION"]
    assert spec["config"]["min.insync.replicas"] == int(c["MIN_INSYNC_REPLICAS"])
    assert spec["config"]["default.replication.factor"] == int(c["REPLICATION_FACTOR"])
    assert spec["authorization"]["type"] == "simple"
    for listener in spec["listeners"]:
        assert listener["tls"] is True and listener["authentication"]["type"] == "scram-sha-512"
    (pool,) = k8s("KafkaNodePool")
    assert pool["spec"]["replicas"] == int(c["KAFKA_NODES"])
    assert set(pool["spec"]["roles"]) == {"controller", "broker"}
    assert pool["spec"]["storage"]["volumes"][0]["type"] == "persistent-claim"


def test_k8s_deployments_are_replicated_probed_and_non_root():
    for dep in k8s("Deployment"):
        spec = dep["spec"]
        pod = spec["template"]["spec"]
        assert spec["replicas"] >= 2
        assert pod["securityContext"]["runAsNonRoot"] is True
        (container,) = pod["containers"]
        assert container["resources"]["limits"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        secrets = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
        if dep["metadata"]["name"] == "dashboard":
            # Firestore and the analytics admin ports only: no Kafka credential.
            assert secrets == {"gcp-credentials"}
            assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
            continue
        assert pod["terminationGracePeriodSeconds"] >= 60
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        assert env["KAFKA_SASL_PASSWORD_FILE"].startswith("/etc/kafka-user/")
        assert {"ecommerce-cluster-ca-cert", env["KAFKA_SASL_USERNAME"]} <= secrets
    analytics = next(d for d in k8s("Deployment") if d["metadata"]["name"] == "analytics")
    container = analytics["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["port"] == "admin"
    assert k8s("NetworkPolicy") and k8s("Job")


def test_env_example_lists_every_variable_of_the_compose_files_once():
    listed = re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.M)
    assert len(listed) == len(set(listed)), sorted(v for v in set(listed) if listed.count(v) > 1)
    used = set()
    for name in ("docker-compose.yml", "docker-compose.dev.yml"):
        used |= set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", (ROOT / name).read_text()))
    assert used - set(listed) == set()


def test_makefile_has_every_target_of_the_original_readme():
    makefile = (ROOT / "Makefile").read_text()
    for target in ("init", "firebase-start", "compose-dev-up", "compose-up", "kafka-up", "services-up",
                   "attacker-up", "compose-down", "kafka-down", "services-down", "attacker-down",
                   "compose-dev-down", "firebase-stop", "all-down", "docker-build", "k8s-start",
                   "demo", "test", "attack", "validate-deploy"):
        assert re.search(rf"^{re.escape(target)}:.*## ", makefile, re.M), target


def compose_service(service, **env):
    """tools/compose_service.py's view of a service of the dev stack, as a dict of arrays."""
    result = subprocess.run(
        [str(BIN / "python"), str(ROOT / "tools" / "compose_service.py"), "docker-compose.yml",
         "docker-compose.dev.yml", service],
        capture_output=True, text=True, cwd=ROOT, env={"PATH": os.environ["PATH"], **env}, check=True)
    return {line.split("=(", 1)[0]: shlex.split(line.split("=(", 1)[1][:-1]) for line in result.stdout.splitlines()}


def test_compose_service_merges_the_dev_override_and_interpolates_as_compose_does():
    analytics = compose_service("analytics", GOOGLE_APPLICATION_CREDENTIALS_FILE="/dev/null", DLQ_TOPIC="")
    env = dict(e.split("=", 1) for e in analytics["SERVICE_ENV"])
    assert env["FIRESTORE_EMULATOR_HOST"] == "firestore:8080"  # from the override
    assert env["GOOGLE_APPLICATION_CREDENTIALS"] == ""  # the override's empty value wins
    assert env["KAFKA_SASL_USERNAME"] == "analytics"  # the base file, through its anchors
    assert env["DLQ_TOPIC"] == "e-commerce-events-dlq"  # ${VAR:-default}: empty takes the default
    assert f"kafka_ca={ROOT / 'certs' / 'ca.crt'}" in analytics["SERVICE_SECRETS"]
    assert "gcp_credentials=/dev/null" in analytics["SERVICE_SECRETS"]
    assert analytics["SERVICE_HEALTH"] == ["curl", "-fsS", "http://127.0.0.1:9464/readyz"]
    simulator = compose_service("simulator", SIMULATOR_USERS="7")
    assert simulator["SERVICE_ARGS"] == ["--users", "7", "--rate", "200"]


# Variables the binaries read outside their settings (so not in --help).
READ_OUTSIDE_SETTINGS = {"RUST_LOG", "LOG_FORMAT", "FIRESTORE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS"}
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug"


def variables_read_by(binary):
    """The variables a service reads: its settings' (as its --help lists them), and the rest."""
    help_text = subprocess.run([str(TARGET / binary), "--help"], capture_output=True, text=True, check=True).stdout
    return set(re.findall(r"\[env: ([A-Z0-9_]+)", help_text)) | READ_OUTSIDE_SETTINGS


@pytest.mark.parametrize("service", ["simulator", "analytics", "dashboard", "attacker"])
def test_compose_sets_only_variables_its_services_read(service):
    known = variables_read_by(service)
    for dev in ({}, {"GOOGLE_APPLICATION_CREDENTIALS_FILE": "/dev/null"}):
        env = {e.split("=", 1)[0] for e in compose_service(service, **dev)["SERVICE_ENV"]}
        assert env - known == set(), f"{service} is given variables it does not read: {sorted(env - known)}"


def test_kubernetes_sets_only_variables_its_containers_read():
    config_maps = {c["metadata"]["name"]: set(c["data"]) for c in k8s("ConfigMap")}
    workloads = k8s("Deployment") + k8s("Job")
    assert {w["metadata"]["name"] for w in workloads} == {"simulator", "analytics", "dashboard", "attacker"}
    for workload in workloads:
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        env = {e["name"] for e in container.get("env", [])}
        for source in container.get("envFrom", []):
            env |= config_maps[source["configMapRef"]["name"]]
        unread = env - variables_read_by(container["name"])
        assert unread == set(), f"{container['name']} is given variables it does not read: {sorted(unread)}"


def test_the_variable_check_sees_a_misspelt_variable():
    assert "KAFKA_SASL_PASSWORD_FILE" in variables_read_by("simulator")
    assert "KAFKA_SASL_PASSWORD_FLIE" not in variables_read_by("simulator")


# --- every validator rejects a broken file ----------------------------------------------

def run(*args):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=ROOT)


def broken(tmp_path, source, old, new, name=None):
    text = (ROOT / source).read_text()
    assert old in text, f"{old!r} not in {source}"
    path = tmp_path / (name or Path(source).name)
    path.write_text(text.replace(old, new, 1))
    return path


def test_the_compose_validator_rejects_a_broken_compose_file(tmp_path):
    assert run(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", ROOT / "docker-compose.yml").returncode == 0
    bad = broken(tmp_path, "docker-compose.yml", "stop_grace_period: 60s", "stop_grace_period: [60]")
    result = run(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", bad)
    assert result.returncode != 0, result.stdout


def test_the_kubernetes_validator_rejects_a_broken_manifest(tmp_path):
    good = ROOT / "k8s" / "40-services.yaml"
    assert run(BIN / "kubernetes-validate", "--strict", "-k", "1.35.0", good).returncode == 0
    bad = broken(tmp_path, "k8s/40-services.yaml", "terminationGracePeriodSeconds: 90",
                 "terminationGracePeriodSecond: 90")
    result = run(BIN / "kubernetes-validate", "--strict", "-k", "1.35.0", bad)
    assert result.returncode != 0, result.stdout


def strimzi_validate(path):
    return run(BIN / "python", ROOT / "tools" / "strimzi_validate.py", STRIMZI_DIR / "crds", path)


def test_the_strimzi_validator_rejects_scram_sha_256_users(tmp_path):
    assert strimzi_validate(ROOT / "k8s" / "30-users.yaml").returncode == 0
    bad = broken(tmp_path, "k8s/30-users.yaml", "type: scram-sha-512", "type: scram-sha-256")
    result = strimzi_validate(bad)
    assert result.returncode != 0 and "'scram-sha-256' is not one of" in result.stderr, result.stderr


def test_the_strimzi_validator_rejects_unknown_fields_as_kubectl_strict_does(tmp_path):
    assert strimzi_validate(ROOT / "k8s" / "10-kafka.yaml").returncode == 0
    bad = broken(tmp_path, "k8s/10-kafka.yaml", "deleteClaim: false", "deleteClaims: false")
    result = strimzi_validate(bad)
    assert result.returncode != 0 and "'deleteClaims' was unexpected" in result.stderr, result.stderr


def test_the_strimzi_validator_rejects_an_api_version_the_release_does_not_serve(tmp_path):
    bad = broken(tmp_path, "k8s/20-topics.yaml", "kafka.strimzi.io/v1\n", "kafka.strimzi.io/v1alpha1\n")
    result = strimzi_validate(bad)
    assert result.returncode != 0 and "no schema for KafkaTopic" in result.stderr, result.stderr


def test_hadolint_rejects_a_careless_dockerfile(tmp_path):
    assert run(BIN / "hadolint", ROOT / "docker" / "Dockerfile").returncode == 0
    bad = broken(tmp_path, "docker/Dockerfile", "curl=7.88.*", "curl", name="Dockerfile")
    result = run(BIN / "hadolint", bad)
    assert result.returncode != 0 and "DL3008" in result.stdout, result.stdout
