// Command bench measures mlbuild beside its peers, side by side in one run,
// and prints a markdown table (docs/benchmarks.md explains the method):
//
//  1. a no-op rerun of pipelines/twainbot.hcl beside ninja running an
//     equivalent build.ninja (same steps, same input files);
//  2. no-op reruns of generated 1,000-, 10,000- and 50,000-step pipelines
//     beside ninja, with both sides' peak RSS (-noop runs these alone);
//  3. first-time hashing of a 1 GiB file beside sha256sum;
//  4. the bytes of input re-read by those no-op reruns;
//  5. teammate B's full pull of twainbot's artifacts from nginx (WebDAV PUT
//     on loopback) that teammate A filled, by `mlbuild run` and by
//     `mlbuild cache pull`, beside curl fetching the same objects;
//  6. push and pull of a 1 GiB artifact to and from that nginx, beside curl
//     uploading and downloading the same file;
//  7. tokenizer throughput on the shared Gutenberg books for the real
//     Mistral-7B and Llama-3 tokenizers, beside Hugging Face's Rust encoder
//     (npm `tokenizers`) and tokenizers.js, run by ml/tokenizer/refgen/bench.mjs;
//  8. LoRA training tokens/s and peak RSS beside PEFT on torch (lora.go,
//     peft_lora.py), on the same model, data and threads.
//
// Run it with `make bench`, or `go run ./bench -mlbuild bin/mlbuild -quick`
// for a smaller smoke run (1,000 steps, 256 MiB files); `make bench
// BENCHFLAGS=-noop` runs the no-op rows alone.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

type config struct {
	mlbuild     string // the binary under test
	pipelines   string // the repository's pipelines/ folder
	ninja       string // ninja's path; "" when it is not installed
	runs        int    // timed no-op reruns per tool
	steps       []int  // steps of each generated pipeline
	hashSize    int64  // bytes of the hashing benchmark's file
	jobs        int
	cpuprofile  string
	keep        bool   // keep the workspaces (not the big file) for a look afterwards
	tmp         string // the run's scratch folder, removed at exit
	refgen      string // ml/tokenizer/refgen, holding bench.mjs and its node_modules
	tokPasses   int    // timed warm passes of mlbuild's tokenizer benchmark
	nodePasses  int    // timed warm passes of bench.mjs's (the npm peers')
	training    bool   // only the compute and training rows
	loraOnly    bool   // only the LoRA row beside PEFT
	loraSteps   int    // timed steps of each side of the LoRA row
	loraProfile string // where mlbuild's side of the LoRA row writes a CPU profile
	noopOnly    bool   // only the no-op rows (twainbot and the generated pipelines)
	// twainbotVars is a -var-file (in the pipelines folder) for every run
	// of twainbot.hcl ("": none).
	twainbotVars string
}

