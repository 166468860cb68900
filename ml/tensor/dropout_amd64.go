package tensor

// dropoutConsts are dropout8asm's constants: φ, fmix32's two multipliers,
// the sign bit and the lane step.
//
//lint:ignore U1000 read by dropout_amd64.s
var dropoutConsts = [5]uint32{0x9E3779B9, 0x85EBCA6B, 0xC2B2AE35, 0x80000000, 8}

// dropoutLanes are the eight lanes' element offsets.
//
//lint:ignore U1000 read by dropout_amd64.s
var dropoutLanes = [8]uint32{0, 1, 2, 3, 4, 5, 6, 7}

//go:noescape
func dropout8asm(d, x *float32, n, i0 int, seedLo, seedHi, thresh uint32, scale float32)

func init() {
	if !hasAVX2FMA {
		return
	}
	dropout8 = func(d, x []float32, i0 int, seed uint64, thresh uint32, scale float32) {
		n := len(d)
		_ = x[n-1]
		dropout8asm(&d[0], &x[0], n, i0, uint32(seed), uint32(seed>>32), thresh, scale)
	}
}
