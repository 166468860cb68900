package train

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	checkpointFiles

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
	checkpointState = "checkpoint.json"
	// checkpointFormat is the envelope's version; checkpoints of other
	// formats (those before digests included) are discarded.
	checkpointFormat = 2
)

// checkpointEnvelope is checkpoint.json: the state with the SHA-256 of its
// exact bytes, so that a damaged state file is caught (JSON that still
// parses with a flipped digit would otherwise change the loss history).
type checkpointEnvelope struct {
	Format      int             `json:"format"`
	State       json.RawMessage `json:"state"`
	StateSHA256 string          `json:"state_sha256"`
}

// checkpointFiles is the part of the state that names the tensors.
type checkpointFiles struct {
	// Tensors is the file of the parameters and optimizer moments, named
	// by step, and TensorsSHA256 the SHA-256 of its bytes.
	Tensors       string `json:"tensors"`
	TensorsSHA256 string `json:"tensors_sha256"`
}

func tensorsFile(step int) string { return fmt.Sprintf("checkpoint-%08d.safetensors", step) }

// saveCheckpoint writes the tensors (to a file named by the step), then
// the JSON that names them with their digest, each atomically; only then
// are older tensor files removed. A kill at any point leaves the previous
// checkpoint or the new one, both whole.
func saveCheckpoint(dir, fingerprint string, ck *checkpoint, m *Model, opt *AdamW) error {
	ck.Fingerprint, ck.OptimizerStep, ck.HasBest = fingerprint, opt.t, ck.best != nil
	params := snapshot(m)
	var ts []safetensors.Tensor
	add := func(prefix string, i int, v []float32) {
		ts = append(ts, safetensors.Tensor{Name: fmt.Sprintf("%s.%d", prefix, i), DType: safetensors.F32, Shape: []int{len(v)}, Data: safetensors.F32Bytes(v)})
	}
	for i := range params {
		add("param", i, params[i])
		am, av := opt.moments(i)
		add("adam_m", i, am)
		add("adam_v", i, av)
		if ck.best != nil {
			add("best", i, ck.best[i])
		}
	}
	name := tensorsFile(ck.Step)
	meta := map[string]string{"step": fmt.Sprint(ck.Step), "fingerprint": fingerprint}
	if err := safetensors.Write(filepath.Join(dir, name), ts, meta); err != nil {
		return err
	}
	sum, err := fileSHA256(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	ck.Tensors, ck.TensorsSHA256 = name, sum
	state, err := json.Marshal(ck)
	if err != nil {
		return err
	}
	data, err := json.Marshal(checkpointEnvelope{Format: checkpointFormat, State: state, StateSHA256: bytesSHA256(state)})
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, checkpointState+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, checkpointState)); err != nil {
		return err
	}
	removeTensorFiles(dir, name)
	return nil
}

// removeTensorFiles removes the checkpoint tensor files in dir but keep
// (every one when keep is empty).
func removeTensorFiles(dir, keep string) {
	old, _ := filepath.Glob(filepath.Join(dir, "checkpoint*.safetensors"))
	for _, p := range old {
		if filepath.Base(p) != keep {
			_ = os.Remove(p) // a leftover costs only disk until the next checkpoint
		}
	}
}

// discardCheckpoint removes a checkpoint that cannot be used.
func discardCheckpoint(dir string) {
	_ = os.Remove(filepath.Join(dir, checkpointState)) // best effort: a failed load ignores it anyway
	removeTensorFiles(dir, "")
}

// loadCheckpoint restores a checkpoint into m and opt. It returns nil
// when there is none or it belongs to other settings, and an error,
// leaving m and opt untouched, when it is damaged: its state or tensors do
// not match their digests, or they disagree.
func loadCheckpoint(dir, fingerprint string, m *Model, opt *AdamW) (*checkpoint, error) {
	data, err := os.ReadFile(filepath.Join(dir, checkpointState))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var env checkpointEnvelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("%s: %w", checkpointState, err)
	}
	if env.Format != checkpointFormat {
		return nil, fmt.Errorf("%s: format %d, not %d (a checkpoint without digests)", checkpointState, env.Format, checkpointFormat)
	}
	if got := bytesSHA256(env.State); got != env.StateSHA256 {
		return nil, fmt.Errorf("%s: the state's SHA-256 is %s, not the %s recorded", checkpointState, got, env.StateSHA256)
	}
	var ck checkpoint
	if err := json.Unmarshal(env.State, &ck); err != nil {
		return nil, fmt.Errorf("%s: %w", checkpointState, err)
	}
	if ck.Fingerprint != fingerprint {
		return nil, nil
	}
	if ck.Tensors != filepath.Base(ck.Tensors) || ck.Tensors == "" {
		return nil, fmt.Errorf("%s names tensors %q", checkpointState, ck.Tensors)
	}
	path := filepath.Join(dir, ck.Tensors)
	if got, err := fileSHA256(path); err != nil {
		return nil, err
	} else if got != ck.TensorsSHA256 {
		return nil, fmt.Errorf("%s: SHA-256 %s, not the %s recorded", ck.Tensors, got, ck.TensorsSHA256)
	}
	f, err := safetensors.Open(path)
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
	// Everything is read before anything is restored, so that a failure
	// leaves the model and the optimizer as a fresh start needs them.
	n := len(m.params)
	params, am, av := make([][]float32, n), make([][]float32, n), make([][]float32, n)
	for i, p := range m.params {
		n := p.W.Len()
		if params[i], err = get("param", i, n); err != nil {
			return nil, err
		}
		if am[i], err = get("adam_m", i, n); err != nil {
			return nil, err
		}
		if av[i], err = get("adam_v", i, n); err != nil {
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
	for i := range am {
		opt.setMoments(i, am[i], av[i])
	}
	opt.t = ck.OptimizerStep
	return &ck, nil
}

func bytesSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }() // read only: nothing to lose
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
