package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/mlbuild/mlbuild/ml/safetensors"
)

// checkpoint is the training state saved between steps: everything Train
// needs to continue exactly where it stopped.
type checkpoint struct {
	Fingerprint    string    `json:"fingerprint"`
	Step           int       `json:"step"`
	OptimizerStep  int       `json:"optimizer_step"`
	History        []Point   `json:"history"`
	BestStep       int       `json:"best_step"`
	BestValLoss    jsonFloat `json:"best_val_loss"`
	InitialValLoss jsonFloat `json:"initial_val_loss"`
	Bad            int       `json:"bad"`
	Tokens         int64     `json:"tokens"`
	SeenTokens     int64     `json:"seen_tokens"`
	HasBest        bool      `json:"has_best"`

	best [][]float32
}

// jsonFloat is a float64 that survives JSON exactly, NaN and ±Inf
// included (as a string holding strconv's shortest round-trip form).
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	return json.Marshal(strconv.FormatFloat(float64(f), 'g', -1, 64))
}

func (f *jsonFloat) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	v, err := strconv.ParseFloat(s, 64)
	*f = jsonFloat(v)
	return err
}

const (
	checkpointState   = "checkpoint.json"
	checkpointTensors = "checkpoint.safetensors"
)

// saveCheckpoint writes the tensors, then the JSON that names them, each
// atomically: a kill at any point leaves either the previous checkpoint
// or the new one (the JSON records the step the tensors belong to).
func saveCheckpoint(dir, fingerprint string, ck *checkpoint, m *Model, opt *AdamW) error {
	ck.Fingerprint, ck.OptimizerStep, ck.HasBest = fingerprint, opt.t, ck.best != nil
	params := snapshot(m)
	var ts []safetensors.Tensor
	add := func(prefix string, i int, v []float32) {
		ts = append(ts, safetensors.Tensor{Name: fmt.Sprintf("%s.%d", prefix, i), DType: safetensors.F32, Shape: []int{len(v)}, Data: safetensors.F32Bytes(v)})
	}
	for i := range params {
		add("param", i, params[i])
		add("adam_m", i, opt.m[i])
		add("adam_v", i, opt.v[i])
		if ck.best != nil {
			add("best", i, ck.best[i])
		}
	}
	meta := map[string]string{"step": fmt.Sprint(ck.Step), "fingerprint": fingerprint}
	if err := safetensors.Write(filepath.Join(dir, checkpointTensors), ts, meta); err != nil {
		return err
	}
	data, err := json.Marshal(ck)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, checkpointState+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, checkpointState))
}

// loadCheckpoint restores a checkpoint into m and opt. It returns nil
// when there is none or it belongs to other settings.
func loadCheckpoint(dir, fingerprint string, m *Model, opt *AdamW) (*checkpoint, error) {
	data, err := os.ReadFile(filepath.Join(dir, checkpointState))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ck checkpoint
	if err := json.Unmarshal(data, &ck); err != nil {
		return nil, err
	}
	if ck.Fingerprint != fingerprint {
		return nil, nil
	}
	f, err := safetensors.Open(filepath.Join(dir, checkpointTensors))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if md := f.Metadata(); md["step"] != fmt.Sprint(ck.Step) || md["fingerprint"] != fingerprint {
		return nil, errors.New("the checkpoint's tensors and state are from different steps")
	}
	get := func(prefix string, i, n int) ([]float32, error) {
		v, err := f.Float32(fmt.Sprintf("%s.%d", prefix, i))
		if err == nil && len(v) != n {
			err = fmt.Errorf("%s.%d has %d values, want %d", prefix, i, len(v), n)
		}
		return v, err
	}
	params := make([][]float32, len(m.params))
	for i, p := range m.params {
		n := p.W.Len()
		if params[i], err = get("param", i, n); err != nil {
			return nil, err
		}
		if opt.m[i], err = get("adam_m", i, n); err != nil {
			return nil, err
		}
		if opt.v[i], err = get("adam_v", i, n); err != nil {
			return nil, err
		}
		if ck.HasBest {
			b, err := get("best", i, n)
			if err != nil {
				return nil, err
			}
			ck.best = append(ck.best, b)
		}
	}
	restore(m, params)
	opt.t = ck.OptimizerStep
	return &ck, nil
}
