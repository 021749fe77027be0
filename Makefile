# Thin wrappers around scripts/. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help demo test lint fmt init certs certs-regen secrets kafka-fetch local-up local-down local-status local-reset

help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

demo: ## The main job: cluster up, secure pipeline run, summary, everything stopped
	scripts/demo.sh

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

.PHONY: bench-simulator
bench-simulator: ## Simulator vs Kafka's ProducerPerformance on the native cluster, and 100k-user RSS
	scripts/bench-simulator.sh

.PHONY: bench-analytics
bench-analytics: ## Analytics end to end vs Kafka's ConsumerPerformance, writes per event, RSS
	scripts/bench-analytics.sh
