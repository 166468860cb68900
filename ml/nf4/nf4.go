// Package nf4 implements bitsandbytes' NF4 4-bit weight quantization with
// double quantization ("QLoRA" storage), bit for bit as bitsandbytes
// computes it on the CPU: a weight quantized here and one quantized by
// bnb.functional.quantize_4bit(w, blocksize=64, quant_type="nf4",
// compress_statistics=True) on the CPU hold the same bytes and dequantize
// to the same values (ml/interop checks it on every tensor a QLoRA of
// SmolLM2-135M quantizes). A bfloat16 or float16 weight widened exactly to
// float32 gives what bitsandbytes gives for the 16-bit tensor. bitsandbytes'
// CUDA kernels round by other rules in a few places, listed at the end.
//
// # Layout
//
// The weight is flattened row-major and cut into blocks of BlockSize (64)
// elements; the last block may be short. For each block the absmax (the
// largest |x|, float32) is recorded, every element is normalized by
// multiplying it with the float32 reciprocal 1/absmax, and the normalized
// value is mapped to the nearest of the 16 NF4 Codes as bitsandbytes' CPU
// backend finds it (QuantizeValue: the first code of least float32
// distance). Two codes share a byte, the element with the even index in the
// high nibble: Packed[i/2] holds element i in bits 7..4 when i is even and
// in bits 3..0 when i is odd. A tensor with an odd number of elements has a
// last low nibble that encodes a padding zero (code 7, or 0 in an all-zero
// block), as bitsandbytes' CUDA kernel stores it (its CPU backend refuses
// odd lengths).
//
// Double quantization compresses the per-block absmax: Offset is the mean of
// the absmax values (torch's CPU mean, Mean), absmax−Offset is quantized
// with bitsandbytes' blockwise 8-bit quantizer in blocks of BlockSize2 (256)
// against QuantMap8 (the signed dynamic map DynamicMap,
// create_dynamic_map(signed=True), with entry 0 set to -1.0 as the CPU
// quantizer sets it), giving one byte per 64-block (QAbsmax) and one float32
// per 256 64-blocks (Absmax2). The dequantized absmax of block b is
//
//	float32(float32(QuantMap8[QAbsmax[b]]·Absmax2[b/256]) + Offset)
//
// and element i dequantizes to float32(Codes[nibble(i)]·absmax[i/64]).
// Storage is 0.5 byte per parameter plus 1/64 byte of QAbsmax and
// 4/16384 byte of Absmax2, about 0.516 byte per parameter.
//
// # Correspondence with bitsandbytes
//
//	this package                bitsandbytes (0.48.2, 0.49.2)
//	Codes                       get_4bit_type("nf4") (bitsandbytes/functional.py)
//	QuantizeValue               quantize_4bit's argmin (bitsandbytes/backends/default/ops.py)
//	QuantizeNF4Blocks           quantize_4bit of the default (CPU) backend
//	DynamicMap                  create_dynamic_map() (bitsandbytes/functional.py)
//	QuantMap8                   the map after quantize_cpu's code[0] = -1.0 (csrc/cpu_ops.cpp)
//	CreateDynamicMap            create_dynamic_map(signed, max_exponent_bits, total_bits)
//	QuantizeBlockwise8          quantize_blockwise on the CPU (quantize_cpu, quantize_block)
//	Mean, Sum                   _absmax.mean() in functional.quantize_4bit (torch's CPU mean)
//	Quantize                    functional.quantize_4bit(..., compress_statistics=True)
//	QuantizeWithOffset          the same, given quant_state.offset
//	QuantizeNoDoubleQuant       functional.quantize_4bit(..., compress_statistics=False)
//	Tensor.Packed               the returned uint8 tensor (shape [(n+1)/2, 1])
//	Tensor.QAbsmax              quant_state.absmax (uint8)
//	Tensor.Absmax2              quant_state.state2.absmax
//	Tensor.Offset               quant_state.offset
//	Tensor.Absmax               dequantize_blockwise(absmax, state2) + offset
//	Tensor.Dequantize           functional.dequantize_4bit
//	Tensor.StateDict            Linear4bit's state-dict entries for "weight"
//	Tensor.QuantStateJSON       their quant_state.bitsandbytes__nf4 entry
//
// Every operation is a single IEEE float32 operation (explicit conversions
// keep the Go compiler from fusing a multiply and an add). The 4-bit stage
// flushes float32 subnormals to zero as the CUDA kernel's .ftz instructions
// do (the CPU backend keeps them; only a block whose values are all
// subnormal quantizes differently).
//
// # The CUDA kernels
//
// bitsandbytes' CUDA kernels (csrc/kernels.cu, built with --use_fast_math)
// compute the same layout by other rules, so a tensor quantized on a GPU can
// differ here and there: the nibble comes from a decision tree against
// Thresholds (treeNibble), which differs from the argmin for one float32
// value at each of the thresholds 1, 3, 4 and 8 (each the midpoint rounded
// up, the tree giving the farther code); the 8-bit codes come from
// dQuantize<0> on x·(1/absmax) with its own tie rule, against DynamicMap
// with entry 0 at -0.99296875; 1/absmax is rcp.approx (within 1 ulp); and
// torch's CUDA mean is a float32 tree reduction times float32(1/N). On
// SmolLM2-135M's 106M quantized values these rules give 3 other nibbles and
// 14 other 8-bit codes, and 191 blocks of 8-bit code 0 dequantize
// differently (docs/models.md).
package nf4

