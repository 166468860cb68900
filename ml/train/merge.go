package train

import (
	"fmt"
	"slices"

	"github.com/mlbuild/mlbuild/ml/config"
	"github.com/mlbuild/mlbuild/ml/llama"
	"github.com/mlbuild/mlbuild/ml/nf4"
	"github.com/mlbuild/mlbuild/ml/safetensors"
	"github.com/mlbuild/mlbuild/ml/tensor"
)

// MergeStats describes a merge.
type MergeStats struct {
	Tensors   int `json:"tensors"`
	Quantized int `json:"dequantized_linears"` // linear layers replaced by dequant(NF4(W))
	Adapted   int `json:"adapted_linears"`     // of which received scaling·B·A
	Saved     int `json:"saved_modules"`       // tensors replaced by the adapter's modules_to_save
}

// savedName is PEFT's adapter-file name of a model tensor that
// modules_to_save can replace ("" for others).
func savedName(name string) string {
	switch name {
	case config.EmbedTokens:
		return adapterEmbedName
	case config.LMHead:
		return adapterLMHeadName
	}
	return ""
}

// Merge writes to path a float32 model.safetensors for the base model in
// baseDir with adapter folded in, streaming tensor by tensor. Every linear
// layer of the decoder is the NF4 round trip of the base weight, exactly
// the weight QLoRA trained against (bitsandbytes' quantization with double
// quantization, then dequantization), plus scaling·B·A where the adapter
// has that module: W' = dequant(NF4(W)) + scaling·B·A. Embeddings and
// lm_head are the adapter's trained copies when it saved them
// (modules_to_save), else the base's; norms are the base's; all widened to
// float32.
func Merge(path, baseDir string, adapter *Adapter, be tensor.Backend) (*MergeStats, error) {
	cfg, weights, err := llama.Open(baseDir, "base model")
	if err != nil {
		return nil, err
	}
	defer weights.Close()
	targets, err := adapter.Config.Targets(cfg)
	if err != nil {
		return nil, fmt.Errorf("the adapter does not fit base model %s: %w", baseDir, err)
	}
	// Which tensor names are linear layers, and their (layer, module).
	type lin struct {
		layer  int
		module string
	}
	linears := map[string]lin{}
	for i := 0; i < cfg.NumHiddenLayers; i++ {
		n := cfg.Layer(i)
		for name, module := range map[string]string{n.Q: "q_proj", n.K: "k_proj", n.V: "v_proj", n.QKV: "qkv_proj",
			n.O: "o_proj", n.Gate: "gate_proj", n.Up: "up_proj", n.GateUp: "gate_up_proj", n.Down: "down_proj"} {
			if name != "" {
				linears[name] = lin{i, module}
			}
		}
	}
	used := 0
	if head, ok := adapter.Tensors[adapterLMHeadName]; ok && cfg.TieWordEmbeddings {
		// A tied model stores one matrix: the adapter's lm_head must be
		// its embed_tokens (Model.Adapter writes both for PEFT's sake).
		embed, ok := adapter.Tensors[adapterEmbedName]
		if !ok || !slices.Equal(head.Data, embed.Data) {
			return nil, fmt.Errorf("base model %s ties lm_head to embed_tokens, but the adapter saves an lm_head that is not its embed_tokens; a tied model cannot hold both", baseDir)
		}
		used++
	}
	var specs []safetensors.TensorInfo
	for _, s := range cfg.Tensors() {
		specs = append(specs, safetensors.TensorInfo{Name: s.Name, DType: safetensors.F32, Shape: s.Shape})
	}
	w, err := safetensors.Create(path, specs, map[string]string{"format": "pt"})
	if err != nil {
		return nil, err
	}
	st := &MergeStats{}
	scaling := adapter.Config.Scaling()
	for _, info := range w.Order() {
		v, err := weights.Float32(info.Name)
		if err != nil {
			w.Abort()
			return nil, fmt.Errorf("base model %s: tensor %s: %w", baseDir, info.Name, err)
		}
		if saved, ok := adapter.Tensors[savedName(info.Name)]; ok {
			if len(saved.Data) != len(v) {
				w.Abort()
				return nil, fmt.Errorf("the adapter's %s has shape %v, the base's %v", info.Name, saved.Shape, info.Shape)
			}
			v = saved.Data
			used++
			st.Saved++
		} else if l, ok := linears[info.Name]; ok {
			q := nf4.Quantize(v, info.Shape...)
			q.Dequantize(v)
			st.Quantized++
			if slices.Contains(targets, l.module) {
				a, okA := adapter.Tensors[AdapterTensorName(l.layer, l.module, "A")]
				b, okB := adapter.Tensors[AdapterTensorName(l.layer, l.module, "B")]
				out, in := info.Shape[0], info.Shape[1]
				switch {
				case !okA || !okB:
					w.Abort()
					return nil, fmt.Errorf("the adapter has no lora_A/lora_B for layer %d's %s", l.layer, l.module)
				case len(a.Shape) != 2 || len(b.Shape) != 2 || a.Shape[1] != in || b.Shape[0] != out || a.Shape[0] != b.Shape[1]:
					w.Abort()
					return nil, fmt.Errorf("the adapter's layer %d %s has shapes A%v B%v, which do not fit the base weight %v", l.layer, l.module, a.Shape, b.Shape, info.Shape)
				}
				r := a.Shape[0]
				wt := be.FromFloat32(v, out, in)
				be.MatMul(wt, be.FromFloat32(b.Data, out, r), be.FromFloat32(a.Data, r, in), false, false, scaling, 1)
				be.Read(wt, v)
				be.Free(wt)
				st.Adapted++
				used += 2
			}
		}
		if err := w.WriteTensor(info.Name, safetensors.F32Bytes(v)); err != nil {
			w.Abort()
			return nil, err
		}
		st.Tensors++
	}
	if used != len(adapter.Tensors) {
		w.Abort()
		return nil, fmt.Errorf("the adapter has %d tensors but only %d fit base model %s's layers (is it an adapter for another model?)", len(adapter.Tensors), used, baseDir)
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return st, nil
}
