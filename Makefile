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
fuzz:
	$(GO) test ./engine -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME)
	$(GO) test ./steps/csvclean -run '^$$' -fuzz '^FuzzCSVClean$$' -fuzztime $(FUZZTIME)
	$(GO) test ./steps/gutenberg -run '^$$' -fuzz '^FuzzGutenbergChunk$$' -fuzztime $(FUZZTIME)
	$(GO) test ./ml/safetensors -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)
	$(GO) test ./ml/config -run '^$$' -fuzz '^FuzzConfig$$' -fuzztime $(FUZZTIME)
	$(GO) test ./ml/tokenizer -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s
	$(GO) test ./ml/tokenizer -run '^$$' -fuzz '^FuzzEncodeDecode$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s

bench: build
	$(GO) build -tags mlbuild_nogcs,mlbuild_noazure -o $(BIN)-lean ./cmd/mlbuild
	$(GO) run ./bench -mlbuild $(BIN) -lean $(BIN)-lean $(BENCHFLAGS)

clean:
	rm -rf bin build .mlbuild