import (
	"fmt"
	"math"
	"math/bits"
	"runtime"
	"sync"
)

const (
	// BlockSize is the number of weights that share one absmax (bitsandbytes'
	// default blocksize for quantize_4bit).
	BlockSize = 64
	// BlockSize2 is the number of absmax values that share one second-level
	// scale in double quantization (quantize_blockwise(..., blocksize=256)).
	BlockSize2 = 256
)

// Codes is the NF4 code book, ascending, exactly bitsandbytes'
// nf4_dequantization_lut (csrc/kernels.cu) and get_4bit_type("nf4")
// (bitsandbytes/functional.py). Nibble value k stands for Codes[k].
var Codes = [16]float32{
	-1.0,
	-0.6961928009986877,
	-0.5250730514526367,
	-0.39491748809814453,
	-0.28444138169288635,
	-0.18477343022823334,
	-0.09105003625154495,
	0.0,
	0.07958029955625534,
	0.16093020141124725,
	0.24611230194568634,
	0.33791524171829224,
	0.44070982933044434,
	0.5626170039176941,
	0.7229568362236023,
	1.0,
}

// Thresholds are the decision-tree constants of dQuantizeNF4
// (csrc/kernels.cu): bitsandbytes' float literals (0.8614784181118011f, ...)
// converted as C++ converts a float literal, the decimal rounded directly to
// float32 (which is also what Go does with these constants).
// Thresholds[k] separates Codes[k] and Codes[k+1]: in the CUDA kernel's
// tree (treeNibble) a normalized value x gets code k+1 or above iff
// x > Thresholds[k], so a value equal to a threshold takes the lower code.
// QuantizeValue starts from the tree and corrects it to the CPU backend's
// argmin, which for Thresholds 1, 3, 4 and 8 themselves is the upper code.
//
// Read as float64, each literal is exactly the midpoint
// (float64(Codes[k])+float64(Codes[k+1]))/2 (bitsandbytes'
// test_normal_map_tree printed them that way). For 11 of the 15 the float32
// threshold is that midpoint rounded to float32. For k = 0, 8, 12 and 14 the
// midpoint lies exactly halfway between two float32 values; rounding it
// (ties to even) and rounding the decimal literal then pick different
// neighbours, and this table holds the literal's, which is also the one that
// makes x > Thresholds[k] exactly "x is above the true midpoint". The two
// readings differ for one float32 input per such threshold. The tests check
// all of this.
var Thresholds = [15]float32{
	-0.8480964004993439,
	-0.6106329262256622,
	-0.4599952697753906,
	-0.33967943489551544,
	-0.23460740596055984,
	-0.13791173323988914,
	-0.045525018125772476,
	0.03979014977812767,
	0.1202552504837513,
	0.2035212516784668,
	0.2920137718319893,
	0.3893125355243683,
	0.5016634166240692,
	0.6427869200706482,
	0.8614784181118011,
}

