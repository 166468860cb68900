package tensor

import (
	"fmt"
	"math"
)

// RoPEFreqs implements Backend. Rows run on the worker pool; each
// element's value is the host loop's (the function RoPEWithFreqs was
// before it was a backend operation), whatever the split.
func (c *CPU) RoPEFreqs(dst, x *Tensor, positions []int, heads, headDim int, invFreq []float32, inverse bool) {
	const op = "RoPEFreqs"
	sameLen(op, dst, x)
	n := checkRoPE(op, x, positions, heads, headDim)
	if len(invFreq) < headDim/2 {
		panic(fmt.Sprintf("tensor: %s: %d frequencies for head dimension %d", op, len(invFreq), headDim))
	}
	y, xs := c.f32(op, dst), c.f32(op, x)
	half := headDim / 2
	w := heads * headDim
	sign := 1.0
	if inverse {
		sign = -1
	}
	c.pool.run(n, grainFor(n, 4*w), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			pos := positions[r]
			for i, f := range invFreq[:half] {
				ang := float64(float32(pos) * f)
				cs, sn := float32(math.Cos(ang)), float32(sign*math.Sin(ang))
				for h := 0; h < heads; h++ {
					base := r*w + h*headDim
					x0, x1 := xs[base+i], xs[base+i+half]
					y[base+i] = x0*cs - x1*sn
					y[base+i+half] = x1*cs + x0*sn
				}
			}
		}
	})
}
