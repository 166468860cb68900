package interop_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/mlbuild/mlbuild/internal/shareddata"
	"github.com/mlbuild/mlbuild/ml/gguf"
	"github.com/mlbuild/mlbuild/ml/nf4"
	"github.com/mlbuild/mlbuild/ml/safetensors"
)

// qloraWeight matches the tensors qlora_train quantizes to NF4: every
// linear layer of every decoder layer.
var qloraWeight = regexp.MustCompile(`^model\.layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)\.weight$`)

// nf4Input is one tensor quantized by both sides.
type nf4Input struct {
	name  string
	dtype safetensors.DType
	shape []int
	data  []float32 // the values as mlbuild quantizes them (16-bit inputs widened exactly)
}

// TestNF4MatchesBitsandbytes quantizes real pretrained weights (every
// tensor a QLoRA of SmolLM2-135M-Instruct quantizes: its GGUF dequantized to
// float32 by ml/gguf as qlora_train reads it) and edge tensors with
// mlbuild's ml/nf4 and with bitsandbytes' quantize_4bit (nf4, double
// quantization, blocksize 64) on the CPU (scripts/bnb_nf4.py), and compares
// the packed nibbles, the float32 first-level absmax, the 8-bit quantized
// absmax, the second-level absmax, the offset, the 8-bit map and the
// dequantized values, bit for bit (compareNF4). Edge tensors avoid what
// bitsandbytes' CPU backend cannot quantize, an odd number of elements (its
// nibble packing raises "The size of tensor a (65) must match the size of
// tensor b (64)").
func TestNF4MatchesBitsandbytes(t *testing.T) {
	python(t)
	path := shareddata.SmolLM2(t)
	dir := t.TempDir()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(dir, "smollm2")
	if err := gguf.ConvertLlama(f, model); err != nil {
		t.Fatal(err)
	}
	weights, err := safetensors.Open(filepath.Join(model, safetensors.SingleFileName))
	if err != nil {
		t.Fatal(err)
	}
	defer weights.Close()
	var real []string
	for _, n := range weights.Names() {
		if qloraWeight.MatchString(n) {
			real = append(real, n)
		}
	}
	if len(real) != 30*7 {
		t.Fatalf("%d tensors of SmolLM2-135M match the QLoRA targets, want 30 layers × 7", len(real))
	}

	edges := edgeTensors(t, weights)
	edgeFile := filepath.Join(dir, "edges.safetensors")
	var ts []safetensors.Tensor
	for _, e := range edges {
		var data []byte
		switch e.dtype {
		case safetensors.F32:
			data = safetensors.F32Bytes(e.data)
		case safetensors.BF16:
			data = safetensors.BF16Bytes(e.data)
		case safetensors.F16:
			data = safetensors.F16Bytes(e.data)
		}
		ts = append(ts, safetensors.Tensor{Name: e.name, DType: e.dtype, Shape: e.shape, Data: data})
	}
	if err := safetensors.Write(edgeFile, ts, nil); err != nil {
		t.Fatal(err)
	}
	edgeNames := make([]string, len(edges))
	for i, e := range edges {
		edgeNames[i] = e.name
	}
	req, err := json.Marshal(map[string]any{"inputs": []map[string]any{
		{"file": filepath.Join(model, safetensors.SingleFileName), "names": real},
		{"file": edgeFile, "names": edgeNames},
	}})
	if err != nil {
		t.Fatal(err)
	}
	reqFile, outFile := filepath.Join(dir, "nf4.json"), filepath.Join(dir, "bnb.safetensors")
	if err := os.WriteFile(reqFile, req, 0o644); err != nil {
		t.Fatal(err)
	}
	runScript(t, "bnb_nf4.py", reqFile, outFile)
	bnb, err := safetensors.Open(outFile)
	if err != nil {
		t.Fatal(err)
	}
	defer bnb.Close()
	md := bnb.Metadata()
	t.Logf("reference: torch %s, bitsandbytes %s (CPU)", md["torch"], md["bitsandbytes"])

	dm, err := bnb.Float32("dynamic_map")
	if err != nil {
		t.Fatal(err)
	}
	if diffBits(dm, nf4.DynamicMap[:]) != 0 {
		t.Errorf("bitsandbytes' create_dynamic_map() differs from nf4.DynamicMap")
	}
	var total nf4Counts
	for _, n := range real {
		info, _ := weights.Info(n)
		v, err := weights.Float32(n)
		if err != nil {
			t.Fatal(err)
		}
		total.add(compareNF4(t, bnb, nf4Input{name: n, dtype: info.DType, shape: info.Shape, data: v}))
	}
	t.Logf("SmolLM2-135M-Instruct, %d tensors: %s", len(real), total)
	for _, e := range edges {
		t.Logf("%s %v %s: %s", e.name, e.shape, e.dtype, compareNF4(t, bnb, e))
	}
}