// minNormal is the smallest positive normal float32; the kernel's .ftz
// arithmetic treats anything smaller in magnitude as zero.
const minNormal = 0x1p-126

// ftz flushes a float32 subnormal to zero, as nvcc's --use_fast_math
// (-ftz=true) arithmetic does.
func ftz(x float32) float32 {
	if x != 0 && x > -minNormal && x < minNormal {
		return 0
	}
	return x
}

// QuantizeValue maps a normalized value (x·(1/absmax), nominally in
// [-1, 1]) to its NF4 nibble as bitsandbytes' CPU backend does
// (quantize_4bit in bitsandbytes/backends/default/ops.py): the value clamped
// to [-1, 1], then the first of the 16 Codes at the least float32 distance
// |x − code| (torch.argmin over torch.abs(scaled − code)). NaN, which an
// all-zero block gives (0·(1/0)), maps to 0, the code of -1.0, as argmin
// returns the first NaN.
//
// It is computed as the CUDA kernel's decision tree (treeNibble), which
// lands on the nearest code or its neighbour, then the float32 distances to
// the neighbours. The two rules differ only for a value within about an ulp
// of a midpoint between two codes: the tree compares with Thresholds (each
// the midpoint rounded to float32, or for four of them the literal's
// rounding) and puts a value equal to one on the lower side, while the
// argmin compares rounded distances. Where they disagree on real weights
// the argmin's code is the nearer one (docs/models.md).
func QuantizeValue(x float32) uint8 {
	if x != x {
		return 0
	}
	x = min(max(x, -1), 1)
	k := treeNibble(x)
	d := abs32(x - Codes[k])
	if k > 0 && abs32(x-Codes[k-1]) <= d {
		return k - 1
	}
	if k < 15 && abs32(x-Codes[k+1]) < d {
		return k + 1
	}
	return k
}

// abs32 is |x| in float32.
func abs32(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) }

// treeNibble is bitsandbytes' CUDA dQuantizeNF4 (csrc/kernels.cu): a binary
// decision tree comparing against Thresholds with ">", so a value on a
// threshold takes the lower code. NaN compares false everywhere and maps to
// 0.
func treeNibble(x float32) uint8 {
	t := &Thresholds
	if x > t[7] {
		if x > t[11] {
			if x > t[13] {
				if x > t[14] {
					return 0b1111
				}
				return 0b1110
			}
			if x > t[12] {
				return 0b1101
			}
			return 0b1100
		}
		if x > t[9] {
			if x > t[10] {
				return 0b1011
			}
			return 0b1010
		}
		if x > t[8] {
			return 0b1001
		}
		return 0b1000
	}
	if x > t[3] {
		if x > t[5] {
			if x > t[6] {
				return 0b0111
			}
			return 0b0110
		}
		if x > t[4] {
			return 0b0101
		}
		return 0b0100
	}
	if x > t[1] {
		if x > t[2] {
			return 0b0011
		}
		return 0b0010
	}
	if x > t[0] {
		return 0b0001
	}
	return 0b0000
}

// blockAbsmax is the kernel's per-block reduction: the maximum of
// fabsf(x) with subnormals flushed (fmaxf.ftz), padding zeros included.
func blockAbsmax(x []float32) float32 {
	var m float32
	for _, v := range x {
		a := ftz(float32(math.Abs(float64(v))))
		if a > m {
			m = a
		}
	}
	return m
}

// reciprocal is the kernel's smem_absmax_value = 1.0f / local_abs_max, with
// the .ftz flush of a subnormal result. A zero absmax gives +Inf.
//
// The CUDA build (--use_fast_math) evaluates this with rcp.approx.ftz.f32,
// which is documented to be within 1 ulp of the quotient; the IEEE
// correctly rounded quotient is used here. The two can differ in the last
// bit, which changes a code only for an element whose normalized value lies
// within about one ulp of a threshold.
func reciprocal(absmax float32) float32 {
	return ftz(1 / absmax)
}

