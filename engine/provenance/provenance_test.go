package provenance

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mlbuild/mlbuild/cache"
)

func hx(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func sample() *cache.ActionResult {
	comps := cache.KeyComponents{
		Kind:    "csv_clean",
		Version: "3",
		Config: map[string]json.RawMessage{
			"columns": json.RawMessage(`["title","body"]`),
			"dedupe":  json.RawMessage(`true`),
			"min_len": json.RawMessage(`12`),
			"note":    json.RawMessage(`"a <b> & c"`),
		},
		Inputs: map[string][]cache.InputRef{
			"input": {
				{Name: "a.csv", Digest: hx("a"), Size: 10},
				{Name: "b.csv", Digest: hx("b"), Size: 20},
			},
			"stopwords": {{Name: "words", Digest: hx("w"), Size: 5, Dir: true}},
		},
	}
	b, _ := json.Marshal(comps)
	sum := sha256.Sum256(b)
	return &cache.ActionResult{
		Key:        hex.EncodeToString(sum[:]),
		Step:       "csv_clean.onion",
		Components: comps,
		Outputs: map[string]cache.OutputRef{
			"output": {Path: "clean.csv", Digest: hx("out"), Size: 123},
			"report": {Path: "report", Digest: hx("rep"), Size: 45, Dir: true},
		},
		Provenance: cache.Provenance{
			MlbuildVersion: "0.1.0-abcdef123456",
			GoVersion:      "go1.26.8",
			Device:         "cpu",
			Host:           "builder-7",
			Started:        time.Date(2025, 3, 4, 5, 6, 7, 250_000_000, time.FixedZone("X", 3600)),
			Seconds:        1.5,
			InputPaths: map[string][]string{
				"input":     {"data/onion/a.csv", "data/onion/b.csv"},
				"stopwords": {"../shared/words"},
			},
		},
	}
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("statement is not JSON: %v\n%s", err, b)
	}
	return m
}

func get(t *testing.T, v any, path ...string) any {
	t.Helper()
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("at %q: %T is not an object", p, v)
		}
		v, ok = m[p]
		if !ok {
			t.Fatalf("field %q missing (path %v)", p, path)
		}
	}
	return v
}

