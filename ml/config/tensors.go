package config

import (
	"fmt"
	"sort"
	"strings"

	"github.com/mlbuild/mlbuild/internal/lazyre"
	"github.com/mlbuild/mlbuild/ml/safetensors"
)

// Names of the tensors outside the decoder layers, as transformers stores
// them for all three architectures.
const (
	EmbedTokens = "model.embed_tokens.weight"
	FinalNorm   = "model.norm.weight"
	LMHead      = "lm_head.weight"
)

// LayerNames holds the tensor names of one decoder layer. For Phi-3 QKV and
// GateUp are set and Q, K, V, Gate and Up are empty; for Llama and Mistral
// it is the other way round.
type LayerNames struct {
	Q, K, V, QKV, O   string
	Gate, Up, GateUp  string
	Down              string
	InputNorm         string // input_layernorm, before attention
	PostAttentionNorm string // post_attention_layernorm, before the MLP
}

// Layer returns the tensor names of decoder layer i.
func (c *Config) Layer(i int) LayerNames {
	p := fmt.Sprintf("model.layers.%d.", i)
	n := LayerNames{
		O:                 p + "self_attn.o_proj.weight",
		Down:              p + "mlp.down_proj.weight",
		InputNorm:         p + "input_layernorm.weight",
		PostAttentionNorm: p + "post_attention_layernorm.weight",
	}
	if c.FusedQKV {
		n.QKV = p + "self_attn.qkv_proj.weight"
	} else {
		n.Q, n.K, n.V = p+"self_attn.q_proj.weight", p+"self_attn.k_proj.weight", p+"self_attn.v_proj.weight"
	}
	if c.FusedGateUp {
		n.GateUp = p + "mlp.gate_up_proj.weight"
	} else {
		n.Gate, n.Up = p+"mlp.gate_proj.weight", p+"mlp.up_proj.weight"
	}
	return n
}

// QDim and KVDim are the output widths of the query projection and of each
// of the key and value projections. In Phi-3's fused qkv_proj the rows are
// [0, QDim) for q, [QDim, QDim+KVDim) for k and the last KVDim for v; in its
// gate_up_proj the first IntermediateSize rows are gate, the rest up.
func (c *Config) QDim() int  { return c.NumAttentionHeads * c.HeadDim }
func (c *Config) KVDim() int { return c.NumKeyValueHeads * c.HeadDim }

// TensorSpec is an expected tensor: its name and [rows, cols] (or [n]) shape,
// in PyTorch's [out_features, in_features] convention for projections.
type TensorSpec struct {
	Name  string
	Shape []int
}

// Tensors returns every tensor a checkpoint of this config holds, in model
// order: the embedding, each layer, the final norm, and lm_head unless the
// embeddings are tied.
func (c *Config) Tensors() []TensorSpec {
	h, inter := c.HiddenSize, c.IntermediateSize
	out := []TensorSpec{{EmbedTokens, []int{c.VocabSize, h}}}
	for i := 0; i < c.NumHiddenLayers; i++ {
		n := c.Layer(i)
		out = append(out, TensorSpec{n.InputNorm, []int{h}})
		if c.FusedQKV {
			out = append(out, TensorSpec{n.QKV, []int{c.QDim() + 2*c.KVDim(), h}})
		} else {
			out = append(out,
				TensorSpec{n.Q, []int{c.QDim(), h}},
				TensorSpec{n.K, []int{c.KVDim(), h}},
				TensorSpec{n.V, []int{c.KVDim(), h}})
		}
		out = append(out, TensorSpec{n.O, []int{h, c.QDim()}}, TensorSpec{n.PostAttentionNorm, []int{h}})
		if c.FusedGateUp {
			out = append(out, TensorSpec{n.GateUp, []int{2 * inter, h}})
		} else {
			out = append(out, TensorSpec{n.Gate, []int{inter, h}}, TensorSpec{n.Up, []int{inter, h}})
		}
		out = append(out, TensorSpec{n.Down, []int{h, inter}})
	}
	out = append(out, TensorSpec{FinalNorm, []int{h}})
	if !c.TieWordEmbeddings {
		out = append(out, TensorSpec{LMHead, []int{c.VocabSize, h}})
	}
	return out
}

// TensorSet is what CheckTensors reads: *safetensors.File and
// *safetensors.Model satisfy it.
type TensorSet interface {
	Names() []string
	Info(name string) (safetensors.TensorInfo, bool)
}

var (
	_ TensorSet = (*safetensors.File)(nil)
	_ TensorSet = (*safetensors.Model)(nil)
)

// ignoredTensor matches buffers that old checkpoints carry and transformers
// ignores on load.
var ignoredTensor = lazyre.New(`^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$`)

// CheckTensors verifies that set holds exactly the tensors of Tensors, each
// with its shape and a floating-point dtype (F32, F16 or BF16). The error
// lists what is missing, what is unexpected and what has the wrong shape
// or dtype.
func (c *Config) CheckTensors(set TensorSet) error {
	want := c.Tensors()
	expected := make(map[string]bool, len(want))
	var missing, wrong, unexpected []string
	for _, spec := range want {
		expected[spec.Name] = true
		info, ok := set.Info(spec.Name)
		if !ok {
			missing = append(missing, spec.Name)
			continue
		}
		if !equalShape(info.Shape, spec.Shape) {
			wrong = append(wrong, fmt.Sprintf("%s is %v, want %v", spec.Name, info.Shape, spec.Shape))
			continue
		}
		switch info.DType {
		case safetensors.F32, safetensors.F16, safetensors.BF16:
		default:
			wrong = append(wrong, fmt.Sprintf("%s has dtype %s, want F32, F16 or BF16", spec.Name, info.DType))
		}
	}
	for _, name := range set.Names() {
		if !expected[name] && !ignoredTensor.MatchString(name) {
			unexpected = append(unexpected, name)
		}
	}
	if len(missing)+len(wrong)+len(unexpected) == 0 {
		return nil
	}
	sort.Strings(unexpected)
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, fmt.Sprintf("%d missing (%s)", len(missing), list(missing)))
	}
	if len(unexpected) > 0 {
		parts = append(parts, fmt.Sprintf("%d unexpected (%s)", len(unexpected), list(unexpected)))
	}
	if len(wrong) > 0 {
		parts = append(parts, fmt.Sprintf("%d mis-shaped or mistyped (%s)", len(wrong), list(wrong)))
	}
	tied := ""
	if c.TieWordEmbeddings {
		tied = ", tied embeddings"
	}
	return invalid("the weights do not match config.json (%s, %d layers%s): %s",
		c.Architecture, c.NumHiddenLayers, tied, strings.Join(parts, "; "))
}

func equalShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// list joins up to 8 items and says how many more there are.
func list(items []string) string {
	const max = 8
	if len(items) <= max {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:max], ", ") + fmt.Sprintf(", and %d more", len(items)-max)
}
