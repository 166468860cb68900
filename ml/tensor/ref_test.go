package tensor

import (
	"math"
	"math/rand/v2"

	"github.com/mlbuild/mlbuild/ml/tensor/internal/tensorref"
)

// Straightforward float64 references, written independently of kernels.go,
// and the helpers the tests share.

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 99)) }

func randVec(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.Float64()*2 - 1)
	}
	return v
}

var f64 = tensorref.F64

func read(be Backend, t *Tensor) []float32 {
	out := make([]float32, t.Len())
	be.Read(t, out)
	return out
}

var near = tensorref.Near

var refMatMul = tensorref.MatMul

var refRMSNorm = tensorref.RMSNorm

var refRoPE = tensorref.RoPE

func refAttention(q, k, v []float64, p AttnParams) []float64 {
	return tensorref.Attention(q, k, v, tensorref.AttnParams(p))
}

var refSiLU = tensorref.SiLU

func refSwiGLU(g, u []float64) []float64 {
	y := refSiLU(g)
	for i := range y {
		y[i] *= u[i]
	}
	return y
}

var refSoftmax = tensorref.Softmax

func refCrossEntropy(x []float64, labels []int, v int) (float64, int) {
	p := refSoftmax(x, v)
	var sum float64
	n := 0
	for r, l := range labels {
		if l == IgnoreIndex {
			continue
		}
		sum -= math.Log(p[r*v+l])
		n++
	}
	return sum, n
}

func refEmbedding(table []float64, ids []int, d int) []float64 {
	var y []float64
	for _, id := range ids {
		y = append(y, table[id*d:id*d+d]...)
	}
	return y
}

var numGrad = tensorref.NumGrad
