package plot

import (
	"image"
	"image/color"
	"image/draw"
	"math"

	"golang.org/x/image/vector"
)

// canvas is the RGBA image a chart is drawn on.
type canvas struct {
	img *image.RGBA
}

// newCanvas returns a white canvas of w × h pixels.
func newCanvas(w, h int) *canvas {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	return &canvas{img: img}
}

// fillRect paints the whole pixels of r (clipped to the canvas) in col.
// Grid lines, axes, ticks, bars and legend swatches are drawn this way:
// snapped to the pixel grid they stay crisp, and a bar's height is exact.
func (c *canvas) fillRect(r image.Rectangle, col color.RGBA) {
	r = r.Canon().Intersect(c.img.Bounds())
	if r.Empty() {
		return
	}
	draw.Draw(c.img, r, image.NewUniform(col), image.Point{}, draw.Over)
}

// point is a position on the canvas in pixels: pixel (i, j) covers
// [i, i+1) × [j, j+1), and y grows downwards.
type point struct{ x, y float64 }

// coordLimit bounds the coordinates handed to the rasteriser: a point far
// outside the canvas is moved to this distance, which keeps the rasteriser's
// work proportional to the canvas (its outlines stay straight enough).
const coordLimit = 1 << 14

// shape collects anti-aliased filled outlines of one colour, clipped to a
// rectangle of the canvas, and paints them in one go: where outlines
// overlap (a line's segments and its round joins) the coverage is not
// counted twice, so a translucent edge is not darkened.
//
// Every outline is added with the same (positive) orientation, which the
// rasteriser needs for overlapping outlines to unite rather than cancel.
type shape struct {
	z    *vector.Rasterizer
	clip image.Rectangle
}

// newShape returns an empty shape clipped to clip and to the canvas.
func (c *canvas) newShape(clip image.Rectangle) *shape {
	clip = clip.Canon().Intersect(c.img.Bounds())
	s := &shape{clip: clip}
	if !clip.Empty() {
		s.z = vector.NewRasterizer(clip.Dx(), clip.Dy())
	}
	return s
}

// local converts a canvas coordinate to the rasteriser's, relative to the
// clip rectangle, bounded by coordLimit.
func (s *shape) local(p point) (float32, float32) {
	x := math.Max(-coordLimit, math.Min(coordLimit, p.x-float64(s.clip.Min.X)))
	y := math.Max(-coordLimit, math.Min(coordLimit, p.y-float64(s.clip.Min.Y)))
	return float32(x), float32(y)
}

// usable reports whether every point is finite (a NaN coordinate would
// make the rasteriser loop over a huge range).
func usable(pts ...point) bool {
	for _, p := range pts {
		if !finite(p.x) || !finite(p.y) {
			return false
		}
	}
	return true
}

// polygon adds the closed outline through pts.
func (s *shape) polygon(pts []point) {
	if s.z == nil || len(pts) < 3 || !usable(pts...) {
		return
	}
	if signedArea(pts) < 0 {
		pts = reversed(pts)
	}
	s.z.MoveTo(s.local(pts[0]))
	for _, p := range pts[1:] {
		s.z.LineTo(s.local(p))
	}
	s.z.ClosePath()
}

// signedArea returns twice the area enclosed by pts, positive when the
// outline turns from +x towards +y.
func signedArea(pts []point) float64 {
	a := 0.0
	for i, p := range pts {
		q := pts[(i+1)%len(pts)]
		a += float64(p.x*q.y) - float64(q.x*p.y)
	}
	return a
}

// reversed returns pts in the opposite order, as a new slice.
func reversed(pts []point) []point {
	r := make([]point, len(pts))
	for i, p := range pts {
		r[len(pts)-1-i] = p
	}
	return r
}

// kappa places the control points of a cubic Bézier quarter circle.
const kappa = 0.5522847498307936

// circle adds a disc of radius r around c, as four cubic Bézier arcs
// traversed from +x towards +y (the positive orientation).
func (s *shape) circle(c point, r float64) {
	if s.z == nil || !(r > 0) || !usable(c) || !finite(r) {
		return
	}
	k := float64(kappa * r)
	at := func(dx, dy float64) (float32, float32) { return s.local(point{c.x + dx, c.y + dy}) }
	s.z.MoveTo(at(r, 0))
	cube := func(x1, y1, x2, y2, x3, y3 float64) {
		ax, ay := at(x1, y1)
		bx, by := at(x2, y2)
		cx, cy := at(x3, y3)
		s.z.CubeTo(ax, ay, bx, by, cx, cy)
	}
	cube(r, k, k, r, 0, r)
	cube(-k, r, -r, k, -r, 0)
	cube(-r, -k, -k, -r, 0, -r)
	cube(k, -r, r, -k, r, 0)
	s.z.ClosePath()
}

// stroke adds a polyline through pts, width pixels wide, with round joins
// and round ends. Non-finite points break the line.
func (s *shape) stroke(pts []point, width float64) {
	h := width / 2
	for i, p := range pts {
		if !usable(p) {
			continue
		}
		s.circle(p, h)
		if i+1 < len(pts) && usable(pts[i+1]) {
			s.segment(p, pts[i+1], h)
		}
	}
}

// segment adds the rectangle of half-width h around the segment a–b.
func (s *shape) segment(a, b point, h float64) {
	dx, dy := b.x-a.x, b.y-a.y
	l := math.Hypot(dx, dy)
	if !(l > 1e-9) || !finite(l) {
		return
	}
	nx, ny := float64(-dy/l*h), float64(dx/l*h)
	s.polygon([]point{
		{a.x + nx, a.y + ny}, {b.x + nx, b.y + ny},
		{b.x - nx, b.y - ny}, {a.x - nx, a.y - ny},
	})
}

// fill paints the outlines added so far onto c in col.
func (s *shape) fill(c *canvas, col color.RGBA) {
	if s.z == nil {
		return
	}
	s.z.Draw(c.img, s.clip, image.NewUniform(col), image.Point{})
}
