package train

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mlbuild/mlbuild/ml/config"
	"github.com/mlbuild/mlbuild/ml/safetensors"
	"github.com/mlbuild/mlbuild/ml/tensor"
)

// SaveWeights writes a model's tensors (by Hugging Face name, the set
// cfg.Tensors lists) to a float32 model.safetensors at path.
func SaveWeights(path string, cfg *config.Config, data map[string][]float32) error {
	var ts []safetensors.Tensor
	for _, s := range cfg.Tensors() {
		v, ok := data[s.Name]
		if !ok {
			return fmt.Errorf("save %s: no values for tensor %s", path, s.Name)
		}
		n := 1
		for _, d := range s.Shape {
			n *= d
		}
		if len(v) != n {
			return fmt.Errorf("save %s: tensor %s has %d values, want %v", path, s.Name, len(v), s.Shape)
		}
		ts = append(ts, safetensors.Tensor{Name: s.Name, DType: safetensors.F32, Shape: s.Shape, Data: safetensors.F32Bytes(v)})
	}
	return safetensors.Write(path, ts, map[string]string{"format": "pt"})
}

// WriteRandomModel writes a Hugging Face model directory for cfg with
// random weights (as NewPretrain initialises them, std 0.02): config.json
// and model.safetensors, for tests and benchmarks.
func WriteRandomModel(dir string, cfg *config.Config, seed uint64) error {
	js := map[string]any{
		"architectures": []string{string(cfg.Architecture)}, "model_type": cfg.ModelType,
		"hidden_size": cfg.HiddenSize, "intermediate_size": cfg.IntermediateSize,
		"num_hidden_layers": cfg.NumHiddenLayers, "num_attention_heads": cfg.NumAttentionHeads,
		"num_key_value_heads": cfg.NumKeyValueHeads, "head_dim": cfg.HeadDim, "vocab_size": cfg.VocabSize,
		"max_position_embeddings": cfg.MaxPositionEmbeddings, "rms_norm_eps": cfg.RMSNormEps,
		"rope_theta": cfg.RopeTheta, "tie_word_embeddings": cfg.TieWordEmbeddings,
		"torch_dtype": "float32",
	}
	if len(cfg.BOSTokenIDs) > 0 {
		js["bos_token_id"] = cfg.BOSTokenIDs[0]
	}
	if len(cfg.EOSTokenIDs) > 0 {
		js["eos_token_id"] = cfg.EOSTokenIDs[0]
	}
	data, err := json.MarshalIndent(js, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		return err
	}
	// The random initialisation is written from the CPU (one thread: the
	// values do not depend on the device or the thread count).
	be, _, err := tensor.OpenDevice(tensor.DeviceCPU, tensor.DeviceOptions{Threads: 1})
	if err != nil {
		return err
	}
	m := NewPretrain(cfg, be, seed, 0.02)
	return SaveWeights(filepath.Join(dir, "model.safetensors"), cfg, m.ParamData())
}
