package plot

import (
	"image"
	"image/color"
	"math"
)

// Distances of the layout, in pixels.
const (
	margin      = 6  // between the image's edge and anything drawn
	gap         = 4  // between a text and what it labels
	tickLen     = 4  // of a tick mark, outside the plot area
	legendPad   = 5  // inside the legend box, around its entries
	legendInset = 8  // between the plot area's corner and the legend box
	thumbWidth  = 22 // of a legend entry's line sample
	swatchSize  = 10 // of a legend entry's colour square
)

// Colours of the frame (text and axes use ink).
var (
	gridColor   = color.RGBA{R: 0xe3, G: 0xe3, B: 0xe3, A: 0xff}
	borderColor = color.RGBA{R: 0xc8, G: 0xc8, B: 0xc8, A: 0xff}
	white       = color.RGBA{R: 0xff, G: 0xff, B: 0xff, A: 0xff}
)

// frame is what both charts share: a title, axis labels, two axes with
// labelled ticks around a plot area, and a light grid.
type frame struct {
	title, xLabel, yLabel string
	x, y                  axis
	xGrid                 bool // vertical grid lines at the x ticks
	faces                 *faces
	area                  image.Rectangle // set by place
}

// chartLayout tells where a rendering put its parts (for tests).
type chartLayout struct {
	area, legend, title image.Rectangle
}

// place computes the plot area: the canvas less the room the title, the
// axis labels and the tick labels take.
func (fr *frame) place() {
	f := fr.faces
	top := margin + f.yTick.metrics().capHeight/2 // the top y tick label may stick out
	if fr.title != "" {
		top = margin + f.title.metrics().height() + gap
	}
	bottom := Height - margin - f.xTick.metrics().capHeight - f.xTick.metrics().descent - gap - tickLen - 1
	if fr.xLabel != "" {
		bottom -= f.label.metrics().height() + gap
	}
	left := margin + fr.yTickWidth() + gap + tickLen + 1
	if fr.yLabel != "" {
		left += f.label.metrics().height() + gap
	}
	left = min(left, Width/2) // absurdly wide tick labels overlap the area rather than push it off the canvas
	right := fr.rightEdge(left)
	bottom = max(bottom, top+Height/4)
	fr.area = image.Rect(left, top, right, bottom)
}

// yTickWidth returns the width of the widest y tick label.
func (fr *frame) yTickWidth() int {
	w := 0
	for _, t := range fr.y.ticks {
		w = max(w, fr.faces.yTick.width(t.label))
	}
	return w
}

// rightEdge returns the plot area's right edge for a left edge at left:
// as far right as the margin allows, less what the last x tick label,
// centred on its tick, would stick out past the margin.
func (fr *frame) rightEdge(left int) int {
	limit := Width - margin
	right := limit
	if n := len(fr.x.ticks); n > 0 {
		last := fr.x.ticks[n-1]
		half := float64(fr.faces.xTick.width(last.label)) / 2
		at := fr.x.frac(last.v)
		if pos := float64(left) + at*float64(limit-left); pos+half > float64(limit) && at > 0 {
			right = left + int(math.Floor((float64(limit-left)-half)/at))
		}
	}
	return max(right, left+Width/3)
}

// px returns the canvas x of the value v.
func (fr *frame) px(v float64) float64 {
	return fr.x.toPixel(v, float64(fr.area.Min.X), float64(fr.area.Max.X))
}

// py returns the canvas y of the value v.
func (fr *frame) py(v float64) float64 {
	return fr.y.toPixel(v, float64(fr.area.Max.Y), float64(fr.area.Min.Y))
}

// column returns the pixel column of x, kept inside the plot area.
func (fr *frame) column(x float64) int {
	return clampInt(int(math.Floor(x)), fr.area.Min.X, fr.area.Max.X-1)
}

// row returns the pixel row of y, kept inside the plot area.
func (fr *frame) row(y float64) int {
	return clampInt(int(math.Floor(y)), fr.area.Min.Y, fr.area.Max.Y-1)
}

// clampInt returns v limited to lo..hi.
func clampInt(v, lo, hi int) int { return max(lo, min(hi, v)) }

