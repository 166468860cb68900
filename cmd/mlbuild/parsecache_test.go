package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mlbuild/mlbuild/engine"
)

// generatedPipeline writes the bench's generated pipeline of n steps
// (bench/gen.go) under dir: in/NNNNN.csv and the steps, in parts files
// (large.hcl for one, else the folder large/ of part files, each a group's
// steps, whose sources are then ../in/NNNNN.csv).
func generatedPipeline(t *testing.T, dir string, n, parts int) string {
	t.Helper()
	files := make([]strings.Builder, parts)
	prefix := ""
	if parts > 1 {
		prefix = "../"
	}
	file := 0
	for g := range n / 100 {
		b := &files[g*parts/(n/100)]
		var outs []string
		for range 99 {
			file++
			name := fmt.Sprintf("in/%05d.csv", file)
			writeFile(t, filepath.Join(dir, name), fmt.Sprintf("title\nArea Man Number %d Reports Build Finished Before Lunch\n", file))
			fmt.Fprintf(b, "step \"csv_clean\" \"c%05d\" {\n  source = [%q]\n}\n\n", file, prefix+name)
			outs = append(outs, fmt.Sprintf("csv_clean.c%05d.output", file))
		}
		fmt.Fprintf(b, "step \"split\" \"s%03d\" {\n  inputs = [\n    %s,\n  ]\n}\n\n", g+1, strings.Join(outs, ",\n    "))
	}
	if parts == 1 {
		writeFile(t, filepath.Join(dir, "large.hcl"), files[0].String())
		return "large.hcl"
	}
	for i := range files {
		writeFile(t, filepath.Join(dir, "large", fmt.Sprintf("part%d.hcl", i)), files[i].String())
	}
	return "large"
}

// Commands give the same output whether they parse a pipeline or decode
// it from the parse cache: plan --json (every step's key, after a run),
// graph and explain, for a generated pipeline in one file and in a
// folder; cache gc removes the entries no load used for its age.
func TestParseCacheGivesTheSameResults(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("MLBUILD_CACHE_DIR", "")
	parseDir := filepath.Join(dir, ".mlbuild", "cache", engine.ParseCacheDirName)
	entries := func() []string {
		t.Helper()
		ms, _ := filepath.Glob(filepath.Join(parseDir, "*"))
		return ms
	}
	for _, target := range []string{generatedPipeline(t, dir, 1000, 1), generatedPipeline(t, dir, 1000, 2)} {
		if out, stderr, code, err := cli("run", target, "--json"); code != 0 {
			t.Fatalf("run %s: %v\n%s\n%s", target, err, out, stderr)
		}
		for _, args := range [][]string{{"plan", target, "--json"}, {"graph", target, "--format", "json"}, {"explain", target, "split.s007"}} {
			// Parsed (the cache emptied), then decoded.
			if err := os.RemoveAll(parseDir); err != nil {
				t.Fatal(err)
			}
			parsed, stderr, code, err := cli(args...)
			if code != 0 {
				t.Fatalf("%v: %v\n%s", args, err, stderr)
			}
			if len(entries()) == 0 {
				t.Fatalf("%v cached nothing", args)
			}
			decoded, stderr, code, err := cli(args...)
			if code != 0 {
				t.Fatalf("%v from the cache: %v\n%s", args, err, stderr)
			}
			if decoded != parsed {
				t.Fatalf("%v: output from the parse cache differs:\n%s\nparsed:\n%s", args, decoded, parsed)
			}
			if args[0] == "plan" && strings.Count(parsed, `"key":"`) != 1000 {
				t.Fatalf("plan --json has %d keys, want 1000", strings.Count(parsed, `"key":"`))
			}
		}
	}
	if n := len(entries()); n != 2 {
		t.Fatalf("%d entries, want 2 (the folder's two files)", n)
	}
	// gc keeps entries in use and removes the others.
	old := time.Now().Add(-engine.ParseCacheMaxAge - time.Hour)
	if err := os.Chtimes(entries()[0], old, old); err != nil {
		t.Fatal(err)
	}
	out, stderr, code, err := cli("cache", "gc")
	if code != 0 || !strings.Contains(out, "gc removed 1 parse cache entries") {
		t.Fatalf("cache gc: %v\n%s\n%s", err, out, stderr)
	}
	if n := len(entries()); n != 1 {
		t.Fatalf("%d entries after gc, want 1", n)
	}
}