func main() {
	cfg := config{jobs: runtime.NumCPU()}
	quick := flag.Bool("quick", false, "smaller run for a smoke test: 1,000 steps and a 256 MiB file")
	stepsFlag := flag.String("steps", "1000,10000,50000", "the generated pipelines' sizes, in steps (multiples of 100), comma-separated")
	flag.StringVar(&cfg.twainbotVars, "twainbot-vars", "", "run twainbot.hcl with this -var-file from the pipelines folder (ci.vars.hcl: the same steps with a tiny model, so that its cold build takes 20 s instead of many minutes; its no-op does the same work)")
	flag.BoolVar(&cfg.noopOnly, "noop", false, "only the no-op rows: twainbot.hcl and the generated pipelines beside ninja, with peak RSS (about 10 minutes on 2 CPUs, most of it the cold builds of 50,000 steps)")
	out := flag.String("out", "", "also write the results (machine line and tables, in markdown) to `FILE`")
	flag.StringVar(&cfg.mlbuild, "mlbuild", "bin/mlbuild", "the mlbuild binary to measure")
	flag.StringVar(&cfg.pipelines, "pipelines", "pipelines", "the folder holding twainbot.hcl and its data")
	flag.IntVar(&cfg.runs, "n", 10, "timed no-op reruns per tool")
	flag.StringVar(&cfg.cpuprofile, "cpuprofile", "", "write a CPU profile of an in-process no-op run of the generated pipeline to `FILE`")
	flag.StringVar(&cfg.refgen, "refgen", "ml/tokenizer/refgen", "the folder holding bench.mjs, which measures the npm tokenizers")
	flag.IntVar(&cfg.tokPasses, "tokpasses", 5, "timed warm passes over the Gutenberg books per mlbuild tokenizer benchmark")
	flag.IntVar(&cfg.nodePasses, "nodepasses", 1, "timed warm passes per npm tokenizer benchmark (each costs about 30 s on 2 CPUs, most of it tokenizers.js encoding whole books with Mistral's tokenizer)")
	flag.BoolVar(&cfg.training, "training", false, "only the numerical rows: GEMM, decoding, training throughput and qlora_train's peak memory (a few minutes)")
	flag.BoolVar(&cfg.loraOnly, "lora", false, "only the LoRA training row beside PEFT on torch (about 2 minutes)")
	flag.IntVar(&cfg.loraSteps, "lorasteps", 6, "timed training steps of each side of the LoRA row (after 2 warm-up steps)")
	flag.StringVar(&cfg.loraProfile, "loraprofile", "", "write a CPU profile of mlbuild's side of the LoRA row (its training, warm-up included) to `FILE`")
	loraChildArg := flag.String("lorachild", "", "internal: run mlbuild's side of the LoRA row with these JSON settings")
	peakRSSArg := flag.String("peakrss", "", "internal: run the command after -- and write its peak RSS to `FILE` (see peakrss.go)")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the benchmark workspaces (the big file is always removed) and print where they are")
	flag.Parse()
	if *peakRSSArg != "" {
		os.Exit(peakRSSHelper(*peakRSSArg, flag.Args()))
	}
	if *loraChildArg != "" {
		if err := loraChild(*loraChildArg); err != nil {
			fmt.Fprintln(os.Stderr, "bench -lorachild:", err)
			os.Exit(1)
		}
		return
	}
	cfg.tokPasses, cfg.nodePasses = max(cfg.tokPasses, 1), max(cfg.nodePasses, 1)
	cfg.hashSize = 1 << 30
	for _, f := range strings.Split(*stepsFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < groupSize || n%groupSize != 0 {
			fmt.Fprintf(os.Stderr, "bench: -steps %s: each size must be a multiple of %d\n", *stepsFlag, groupSize)
			os.Exit(2)
		}
		cfg.steps = append(cfg.steps, n)
	}
	if *quick {
		cfg.steps, cfg.hashSize = []int{1_000}, 256<<20
	}
	if err := run(&cfg, *out); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(cfg *config, out string) error {
	var err error
	if cfg.mlbuild, err = filepath.Abs(cfg.mlbuild); err != nil {
		return err
	}
	if _, err := os.Stat(cfg.mlbuild); err != nil && !cfg.loraOnly {
		return fmt.Errorf("no mlbuild binary at %s (build it: go build -o bin/mlbuild ./cmd/mlbuild)", cfg.mlbuild)
	}
	if cfg.pipelines, err = filepath.Abs(cfg.pipelines); err != nil {
		return err
	}
	if cfg.refgen, err = filepath.Abs(cfg.refgen); err != nil {
		return err
	}
	// The runs must use their own workspaces' caches, never the user's,
	// and no remote but the benchmark's own nginx.
	for _, v := range []string{"MLBUILD_CACHE_DIR", "MLBUILD_REMOTE"} {
		if err := os.Unsetenv(v); err != nil {
			return fmt.Errorf("unset %s: %w", v, err)
		}
	}
	if cfg.tmp, err = os.MkdirTemp("", "mlbuild-bench-"); err != nil {
		return err
	}
	removeOnSignal(cfg.tmp)
	if cfg.keep {
		defer logf("workspaces kept in %s", cfg.tmp)
	} else {
		defer os.RemoveAll(cfg.tmp)
	}

	m := describeMachine()
	loadBefore := loadavg()
	var note string
	if p, err := exec.LookPath("ninja"); err == nil {
		cfg.ninja = p
	} else {
		note = "**ninja is not installed**, so the ninja columns are empty: install it (Debian/Ubuntu: `apt-get install ninja-build`) and rerun.\n\n"
		logf("%s", note)
	}

	if cfg.loraOnly {
		return runLoRAOnly(cfg, m, out, loadBefore)
	}
	if cfg.training {
		return runTraining(cfg, m, out, loadBefore)
	}
	noop, err := benchNoops(cfg)
	if err != nil {
		return err
	}
	if cfg.noopOnly {
		report := m.markdown() + "\n" + note + renderTable(noop.rows) + "\n" + noop.text() +
			fmt.Sprintf("\nLoad average (1, 5, 15 min) before the run: %s; after: %s.\n", loadBefore, loadavg())
		fmt.Println()
		fmt.Print(report)
		if out != "" {
			return os.WriteFile(out, []byte(report), 0o644)
		}
		return nil
	}
	rows := noop.rows
	h, err := benchHash(cfg)
	if err != nil {
		return fmt.Errorf("hashing: %w", err)
	}
	rows = append(rows, h.rows()...)
	rows = append(rows, noop.bytesRows...)

	// The remote cache: nginx with WebDAV PUT on loopback, beside curl.
	curl := findCurl()
	if curl.path == "" {
		n := "**curl is not installed**, so the remote-cache rows have no peer: install it (`apt-get install curl`) and rerun.\n\n"
		note += n
		logf("%s", n)
	}
	m.curl = curl.version
	ngx, ngxNote, err := startNginx(cfg)
	if err != nil {
		return err
	}
	var storeText string
	if ngx == nil {
		note += ngxNote
		logf("%s", ngxNote)
	} else {
		m.nginx = nginxVersion()
		team, err := benchTeammates(cfg, ngx, curl)
		if err != nil {
			ngx.Stop()
			return fmt.Errorf("teammates: %w", err)
		}
		rows = append(rows, team.rows()...)
		xfer, err := benchTransfer(cfg, ngx, curl)
		ngx.Stop()
		if err != nil {
			return fmt.Errorf("%s transfer: %w", sizeName(cfg.hashSize), err)
		}
		rows = append(rows, xfer.rows(curl)...)
		storeText = "; " + xfer.contextText()
	}

	tok, err := benchTokenizer(cfg)
	if err != nil {
		return fmt.Errorf("tokenizer: %w", err)
	}
	note += tok.note
	rows = append(rows, tok.rows()...)
	if c, err := benchCompute(); err != nil {
		logf("compute: %v", err)
	} else {
		rows = append(rows, c.rows()...)
	}
	if mem, err := benchQLoRAMemory(cfg, filepath.Join(cfg.tmp, "twainbot")); err != nil {
		logf("qlora memory: %v", err)
	} else {
		rows = append(rows, mem.row())
	}
	rows, note, loraText := addLoRA(cfg, rows, note)

	report := m.markdown() + "\n" + note + renderTable(rows) + "\n" +
		fmt.Sprintf("Cold builds and the local store, for context (no target): %s%s.\n\n", noop.coldText(), storeText) +
		tok.contextText() + loraText + noop.breakdownText() +
		fmt.Sprintf("\nLoad average (1, 5, 15 min) before the run: %s; after: %s.\n", loadBefore, loadavg())
	fmt.Println()
	fmt.Print(report)
	if out != "" {
		if err := os.WriteFile(out, []byte(report), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// removeOnSignal removes dir (which holds the big file of the hashing
// benchmark) when the run is interrupted.
func removeOnSignal(dir string) {
	c := make(chan os.Signal, 1)
	signal.Notify(c, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-c
		os.RemoveAll(dir)
		fmt.Fprintln(os.Stderr, "bench: interrupted; removed", dir)
		os.Exit(130)
	}()
}

// logf reports progress on stderr, so that stdout holds only the results.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}