// drawGrid draws the light grid lines at the ticks, under the data.
func (fr *frame) drawGrid(c *canvas) {
	a := fr.area
	for _, t := range fr.y.ticks {
		r := fr.row(fr.py(t.v))
		c.fillRect(image.Rect(a.Min.X, r, a.Max.X, r+1), gridColor)
	}
	if !fr.xGrid {
		return
	}
	for _, t := range fr.x.ticks {
		col := fr.column(fr.px(t.v))
		c.fillRect(image.Rect(col, a.Min.Y, col+1, a.Max.Y), gridColor)
	}
}

// drawAxes draws the axis lines left of and below the plot area, their
// ticks and tick labels, the axis labels and the title.
func (fr *frame) drawAxes(c *canvas) {
	a, f := fr.area, fr.faces
	c.fillRect(image.Rect(a.Min.X-1, a.Min.Y, a.Min.X, a.Max.Y+1), ink)
	c.fillRect(image.Rect(a.Min.X-1, a.Max.Y, a.Max.X, a.Max.Y+1), ink)
	for _, t := range fr.y.ticks {
		r := fr.row(fr.py(t.v))
		c.fillRect(image.Rect(a.Min.X-1-tickLen, r, a.Min.X-1, r+1), ink)
		c.drawText(f.yTick, t.label, a.Min.X-1-tickLen-gap, r, alignRight, alignMiddle)
	}
	for _, t := range fr.x.ticks {
		col := fr.column(fr.px(t.v))
		c.fillRect(image.Rect(col, a.Max.Y+1, col+1, a.Max.Y+1+tickLen), ink)
		c.drawText(f.xTick, t.label, col, a.Max.Y+1+tickLen+gap, alignCenter, alignCapTop)
	}
	mid := (a.Min.X + a.Max.X) / 2
	if fr.xLabel != "" {
		c.drawText(f.label, fr.xLabel, mid, Height-margin-f.label.metrics().descent, alignCenter, alignBaseline)
	}
	if fr.yLabel != "" {
		c.drawTextUp(f.label, fr.yLabel, margin+f.label.metrics().height()/2, (a.Min.Y+a.Max.Y)/2)
	}
	if fr.title != "" {
		c.drawText(f.title, fr.title, fr.titleCentre(), margin+f.title.metrics().ascent, alignCenter, alignBaseline)
	}
}

// titleCentre returns the x the title is centred on: the plot area's
// middle, moved left or right as needed to keep a long title on the canvas.
func (fr *frame) titleCentre() int {
	half := fr.faces.title.width(fr.title) / 2
	mid := (fr.area.Min.X + fr.area.Max.X) / 2
	if half*2 >= Width-2*margin {
		return Width / 2
	}
	return clampInt(mid, margin+half, Width-margin-half)
}

// titleRect returns the band the title is written in.
func (fr *frame) titleRect() image.Rectangle {
	if fr.title == "" {
		return image.Rectangle{}
	}
	return image.Rect(0, margin, Width, margin+fr.faces.title.metrics().height())
}

// legendEntry is one line of a legend: a name and a sample of its colour,
// either a short line (with a point marker when the series has them) or a
// square swatch.
type legendEntry struct {
	name   string
	col    color.RGBA
	line   bool
	marker bool
}

// legendSize returns the width and height of the legend box of entries.
func (fr *frame) legendSize(entries []legendEntry) (w, h int) {
	st := fr.faces.legend
	textW := 0
	for _, e := range entries {
		textW = max(textW, st.width(e.name))
	}
	w = legendPad + thumbWidth + gap + textW + legendPad
	h = legendPad + len(entries)*fr.legendRow() + legendPad
	return min(w, fr.area.Dx()-2*legendInset), h
}

// legendRow returns the height of one legend entry.
func (fr *frame) legendRow() int { return fr.faces.legend.metrics().height() + 2 }

