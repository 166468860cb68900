package train

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/mlbuild/mlbuild/ml/config"
	"github.com/mlbuild/mlbuild/ml/tensor"
)

// fuzzSHA in a fuzzed state is replaced by the SHA-256 of the fuzzed
// tensors, so that the fuzzer gets past the digest check.
const fuzzSHA = "@TENSORS_SHA256@"

// fuzzCheckpointModel is a small pretraining model and its optimizer, for
// checkpoints small enough to fuzz.
func fuzzCheckpointModel(f *testing.F) (*Model, *AdamW) {
	cfg, err := config.Parse([]byte(`{"hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,
"num_key_value_heads":1,"vocab_size":7,"max_position_embeddings":16,"rms_norm_eps":1e-5,"bos_token_id":1,"eos_token_id":2,"pad_token_id":0,
"tie_word_embeddings":true,"architectures":["LlamaForCausalLM"],"model_type":"llama"}`))
	if err != nil {
		f.Fatal(err)
	}
	m := NewPretrain(cfg, tensor.NewCPU(1), 3, 0.3)
	return m, NewAdamW(m.Params(), 0.9, 0.999, 1e-8, 0)
}

// optState copies the optimizer's moments and step.
func optState(opt *AdamW) ([][]float32, [][]float32, int) {
	am, av := make([][]float32, len(opt.m)), make([][]float32, len(opt.v))
	for i := range opt.m {
		am[i], av[i] = opt.moments(i)
	}
	return am, av, opt.t
}