// nf4Counts counts what was compared and what differed.
type nf4Counts struct {
	values, packedBytes, blocks, groups, q0Blocks                                   int
	packedDiff, qabsmaxDiff, absmaxDiff, absmax2Diff, offsetDiff, code2Diff, dqDiff int
}

func (c *nf4Counts) add(o nf4Counts) {
	c.values += o.values
	c.packedBytes += o.packedBytes
	c.blocks += o.blocks
	c.groups += o.groups
	c.q0Blocks += o.q0Blocks
	c.packedDiff += o.packedDiff
	c.qabsmaxDiff += o.qabsmaxDiff
	c.absmaxDiff += o.absmaxDiff
	c.absmax2Diff += o.absmax2Diff
	c.offsetDiff += o.offsetDiff
	c.code2Diff += o.code2Diff
	c.dqDiff += o.dqDiff
}

func (c nf4Counts) String() string {
	return fmt.Sprintf("%d values: %d packed bytes (%d differ), %d absmax (%d differ), %d 8-bit absmax codes (%d differ; %d of code 0), "+
		"%d absmax2 (%d differ), offset (%d differ), 8-bit map (%d entries differ), %d dequantized values (%d differ)",
		c.values, c.packedBytes, c.packedDiff, c.blocks, c.absmaxDiff, c.blocks, c.qabsmaxDiff, c.q0Blocks,
		c.groups, c.absmax2Diff, c.offsetDiff, c.code2Diff, c.values, c.dqDiff)
}