// legendBoxes returns the places a legend box of w × h can take, best
// first: the plot area's top right corner, then its other corners.
func (fr *frame) legendBoxes(w, h int) []image.Rectangle {
	a := fr.area.Inset(legendInset)
	return []image.Rectangle{
		image.Rect(a.Max.X-w, a.Min.Y, a.Max.X, a.Min.Y+h),
		image.Rect(a.Min.X, a.Min.Y, a.Min.X+w, a.Min.Y+h),
		image.Rect(a.Max.X-w, a.Max.Y-h, a.Max.X, a.Max.Y),
		image.Rect(a.Min.X, a.Max.Y-h, a.Min.X+w, a.Max.Y),
	}
}

// drawLegend draws a boxed legend in the top right corner of the plot area
// and returns the box (empty when there are no entries).
func (fr *frame) drawLegend(c *canvas, entries []legendEntry) image.Rectangle {
	if len(entries) == 0 {
		return image.Rectangle{}
	}
	return fr.drawLegendAt(c, entries, fr.legendBoxes(fr.legendSize(entries))[0])
}

// drawLegendClear draws the legend like drawLegend, but in the first
// corner of the plot area where it hides the least of lines (polylines in
// canvas coordinates).
func (fr *frame) drawLegendClear(c *canvas, entries []legendEntry, lines [][]point) image.Rectangle {
	if len(entries) == 0 {
		return image.Rectangle{}
	}
	boxes := fr.legendBoxes(fr.legendSize(entries))
	best, hidden := boxes[0], -1
	for _, b := range boxes {
		n := 0
		for _, l := range lines {
			n += coveredSamples(b.Inset(-5), l) // 5: a marker's radius and a pixel
		}
		if hidden < 0 || n < hidden {
			best, hidden = b, n
		}
		if n == 0 {
			break
		}
	}
	return fr.drawLegendAt(c, entries, best)
}

// coveredSamples returns how many samples of the polyline pts, taken at
// most 2 pixels apart, fall inside r.
func coveredSamples(r image.Rectangle, pts []point) int {
	in := func(p point) bool {
		return p.x >= float64(r.Min.X) && p.x < float64(r.Max.X) && p.y >= float64(r.Min.Y) && p.y < float64(r.Max.Y)
	}
	n := 0
	for i, p := range pts {
		if in(p) {
			n++
		}
		if i+1 == len(pts) {
			break
		}
		q := pts[i+1]
		steps := math.Ceil(math.Hypot(q.x-p.x, q.y-p.y) / 2)
		if !finite(steps) || steps > 4*Width {
			continue
		}
		for k := 1.0; k < steps; k++ {
			t := k / steps
			if in(point{p.x + float64(t*(q.x-p.x)), p.y + float64(t*(q.y-p.y))}) {
				n++
			}
		}
	}
	return n
}

// drawLegendAt draws the legend box of entries at box and returns it.
func (fr *frame) drawLegendAt(c *canvas, entries []legendEntry, box image.Rectangle) image.Rectangle {
	st := fr.faces.legend
	rowH := fr.legendRow()
	c.fillRect(box, borderColor)
	c.fillRect(box.Inset(1), white)
	for i, e := range entries {
		x := box.Min.X + legendPad
		mid := box.Min.Y + legendPad + i*rowH + rowH/2
		fr.drawSample(c, e, x, mid, box)
		c.drawText(st, e.name, x+thumbWidth+gap, mid, alignLeft, alignMiddle)
	}
	return box
}

// drawSample draws a legend entry's colour sample, thumbWidth wide from x,
// centred on row mid, clipped to the legend box.
func (fr *frame) drawSample(c *canvas, e legendEntry, x, mid int, box image.Rectangle) {
	if !e.line {
		top := mid - swatchSize/2
		left := x + (thumbWidth-swatchSize)/2
		c.fillRect(image.Rect(left, top, left+swatchSize, top+swatchSize), e.col)
		return
	}
	s := c.newShape(box.Inset(1))
	y := float64(mid)
	s.stroke([]point{{float64(x + 2), y}, {float64(x + thumbWidth - 2), y}}, lineWidth)
	if e.marker {
		s.circle(point{float64(x) + thumbWidth/2.0, y}, markerRadius)
	}
	s.fill(c, e.col)
}
