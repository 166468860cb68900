package training

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/internal/seeded"
	"github.com/mlbuild/mlbuild/ml/config"
	"github.com/mlbuild/mlbuild/ml/tokenizer"
	"github.com/mlbuild/mlbuild/ml/train"
	"github.com/mlbuild/mlbuild/steps"
	"github.com/mlbuild/mlbuild/steps/trainingdata"
)

// Pretrain is the pretrain step kind.
type Pretrain struct{}

func init() { steps.Register(Pretrain{}) }

// PretrainVersion enters every pretrain key; bump it when the output for
// the same inputs and config can change (3: float32 SwiGLU kernels; 4: the
// loss curve drawn by ml/plot's own renderer).
const PretrainVersion = "4"

// Schema implements steps.Kind.
func (Pretrain) Schema() steps.Schema {
	attrs := []steps.Attribute{
		{Name: "tokenizer", Type: cty.String, Input: true, Required: true, Doc: "A folder with tokenizer.json and tokenizer_config.json, e.g. tokenizer_train.NAME.output."},
		{Name: "inputs", Type: cty.List(cty.String), Input: true, Required: true, Doc: `JSONL files of {"text": ...} records (prose is trained whole; chat records on their assistant turns).`},
		{Name: "conversations", Type: cty.String, Default: cty.StringVal(trainingdata.ConversationsSkip),
			Doc: `What to take from chat-format records: "skip" (default), "prompts" (their system, user and tool messages as plain text, each distinct system prompt once, never the assistant's turns: the base reads the tool's documentation and the questions but never sees one answered) or "all" (trained on the assistant's turns, as qlora_train).`},
		{Name: "validation_fraction", Type: cty.Number, Default: num(0.05), Doc: "Fraction of the records held out (seeded) to measure validation loss."},
		{Name: "hidden_size", Type: cty.Number, Default: num(256), Doc: "Model width."},
		{Name: "intermediate_size", Type: cty.Number, Default: num(688), Doc: "MLP width."},
		{Name: "num_layers", Type: cty.Number, Default: num(4), Doc: "Decoder layers."},
		{Name: "num_heads", Type: cty.Number, Default: num(4), Doc: "Attention heads."},
		{Name: "num_kv_heads", Type: cty.Number, Default: num(4), Doc: "Key/value heads (grouped-query attention when fewer than num_heads)."},
		{Name: "max_position_embeddings", Type: cty.Number, Default: num(1024), Doc: "Longest context the model is declared for."},
		{Name: "rope_theta", Type: cty.Number, Default: num(10000), Doc: "RoPE base."},
		{Name: "tie_word_embeddings", Type: cty.Bool, Default: cty.True, Doc: "Share the embedding with lm_head."},
		{Name: "init_std", Type: cty.Number, Default: num(0.02), Doc: "Standard deviation of the initial weights (transformers' initializer_range)."},
		{Name: "packing", Type: cty.Bool, Default: cty.True, Doc: "Concatenate records into seq_len blocks instead of padding each."},
	}
	attrs = append(attrs, optimizerAttributes(defaults{seqLen: 256, batch: 8, accum: 1, epochs: 4, warmup: 20,
		evalEvery: 50, patience: 0, checkpoint: 50, lr: 3e-3, minLR: 0.1, wd: 0.1})...)
	return steps.Schema{
		Kind:       "pretrain",
		Version:    PretrainVersion,
		Doc:        "Trains a small llama-family base model from scratch on a corpus and writes a Hugging Face model directory (config.json, model.safetensors, tokenizer files).",
		Heavy:      true,
		Attributes: attrs,
		Outputs: []steps.Output{
			{Name: "output", Path: "model", Dir: true, Doc: "The Hugging Face model directory."},
			{Name: "metrics", Path: "metrics.json", Doc: "Parameters, steps, losses and throughput."},
			{Name: "curves", Path: "curves", Dir: true, Doc: "loss.csv and loss.png."},
		},
	}
}

// pretrainConfig is a pretrain step's attributes.
type pretrainConfig struct {
	Conversations         string  `attr:"conversations"`
	ValidationFraction    float64 `attr:"validation_fraction"`
	HiddenSize            int     `attr:"hidden_size"`
	IntermediateSize      int     `attr:"intermediate_size"`
	NumLayers             int     `attr:"num_layers"`
	NumHeads              int     `attr:"num_heads"`
	NumKVHeads            int     `attr:"num_kv_heads"`
	MaxPositionEmbeddings int     `attr:"max_position_embeddings"`
	RopeTheta             float64 `attr:"rope_theta"`
	TieWordEmbeddings     bool    `attr:"tie_word_embeddings"`
	InitStd               float64 `attr:"init_std"`
	Packing               bool    `attr:"packing"`
	loopConfig

	loop train.Options // from loopConfig
}