func keys(v any) []string {
	m := v.(map[string]any)
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func TestStatementStructure(t *testing.T) {
	ar := sample()
	b, err := Statement("pipelines/twainbot.hcl", ar, map[string]string{"output": "build/csv_clean.onion/clean.csv"})
	if err != nil {
		t.Fatal(err)
	}
	st := decode(t, b)

	if got := keys(st); !reflect.DeepEqual(got, []string{"_type", "predicate", "predicateType", "subject"}) {
		t.Fatalf("statement fields = %v", got)
	}
	if st["_type"] != "https://in-toto.io/Statement/v1" {
		t.Errorf("_type = %v", st["_type"])
	}
	if st["predicateType"] != "https://slsa.dev/provenance/v1" {
		t.Errorf("predicateType = %v", st["predicateType"])
	}

	// subject: sorted by output name, workspace paths, sha256 digests.
	subj := st["subject"].([]any)
	if len(subj) != 2 {
		t.Fatalf("subject = %v", subj)
	}
	want := []struct {
		name, digest string
		size         float64
		dir          bool
	}{
		{"build/csv_clean.onion/clean.csv", hx("out"), 123, false},
		{"build/csv_clean.onion/report", hx("rep"), 45, true},
	}
	for i, w := range want {
		s := subj[i]
		if got := get(t, s, "name"); got != w.name {
			t.Errorf("subject[%d].name = %v, want %s", i, got, w.name)
		}
		if got := get(t, s, "digest"); !reflect.DeepEqual(got, map[string]any{"sha256": w.digest}) {
			t.Errorf("subject[%d].digest = %v", i, got)
		}
		if got := get(t, s, "annotations", "size"); got != w.size {
			t.Errorf("subject[%d] size = %v", i, got)
		}
		if _, isDir := s.(map[string]any)["annotations"].(map[string]any)["dir"]; isDir != w.dir {
			t.Errorf("subject[%d] dir annotation = %v", i, isDir)
		}
	}

	pred := get(t, st, "predicate")
	if got := keys(pred); !reflect.DeepEqual(got, []string{"buildDefinition", "runDetails"}) {
		t.Fatalf("predicate fields = %v", got)
	}
	bd := get(t, pred, "buildDefinition")
	if got := keys(bd); !reflect.DeepEqual(got, []string{"buildType", "externalParameters", "internalParameters", "resolvedDependencies"}) {
		t.Fatalf("buildDefinition fields = %v", got)
	}
	if got := get(t, bd, "buildType"); got != BuildType {
		t.Errorf("buildType = %v", got)
	}
	ext := get(t, bd, "externalParameters")
	if get(t, ext, "pipeline") != "pipelines/twainbot.hcl" || get(t, ext, "step") != "csv_clean.onion" || get(t, ext, "kind") != "csv_clean" {
		t.Errorf("externalParameters = %v", ext)
	}
	wantConfig := map[string]any{"columns": []any{"title", "body"}, "dedupe": true, "min_len": float64(12), "note": "a <b> & c"}
	if got := get(t, ext, "config"); !reflect.DeepEqual(got, wantConfig) {
		t.Errorf("config = %v", got)
	}
	if !bytes.Contains(b, []byte(`"a <b> & c"`)) {
		t.Errorf("HTML characters escaped in config:\n%s", b)
	}
	in := get(t, bd, "internalParameters")
	if !reflect.DeepEqual(in, map[string]any{"implementationVersion": "3", "key": ar.Key, "device": "cpu", "host": "builder-7"}) {
		t.Errorf("internalParameters = %v", in)
	}

	deps := get(t, bd, "resolvedDependencies").([]any)
	wantDeps := []map[string]any{
		{"name": "data/onion/a.csv", "digest": map[string]any{"sha256": hx("a")}, "annotations": map[string]any{"role": "input", "size": float64(10)}},
		{"name": "data/onion/b.csv", "digest": map[string]any{"sha256": hx("b")}, "annotations": map[string]any{"role": "input", "size": float64(20)}},
		{"name": "../shared/words", "digest": map[string]any{"sha256": hx("w")}, "annotations": map[string]any{"role": "stopwords", "size": float64(5), "dir": true}},
	}
	if len(deps) != len(wantDeps) {
		t.Fatalf("resolvedDependencies = %v", deps)
	}
	for i := range wantDeps {
		if !reflect.DeepEqual(deps[i], any(wantDeps[i])) {
			t.Errorf("resolvedDependencies[%d] = %v, want %v", i, deps[i], wantDeps[i])
		}
	}

	rd := get(t, pred, "runDetails")
	if got := keys(rd); !reflect.DeepEqual(got, []string{"builder", "byproducts", "metadata"}) {
		t.Fatalf("runDetails fields = %v", got)
	}
	if got := get(t, rd, "builder", "id"); got != "https://github.com/mlbuild/mlbuild@0.1.0-abcdef123456" {
		t.Errorf("builder.id = %v", got)
	}
	if got := get(t, rd, "builder", "version"); !reflect.DeepEqual(got, map[string]any{"mlbuild": "0.1.0-abcdef123456", "go": "go1.26.8"}) {
		t.Errorf("builder.version = %v", got)
	}
	md := get(t, rd, "metadata")
	if got := keys(md); !reflect.DeepEqual(got, []string{"finishedOn", "invocationId", "startedOn"}) {
		t.Fatalf("metadata fields = %v", got)
	}
	if get(t, md, "invocationId") != ar.Key {
		t.Errorf("invocationId = %v", get(t, md, "invocationId"))
	}
	if got := get(t, md, "startedOn"); got != "2025-03-04T04:06:07.250Z" {
		t.Errorf("startedOn = %v", got)
	}
	if got := get(t, md, "finishedOn"); got != "2025-03-04T04:06:08.750Z" {
		t.Errorf("finishedOn = %v", got)
	}
	for _, f := range []string{"startedOn", "finishedOn"} {
		if _, err := time.Parse(time.RFC3339, get(t, md, f).(string)); err != nil {
			t.Errorf("%s is not RFC 3339: %v", f, err)
		}
	}
	bp := get(t, rd, "byproducts").([]any)
	if len(bp) != 1 || !reflect.DeepEqual(get(t, bp[0], "digest"), map[string]any{"sha256": ar.Key}) {
		t.Errorf("byproducts = %v", bp)
	}
	// The byproduct's digest really is the SHA-256 of the key components.
	cb, _ := json.Marshal(ar.Components)
	if hx(string(cb)) != ar.Key {
		t.Errorf("sample key is not the components' digest")
	}
}

func TestStatementIsDeterministic(t *testing.T) {
	first, err := Statement("twainbot.hcl", sample(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		again, err := Statement("twainbot.hcl", sample(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, again) {
			t.Fatalf("statement bytes differ:\n%s\n---\n%s", first, again)
		}
	}
	if !bytes.HasSuffix(first, []byte("}\n")) || !bytes.Contains(first, []byte("\n  \"subject\": [")) {
		t.Errorf("not indented JSON ending in a newline:\n%s", first)
	}
	// Without outputPaths, outputs are named build/KIND.NAME/PATH.
	st := decode(t, first)
	if got := get(t, st["subject"].([]any)[0], "name"); got != "build/csv_clean.onion/clean.csv" {
		t.Errorf("default subject name = %v", got)
	}
}

func TestNoAbsolutePathsLeak(t *testing.T) {
	ar := sample()
	b, err := Statement("pipelines/twainbot.hcl", ar, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"\"/", "/tmp", "/home", "/work", "builder-7/"} {
		if bytes.Contains(b, []byte(bad)) {
			t.Errorf("statement contains %q:\n%s", bad, b)
		}
	}
	// Every path-like name is the relative path the pipeline wrote.
	st := decode(t, b)
	for _, d := range get(t, st, "predicate", "buildDefinition", "resolvedDependencies").([]any) {
		if n := get(t, d, "name").(string); strings.HasPrefix(n, "/") {
			t.Errorf("dependency name %q is absolute", n)
		}
	}
	// An absolute pipeline or output path is refused rather than leaked.
	if _, err := Statement("/home/me/pipelines/twainbot.hcl", ar, nil); err == nil || !strings.Contains(err.Error(), "absolute") {
		t.Errorf("absolute pipeline path: err = %v", err)
	}
	if _, err := Statement("twainbot.hcl", ar, map[string]string{"output": "/abs/build/x"}); err == nil || !strings.Contains(err.Error(), "absolute") {
		t.Errorf("absolute output path: err = %v", err)
	}
}

func TestFallbacksAndErrors(t *testing.T) {
	ar := sample()
	// Without recorded input paths (older entries) the key's base names
	// are used; without a start time there are no timestamps.
	ar.Provenance.InputPaths = nil
	ar.Provenance.Started = time.Time{}
	ar.Provenance.Host = ""
	b, err := Statement("twainbot.hcl", ar, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := decode(t, b)
	deps := get(t, st, "predicate", "buildDefinition", "resolvedDependencies").([]any)
	if get(t, deps[0], "name") != "a.csv" || get(t, deps[2], "name") != "words" {
		t.Errorf("fallback names: %v", deps)
	}
	md := get(t, st, "predicate", "runDetails", "metadata").(map[string]any)
	if _, ok := md["startedOn"]; ok {
		t.Errorf("startedOn present without a start time: %v", md)
	}
	if _, ok := get(t, st, "predicate", "buildDefinition", "internalParameters").(map[string]any)["host"]; ok {
		t.Errorf("empty host written")
	}

	noOut := sample()
	noOut.Outputs = nil
	if _, err := Statement("twainbot.hcl", noOut, nil); err == nil {
		t.Error("no error for a step without outputs")
	}
	badCfg := sample()
	badCfg.Components.Config["x"] = json.RawMessage(`{nope`)
	if _, err := Statement("twainbot.hcl", badCfg, nil); err == nil || !strings.Contains(err.Error(), "config x") {
		t.Errorf("invalid config JSON: err = %v", err)
	}
	if _, err := Statement("twainbot.hcl", nil, nil); err == nil {
		t.Error("no error for a nil action result")
	}
	if _, err := Statement("", sample(), nil); err == nil {
		t.Error("no error for an empty pipeline path")
	}
}