// FuzzLoadCheckpoint writes fuzzed bytes as checkpoint.json and as the
// tensors file it names, and resumes from them with loadCheckpoint, as
// Train does. With flags&1 the fuzzed state is wrapped in a well-formed
// envelope with its right digest (and fuzzSHA replaced by the tensors'
// digest), so that the fuzzer reaches the state and tensor checks.
// loadCheckpoint must not panic; when it returns no checkpoint (none, or
// an error) the model and the optimizer must be untouched; a checkpoint
// it returns must be of this fingerprint, have restored the optimizer's
// step and the parameters (best copies of the right sizes too), and save
// and load again to the same state.
func FuzzLoadCheckpoint(f *testing.F) {
	m, opt := fuzzCheckpointModel(f)
	const fp = "fuzz"
	dir := f.TempDir()
	val := 2.5
	ck := &checkpoint{Step: 4, History: []Point{{Step: 2, Epoch: 0.5, TrainLoss: 3.1, LR: 1e-3, GradNorm: 0.7, Tokens: 64}, {Step: 4, Epoch: 1, TrainLoss: 2.9, ValLoss: &val, LR: 1e-3, Tokens: 128}},
		BestStep: 4, BestValLoss: jsonFloat(val), InitialValLoss: jsonFloat(3.3), Tokens: 128, SeenTokens: 130, best: snapshot(m)}
	opt.t = 4
	if err := saveCheckpoint(dir, fp, ck, m, opt); err != nil {
		f.Fatal(err)
	}
	state, err := os.ReadFile(filepath.Join(dir, checkpointState))
	if err != nil {
		f.Fatal(err)
	}
	tensors, err := os.ReadFile(filepath.Join(dir, ck.Tensors))
	if err != nil {
		f.Fatal(err)
	}
	var env checkpointEnvelope
	if err := json.Unmarshal(state, &env); err != nil {
		f.Fatal(err)
	}
	inner := bytes.ReplaceAll(env.State, []byte(ck.TensorsSHA256), []byte(fuzzSHA))
	f.Add(state, tensors, uint8(0))
	f.Add(inner, tensors, uint8(1))
	f.Add(bytes.ReplaceAll(inner, []byte(`"has_best":true`), []byte(`"has_best":false`)), tensors, uint8(1))
	f.Add(bytes.ReplaceAll(inner, []byte(`"fingerprint":"fuzz"`), []byte(`"fingerprint":"other"`)), tensors, uint8(1))
	f.Add(bytes.ReplaceAll(inner, []byte(`"tensors":"`), []byte(`"tensors":"../`)), tensors, uint8(1))
	f.Add(bytes.ReplaceAll(inner, []byte(`"best_val_loss":"2.5"`), []byte(`"best_val_loss":"NaN"`)), tensors, uint8(1))
	f.Add(inner, tensors[:len(tensors)/2], uint8(1))
	f.Add([]byte(`{"format":1}`), []byte{}, uint8(0))
	f.Add([]byte(`{"format":2,"state":null,"state_sha256":"74234e98afe7498fb5daf1f36ac2d78acc339464f950703b8c019892f982b90b"}`), []byte{}, uint8(0))
	f.Add([]byte(`{"step":1,"history":[{"val_loss":null}],"best_val_loss":1}`), []byte{}, uint8(1))

	restore(m, ck.best)
	params0 := snapshot(m)
	am0, av0, t0 := optState(opt)
	f.Fuzz(func(t *testing.T, state, tensors []byte, flags uint8) {
		restore(m, params0)
		for i := range am0 {
			opt.setMoments(i, am0[i], av0[i])
		}
		opt.t = t0
		dir := t.TempDir()
		if flags&1 != 0 {
			state = bytes.ReplaceAll(state, []byte(fuzzSHA), []byte(bytesSHA256(tensors)))
			env, err := json.Marshal(checkpointEnvelope{Format: checkpointFormat, State: state, StateSHA256: bytesSHA256(state)})
			if err != nil {
				return // the state is not JSON: no envelope can hold it
			}
			state = env
		}
		if err := os.WriteFile(filepath.Join(dir, checkpointState), state, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, tensorsFile(4)), tensors, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := loadCheckpoint(dir, fp, m, opt)
		if got == nil {
			am, av, st := optState(opt)
			if !sameBits(snapshot(m), params0) || !sameBits(am, am0) || !sameBits(av, av0) || st != t0 {
				t.Fatalf("a checkpoint that was not loaded (error %v) changed the model or the optimizer", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("loadCheckpoint returned a checkpoint and the error %v", err)
		}
		if got.Fingerprint != fp || opt.t != got.OptimizerStep {
			t.Fatalf("loaded checkpoint of fingerprint %q, optimizer step %d (optimizer at %d)", got.Fingerprint, got.OptimizerStep, opt.t)
		}
		if got.HasBest != (got.best != nil) || got.best != nil && len(got.best) != len(m.params) {
			t.Fatalf("checkpoint has_best %v with %d best tensors for %d parameters", got.HasBest, len(got.best), len(m.params))
		}
		for i, b := range got.best {
			if len(b) != m.params[i].W.Len() {
				t.Fatalf("best tensor %d has %d values, want %d", i, len(b), m.params[i].W.Len())
			}
		}
		// The tensors file is named again and its digest is of the new
		// file (which holds no best copy where the state says none).
		encode := func(c *checkpoint) ([]byte, error) {
			cc := *c
			cc.checkpointFiles = checkpointFiles{}
			return json.Marshal(&cc)
		}
		want, err := encode(got)
		if err != nil {
			t.Fatalf("a loaded checkpoint does not encode: %v", err)
		}
		params := snapshot(m)
		am, av, st := optState(opt)
		dir2 := t.TempDir()
		if err := saveCheckpoint(dir2, fp, got, m, opt); err != nil {
			t.Fatalf("a loaded checkpoint does not save: %v", err)
		}
		restore(m, params0)
		again, err := loadCheckpoint(dir2, fp, m, opt)
		if err != nil || again == nil {
			t.Fatalf("a saved loaded checkpoint does not load: %v", err)
		}
		if b, _ := encode(again); !bytes.Equal(b, want) {
			t.Fatalf("save and load changed the state:\n%s\n%s", want, b)
		}
		am2, av2, st2 := optState(opt)
		if !sameBits(snapshot(m), params) || !sameBits(am2, am) || !sameBits(av2, av) || st2 != st || !sameBits(again.best, got.best) {
			t.Fatal("save and load changed the parameters, the optimizer or the best copy")
		}
	})
}

// sameBits compares tensors bit for bit (NaN equal to itself).
func sameBits(a, b [][]float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return false
		}
		for j := range a[i] {
			if math.Float32bits(a[i][j]) != math.Float32bits(b[i][j]) {
				return false
			}
		}
	}
	return true
}