// QuantizeNF4Blocks quantizes data to NF4 as bitsandbytes' quantize_4bit
// does on the CPU (the absmax, x·(1/absmax), QuantizeValue; the CUDA
// kernel kQuantizeBlockwise computes the same but for the rules listed in
// the package documentation) in blocks of blocksize elements
// (bitsandbytes allows 32..4096, powers of two; this function accepts any
// even blocksize). It returns the packed nibbles, (len(data)+1)/2 bytes,
// and the float32 absmax of each block.
func QuantizeNF4Blocks(data []float32, blocksize int) (packed []byte, absmax []float32) {
	if blocksize <= 0 || blocksize%2 != 0 {
		panic(fmt.Sprintf("nf4: blocksize %d must be positive and even", blocksize))
	}
	n := len(data)
	nb := (n + blocksize - 1) / blocksize
	packed = make([]byte, (n+1)/2)
	absmax = make([]float32, nb)
	// Blocks are independent: large tensors are split over goroutines in
	// chunks of a fixed number of blocks (the result does not depend on the
	// split).
	const chunk = 2048
	if nb <= chunk {
		quantizeNF4Range(data, blocksize, packed, absmax, 0, nb)
		return packed, absmax
	}
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), (nb+chunk-1)/chunk) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b0 := range work {
				quantizeNF4Range(data, blocksize, packed, absmax, b0, min(b0+chunk, nb))
			}
		}()
	}
	for b0 := 0; b0 < nb; b0 += chunk {
		work <- b0
	}
	close(work)
	wg.Wait()
	return packed, absmax
}

// quantizeNF4Range quantizes blocks [b0, b1) of data.
func quantizeNF4Range(data []float32, blocksize int, packed []byte, absmax []float32, b0, b1 int) {
	n := len(data)
	for b := b0; b < b1; b++ {
		lo := b * blocksize
		hi := min(lo+blocksize, n)
		blk := data[lo:hi]
		am := blockAbsmax(blk)
		absmax[b] = am
		r := reciprocal(am)
		out := packed[lo/2:]
		j := 0
		for ; j+1 < len(blk); j += 2 {
			q0 := QuantizeValue(float32(ftz(blk[j]) * r))
			q1 := QuantizeValue(float32(ftz(blk[j+1]) * r))
			out[j/2] = q0<<4 | q1
		}
		if j < len(blk) {
			// Odd tail: the kernel pairs the last element with a loaded
			// padding zero, normalized like any element of the block.
			q0 := QuantizeValue(float32(ftz(blk[j]) * r))
			q1 := QuantizeValue(float32(float32(0) * r))
			out[j/2] = q0<<4 | q1
		}
	}
}

// Tensor is an NF4-quantized tensor in bitsandbytes' layout (see the
// package documentation). Its methods only read it, so one Tensor may be
// dequantized from several goroutines at once.
type Tensor struct {
	// Shape is the shape of the original tensor (row-major).
	Shape []int
	// Packed holds two 4-bit codes per byte, the even element in the high
	// nibble; len(Packed) == (n+1)/2 for n elements.
	Packed []byte
	// QAbsmax is the 8-bit double-quantized absmax, one byte per block of
	// BlockSize elements (nil when the tensor is not double-quantized).
	QAbsmax []uint8
	// Absmax2 is the float32 scale of each group of BlockSize2 QAbsmax
	// values.
	Absmax2 []float32
	// Offset is the mean of the first-level absmax, subtracted before the
	// 8-bit quantization and added back after it.
	Offset float32
	// RawAbsmax is the float32 absmax of each block when the tensor is not
	// double-quantized (QuantizeNoDoubleQuant); nil otherwise.
	RawAbsmax []float32
	// BlockSize is the number of elements per absmax (64).
	BlockSize int
	// BlockSize2 is the number of absmax values per Absmax2 entry (256).
	BlockSize2 int
}

func shapeOf(n int, shape []int) []int {
	if len(shape) == 0 {
		return []int{n}
	}
	p := 1
	for _, d := range shape {
		if d < 0 {
			panic(fmt.Sprintf("nf4: negative dimension in shape %v", shape))
		}
		p *= d
	}
	if p != n {
		panic(fmt.Sprintf("nf4: shape %v has %d elements, data has %d", shape, p, n))
	}
	return append([]int(nil), shape...)
}