// readPretrain decodes and checks the step's attributes, in the schema's
// order.
func readPretrain(inv *steps.Invocation) (*pretrainConfig, error) {
	pc := &pretrainConfig{}
	if err := inv.Decode(pc); err != nil {
		return nil, err
	}
	if !slices.Contains(trainingdata.ConversationModes, pc.Conversations) {
		return nil, &steps.AttrError{Attr: "conversations", Msg: fmt.Sprintf("must be \"skip\", \"prompts\" or \"all\", got %q", pc.Conversations)}
	}
	if pc.ValidationFraction < 0 || pc.ValidationFraction >= 0.5 {
		return nil, &steps.AttrError{Attr: "validation_fraction", Msg: "must be in [0, 0.5)"}
	}
	for _, a := range []struct {
		name string
		v    int
	}{
		{"hidden_size", pc.HiddenSize}, {"intermediate_size", pc.IntermediateSize}, {"num_layers", pc.NumLayers},
		{"num_heads", pc.NumHeads}, {"num_kv_heads", pc.NumKVHeads}, {"max_position_embeddings", pc.MaxPositionEmbeddings},
	} {
		if a.v < 1 || a.v > 1<<20 {
			return nil, &steps.AttrError{Attr: a.name, Msg: fmt.Sprintf("must be between 1 and 2^20, got %d", a.v)}
		}
	}
	if pc.HiddenSize%pc.NumHeads != 0 || (pc.HiddenSize/pc.NumHeads)%2 != 0 {
		return nil, &steps.AttrError{Attr: "num_heads", Msg: fmt.Sprintf("hidden_size %d must split into num_heads heads of an even width", pc.HiddenSize)}
	}
	if pc.NumHeads%pc.NumKVHeads != 0 {
		return nil, &steps.AttrError{Attr: "num_kv_heads", Msg: "must divide num_heads"}
	}
	if pc.RopeTheta <= 1 {
		return nil, &steps.AttrError{Attr: "rope_theta", Msg: "must be greater than 1"}
	}
	if pc.InitStd <= 0 {
		return nil, &steps.AttrError{Attr: "init_std", Msg: "must be positive"}
	}
	loop, err := pc.options()
	if err != nil {
		return nil, err
	}
	if loop.SeqLen > pc.MaxPositionEmbeddings {
		return nil, &steps.AttrError{Attr: "seq_len", Msg: fmt.Sprintf("%d exceeds max_position_embeddings %d", loop.SeqLen, pc.MaxPositionEmbeddings)}
	}
	pc.loop = loop
	return pc, nil
}

// modelJSON is the config.json of the model the step trains, with the
// vocabulary and special ids of tok.
func (pc *pretrainConfig) modelJSON(tok *tokenizer.Tokenizer) map[string]any {
	return map[string]any{
		"architectures": []string{"LlamaForCausalLM"}, "model_type": "llama",
		"hidden_size": pc.HiddenSize, "intermediate_size": pc.IntermediateSize,
		"num_hidden_layers": pc.NumLayers, "num_attention_heads": pc.NumHeads,
		"num_key_value_heads": pc.NumKVHeads, "head_dim": pc.HiddenSize / pc.NumHeads,
		"max_position_embeddings": pc.MaxPositionEmbeddings, "rope_theta": pc.RopeTheta,
		"rms_norm_eps": 1e-5, "tie_word_embeddings": pc.TieWordEmbeddings, "hidden_act": "silu",
		"attention_bias": false, "attention_dropout": 0.0, "mlp_bias": false, "pretraining_tp": 1,
		"initializer_range": pc.InitStd, "torch_dtype": "float32", "use_cache": true, "rope_scaling": nil,
		"vocab_size": tok.VocabSize(), "bos_token_id": tok.BOS(), "eos_token_id": tok.EOS(), "pad_token_id": padID(tok),
	}
}

// Validate implements steps.Validator.
func (Pretrain) Validate(inv *steps.Invocation) error {
	_, err := readPretrain(inv)
	return err
}

