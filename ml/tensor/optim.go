package tensor

import (
	"fmt"
	"math"

	"github.com/mlbuild/mlbuild/ml/nf4"
)

// SumSquares implements Backend: one pass in element order, as the
// optimizer summed on the host before it was a backend operation.
func (c *CPU) SumSquares(t *Tensor, acc float64) float64 {
	for _, x := range c.f32("SumSquares", t) {
		acc += float64(x) * float64(x)
	}
	return acc
}

// AdamW implements Backend. Each element is updated independently, so
// the result does not depend on how the work is split.
func (c *CPU) AdamW(w, g, m, v *Tensor, s AdamWStep) {
	sameLen("AdamW", w, g, m, v)
	ws, gs, ms, vs := c.f32("AdamW", w), c.f32("AdamW", g), c.f32("AdamW", m), c.f32("AdamW", v)
	c.elementwise(len(ws), func(lo, hi int) { adamWRange(ws, gs, ms, vs, s, lo, hi) })
}

// adamWRange updates elements [lo,hi) (AdamWStep's formulas) and zeroes
// their gradient.
func adamWRange(w, g, m, v []float32, s AdamWStep, lo, hi int) {
	b1, b2, clip, decay, stepSize, invBC2, eps := s.Beta1, s.Beta2, s.Clip, s.Decay, s.StepSize, s.InvBC2, s.Eps
	for j := lo; j < hi; j++ {
		gj := g[j] * clip
		m[j] = b1*m[j] + (1-b1)*gj
		v[j] = b2*v[j] + (1-b2)*gj*gj
		denom := float32(math.Sqrt(float64(v[j])))*invBC2 + eps
		w[j] = w[j]*decay - stepSize*m[j]/denom
		g[j] = 0
	}
}

// DequantizeNF4 implements Backend: chunks of rows on the worker pool,
// each element written by one chunk (the values are DequantizeRows', so
// they do not depend on the split).
func (c *CPU) DequantizeNF4(dst *Tensor, q *nf4.Tensor, lo, hi int) {
	if len(q.Shape) == 0 || lo < 0 || hi < lo || hi > q.Shape[0] {
		panic(fmt.Sprintf("tensor: DequantizeNF4: rows [%d,%d) of NF4%v", lo, hi, q.Shape))
	}
	rowLen := 1
	for _, d := range q.Shape[1:] {
		rowLen *= d
	}
	out := c.f32("DequantizeNF4", dst)
	if len(out) != (hi-lo)*rowLen {
		panic(fmt.Sprintf("tensor: DequantizeNF4: %s for %d rows of %d", dst, hi-lo, rowLen))
	}
	c.pool.run(hi-lo, grainFor(hi-lo, 2*rowLen), func(a, b int) {
		q.DequantizeRows(out[a*rowLen:b*rowLen], lo+a, lo+b)
	})
}
