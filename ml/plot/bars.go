package plot

import (
	"errors"
	"fmt"
	"image"
	"math"
)

// Bar chart proportions.
const (
	barSpan     = 0.8  // the bars of one label together, as a fraction of the label spacing
	barHeadroom = 0.25 // of the value range, above (and below) the bars, for their labels and the legend
	barTickSize = 9    // points, of the label names under the groups
	valueOffset = 3    // pixels between a bar's end and its value label
)

// checkBars validates a bar chart's input.
func checkBars(labels []string, groups []BarGroup) error {
	if len(labels) == 0 {
		return errors.New("plot: a bar chart needs at least one label")
	}
	if len(groups) == 0 {
		return errors.New("plot: a bar chart needs at least one group")
	}
	for _, g := range groups {
		if len(g.Values) != len(labels) {
			return fmt.Errorf("plot: bar group %q has %d values for %d labels", g.Name, len(g.Values), len(labels))
		}
		for _, v := range g.Values {
			if math.IsInf(v, 0) {
				return fmt.Errorf("plot: bar group %q has an infinite value", g.Name)
			}
		}
	}
	return nil
}

// barRange returns the y range of a bar chart: from 0 (or below the most
// negative value) to the largest value, with headroom for the labels.
func barRange(groups []BarGroup) (lo, hi float64) {
	for _, g := range groups {
		for _, v := range g.Values {
			if !math.IsNaN(v) {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	if lo == 0 && hi == 0 {
		hi = 1
	}
	pad := (hi/2 - lo/2) * 2 * barHeadroom
	if lo < 0 {
		lo = clampFloat(lo - pad)
	}
	if hi > 0 {
		hi = clampFloat(hi + pad)
	}
	return lo, hi
}

// nominalAxis returns an x axis with the labels at 0, 1, … and half a
// spacing of room at both ends.
func nominalAxis(labels []string) axis {
	a := axis{min: -0.5, max: float64(len(labels)) - 0.5}
	for i, l := range labels {
		a.ticks = append(a.ticks, tick{v: float64(i), label: l})
	}
	return a
}

// barX returns the x extent, in data units, of group's bar at label.
func barX(label, group, groups int) (lo, hi float64) {
	w := barSpan / float64(groups)
	lo = float64(label) - barSpan/2 + float64(group)*w
	return lo, lo + w
}

// renderBars draws the bar chart of BarsPNG.
func renderBars(title string, labels []string, groups []BarGroup) (*image.RGBA, chartLayout, error) {
	if err := checkBars(labels, groups); err != nil {
		return nil, chartLayout{}, err
	}
	f, err := newFaces(barTickSize)
	if err != nil {
		return nil, chartLayout{}, err
	}
	lo, hi := barRange(groups)
	fr := &frame{title: title, x: nominalAxis(labels), y: newAxis(lo, hi, 5), faces: f}
	fr.place()
	c := newCanvas(Width, Height)
	fr.drawGrid(c)
	if lo < 0 {
		r := fr.row(fr.py(0))
		c.fillRect(image.Rect(fr.area.Min.X, r, fr.area.Max.X, r+1), borderColor)
	}
	entries := make([]legendEntry, len(groups))
	for gi, g := range groups {
		for li, v := range g.Values {
			fr.drawBar(c, li, gi, len(groups), v)
		}
		entries[gi] = legendEntry{name: g.Name, col: colorOf(gi)}
	}
	fr.drawAxes(c)
	legend := fr.drawLegend(c, entries)
	return c.img, chartLayout{area: fr.area, legend: legend, title: fr.titleRect()}, nil
}

// drawBar draws the bar of value v for group gi (of n) at label li, and
// its value label: above the bar, below it for a negative value, and "n/a"
// on the baseline for NaN.
func (fr *frame) drawBar(c *canvas, li, gi, n int, v float64) {
	lo, hi := barX(li, gi, n)
	x0, x1 := int(math.Round(fr.px(lo))), int(math.Round(fr.px(hi)))
	mid := (x0 + x1) / 2
	base := int(math.Round(fr.py(0)))
	st := fr.faces.value
	if math.IsNaN(v) {
		c.drawText(st, formatValue(v), mid, base-valueOffset, alignCenter, alignBaseline)
		return
	}
	end := int(math.Round(fr.py(v)))
	c.fillRect(image.Rect(x0, min(base, end), x1, max(base, end)).Intersect(fr.area), colorOf(gi))
	if v < 0 {
		c.drawText(st, formatValue(v), mid, end+valueOffset, alignCenter, alignCapTop)
		return
	}
	c.drawText(st, formatValue(v), mid, end-valueOffset, alignCenter, alignBaseline)
}
