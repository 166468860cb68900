package plot

import (
	"fmt"
	"image"
	"image/color"
	"math"
)

// Line chart styles, in pixels.
const (
	lineWidth    = 1.5 * pxPerPt // of a series' line
	markerRadius = 2.5 * pxPerPt // of the point markers
	maxMarked    = 40            // series with at most this many points get markers
	axisPad      = 0.04          // of the data range, added at both ends of each axis
)

// curve is a series reduced to its finite points.
type curve struct {
	name   string
	xs, ys []float64
}

// finiteCurves checks the series and keeps their finite points.
func finiteCurves(series []Series) ([]curve, error) {
	cs := make([]curve, len(series))
	for i, s := range series {
		if len(s.X) != len(s.Y) {
			return nil, fmt.Errorf("plot: series %q has %d x values and %d y values", s.Name, len(s.X), len(s.Y))
		}
		cs[i].name = s.Name
		for j := range s.X {
			if finite(s.X[j]) && finite(s.Y[j]) {
				cs[i].xs = append(cs[i].xs, s.X[j])
				cs[i].ys = append(cs[i].ys, s.Y[j])
			}
		}
	}
	return cs, nil
}

// curveAxes returns the x and y axes that show every point of cs, padded;
// 0..1 on both when there are no points.
func curveAxes(cs []curve) (x, y axis) {
	xlo, xhi, ylo, yhi := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, c := range cs {
		for i := range c.xs {
			xlo, xhi = math.Min(xlo, c.xs[i]), math.Max(xhi, c.xs[i])
			ylo, yhi = math.Min(ylo, c.ys[i]), math.Max(yhi, c.ys[i])
		}
	}
	if xlo > xhi { // no points
		return newAxis(0, 1, 5), newAxis(0, 1, 5)
	}
	xlo, xhi = padRange(dataRange(xlo, xhi))
	ylo, yhi = padRange(dataRange(ylo, yhi))
	return newAxis(xlo, xhi, 6), newAxis(ylo, yhi, 5)
}

// padRange widens a range by axisPad of its span at each end.
func padRange(lo, hi float64) (float64, float64) { return widen(lo, hi, axisPad) }

// renderLoss draws the loss chart of LossCurvesPNG.
func renderLoss(title string, series []Series) (*image.RGBA, chartLayout, error) {
	cs, err := finiteCurves(series)
	if err != nil {
		return nil, chartLayout{}, err
	}
	f, err := newFaces(tickSize)
	if err != nil {
		return nil, chartLayout{}, err
	}
	x, y := curveAxes(cs)
	fr := &frame{title: title, xLabel: "optimizer step", yLabel: "loss", x: x, y: y, xGrid: true, faces: f}
	fr.place()
	c := newCanvas(Width, Height)
	fr.drawGrid(c)
	var entries []legendEntry
	var lines [][]point
	for i, cv := range cs {
		if len(cv.xs) == 0 {
			continue
		}
		lines = append(lines, fr.drawCurve(c, cv, colorOf(i)))
		if cv.name != "" {
			entries = append(entries, legendEntry{name: cv.name, col: colorOf(i), line: true, marker: len(cv.xs) <= maxMarked})
		}
	}
	fr.drawAxes(c)
	legend := fr.drawLegendClear(c, entries, lines)
	return c.img, chartLayout{area: fr.area, legend: legend, title: fr.titleRect()}, nil
}

// drawCurve draws one series' line, and its point markers when it has few
// points, clipped to the plot area, and returns the line's points on the
// canvas.
func (fr *frame) drawCurve(c *canvas, cv curve, col color.RGBA) []point {
	pts := make([]point, len(cv.xs))
	for i := range cv.xs {
		pts[i] = point{fr.px(cv.xs[i]), fr.py(cv.ys[i])}
	}
	s := c.newShape(fr.area)
	s.stroke(pts, lineWidth)
	if len(pts) <= maxMarked {
		for _, p := range pts {
			s.circle(p, markerRadius)
		}
	}
	s.fill(c, col)
	return pts
}