// Quantize quantizes data (row-major, with the given shape; a 1-D shape
// when none is given) to NF4 with double quantization, as
// bitsandbytes.functional.quantize_4bit(A, blocksize=64, quant_type="nf4",
// compress_statistics=True) does for a float32 A. The offset is Mean of the
// block absmax, torch's CPU mean; see Mean for its CUDA counterpart.
func Quantize(data []float32, shape ...int) *Tensor {
	sh := shapeOf(len(data), shape)
	packed, absmax := QuantizeNF4Blocks(data, BlockSize)
	return doubleQuantize(sh, packed, absmax, Mean(absmax))
}

// QuantizeWithOffset is Quantize with the double-quantization offset given
// by the caller instead of computed by Mean. Given the offset that
// bitsandbytes computed (quant_state.offset), the result must equal
// bitsandbytes' byte for byte; this is how the comparison script checks the
// 8-bit stage independently of torch's float32 reduction order.
func QuantizeWithOffset(data []float32, offset float32, shape ...int) *Tensor {
	sh := shapeOf(len(data), shape)
	packed, absmax := QuantizeNF4Blocks(data, BlockSize)
	return doubleQuantize(sh, packed, absmax, offset)
}

// QuantizeNoDoubleQuant quantizes data to NF4 keeping the float32 absmax
// (bitsandbytes' compress_statistics=False); the absmax is in RawAbsmax.
func QuantizeNoDoubleQuant(data []float32, shape ...int) *Tensor {
	sh := shapeOf(len(data), shape)
	packed, absmax := QuantizeNF4Blocks(data, BlockSize)
	return &Tensor{Shape: sh, Packed: packed, RawAbsmax: absmax, BlockSize: BlockSize, BlockSize2: BlockSize2}
}

func doubleQuantize(shape []int, packed []byte, absmax []float32, offset float32) *Tensor {
	centered := make([]float32, len(absmax))
	for i, a := range absmax {
		centered[i] = a - offset
	}
	q, absmax2 := QuantizeBlockwise8(centered, &QuantMap8, BlockSize2)
	return &Tensor{
		Shape:      shape,
		Packed:     packed,
		QAbsmax:    q,
		Absmax2:    absmax2,
		Offset:     offset,
		BlockSize:  BlockSize,
		BlockSize2: BlockSize2,
	}
}

// Mean is the double-quantization offset, computed exactly as torch's CPU
// mean of a contiguous float32 vector (_absmax.mean() in
// functional.quantize_4bit, which bitsandbytes runs on the CPU): the float32
// sum of Sum, then one float32 division by N (at::mean_out on the CPU is
// sum_out(...).div_(N)). It returns 0 for an empty slice.
//
// torch's CUDA mean projects the float32 sum of a parallel tree reduction
// as sum·float32(1/N) (MeanOps in ReduceMomentKernel.cu); a tensor
// quantized on a GPU may therefore carry an offset a few ulps away from
// this one. The offset is stored with the tensor, so dequantization is
// self-consistent either way; QuantizeWithOffset takes a given offset.
func Mean(absmax []float32) float32 {
	if len(absmax) == 0 {
		return 0
	}
	return float32(Sum(absmax) / float32(len(absmax)))
}

// Sum is torch's CPU float32 sum of a contiguous vector
// (aten/src/ATen/native/cpu/SumKernel.cpp, torch 2.x), computed in the
// same order so that the result is bit-identical: Vectorized<float> loads
// of sumLanes values summed lane-wise by row_sum (four interleaved
// accumulators, each a multi_row_sum cascade of four levels), then the
// leftover values in order, then the lanes in order. A vector shorter than
// sumLanes is summed by the scalar row_sum. sumLanes is 8, the width of
// torch's AVX2 (and default) kernels; torch built for AVX-512 and running
// its AVX-512 kernels sums 16 lanes and may round differently (ml/interop
// pins ATEN_CPU_CAPABILITY=avx2). torch splits a sum of more than 32768
// values over its threads, which is not reproduced: this is its
// one-thread order.
func Sum(x []float32) float32 {
	n := len(x)
	if n < sumLanes {
		return rowSum(x, 1, n)[0]
	}
	vecs := n / sumLanes
	acc := rowSum(x, sumLanes, vecs)
	var s float32
	for _, v := range x[vecs*sumLanes:] {
		s += v
	}
	for _, v := range acc {
		s += v
	}
	return s
}

