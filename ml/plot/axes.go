package plot

import (
	"math"
	"strconv"
)

// axis is the range of data values one direction of the plot area shows,
// and the ticks labelled along it.
//
// Differences of values are computed as differences of halves, so a range
// spanning most of the float64 line does not overflow to infinity.
type axis struct {
	min, max float64 // the values at the two ends; min < max
	ticks    []tick
}

// tick is one labelled value on an axis.
type tick struct {
	v     float64
	label string
}

// frac returns where v lies along the axis: 0 at min, 1 at max.
func (a axis) frac(v float64) float64 {
	return (v/2 - a.min/2) / (a.max/2 - a.min/2)
}

// toPixel maps v onto the pixel interval [lo, hi] (hi < lo for a y axis,
// whose pixels grow downwards). The explicit conversions keep the compiler
// from fusing the multiply and add, so every architecture rounds alike.
func (a axis) toPixel(v, lo, hi float64) float64 {
	return lo + float64(a.frac(v)*(hi-lo))
}

// dataRange returns a range that holds lo..hi and is never empty: a single
// value (or an empty or non-finite range) becomes an interval around it.
func dataRange(lo, hi float64) (float64, float64) {
	if !finite(lo) || !finite(hi) || lo > hi {
		return 0, 1
	}
	scale := math.Max(math.Abs(lo), math.Abs(hi))
	if hi/2-lo/2 > scale*1e-12 {
		return lo, hi
	}
	mid := lo/2 + hi/2
	d := math.Abs(mid) * 0.1
	if d < 1e-200 {
		d = 1
	}
	return clampFloat(mid - d), clampFloat(mid + d)
}

// widen widens lo..hi by frac of its span on each side.
func widen(lo, hi, frac float64) (float64, float64) {
	p := (hi/2 - lo/2) * 2 * frac
	return clampFloat(lo - p), clampFloat(hi + p)
}

// clampFloat maps ±Inf to the largest finite float64 of that sign.
func clampFloat(x float64) float64 {
	return math.Max(-math.MaxFloat64, math.Min(math.MaxFloat64, x))
}

// newAxis returns an axis over min..max with about target ticks at round
// values (multiples of 1, 2 or 5 times a power of ten).
func newAxis(min, max float64, target int) axis {
	return axis{min: min, max: max, ticks: niceTicks(min, max, target)}
}

// maxTicks bounds the ticks of an axis, in case rounding makes the step
// absurdly small against the values.
const maxTicks = 50

// niceTicks returns the round values in min..max, about target of them.
func niceTicks(min, max float64, target int) []tick {
	step := niceStep((max/2 - min/2) / float64(target) * 2)
	for range 4 {
		vs := multiples(min, max, step)
		if len(vs) >= 2 || step <= 0 {
			return labelTicks(vs, step)
		}
		step = smallerStep(step)
	}
	return labelTicks(multiples(min, max, step), step)
}

// niceStep returns the 1-2-5 step closest (in ratio) to raw.
func niceStep(raw float64) float64 {
	if !(raw > 0) || !finite(raw) {
		return 0
	}
	e := int(math.Floor(math.Log10(raw)))
	mag := math.Pow10(e)
	switch norm := raw / mag; {
	case norm < math.Sqrt2:
		return mag
	case norm < math.Sqrt(10):
		return 2 * mag
	case norm < math.Sqrt(50):
		return 5 * mag
	default:
		return 10 * mag
	}
}

// smallerStep returns the 1-2-5 step below step.
func smallerStep(step float64) float64 {
	e := int(math.Floor(math.Log10(step) + 1e-9))
	mag := math.Pow10(e)
	switch norm := math.Round(step / mag); {
	case norm >= 5:
		return 2 * mag
	case norm >= 2:
		return mag
	default:
		return mag / 2
	}
}

// multiples returns the multiples of step in min..max (none if there would
// be more than maxTicks, or step is unusable).
func multiples(min, max, step float64) []float64 {
	if !(step > 0) || !finite(step) {
		return nil
	}
	k0 := math.Ceil(min/step - 1e-9)
	k1 := math.Floor(max/step + 1e-9)
	if !finite(k0) || !finite(k1) || k1-k0 >= maxTicks {
		return nil
	}
	var vs []float64
	for k := k0; k <= k1; k++ {
		v := k * step
		if math.Abs(v) < step*1e-9 {
			v = 0 // no "-0" and no 1e-17 for zero
		}
		vs = append(vs, v)
	}
	return vs
}

// labelTicks labels the values vs of an axis whose ticks are step apart.
func labelTicks(vs []float64, step float64) []tick {
	maxAbs := 0.0
	for _, v := range vs {
		maxAbs = math.Max(maxAbs, math.Abs(v))
	}
	ts := make([]tick, len(vs))
	for i, v := range vs {
		ts[i] = tick{v: v, label: formatTick(v, step, maxAbs)}
	}
	return ts
}

// formatTick writes a tick value with just the digits that tell the ticks
// apart: fixed-point for ordinary magnitudes, exponent form for very large
// or very fine ones.
func formatTick(v, step, maxAbs float64) string {
	if v == 0 {
		return "0"
	}
	decimals := max(0, int(-math.Floor(math.Log10(step)+1e-9)))
	if maxAbs < 1e6 && decimals <= 5 {
		return strconv.FormatFloat(v, 'f', decimals, 64)
	}
	digits := int(math.Ceil(math.Log10(maxAbs/step)+1e-9)) + 1
	digits = min(max(digits, 1), 17)
	return strconv.FormatFloat(v, 'g', digits, 64)
}

// formatValue writes a bar's value with three significant digits.
func formatValue(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	if v == 0 {
		return "0"
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}
