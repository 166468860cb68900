package config

import "math"

// InvFreq returns the HeadDim/2 inverse frequencies of the rotary embedding,
// as transformers computes them in float32: 1 / theta^(2i/HeadDim), then,
// for "linear" scaling, each divided by the factor, and for "llama3" scaling, low frequencies divided by the factor, high ones
// kept, and the band between interpolated smoothly.
//
// Each float32 step follows PyTorch's order of operations (x/t for a Python
// scalar x is reciprocal(t)*x, for instance); the tests check the result is
// bit-identical to PyTorch's for Llama-3, Llama-3.1, Llama-3.2 and a
// theta-10000 config. (theta^e is computed in float64 and rounded once; where
// PyTorch's float32 pow rounds differently the two could differ by an ulp.)
func (c *Config) InvFreq() []float32 {
	dim := c.HeadDim
	inv := make([]float32, dim/2)
	for i := range inv {
		e := float32(2*i) / float32(dim)
		p := float32(math.Pow(c.RopeTheta, float64(e)))
		inv[i] = 1 / p
	}
	rs := c.RopeScaling
	if rs != nil && rs.Type == "linear" {
		// transformers' _compute_linear_scaling_rope_parameters: inv_freq /= factor.
		for i := range inv {
			inv[i] /= float32(rs.Factor)
		}
		return inv
	}
	if rs == nil || rs.Type != "llama3" {
		return inv
	}
	factor := float32(rs.Factor)
	low := float32(rs.LowFreqFactor)
	old := float64(rs.OriginalMaxPositionEmbeddings)
	lowWavelen := float32(old / rs.LowFreqFactor)
	highWavelen := float32(old / rs.HighFreqFactor)
	twoPi := float32(2 * math.Pi)
	span := float32(rs.HighFreqFactor - rs.LowFreqFactor)
	for i, f := range inv {
		wavelen := (1 / f) * twoPi
		switch {
		case wavelen < highWavelen: // high frequency: kept
		case wavelen > lowWavelen: // low frequency: interpolated by the factor
			inv[i] = f / factor
		default: // in between: blend the two
			smooth := (float32((1/wavelen)*float32(old)) - low) / span
			a := float32((1 - smooth) * f)
			inv[i] = float32(a/factor) + float32(smooth*f)
		}
	}
	return inv
}