// sumLanes is the number of float32 lanes of torch's Vectorized<float> in
// the CPU kernels Sum follows (AVX2: 256 bits).
const sumLanes = 8

// rowSum is torch's row_sum over size elements of `lanes` float32 values
// each (element i is x[i·lanes:(i+1)·lanes]): four interleaved partial sums
// from multiRowSum, the elements left over added to the first, then the
// other three added to it, lane by lane.
func rowSum(x []float32, lanes, size int) []float32 {
	const ilp = 4
	p := multiRowSum(x, lanes, ilp, size/ilp)
	for i := size / ilp * ilp; i < size; i++ {
		addLanes(p[0], x[i*lanes:(i+1)*lanes])
	}
	for k := 1; k < ilp; k++ {
		addLanes(p[0], p[k])
	}
	return p[0]
}

// multiRowSum is torch's multi_row_sum: the sums of nrows interleaved rows
// (row k is elements k, nrows+k, 2·nrows+k, ... of size steps) in a
// four-level cascade that carries level j-1 into level j every
// 2^(j·levelPower) steps.
func multiRowSum(x []float32, lanes, nrows, size int) [][]float32 {
	const levels = 4
	levelPower := max(4, ceilLog2(size)/levels)
	levelStep := 1 << levelPower
	levelMask := levelStep - 1
	var acc [levels][][]float32
	for j := range acc {
		acc[j] = make([][]float32, nrows)
		for k := range acc[j] {
			acc[j][k] = make([]float32, lanes)
		}
	}
	elem := func(i, k int) []float32 {
		e := i*nrows + k
		return x[e*lanes : (e+1)*lanes]
	}
	i := 0
	for i+levelStep <= size {
		for j := 0; j < levelStep; j, i = j+1, i+1 {
			for k := range nrows {
				addLanes(acc[0][k], elem(i, k))
			}
		}
		for j := 1; j < levels; j++ {
			for k := range nrows {
				addLanes(acc[j][k], acc[j-1][k])
				clear(acc[j-1][k])
			}
			if i&(levelMask<<(j*levelPower)) != 0 {
				break
			}
		}
	}
	for ; i < size; i++ {
		for k := range nrows {
			addLanes(acc[0][k], elem(i, k))
		}
	}
	for j := 1; j < levels; j++ {
		for k := range nrows {
			addLanes(acc[0][k], acc[j][k])
		}
	}
	return acc[0]
}

// ceilLog2 is ATen's utils::CeilLog2: 1 for x <= 2, else ceil(log2 x).
func ceilLog2(x int) int {
	if x <= 2 {
		return 1
	}
	return bits.Len64(uint64(x - 1))
}

// addLanes adds b to a lane by lane in float32.
func addLanes(a, b []float32) {
	for l := range a {
		a[l] += b[l]
	}
}

// Len is the number of elements of the tensor.
func (t *Tensor) Len() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

func (t *Tensor) numBlocks() int {
	return (t.Len() + t.BlockSize - 1) / t.BlockSize
}

// blockAbsmaxAt is the dequantized absmax of block b.
func (t *Tensor) blockAbsmaxAt(b int) float32 {
	if t.QAbsmax == nil {
		return t.RawAbsmax[b]
	}
	// dequantize_blockwise: code[q]·absmax2 in float32, then torch's
	// separate float32 "absmax += offset".
	a := float32(QuantMap8[t.QAbsmax[b]] * t.Absmax2[b/t.BlockSize2])
	return float32(a + t.Offset)
}

// Absmax returns the dequantized absmax of every block (for a
// double-quantized tensor: QuantMap8[q]·Absmax2 + Offset, two float32
// operations, as bitsandbytes' dequantize_4bit computes it).
func (t *Tensor) Absmax() []float32 {
	out := make([]float32, t.numBlocks())
	for b := range out {
		out[b] = t.blockAbsmaxAt(b)
	}
	return out
}

