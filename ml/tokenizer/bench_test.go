package tokenizer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlbuild/mlbuild/internal/shareddata"
)

// gutenbergBooks returns the Gutenberg books of the shared data folder.
func gutenbergBooks(b testing.TB) []string {
	dir := shareddata.Path(b, "gutenberg")
	files, _ := filepath.Glob(filepath.Join(dir, "*.txt"))
	var out []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, string(data))
	}
	if len(out) == 0 {
		b.Skip("no Gutenberg books")
	}
	return out
}

// BenchmarkEncode measures encoding throughput on the Gutenberg books on
// one goroutine, without special tokens, the way refgen/bench.mjs measures
// Hugging Face's encoder: "books" encodes each book as one string, "lines"
// makes one call per line (CRLF kept). "cold" clears the per-word cache
// before every pass over the books, "warm" keeps it. Besides MB/s by the
// wall clock it reports cpu-MB/s, by the process's CPU time, which stays
// meaningful on a busy machine.
func BenchmarkEncode(b *testing.B) {
	for _, name := range []string{"mistral", "llama3"} {
		for _, mode := range []string{"books", "lines"} {
			for _, temp := range []string{"cold", "warm"} {
				b.Run(name+"/"+mode+"/"+temp, func(b *testing.B) {
					tok := realTokenizer(b, name)
					inputs := gutenbergBooks(b)
					if mode == "lines" {
						var lines []string
						for _, s := range inputs {
							lines = append(lines, strings.SplitAfter(s, "\n")...)
						}
						inputs = lines
					}
					n := 0
					for _, s := range inputs {
						n += len(s)
					}
					clearCache := func() {
						tok.model.mu.Lock()
						clear(tok.model.cache)
						tok.model.mu.Unlock()
					}
					clearCache()
					if temp == "warm" {
						for _, s := range inputs {
							tok.Encode(s, false)
						}
					}
					b.SetBytes(int64(n))
					b.ReportAllocs()
					b.ResetTimer()
					cpu0 := cpuTime()
					for i := 0; i < b.N; i++ {
						if temp == "cold" {
							clearCache()
						}
						for _, s := range inputs {
							tok.Encode(s, false)
						}
					}
					if d := cpuTime() - cpu0; d > 0 {
						b.ReportMetric(float64(n)*float64(b.N)/1e6/d.Seconds(), "cpu-MB/s")
					}
				})
			}
		}
	}
}
