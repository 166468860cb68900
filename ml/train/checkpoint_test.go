package train

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlbuild/mlbuild/ml/tensor"
)

// A damaged checkpoint (one byte of its tensors or of its state changed)
// is discarded with a warning and training starts afresh, so the result
// is bit-identical to an uninterrupted run's instead of being quietly
// trained on from bad state.
func TestDamagedCheckpointIsDiscarded(t *testing.T) {
	base := writeBase(t, "llama")
	lc := loraConfig()
	lc.Dropout = 0.1
	trainSet, valSet := toyExamples(24), toyExamples(30)[24:]
	run := func(opts Options, ctx context.Context) (*Result, []byte, error) {
		m, err := LoadQLoRA(base, tensor.NewCPU(2), lc, 1)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Train(ctx, m, trainSet, valSet, opts)
		if err != nil {
			return nil, nil, err
		}
		d := t.TempDir()
		if err := m.Adapter().Save(d, "base"); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(d, AdapterWeightsFile))
		if err != nil {
			t.Fatal(err)
		}
		return res, b, nil
	}
	full, want, err := run(qloraOptions(t.TempDir()), context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantRes, _ := json.Marshal(full)

	for _, tc := range []struct {
		name    string
		corrupt func(t *testing.T, dir string)
	}{
		{"a tensor byte", func(t *testing.T, dir string) {
			p := filepath.Join(dir, tensorsFile(4))
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)-5] ^= 0x10 // in the data of the last tensor, not the header
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"a state byte that still parses", func(t *testing.T, dir string) {
			p := filepath.Join(dir, checkpointState)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			i := bytes.Index(b, []byte(`"tokens":`))
			if i < 0 {
				t.Fatalf("no tokens in %s", b)
			}
			i += len(`"tokens":`)
			b[i] = '1' + (b[i]-'0')%8 // another digit: valid JSON, wrong state
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Interrupt after step 5 (a checkpoint was written at step 4).
			dir := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			opts := qloraOptions(dir)
			opts.Progress = func(s Status) {
				if s.Step == 5 {
					cancel()
				}
			}
			if _, _, err := run(opts, ctx); err == nil {
				t.Fatal("the interrupted run did not stop")
			}
			tc.corrupt(t, dir)
			var log bytes.Buffer
			opts = qloraOptions(dir)
			opts.Log = slog.New(slog.NewTextHandler(&log, nil))
			res, got, err := run(opts, context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if res.ResumedFrom != 0 || !strings.Contains(log.String(), "discarding a damaged checkpoint") {
				t.Fatalf("resumed from step %d of a damaged checkpoint; log:\n%s", res.ResumedFrom, log.String())
			}
			if !bytes.Equal(got, want) {
				t.Fatal("the adapter differs from the uninterrupted run's")
			}
			if b, _ := json.Marshal(res); !bytes.Equal(b, wantRes) {
				t.Fatalf("result differs from the uninterrupted run's:\n%s\n%s", b, wantRes)
			}
			// The damaged checkpoint is gone; the new run left its own, whole.
			m := mustQLoRA(t, base, lc)
			if ck, err := loadCheckpoint(dir, "test", m, NewAdamW(m.Params(), 0.9, 0.999, 1e-8, 0)); err != nil || ck == nil {
				t.Fatalf("checkpoint left by the fresh run: %v %v", ck, err)
			}
		})
	}
}

func mustQLoRA(t *testing.T, base string, lc LoRAConfig) *Model {
	t.Helper()
	m, err := LoadQLoRA(base, tensor.NewCPU(1), lc, 1)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
