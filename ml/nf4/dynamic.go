package nf4

import (
	"fmt"
	"math"
	"slices"
	"sort"
)

// DynamicMap is bitsandbytes' signed 8-bit dynamic code
// (create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8)),
// ascending: 127 negative values from -0.99296874 up, 0 at index 127, 127
// positive values and 1.0 at index 255. It is the code of the second-level
// (double) quantization of the NF4 absmax.
var DynamicMap = func() [256]float32 {
	var m [256]float32
	copy(m[:], CreateDynamicMap(true, 7, 8))
	return m
}()

// linspace32 is torch.linspace(start, end, steps, dtype=torch.float32) as
// computed on the CPU (aten/src/ATen/native/cpu/RangeFactoriesKernel.cpp,
// linspace_kernel): step = (end-start)/(steps-1) in float32, the first half
// start + step·i, the second half end - step·(steps-1-i).
//
// Each value is rounded once, as if both expressions were a fused
// multiply-add: dumps of create_dynamic_map's output published by several
// projects (the tests hold one) match only that reading, which is what a
// compiler contracting a*b+c into an FMA (GCC's default for torch's
// AVX2/AVX-512 and aarch64 kernels) produces. Rounding the product
// separately would change 42 of the 256 map entries; bitsandbytes stores the
// map it used (quant_state.state2.code, "nested_quant_map"), and the
// comparison script checks it. The product step·i is exact in float64 and
// so is the sum for the small step counts used here, so the expression
// below rounds exactly once, in the final conversion.
func linspace32(start, end float32, steps int) []float32 {
	out := make([]float32, steps)
	if steps == 1 {
		out[0] = start
		return out
	}
	step := float32(float32(end-start) / float32(steps-1))
	half := steps / 2
	for i := range out {
		if i < half {
			out[i] = float32(math.FMA(float64(step), float64(i), float64(start)))
		} else {
			out[i] = float32(math.FMA(-float64(step), float64(steps-1-i), float64(end)))
		}
	}
	return out
}

// pow10 is Python's 10**e for an int e: exact for e >= 0, the correctly
// rounded float64 quotient 1/10**-e for e < 0 (CPython's float pow is
// correctly rounded for these).
func pow10(e int) float64 {
	p := 1.0
	for range max(e, -e) {
		p *= 10
	}
	if e < 0 {
		return 1 / p
	}
	return p
}

// CreateDynamicMap ports bitsandbytes.functional.create_dynamic_map: for each
// exponent i < maxExponentBits, the means of adjacent points of
// torch.linspace(0.1, 1, fraction_items) (float32), scaled by
// 10**(i-(maxExponentBits-1)) in float32 (torch multiplies a float32
// tensor by a Python scalar in float32), plus their negatives when signed,
// the additional linear items, 0 and 1.0, padded with zeros to
// 2**totalBits entries and sorted.
func CreateDynamicMap(signed bool, maxExponentBits, totalBits int) []float32 {
	var data []float32
	nonSignBits := totalBits - 1
	additionalItems := 1<<(nonSignBits-maxExponentBits) - 1
	addMeans := func(items, i int) {
		b := linspace32(0.1, 1, items)
		scale := pow10(-(maxExponentBits - 1) + i)
		s32 := float32(scale)
		n32 := float32(-scale)
		var pos, neg []float32
		for k := 0; k+1 < len(b); k++ {
			mean := float32(float32(b[k]+b[k+1]) / 2)
			pos = append(pos, float32(mean*s32))
			neg = append(neg, float32(mean*n32))
		}
		data = append(data, pos...)
		if signed {
			data = append(data, neg...)
		}
	}
	i := 0
	for i = 0; i < maxExponentBits; i++ {
		var items int
		if signed {
			items = 1<<(i+nonSignBits-maxExponentBits) + 1
		} else {
			items = 1<<(i+nonSignBits-maxExponentBits+1) + 1
		}
		addMeans(items, i)
	}
	if additionalItems > 0 {
		// Python reuses the loop variable, which ends at maxExponentBits-1.
		addMeans(additionalItems+1, i-1)
	}
	data = append(data, 0, 1)
	if len(data) != 1<<totalBits {
		panic(fmt.Sprintf("nf4: create_dynamic_map produced %d values, want %d", len(data), 1<<totalBits))
	}
	slices.Sort(data)
	return data
}