// Run implements steps.Kind.
func (Pretrain) Run(ctx context.Context, inv *steps.Invocation) error {
	pc, err := readPretrain(inv)
	if err != nil {
		return err
	}
	tokDir := inv.Inputs["tokenizer"][0].Path
	tok, err := loadTokenizer(tokDir)
	if err != nil {
		return err
	}
	// The model's vocabulary and special ids come from the tokenizer.
	cfgJSON, err := json.MarshalIndent(pc.modelJSON(tok), "", "  ")
	if err != nil {
		return err
	}
	cfg, err := config.Parse(cfgJSON)
	if err != nil {
		return fmt.Errorf("the model attributes do not make a valid model: %w", err)
	}
	all, skipped, err := pretrainExamples(trainingdata.NewEncoder(tok), inv.Inputs["inputs"], pc.Conversations)
	if err != nil {
		return err
	}
	cut := 0
	if len(all) == 0 {
		return fmt.Errorf("the inputs hold no prose records to pretrain on (%d conversations skipped; set conversations = \"prompts\" or \"all\" to use them)", skipped)
	}
	trainSet, valSet := holdOut(all, pc.ValidationFraction, pc.loop.Seed)
	inv.Logger().Info("pretraining", "records", len(trainSet), "validation", len(valSet), "cut", cut)

	be, err := pc.backend(inv)
	if err != nil {
		return err
	}
	m := train.NewPretrain(cfg, be, pc.loop.Seed, pc.InitStd)
	opts := pc.loop
	opts.Packing = pc.Packing
	res, err := trainLoop(ctx, inv, m, trainSet, valSet, opts, padID(tok), PretrainVersion)
	if err != nil {
		return err
	}

	modelDir := filepath.Join(inv.OutDir, "model")
	if err := os.MkdirAll(modelDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(modelDir, "config.json"), append(cfgJSON, '\n'), 0o644); err != nil {
		return err
	}
	if err := writeGenerationConfig(modelDir, tok); err != nil {
		return err
	}
	if err := train.SaveWeights(filepath.Join(modelDir, "model.safetensors"), m.Config, m.ParamData()); err != nil {
		return err
	}
	if err := copyTokenizerFiles(tokDir, modelDir); err != nil {
		return err
	}
	return writeResults(inv, "pretrain: loss", m, res, map[string]any{
		"train_records": len(trainSet), "validation_records": len(valSet), "records_cut_to_seq_len": cut,
		"conversations_skipped": skipped,
	})
}

// pretrainExamples reads the records of files in order and encodes what
// pretraining in mode takes from each (see trainingdata.PretrainingText).
func pretrainExamples(enc *trainingdata.Encoder, files []steps.InputFile, mode string) (out []train.Example, skipped int, err error) {
	seen := map[string]bool{}
	for _, f := range files {
		err := steps.ReadJSONL(f.Path, func(line int, raw []byte) error {
			text, err := steps.RecordText(raw)
			if err != nil {
				return err
			}
			text, ok := trainingdata.PretrainingText(text, mode, seen)
			if !ok {
				skipped++
				return nil
			}
			if strings.TrimSpace(text) == "" {
				return nil
			}
			ex := enc.Encode(text)
			out = append(out, train.Example{IDs: ex.IDs, Labels: ex.Labels})
			return nil
		})
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", f.Name, err)
		}
	}
	return out, skipped, nil
}

// holdOut splits examples into training and validation sets: a seeded
// shuffle of the indices, the first fraction held out, both kept in their
// original order.
func holdOut(all []train.Example, frac float64, seed uint64) (trainSet, valSet []train.Example) {
	n := int(frac*float64(len(all)) + 0.5)
	if frac > 0 && n == 0 && len(all) > 1 {
		n = 1
	}
	idx := make([]int, len(all))
	for i := range idx {
		idx[i] = i
	}
	seeded.New(seed, 0x686f6c64).Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
	held := make([]bool, len(all))
	for _, i := range idx[:n] {
		held[i] = true
	}
	for i, e := range all {
		if held[i] {
			valSet = append(valSet, e)
		} else {
			trainSet = append(trainSet, e)
		}
	}
	return trainSet, valSet
}

func lastTrainLoss(res *train.Result) any {
	if len(res.History) == 0 {
		return nil
	}
	return jsonNum(res.History[len(res.History)-1].TrainLoss)
}

// writeGenerationConfig writes generation_config.json: the BOS and the end
// ids (EOS and, when the tokenizer has it, the chat format's "<|end|>").
func writeGenerationConfig(dir string, tok *tokenizer.Tokenizer) error {
	eos := []int{tok.EOS()}
	if id, ok := tok.TokenID("<|end|>"); ok {
		eos = append(eos, id)
	}
	return steps.WriteJSON(filepath.Join(dir, "generation_config.json"), map[string]any{
		"bos_token_id": tok.BOS(), "eos_token_id": eos, "pad_token_id": padID(tok),
	})
}

// tokenizerFiles are the files a model directory carries for its tokenizer.
var tokenizerFiles = []string{"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"}

// copyTokenizerFiles copies the tokenizer files that exist in src to dst.
func copyTokenizerFiles(src, dst string) error {
	for _, name := range tokenizerFiles {
		data, err := os.ReadFile(filepath.Join(src, name))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
