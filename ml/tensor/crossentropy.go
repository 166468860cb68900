package tensor

import "math"

// The cross-entropy kernels take e^(x − max) of every logit in float32
// with expf32 (the sigmoid's exponential) and sum them in float64, in eight
// lanes (element i into lane i mod 8, the lanes added pairwise at the end),
// so that the AVX2 kernel (crossentropy_amd64.s) and this portable code
// give the same bits. The loss itself, log Σ and the label's entry of the
// gradient are float64.

// expSum8, where the CPU has it (AVX2), adds e^(x[i] − mx) of the first
// len(x)&^7 elements into lanes[i%8] (from zero: it sets lanes) and, with
// out non-nil, stores each e in out[i].
var expSum8 func(x []float32, mx float32, out []float32, lanes *[8]float64)

// rowMax32 is the largest value of xr (−Inf when empty).
func rowMax32(xr []float32) float32 {
	mx := float32(math.Inf(-1))
	for _, a := range xr {
		mx = max(mx, a)
	}
	return mx
}

// expSum returns Σ e^(x[i] − mx) as described above, storing each term in
// out when out is not nil.
func expSum(x []float32, mx float32, out []float32) float64 {
	var lanes [8]float64
	i := 0
	if expSum8 != nil {
		i = len(x) &^ 7
		if i > 0 {
			var o []float32
			if out != nil {
				o = out[:i]
			}
			expSum8(x[:i], mx, o, &lanes)
		}
	}
	for ; i < len(x); i++ {
		e := expf32(x[i] - mx)
		lanes[i&7] += float64(e)
		if out != nil {
			out[i] = e
		}
	}
	return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
}

// crossEntropyRows writes the per-row loss (0 for ignored rows) of rows
// [lo,hi) into loss: log Σ e^x − x[label].
func crossEntropyRows(loss []float64, logits []float32, labels []int, v, lo, hi int) {
	for r := lo; r < hi; r++ {
		if labels[r] == IgnoreIndex {
			loss[r] = 0
			continue
		}
		xr := logits[r*v : r*v+v]
		mx := rowMax32(xr)
		loss[r] = float64(mx) + math.Log(expSum(xr, mx, nil)) - float64(xr[labels[r]])
	}
}

// crossEntropyBackwardRows writes dlogits = scale·(softmax − onehot) for
// rows [lo,hi).
func crossEntropyBackwardRows(dl, logits []float32, labels []int, v int, scale float64, lo, hi int) {
	for r := lo; r < hi; r++ {
		dr := dl[r*v : r*v+v]
		if labels[r] == IgnoreIndex {
			clear(dr)
			continue
		}
		xr := logits[r*v : r*v+v]
		mx := rowMax32(xr)
		k := scale / expSum(xr, mx, dr)
		for i := range dr {
			dr[i] = float32(k * float64(dr[i]))
		}
		// The label's entry in float64: p − 1 cancels when p is near 1.
		l := labels[r]
		dr[l] = float32(k*math.Exp(float64(xr[l])-float64(mx)) - scale)
	}
}
