package config

import (
	"encoding/json"
	"fmt"
)

// JSON returns a config.json for c that transformers loads as the same
// model, with keys sorted and two-space indentation as save_pretrained
// writes them. Parse of the result gives back c. It fails only for a Config
// built by hand with a non-finite number in it.
func (c *Config) JSON() ([]byte, error) {
	m := map[string]any{
		"architectures":           []string{string(c.Architecture)},
		"model_type":              c.ModelType,
		"hidden_size":             c.HiddenSize,
		"intermediate_size":       c.IntermediateSize,
		"num_hidden_layers":       c.NumHiddenLayers,
		"num_attention_heads":     c.NumAttentionHeads,
		"num_key_value_heads":     c.NumKeyValueHeads,
		"vocab_size":              c.VocabSize,
		"max_position_embeddings": c.MaxPositionEmbeddings,
		"rms_norm_eps":            c.RMSNormEps,
		"rope_theta":              c.RopeTheta,
		"rope_scaling":            nil,
		"tie_word_embeddings":     c.TieWordEmbeddings,
		"bos_token_id":            idsJSON(c.BOSTokenIDs),
		"eos_token_id":            idsJSON(c.EOSTokenIDs),
		"pad_token_id":            nil,
		"hidden_act":              c.HiddenAct,
		"attention_bias":          false,
		"use_cache":               true,
	}
	if c.PadTokenID >= 0 {
		m["pad_token_id"] = c.PadTokenID
	}
	if c.TorchDType != "" {
		m["torch_dtype"] = c.TorchDType
	}
	if rs := c.RopeScaling; rs != nil && rs.Type == "linear" {
		m["rope_scaling"] = map[string]any{"rope_type": rs.Type, "factor": rs.Factor}
	} else if rs != nil {
		m["rope_scaling"] = map[string]any{
			"rope_type":                        rs.Type,
			"factor":                           rs.Factor,
			"low_freq_factor":                  rs.LowFreqFactor,
			"high_freq_factor":                 rs.HighFreqFactor,
			"original_max_position_embeddings": rs.OriginalMaxPositionEmbeddings,
		}
	}
	window := func() any {
		if c.SlidingWindow > 0 {
			return c.SlidingWindow
		}
		return nil
	}
	switch c.Architecture {
	case Llama:
		m["head_dim"] = c.HeadDim
		m["mlp_bias"] = false
	case Mistral:
		m["head_dim"] = c.HeadDim
		m["sliding_window"] = window()
	case Phi3:
		m["sliding_window"] = window()
		if c.OriginalMaxPositionEmbeddings > 0 {
			m["original_max_position_embeddings"] = c.OriginalMaxPositionEmbeddings
		}
	}
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("writing config.json: %w", err)
	}
	return append(out, '\n'), nil
}

func idsJSON(ids []int) any {
	switch len(ids) {
	case 0:
		return nil
	case 1:
		return ids[0]
	}
	return ids
}
