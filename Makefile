# Thin wrappers around scripts/. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help demo dashboard test lint fmt init certs certs-regen certs-status certs-rotate secrets kafka-fetch local-up local-down local-status local-reset

help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

demo: ## The main job: cluster up, secure pipeline run, summary, everything stopped
	scripts/demo.sh

dashboard: ## The live web dashboard against the running stack (default http://127.0.0.1:4001/; make demo serves one on :4000)
	scripts/dashboard.sh

test: ## Lint, start a fresh native cluster, run all unit + integration tests, stop it
	scripts/test.sh

lint: ## rustfmt check and clippy with warnings as errors
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt: ## Format the code
	cargo fmt --all

init: certs secrets ## Generate certificates and SCRAM passwords (git-ignored)

certs: ## Create the CA and broker certificates in certs/ if missing
	scripts/certs.sh

certs-regen: ## Regenerate every certificate (restart the cluster afterwards)
	scripts/certs.sh --force

certs-status: ## Each certificate's expiry and days left (warns within 30 days; metrics in .local/kafka/certs.prom)
	scripts/certs.sh --status

certs-rotate: ## Reissue broker certificates near expiry (--all: ARGS=--all) and roll the running cluster, keeping its data
	scripts/certs-rotate.sh $(ARGS)

secrets: ## Create random SCRAM passwords in secrets/kafka/ if missing
	scripts/secrets.sh

kafka-fetch: ## Fetch the pinned Kafka jars from Maven Central into ~/.cache
	scripts/kafka-fetch.sh

local-up: ## Start the native secure 3-node cluster on 127.0.0.1 and wait until ready
	scripts/local-up.sh

local-down: ## Stop every process the native stack started
	scripts/local-down.sh

local-status: ## Show nodes, quorum and the events topic
	scripts/local-status.sh

local-reset: ## Stop the native stack and wipe its data (.local/)
	LOCAL_WIPE=1 scripts/local-down.sh

.PHONY: attack
attack: ## Run the attack suite against the native stack (started if needed); print the verdicts
	scripts/attack.sh

.PHONY: chaos
chaos: ## Chaos suite at full length, 3 seeds: faults injected under load, every aggregate checked (~6 min + release build)
	scripts/chaos.sh

.PHONY: bench-simulator
bench-simulator: ## Simulator vs Kafka's ProducerPerformance on the native cluster, and 100k-user RSS
	scripts/bench-simulator.sh

.PHONY: bench-analytics
bench-analytics: ## Analytics end to end vs Kafka's ConsumerPerformance, writes per event, RSS
	scripts/bench-analytics.sh

.PHONY: bench-scale
bench-scale: ## 1, 2 and 3 analytics instances: throughput, writes per event, hottest documents' write rates
	scripts/bench-scale.sh

.PHONY: probe-emulator
probe-emulator: ## The Firestore emulator's CPU per document and per value, for each form of document analytics writes (~4 min)
	scripts/probe-emulator.sh

.PHONY: bench-dashboard
bench-dashboard: ## Benchmark: freshness from production to an open page at 2,000 events/s with 1 and with 10 pages, beside analytics' own; the dashboard's and the browser's CPU, RSS (~8 min)
	scripts/bench-dashboard.sh

# --- Deployment (docker compose, Kubernetes); no Docker engine is needed to validate them ---
COMPOSE := docker compose -f docker-compose.yml
COMPOSE_DEV := $(COMPOSE) -f docker-compose.dev.yml

.PHONY: validate-deploy compose-rehearse docker-build kafka-up kafka-down services-up services-down monitoring-up monitoring-down compose-up compose-down compose-dev-up compose-dev-down attacker-up attacker-down firebase-start firebase-stop all-down k8s-start
validate-deploy: ## Validate compose, k8s and Dockerfile statically and against config/kafka
	scripts/validate-deploy.sh

compose-rehearse: init kafka-fetch ## Run the compose dev stack natively (brokers, init, emulator, services, attacker) and check it
	scripts/compose-rehearse.sh

docker-build: ## Build the simulator, analytics, attacker and kafka-config images
	$(COMPOSE) --profile services --profile attacker build

kafka-up: init ## docker compose: 3 secure KRaft brokers, topics/ACLs init, Kafka UI on :8888
	$(COMPOSE) up -d --wait kafka-1 kafka-2 kafka-3 kafka-ui

kafka-down: ## docker compose: stop the brokers and the UI (data volumes kept)
	$(COMPOSE) stop kafka-ui kafka-1 kafka-2 kafka-3

services-up: ## docker compose: simulator and analytics (replicated) and the dashboard (:4000) against the running brokers
	$(COMPOSE) --profile services up -d simulator analytics dashboard

services-down: ## docker compose: stop simulator, analytics and the dashboard
	$(COMPOSE) --profile services stop simulator analytics dashboard

monitoring-up: ## docker compose: Prometheus (:9090) scraping every analytics replica, Grafana (:3000) with the pipeline dashboard
	$(COMPOSE) --profile monitoring up -d prometheus grafana

monitoring-down: ## docker compose: stop Prometheus and Grafana
	$(COMPOSE) --profile monitoring stop prometheus grafana

compose-up: init ## docker compose: the full stack against real Firestore (GCLOUD_PROJECT, credentials)
	$(COMPOSE) --profile services up -d

compose-down: ## docker compose: stop and remove the full stack (volumes kept)
	$(COMPOSE) --profile services --profile attacker --profile monitoring down

compose-dev-up: init ## docker compose: the full stack against the Firestore emulator
	GOOGLE_APPLICATION_CREDENTIALS_FILE=/dev/null $(COMPOSE_DEV) --profile services up -d

compose-dev-down: ## docker compose: stop the dev stack
	GOOGLE_APPLICATION_CREDENTIALS_FILE=/dev/null $(COMPOSE_DEV) --profile services --profile attacker down

attacker-up: ## docker compose: run the attack suite against the compose stack; fails on any breach
	GOOGLE_APPLICATION_CREDENTIALS_FILE=$${GOOGLE_APPLICATION_CREDENTIALS_FILE:-/dev/null} $(COMPOSE_DEV) --profile attacker run --rm attacker all

attacker-down: ## docker compose: remove leftover attacker containers
	$(COMPOSE_DEV) --profile attacker rm -fsv attacker

firebase-start: ## Start the Firestore emulator natively on 127.0.0.1:8681 (no Docker)
	scripts/firestore-up.sh

firebase-stop: ## Stop the native Firestore emulator
	bash -c 'source scripts/lib/common.sh && stop_tracked "$$LOCAL_DIR/firestore/pid"'

all-down: local-down ## Stop everything: the native stack and, if Docker is there, the compose stack
	-command -v docker >/dev/null && GOOGLE_APPLICATION_CREDENTIALS_FILE=/dev/null $(COMPOSE_DEV) --profile services --profile attacker --profile monitoring down

k8s-start: ## Kubernetes: install the pinned Strimzi operator and apply k8s/ (needs kubectl)
	scripts/k8s-start.sh
