# mlbuild's everyday commands. Only Go (and make) are needed; `make bench`
# also uses ninja (Debian: ninja-build) and sha256sum for its comparisons.

GO      ?= go
BIN     ?= bin/mlbuild
PIPELINE ?= pipelines/twainbot.hcl

.PHONY: build run test fuzz bench vet lint fmt clean

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

test: vet lint
	$(GO) test -count=1 ./...

# Each fuzz target for a while (FUZZTIME=30s by default).
FUZZTIME ?= 30s
# cache/remote's targets build without the GCS and Azure drivers: they do
# not need them, and with their instrumented code the fuzzer's progress
# lines stall at 0/sec (golang/go#51484). FuzzLoadCheckpoint's lines stall
# the same way, though it runs (about 700 inputs a second on two cores).
FUZZ_REMOTE_TAGS = mlbuild_nogcs,mlbuild_noazure
fuzz:
	$(GO) test ./engine -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME)
	$(GO) test ./steps/csvclean -run '^$$' -fuzz '^FuzzCSVClean$$' -fuzztime $(FUZZTIME)
	$(GO) test ./steps/gutenberg -run '^$$' -fuzz '^FuzzGutenbergChunk$$' -fuzztime $(FUZZTIME)
	$(GO) test ./ml/safetensors -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)
	$(GO) test ./ml/config -run '^$$' -fuzz '^FuzzConfig$$' -fuzztime $(FUZZTIME)
	$(GO) test ./ml/tokenizer -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s
	$(GO) test ./ml/tokenizer -run '^$$' -fuzz '^FuzzEncodeDecode$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s
	$(GO) test ./engine -run '^$$' -fuzz '^FuzzVar$$' -fuzztime $(FUZZTIME)
	$(GO) test ./engine/lockfile -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)
	$(GO) test ./cache -run '^$$' -fuzz '^FuzzMaterializeTree$$' -fuzztime $(FUZZTIME)
	$(GO) test -tags $(FUZZ_REMOTE_TAGS) ./cache/remote -run '^$$' -fuzz '^FuzzParseAction$$' -fuzztime $(FUZZTIME)
	$(GO) test -tags $(FUZZ_REMOTE_TAGS) ./cache/remote -run '^$$' -fuzz '^FuzzTreeManifest$$' -fuzztime $(FUZZTIME)
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
	$(GO) build -tags mlbuild_nogcs,mlbuild_noazure -o $(BIN)-lean ./cmd/mlbuild
	$(GO) run ./bench -mlbuild $(BIN) -lean $(BIN)-lean $(BENCHFLAGS)

clean:
	rm -rf bin build .mlbuild
