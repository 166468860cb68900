// Package tensorref holds the float64 reference implementations of the
// tensor operations and the comparison helpers that ml/tensor's own tests
// and the backend conformance suite (ml/tensor/tensortest) check backends
// against: one copy, so that both judge by the same definition.
package tensorref

import (
	"math"
	"testing"
)

// AttnParams mirrors tensor.AttnParams (convert with
// tensorref.AttnParams(p)); the package cannot import tensor, whose
// in-package tests use it.
type AttnParams struct {
	Batch, SeqQ, SeqKV, KVStride int
	Heads, KVHeads, HeadDim      int
	PosOffset                    int
	Window                       int
}

// F64 widens v to float64.
func F64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// Near fails the test when |got-want| > tol*(1+|want|) for some element.
func Near(t *testing.T, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		g, w := float64(got[i]), want[i]
		if math.IsNaN(g) || math.Abs(g-w) > tol*(1+math.Abs(w)) {
			t.Fatalf("%s: element %d = %g, want %g (tol %g)", what, i, g, w, tol)
		}
	}
}

// NumGrad returns the central finite-difference gradient of
// L(x) = Σ dy·f(x) with respect to x, in float64.
func NumGrad(f func(x []float64) []float64, x, dy []float64) []float64 {
	const h = 1e-6
	loss := func(x []float64) float64 {
		var s float64
		for i, y := range f(x) {
			s += dy[i] * y
		}
		return s
	}
	g := make([]float64, len(x))
	xx := append([]float64(nil), x...)
	for i := range x {
		xx[i] = x[i] + h
		lp := loss(xx)
		xx[i] = x[i] - h
		lm := loss(xx)
		xx[i] = x[i]
		g[i] = (lp - lm) / (2 * h)
	}
	return g
}

// Attention materialises the repeated kv heads and the full masked score
// matrix, as HF's eager attention does.
func Attention(q, k, v []float64, p AttnParams) []float64 {
	d := p.HeadDim
	out := make([]float64, len(q))
	group := p.Heads / p.KVHeads
	for b := range p.Batch {
		for h := range p.Heads {
			kh := h / group
			for i := range p.SeqQ {
				qrow := (b*p.SeqQ + i) * p.Heads * d
				scores := make([]float64, p.SeqKV)
				mx := math.Inf(-1)
				for j := range p.SeqKV {
					pos := p.PosOffset + i
					if j > pos || (p.Window > 0 && pos-j >= p.Window) {
						scores[j] = math.Inf(-1)
						continue
					}
					krow := (b*p.KVStride + j) * p.KVHeads * d
					var s float64
					for t := range d {
						s += q[qrow+h*d+t] * k[krow+kh*d+t]
					}
					scores[j] = s / math.Sqrt(float64(d))
					mx = max(mx, scores[j])
				}
				var sum float64
				for j := range scores {
					scores[j] = math.Exp(scores[j] - mx)
					sum += scores[j]
				}
				for j := range scores {
					vrow := (b*p.KVStride + j) * p.KVHeads * d
					for t := range d {
						out[qrow+h*d+t] += scores[j] / sum * v[vrow+kh*d+t]
					}
				}
			}
		}
	}
	return out
}

// MatMul returns alpha*op(a)*op(b) + beta*c0 in float64.
func MatMul(a, b, c0 []float64, m, n, k int, transA, transB bool, alpha, beta float64) []float64 {
	c := make([]float64, m*n)
	for i := range m {
		for j := range n {
			var s float64
			for p := range k {
				av := a[i*k+p]
				if transA {
					av = a[p*m+i]
				}
				bv := b[p*n+j]
				if transB {
					bv = b[j*k+p]
				}
				s += av * bv
			}
			c[i*n+j] = alpha * s
			if beta != 0 {
				c[i*n+j] += beta * c0[i*n+j]
			}
		}
	}
	return c
}

// RMSNorm normalises each row of d values of x by its root mean square
// (plus eps) and scales it by w.
func RMSNorm(x, w []float64, d int, eps float64) []float64 {
	y := make([]float64, len(x))
	for r := 0; r < len(x)/d; r++ {
		var ss float64
		for i := range d {
			ss += x[r*d+i] * x[r*d+i]
		}
		inv := 1 / math.Sqrt(ss/float64(d)+eps)
		for i := range d {
			y[r*d+i] = w[i] * x[r*d+i] * inv
		}
	}
	return y
}

// RoPE applies HF's rotate_half rotary embedding: out = x*cos +
// rotate_half(x)*sin with rotate_half(x) = cat(-x2, x1).
func RoPE(x []float64, positions []int, heads, hd int, theta float64) []float64 {
	y := make([]float64, len(x))
	half := hd / 2
	for r, pos := range positions {
		for h := range heads {
			base := r*heads*hd + h*hd
			for i := range hd {
				f := math.Pow(theta, -float64(2*(i%half))/float64(hd))
				ang := float64(pos) * f
				var rot float64
				if i < half {
					rot = -x[base+i+half]
				} else {
					rot = x[base+i-half]
				}
				y[base+i] = x[base+i]*math.Cos(ang) + rot*math.Sin(ang)
			}
		}
	}
	return y
}

// SiLU is x·sigmoid(x), element-wise.
func SiLU(x []float64) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = v / (1 + math.Exp(-v))
	}
	return y
}

// Softmax is the softmax of each row of v values of x.
func Softmax(x []float64, v int) []float64 {
	y := make([]float64, len(x))
	for r := 0; r < len(x)/v; r++ {
		mx := math.Inf(-1)
		for _, a := range x[r*v : r*v+v] {
			mx = max(mx, a)
		}
		var s float64
		for i := range v {
			y[r*v+i] = math.Exp(x[r*v+i] - mx)
			s += y[r*v+i]
		}
		for i := range v {
			y[r*v+i] /= s
		}
	}
	return y
}
