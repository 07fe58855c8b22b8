# mmablate — see README.md. Two commands do all set-up on a fresh Debian machine:
#   make demo   the main job
#   make test   every test
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
GO ?= go
BIN := bin/mmablate
FUZZTIME ?= 5s
# Benchmarks: override with e.g. BENCH=Decode BENCHTIME=3s.
BENCH ?= .
BENCHTIME ?= 1s

.PHONY: all deps deps-test build build-cuda test test-gpu test-go fuzz bench lint demo demo-full clean

all: build

deps: ## Debian packages the build needs (OpenBLAS, libjpeg-turbo), installed if missing
	@scripts/apt-deps.sh build

deps-test: ## plus what the tests need (PyTorch for the parity tests)
	@scripts/apt-deps.sh test

build: deps
	$(GO) build -o $(BIN) ./cmd/mmablate

# The GPU build: cgo-free (pure-Go BLAS for what stays on the CPU), loads the
# NVIDIA driver, cuBLAS and NVRTC at run time; runs on any Linux x86-64 host
# with the driver, no CUDA toolkit or OpenBLAS needed.
build-cuda:
	CGO_ENABLED=0 $(GO) build -o bin/mmablate-cuda ./cmd/mmablate

# GPU parity tests (CUDA backend vs the CPU engine); they skip, printing why,
# where there is no GPU.
test-gpu:
	CGO_ENABLED=0 $(GO) test -count=1 -v -run 'Parity|Flash|Open|Rejects|LtMatches|BiasEpilogue|ColumnSums|RMSNormBackward|ConvColumns' ./models/engine/cuda
	CGO_ENABLED=0 $(GO) test -count=1 -v -run 'TestGPU|TestResumeOnAnotherDevice|TestFeeder' ./experiments

test: deps-test lint test-go fuzz

# The Slurm integration tests start a one-node cluster on this machine
# (scripts/slurm-local.sh, as root); outside CI, MMABLATE_SLURM_TEST=0 skips them.
test-go:
	MMABLATE_SLURM_TEST=$${MMABLATE_SLURM_TEST:-1} $(GO) test -timeout 30m ./...

fuzz:
	FUZZTIME=$(FUZZTIME) scripts/fuzz-short.sh

bench: build
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) ./...
	$(BIN) bench data
	$(BIN) bench train --peer pytorch

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

demo: build ## the quickstart sweep (resolution × image tokens × connector, 2 seeds) and its report, ≈10 min on 2 cores
	scripts/demo.sh quick

demo-full: build ## quickstart plus the four example ablations of ablations/examples and their reports, ≈30 min on 2 cores
	scripts/demo.sh full

clean:
	rm -rf bin