// Bytes is the memory held by the quantized tensor: packed codes plus the
// statistics (QAbsmax, Absmax2, Offset, or RawAbsmax). The shared 256-entry
// DynamicMap and the 16 Codes are not counted (bitsandbytes' state dict
// stores a copy of each per tensor: 1088 bytes).
func (t *Tensor) Bytes() int {
	n := len(t.Packed) + len(t.QAbsmax) + 4*len(t.Absmax2) + 4*len(t.RawAbsmax)
	if t.QAbsmax != nil {
		n += 4 // Offset
	}
	return n
}

// Dequantize writes the whole tensor, row-major, to dst (len(dst) must be
// at least Len()): element i becomes float32(Codes[nibble(i)]·absmax) with
// the block's dequantized absmax, as kDequantizeBlockwise does.
func (t *Tensor) Dequantize(dst []float32) {
	n := t.Len()
	if len(dst) < n {
		panic(fmt.Sprintf("nf4: Dequantize: dst has %d elements, tensor %d", len(dst), n))
	}
	t.dequantizeRange(dst[:n], 0, n)
}

// DequantizeRows writes rows [lo, hi) of the tensor to dst, row-major.
// A row is the product of all dimensions after the first (a 1-D tensor has
// rows of one element). dst must hold at least (hi-lo)·rowLen elements.
// The result is bit-identical to the same range of Dequantize; it costs
// one absmax dequantization and a 16-entry scaled table per 64-block, then
// two table lookups per byte.
func (t *Tensor) DequantizeRows(dst []float32, lo, hi int) {
	rows := 0
	if len(t.Shape) > 0 {
		rows = t.Shape[0]
	}
	if lo < 0 || hi < lo || hi > rows {
		panic(fmt.Sprintf("nf4: DequantizeRows [%d,%d) out of range for %d rows", lo, hi, rows))
	}
	rowLen := 1
	if len(t.Shape) > 1 {
		for _, d := range t.Shape[1:] {
			rowLen *= d
		}
	}
	n := (hi - lo) * rowLen
	if len(dst) < n {
		panic(fmt.Sprintf("nf4: DequantizeRows: dst has %d elements, need %d", len(dst), n))
	}
	t.dequantizeRange(dst[:n], lo*rowLen, hi*rowLen)
}

// dequantizeRange writes elements [start, end) to dst[0:end-start].
func (t *Tensor) dequantizeRange(dst []float32, start, end int) {
	bs := t.BlockSize
	var table [16]float32
	for i := start; i < end; {
		b := i / bs
		blockEnd := min((b+1)*bs, end)
		am := t.blockAbsmaxAt(b)
		if am >= 0x1p-122 || am <= -0x1p-122 || am != am {
			// No product of a nonzero code (|code| >= 0.0796) and am is
			// subnormal: plain float32 multiplies.
			for k := range table {
				table[k] = float32(Codes[k] * am)
			}
		} else {
			for k := range table {
				// .ftz on the product, as the kernel's multiply.
				table[k] = ftz(float32(Codes[k] * am))
			}
		}
		out := dst[i-start : blockEnd-start]
		p := 0
		if i&1 == 1 {
			// Range starts on a low nibble.
			out[0] = table[t.Packed[i>>1]&15]
			p = 1
		}
		src := t.Packed[(i+p)>>1:]
		m := (len(out) - p) >> 1
		src = src[:m]
		pairs := out[p : p+2*m]
		j := 0
		for ; j+4 <= len(src); j += 4 {
			s4 := src[j : j+4 : j+4]
			o := pairs[2*j : 2*j+8 : 2*j+8]
			o[0], o[1] = table[s4[0]>>4], table[s4[0]&15]
			o[2], o[3] = table[s4[1]>>4], table[s4[1]&15]
			o[4], o[5] = table[s4[2]>>4], table[s4[2]&15]
			o[6], o[7] = table[s4[3]>>4], table[s4[3]&15]
		}
		for ; j < len(src); j++ {
			c := src[j]
			o := pairs[2*j : 2*j+2 : 2*j+2]
			o[0], o[1] = table[c>>4], table[c&15]
		}
		if p+2*m < len(out) {
			// Range ends on a high nibble.
			out[len(out)-1] = table[t.Packed[(blockEnd-1)>>1]>>4]
		}
		i = blockEnd
	}
}