// QuantMap8 is the 8-bit map of the double quantization: DynamicMap with
// its entry 0 set to -1.0, as bitsandbytes' CPU quantizer sets it before
// quantizing (quantize_cpu in csrc/cpu_ops.cpp: "the default code has range
// [-0.993, 1.0] which can cause an error in the binary search algorithm
// used below"; it writes into the map tensor, which quantize_4bit then
// stores as quant_state.state2.code, the nested_quant_map of a state dict).
// The CUDA kernels quantize and dequantize against DynamicMap itself, so a
// tensor quantized on a GPU may differ in blocks whose 8-bit code is 0 or
// 1 (docs/models.md).
var QuantMap8 = func() [256]float32 {
	m := DynamicMap
	m[0] = -1
	return m
}()

// quantize8 is bitsandbytes' CPU 8-bit code of a normalized value v
// (quantize_block in csrc/common.cpp): the last map entry at or below v by
// binary search (entry 0 for a v below it), then its right neighbour where
// that one's float32 distance |v − code| is strictly smaller, so a tie
// takes the lower code. NaN, which only a block of zeros gives (0/0), maps
// to 0 (bitsandbytes' binary search has no answer for it).
func quantize8(code *[256]float32, v float32) uint8 {
	if v != v {
		return 0
	}
	i := sort.Search(len(code), func(i int) bool { return code[i] > v }) - 1
	i = max(i, 0)
	if i < 255 && abs32(v-code[i+1]) < abs32(v-code[i]) {
		i++
	}
	return uint8(i)
}

// QuantizeBlockwise8 is bitsandbytes' 8-bit blockwise quantization as its
// CPU backend computes it for float32 (functional.quantize_blockwise,
// quantize_cpu and quantize_block in csrc/cpu_ops.cpp and common.cpp):
// per block of blocksize values the absmax (max |x|, float32), then each
// value divided by it, x/absmax in float32, mapped to its code index by
// quantize8. It returns one byte per value and one absmax per block. A
// block of zeros has absmax 0 and codes 0.
func QuantizeBlockwise8(data []float32, code *[256]float32, blocksize int) (q []uint8, absmax []float32) {
	if blocksize <= 0 {
		panic(fmt.Sprintf("nf4: blocksize %d must be positive", blocksize))
	}
	n := len(data)
	nb := (n + blocksize - 1) / blocksize
	q = make([]uint8, n)
	absmax = make([]float32, nb)
	for b := 0; b < nb; b++ {
		lo := b * blocksize
		hi := min(lo+blocksize, n)
		var am float32
		for _, v := range data[lo:hi] {
			am = max(am, abs32(v))
		}
		absmax[b] = am
		for i := lo; i < hi; i++ {
			q[i] = quantize8(code, data[i]/am)
		}
	}
	return q, absmax
}

// DequantizeBlockwise8 inverts QuantizeBlockwise8 as bitsandbytes'
// dequantize_blockwise does (dequantizeBlockwise8bitCpu, and the CUDA
// kernel alike): dst[i] = code[q[i]]·absmax[i/blocksize] in float32.
func DequantizeBlockwise8(dst []float32, q []uint8, absmax []float32, code *[256]float32, blocksize int) {
	if len(dst) < len(q) {
		panic(fmt.Sprintf("nf4: DequantizeBlockwise8: dst has %d elements, need %d", len(dst), len(q)))
	}
	for i, c := range q {
		dst[i] = float32(code[c] * absmax[i/blocksize])
	}
}
