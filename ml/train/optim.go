package train

import (
	"fmt"
	"math"

	"github.com/mlbuild/mlbuild/ml/tensor"
)

// AdamW is PyTorch's torch.optim.AdamW: decoupled weight decay
// (p ← p − lr·wd·p, applied only to parameters marked Decay), then Adam
// with bias correction: p ← p − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε).
// Its moments are float32 tensors on the parameters' backend, and the
// update runs there (Backend.SumSquares and Backend.AdamW): nothing of a
// step's parameters or gradients passes through the host.
type AdamW struct {
	Beta1, Beta2, Eps, WeightDecay float64

	t    int
	m, v []*tensor.Tensor
}

// NewAdamW returns an optimizer for params with the given hyperparameters.
func NewAdamW(params []*Param, beta1, beta2, eps, weightDecay float64) *AdamW {
	o := &AdamW{Beta1: beta1, Beta2: beta2, Eps: eps, WeightDecay: weightDecay}
	for _, p := range params {
		be := p.W.Backend()
		o.m = append(o.m, be.Zeros(tensor.F32, p.W.Len()))
		o.v = append(o.v, be.Zeros(tensor.F32, p.W.Len()))
	}
	return o
}

// Step applies one update with learning rate lr to params (the same list,
// in the same order, as NewAdamW got), after clipping the gradients to a
// global L2 norm of maxNorm (0: no clipping) as torch's clip_grad_norm_,
// and zeroes the gradients. It returns the norm before clipping.
func (o *AdamW) Step(be tensor.Backend, params []*Param, lr, maxNorm float64) float64 {
	var sq float64
	for _, p := range params {
		sq = be.SumSquares(p.G, sq)
	}
	norm := math.Sqrt(sq)
	clip := float32(1)
	if maxNorm > 0 && norm > maxNorm {
		clip = float32(maxNorm / (norm + 1e-6))
	}
	o.t++
	bc1 := 1 - math.Pow(o.Beta1, float64(o.t))
	bc2 := math.Sqrt(1 - math.Pow(o.Beta2, float64(o.t)))
	s := tensor.AdamWStep{
		Clip: clip, Beta1: float32(o.Beta1), Beta2: float32(o.Beta2),
		StepSize: float32(lr / bc1), InvBC2: float32(1 / bc2), Eps: float32(o.Eps),
	}
	for i, p := range params {
		s.Decay = 1
		if p.Decay && o.WeightDecay > 0 {
			s.Decay = float32(1 - lr*o.WeightDecay)
		}
		be.AdamW(p.W, p.G, o.m[i], o.v[i], s)
	}
	return norm
}

// moments copies parameter i's first and second moments to the host (for
// a checkpoint).
func (o *AdamW) moments(i int) (m, v []float32) {
	m, v = make([]float32, o.m[i].Len()), make([]float32, o.v[i].Len())
	o.m[i].Backend().Read(o.m[i], m)
	o.v[i].Backend().Read(o.v[i], v)
	return m, v
}

// setMoments restores parameter i's moments (from a checkpoint).
func (o *AdamW) setMoments(i int, m, v []float32) {
	o.m[i].Backend().Write(o.m[i], m)
	o.v[i].Backend().Write(o.v[i], v)
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
