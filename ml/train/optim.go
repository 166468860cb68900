package train

import (
	"fmt"
	"math"

	"github.com/mlbuild/mlbuild/ml/tensor"
)

// AdamW is PyTorch's torch.optim.AdamW: decoupled weight decay
// (p ← p − lr·wd·p, applied only to parameters marked Decay), then Adam
// with bias correction: p ← p − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε).
// Its state lives on the host in float32.
type AdamW struct {
	Beta1, Beta2, Eps, WeightDecay float64

	t    int
	m, v [][]float32
	// g and w are host buffers for each parameter's gradient and values,
	// kept between steps.
	g [][]float32
	w []float32
}

// NewAdamW returns an optimizer for params with the given hyperparameters.
func NewAdamW(params []*Param, beta1, beta2, eps, weightDecay float64) *AdamW {
	o := &AdamW{Beta1: beta1, Beta2: beta2, Eps: eps, WeightDecay: weightDecay}
	for _, p := range params {
		o.m = append(o.m, make([]float32, p.W.Len()))
		o.v = append(o.v, make([]float32, p.W.Len()))
		o.g = append(o.g, make([]float32, p.W.Len()))
		if p.W.Len() > len(o.w) {
			o.w = make([]float32, p.W.Len())
		}
	}
	return o
}

// Step applies one update with learning rate lr to params (the same list,
// in the same order, as NewAdamW got), after clipping the gradients to a
// global L2 norm of maxNorm (0: no clipping) as torch's clip_grad_norm_,
// and zeroes the gradients. It returns the norm before clipping.
func (o *AdamW) Step(be tensor.Backend, params []*Param, lr, maxNorm float64) float64 {
	grads := o.g
	var sq float64
	for i, p := range params {
		g := grads[i]
		be.Read(p.G, g)
		for _, x := range g {
			sq += float64(x) * float64(x)
		}
	}
	norm := math.Sqrt(sq)
	clip := float32(1)
	if maxNorm > 0 && norm > maxNorm {
		clip = float32(maxNorm / (norm + 1e-6))
	}
	o.t++
	b1, b2 := float32(o.Beta1), float32(o.Beta2)
	bc1 := 1 - math.Pow(o.Beta1, float64(o.t))
	bc2 := math.Sqrt(1 - math.Pow(o.Beta2, float64(o.t)))
	stepSize := float32(lr / bc1)
	invBC2 := float32(1 / bc2)
	eps := float32(o.Eps)
	for i, p := range params {
		w := o.w[:p.W.Len()]
		be.Read(p.W, w)
		decay := float32(1)
		if p.Decay && o.WeightDecay > 0 {
			decay = float32(1 - lr*o.WeightDecay)
		}
		m, v, g := o.m[i], o.v[i], grads[i]
		for j := range w {
			gj := g[j] * clip
			m[j] = b1*m[j] + (1-b1)*gj
			v[j] = b2*v[j] + (1-b2)*gj*gj
			denom := float32(math.Sqrt(float64(v[j])))*invBC2 + eps
			w[j] = w[j]*decay - stepSize*m[j]/denom
		}
		be.Write(p.W, w)
		clear(g)
		be.Write(p.G, g)
	}
	return norm
}

// Schedule is a learning-rate schedule: linear warmup from 0 to the peak
// over Warmup steps, then Kind "cosine" (half a cosine down to MinRatio of
// the peak at Total), "linear" (straight down to MinRatio) or "constant".
type Schedule struct {
	Kind     string
	Peak     float64
	Warmup   int
	Total    int
	MinRatio float64
}

// Validate checks the schedule's settings.
func (s Schedule) Validate() error {
	switch s.Kind {
	case "cosine", "linear", "constant":
	default:
		return fmt.Errorf("lr_schedule must be \"cosine\", \"linear\" or \"constant\", got %q", s.Kind)
	}
	if s.Peak <= 0 {
		return fmt.Errorf("learning_rate must be positive, got %v", s.Peak)
	}
	if s.MinRatio < 0 || s.MinRatio > 1 {
		return fmt.Errorf("min_lr_ratio must be in [0, 1], got %v", s.MinRatio)
	}
	return nil
}

// At returns the learning rate of optimizer step step (0-based).
func (s Schedule) At(step int) float64 {
	if step < s.Warmup {
		return s.Peak * float64(step+1) / float64(s.Warmup+1)
	}
	if s.Kind == "constant" || s.Total <= s.Warmup {
		return s.Peak
	}
	frac := float64(step-s.Warmup) / float64(s.Total-s.Warmup)
	frac = min(max(frac, 0), 1)
	lo := s.Peak * s.MinRatio
	switch s.Kind {
	case "cosine":
		return lo + (s.Peak-lo)*0.5*(1+math.Cos(math.Pi*frac))
	default:
		return lo + (s.Peak-lo)*(1-frac)
	}
}
