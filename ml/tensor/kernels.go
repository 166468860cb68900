package tensor

import "math"

// float is the element type of the generic kernels: the CPU backend runs them
// in float32, the gradient checks in float64.
type float interface{ ~float32 | ~float64 }

// The kernels below work on plain slices and a half-open range of rows, so
// that the CPU backend can run disjoint row ranges on different goroutines
// and tests can run them in float64. Each output element is produced by one
// call in a fixed order.

// rmsNormRows computes rows [lo,hi) of y = x * rsqrt(mean(x²)+eps) * w for
// x, y [N,D] and w [D]. The sum of squares is accumulated in float64.
func rmsNormRows[T float](y, x, w []T, d int, eps float64, lo, hi int) {
	for r := lo; r < hi; r++ {
		xr := x[r*d : r*d+d]
		yr := y[r*d : r*d+d]
		inv := T(rmsInv(xr, eps))
		for i, v := range xr {
			// HF: weight * (x * rsqrt(var+eps)).to(dtype)
			yr[i] = w[i] * (v * inv)
		}
	}
}

func rmsInv[T float](xr []T, eps float64) float64 {
	var ss float64
	for _, v := range xr {
		ss += float64(v) * float64(v)
	}
	return 1 / math.Sqrt(ss/float64(len(xr))+eps)
}

// rmsNormBackwardRows writes rows [lo,hi) of dx for y = RMSNorm(x, w).
func rmsNormBackwardRows[T float](dx, dy, x, w []T, d int, eps float64, lo, hi int) {
	for r := lo; r < hi; r++ {
		xr, dyr, dxr := x[r*d:r*d+d], dy[r*d:r*d+d], dx[r*d:r*d+d]
		inv := rmsInv(xr, eps)
		// g = dy*w; xhat = x*inv; dx = inv*(g - xhat*mean(g*xhat))
		var dot float64
		for i := range xr {
			dot += float64(dyr[i]) * float64(w[i]) * float64(xr[i]) * inv
		}
		m := dot / float64(d)
		for i := range xr {
			g := float64(dyr[i]) * float64(w[i])
			dxr[i] = T(inv * (g - float64(xr[i])*inv*m))
		}
	}
}

// rmsNormWeightGradCols accumulates columns [lo,hi) of dw += Σ_rows dy*xhat,
// given invs[r] = rsqrt(mean(x_r²)+eps) (from rmsInv). Each column sums its
// rows in ascending order.
func rmsNormWeightGradCols[T float](dw, dy, x []T, invs []float64, d int, lo, hi int) {
	for c := lo; c < hi; c++ {
		var s float64
		for r, inv := range invs {
			s += float64(dy[r*d+c]) * float64(x[r*d+c]) * inv
		}
		dw[c] += T(s)
	}
}

// ropeInvFreq returns HF's inv_freq for headDim and theta, rounded to float32
// as transformers computes it.
func ropeInvFreq(headDim int, theta float64) []float32 {
	half := headDim / 2
	f := make([]float32, half)
	for i := range half {
		e := float32(2*i) / float32(headDim)
		f[i] = float32(1 / float32(math.Pow(theta, float64(e))))
	}
	return f
}

// ropeCosSin returns cos and sin of position*inv_freq (float32 product, as HF).
func ropeCosSin(pos int, invFreq []float32, cos, sin []float64) {
	for i, f := range invFreq {
		a := float64(float32(pos) * f)
		cos[i] = float64(float32(math.Cos(a)))
		sin[i] = float64(float32(math.Sin(a)))
	}
}

// ropeRows rotates rows [lo,hi) of x [N, heads*headDim] into y (y may be x).
// sign +1 is the forward rotation, -1 its inverse (the backward pass).
func ropeRows[T float](y, x []T, positions []int, heads, headDim int, invFreq []float32, sign float64, lo, hi int) {
	half := headDim / 2
	cos := make([]float64, half)
	sin := make([]float64, half)
	w := heads * headDim
	for r := lo; r < hi; r++ {
		ropeCosSin(positions[r], invFreq, cos, sin)
		for h := range heads {
			base := r*w + h*headDim
			for i := range half {
				c, s := T(cos[i]), T(sign*sin[i])
				a, b := x[base+i], x[base+i+half]
				y[base+i] = a*c - b*s
				y[base+i+half] = b*c + a*s
			}
		}
	}
}

// attnRange returns the key range [0,end) and start for query i.
func (p AttnParams) keyRange(i int) (start, end int) {
	pos := p.PosOffset + i
	end = min(pos+1, p.SeqKV)
	if p.Window > 0 {
		start = max(0, pos-p.Window+1)
	}
	return start, end
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// siluRange computes y[i] = x[i]*sigmoid(x[i]) for i in [lo,hi).
func siluRange[T float](y, x []T, lo, hi int) {
	for i := lo; i < hi; i++ {
		v := float64(x[i])
		y[i] = T(v * sigmoid(v))
	}
}

// siluBackwardRange computes dx = dy * silu'(x) for i in [lo,hi).
func siluBackwardRange[T float](dx, dy, x []T, lo, hi int) {
	for i := lo; i < hi; i++ {
		v := float64(x[i])
		s := sigmoid(v)
		dx[i] = T(float64(dy[i]) * (s + v*s*(1-s)))
	}
}

// softmaxRows computes a row-wise softmax of x [N,V] for rows [lo,hi).
func softmaxRows[T float](y, x []T, v, lo, hi int) {
	for r := lo; r < hi; r++ {
		xr, yr := x[r*v:r*v+v], y[r*v:r*v+v]
		mx := math.Inf(-1)
		for _, a := range xr {
			mx = max(mx, float64(a))
		}
		var sum float64
		for i, a := range xr {
			e := math.Exp(float64(a) - mx)
			yr[i] = T(e)
			sum += e
		}
		for i := range yr {
			yr[i] = T(float64(yr[i]) / sum)
		}
	}
}

// softmaxBackwardRows computes dx = y*(dy - Σ dy*y) for rows [lo,hi).
func softmaxBackwardRows[T float](dx, dy, y []T, v, lo, hi int) {
	for r := lo; r < hi; r++ {
		var dot float64
		for i := r * v; i < r*v+v; i++ {
			dot += float64(dy[i]) * float64(y[i])
		}
		for i := r * v; i < r*v+v; i++ {
			dx[i] = T(float64(y[i]) * (float64(dy[i]) - dot))
		}
	}
}

// RoPEInvFreq is the inverse frequencies RoPE uses for headDim and theta
// (HF's inv_freq, rounded to float32 as transformers computes it), for
// backends that compute the rotation's angles on the host.
func RoPEInvFreq(headDim int, theta float64) []float32 { return ropeInvFreq(headDim, theta) }