// compareNF4 quantizes in with ml/nf4 and compares every part with
// bitsandbytes' result, bit for bit, reporting the first differences.
func compareNF4(t *testing.T, bnb *safetensors.File, in nf4Input) nf4Counts {
	t.Helper()
	raw := func(part string) []byte {
		b, err := bnb.Raw(in.name + "/" + part)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	f32 := func(part string) []float32 {
		v, err := bnb.Float32(in.name + "/" + part)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	q := nf4.Quantize(in.data, in.shape...)
	plain := nf4.QuantizeNoDoubleQuant(in.data, in.shape...)
	dq := make([]float32, len(in.data))
	q.Dequantize(dq)
	bPacked, bQ := raw("packed"), raw("qabsmax")
	c := nf4Counts{values: len(in.data), packedBytes: len(q.Packed), blocks: len(q.QAbsmax), groups: len(q.Absmax2)}
	if len(bPacked) != len(q.Packed) || len(bQ) != len(q.QAbsmax) {
		t.Fatalf("%s: bitsandbytes has %d packed bytes and %d 8-bit codes, mlbuild %d and %d",
			in.name, len(bPacked), len(bQ), len(q.Packed), len(q.QAbsmax))
	}
	shown := 0
	show := func(format string, args ...any) {
		if shown++; shown <= 5 {
			t.Errorf("%s: "+format, append([]any{in.name}, args...)...)
		}
	}
	for i := range bPacked {
		if bPacked[i] == q.Packed[i] {
			continue
		}
		c.packedDiff++
		j := 2 * i
		show("packed byte %d (elements %d, %d normalized to %v, %v): mlbuild %02x, bitsandbytes %02x", i, j, j+1,
			in.data[j]*(1/plain.RawAbsmax[j/64]), in.data[min(j+1, len(in.data)-1)]*(1/plain.RawAbsmax[j/64]), q.Packed[i], bPacked[i])
	}
	for k := range bQ {
		if bQ[k] == 0 {
			c.q0Blocks++
		}
		if bQ[k] != q.QAbsmax[k] {
			c.qabsmaxDiff++
			show("block %d, (absmax-offset)/absmax2 = %v: 8-bit code %d, bitsandbytes %d", k,
				(plain.RawAbsmax[k]-q.Offset)/q.Absmax2[k/nf4.BlockSize2], q.QAbsmax[k], bQ[k])
		}
	}
	if c.absmaxDiff = diffBits(plain.RawAbsmax, f32("absmax")); c.absmaxDiff != 0 {
		show("%d first-level absmax differ", c.absmaxDiff)
	}
	if c.absmax2Diff = diffBits(q.Absmax2, f32("absmax2")); c.absmax2Diff != 0 {
		show("%d second-level absmax differ", c.absmax2Diff)
	}
	if c.offsetDiff = diffBits([]float32{q.Offset}, f32("offset")); c.offsetDiff != 0 {
		show("offset %v, bitsandbytes %v", q.Offset, f32("offset")[0])
	}
	if c.code2Diff = diffBits(nf4.QuantMap8[:], f32("code2")); c.code2Diff != 0 {
		show("%d entries of the 8-bit map differ from QuantMap8", c.code2Diff)
	}
	if c.dqDiff = diffBits(dq, f32("dequantized")); c.dqDiff != 0 {
		show("%d dequantized values differ", c.dqDiff)
	}
	return c
}

func diffBits(a, b []float32) int {
	n := max(len(a), len(b)) - min(len(a), len(b))
	for i := range min(len(a), len(b)) {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			n++
		}
	}
	return n
}

// edgeTensors are the inputs beside the real weights: a block of zeros, a
// block with one huge value, negative values only, a length that is not a
// multiple of 64, a single block and blocks of equal absmax (absmax2 is 0),
// and a real weight in bfloat16 and float16 (mlbuild widens
// a 16-bit checkpoint exactly to float32 before quantizing; bitsandbytes
// quantizes the 16-bit tensor).
func edgeTensors(t *testing.T, weights *safetensors.File) []nf4Input {
	rng := rand.New(rand.NewPCG(13, 4))
	normal := func(n int, scale float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * scale)
		}
		return v
	}
	zeros := normal(64*8, 0.02)
	clear(zeros[64*3 : 64*4])
	huge := normal(64*8, 0.02)
	huge[64*5+17] = 300
	neg := normal(64*8, 0.02)
	for i := range neg {
		neg[i] = -float32(math.Abs(float64(neg[i])))
	}
	// Every block's absmax 0.5: all of absmax−offset is 0, and so is absmax2.
	equal := normal(4*64, 0.02)
	for b := range 4 {
		equal[b*64+b] = 0.5
	}
	w, err := weights.Float32("model.layers.7.mlp.down_proj.weight")
	if err != nil {
		t.Fatal(err)
	}
	info, _ := weights.Info("model.layers.7.mlp.down_proj.weight")
	round := func(conv func(float32) float32) []float32 {
		out := make([]float32, len(w))
		for i, x := range w {
			out[i] = conv(x)
		}
		return out
	}
	bf := round(func(x float32) float32 { return safetensors.BF16ToF32(safetensors.F32ToBF16(x)) })
	hf := round(func(x float32) float32 { return safetensors.F16ToF32(safetensors.F32ToF16(x)) })
	return []nf4Input{
		{name: "edge.zero_block", dtype: safetensors.F32, shape: []int{8, 64}, data: zeros},
		{name: "edge.huge_value", dtype: safetensors.F32, shape: []int{8, 64}, data: huge},
		{name: "edge.negative", dtype: safetensors.F32, shape: []int{8, 64}, data: neg},
		{name: "edge.tail", dtype: safetensors.F32, shape: []int{7, 58}, data: normal(7*58, 0.05)},
		{name: "edge.one_block", dtype: safetensors.F32, shape: []int{64}, data: normal(64, 0.02)},
		{name: "edge.equal_absmax", dtype: safetensors.F32, shape: []int{4, 64}, data: equal},
		{name: "edge.bf16", dtype: safetensors.BF16, shape: slices.Clone(info.Shape), data: bf},
		{name: "edge.f16", dtype: safetensors.F16, shape: slices.Clone(info.Shape), data: hf},
	}
}
