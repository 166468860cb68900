// Package plot draws the charts of mlbuild's reports as PNG images with
// gonum.org/v1/plot: loss curves of a training run (LossCurves) and grouped
// bars comparing models on a few metrics (Bars).
//
// The images are deterministic: the same input gives the same bytes. The
// fonts are gonum's embedded Liberation fonts, the canvas size, resolution
// and colours are fixed, and the PNG is encoded here with image/png at a
// fixed compression level, independent of gonum's file-format dispatch.
// (Rasterisation is pure Go float arithmetic; a different CPU architecture
// could in principle anti-alias an edge pixel differently, which is why
// reports record metrics as numbers too.)
package plot

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"image/png"
	"math"
	"os"
	"strconv"

	gplot "gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Size and resolution of every image.
const (
	Width  = 16 * vg.Centimeter
	Height = 10 * vg.Centimeter
	DPI    = 96
)

// Series is one line of a line chart: points (X[i], Y[i]) joined in order.
// Points whose X or Y is NaN or infinite are skipped.
type Series struct {
	Name string
	X, Y []float64
}

// BarGroup is one bar per label, in the order of the labels, for one
// subject (for example a model): Values[i] is the bar of labels[i]. A NaN
// value draws no bar and is labelled "n/a".
type BarGroup struct {
	Name   string
	Values []float64
}

// palette holds the series and group colours, in order (colour-blind
// friendly: blue, orange, green, red, purple, brown).
var palette = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff},
}

func colorOf(i int) color.Color { return palette[i%len(palette)] }

// LossCurves writes a PNG line chart of loss against optimizer step to
// path: one line per series (typically "train" and "validation"), with a
// legend and axis labels. Series with few points (at most 40) also mark
// each point, so a validation curve evaluated every few hundred steps stays
// visible.
func LossCurves(path, title string, series ...Series) error {
	b, err := LossCurvesPNG(title, series...)
	if err != nil {
		return err
	}
	return writeFile(path, b)
}

// LossCurvesPNG returns the PNG bytes that LossCurves writes.
func LossCurvesPNG(title string, series ...Series) ([]byte, error) {
	p := newPlot(title, "optimizer step", "loss")
	p.Add(plotter.NewGrid())
	points := 0
	for i, s := range series {
		if len(s.X) != len(s.Y) {
			return nil, fmt.Errorf("plot: series %q has %d x values and %d y values", s.Name, len(s.X), len(s.Y))
		}
		var xys plotter.XYs
		for j := range s.X {
			if finite(s.X[j]) && finite(s.Y[j]) {
				xys = append(xys, plotter.XY{X: s.X[j], Y: s.Y[j]})
			}
		}
		if len(xys) == 0 {
			continue
		}
		points += len(xys)
		line, err := plotter.NewLine(xys)
		if err != nil {
			return nil, fmt.Errorf("plot: series %q: %w", s.Name, err)
		}
		line.Color = colorOf(i)
		line.Width = vg.Points(1.5)
		thumbs := []gplot.Thumbnailer{line}
		p.Add(line)
		if len(xys) <= 40 {
			sc, err := plotter.NewScatter(xys)
			if err != nil {
				return nil, fmt.Errorf("plot: series %q: %w", s.Name, err)
			}
			sc.GlyphStyle = draw.GlyphStyle{Color: colorOf(i), Radius: vg.Points(2.5), Shape: draw.CircleGlyph{}}
			p.Add(sc)
			thumbs = append(thumbs, sc)
		}
		if s.Name != "" {
			p.Legend.Add(s.Name, thumbs...)
		}
	}
	if points == 0 {
		p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
	}
	p.Legend.Top = true
	return render(p)
}

// Bars writes a PNG grouped bar chart to path: for each label, one bar per
// group side by side (for example "base" and "fine-tuned"), each bar
// labelled with its value, and a legend naming the groups. Every group must
// have one value per label.
func Bars(path, title string, labels []string, groups ...BarGroup) error {
	b, err := BarsPNG(title, labels, groups...)
	if err != nil {
		return err
	}
	return writeFile(path, b)
}

// BarsPNG returns the PNG bytes that Bars writes.
func BarsPNG(title string, labels []string, groups ...BarGroup) ([]byte, error) {
	if len(labels) == 0 {
		return nil, errors.New("plot: a bar chart needs at least one label")
	}
	if len(groups) == 0 {
		return nil, errors.New("plot: a bar chart needs at least one group")
	}
	for _, g := range groups {
		if len(g.Values) != len(labels) {
			return nil, fmt.Errorf("plot: bar group %q has %d values for %d labels", g.Name, len(g.Values), len(labels))
		}
		for _, v := range g.Values {
			if math.IsInf(v, 0) {
				return nil, fmt.Errorf("plot: bar group %q has an infinite value", g.Name)
			}
		}
	}
	p := newPlot(title, "", "")
	p.NominalX(labels...)
	p.X.Tick.Label.Font.Size = vg.Points(9)
	gb := &groupedBars{n: len(labels), groups: groups, text: p.X.Tick.Label}
	gb.text.Font.Size = vg.Points(8)
	grid := plotter.NewGrid()
	grid.Vertical.Color = nil
	p.Add(grid, gb)
	for i, g := range groups {
		p.Legend.Add(g.Name, swatch{colorOf(i)})
	}
	p.Legend.Top = true
	return render(p)
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

func newPlot(title, xLabel, yLabel string) *gplot.Plot {
	p := gplot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.BackgroundColor = color.White
	return p
}

// render draws p on a fixed-size white canvas and encodes it as PNG.
func render(p *gplot.Plot) ([]byte, error) {
	c := vgimg.NewWith(vgimg.UseWH(Width, Height), vgimg.UseDPI(DPI), vgimg.UseBackgroundColor(color.White))
	p.Draw(draw.New(c))
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.DefaultCompression}
	if err := enc.Encode(&buf, c.Image()); err != nil {
		return nil, fmt.Errorf("plot: encode PNG: %w", err)
	}
	return buf.Bytes(), nil
}

func writeFile(path string, b []byte) error {
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return nil
}

// groupedBars draws len(groups) bars side by side at each x = 0..n-1,
// together 80% of the spacing between labels wide, in data coordinates.
type groupedBars struct {
	n      int
	groups []BarGroup
	text   draw.TextStyle
}

const barSpan = 0.8

func (b *groupedBars) barX(label, group int) (lo, hi float64) {
	w := barSpan / float64(len(b.groups))
	lo = float64(label) - barSpan/2 + float64(group)*w
	return lo, lo + w
}

// Plot implements plot.Plotter.
func (b *groupedBars) Plot(c draw.Canvas, plt *gplot.Plot) {
	trX, trY := plt.Transforms(&c)
	for gi, g := range b.groups {
		for li, v := range g.Values {
			lo, hi := b.barX(li, gi)
			mid := trX((lo + hi) / 2)
			sty := b.text
			sty.XAlign, sty.YAlign = draw.XCenter, draw.YBottom
			if math.IsNaN(v) {
				c.FillText(sty, vg.Point{X: mid, Y: trY(0) + vg.Points(2)}, "n/a")
				continue
			}
			x0, x1, y0, y1 := trX(lo), trX(hi), trY(0), trY(v)
			poly := c.ClipPolygonXY([]vg.Point{{X: x0, Y: y0}, {X: x0, Y: y1}, {X: x1, Y: y1}, {X: x1, Y: y0}})
			c.FillPolygon(colorOf(gi), poly)
			at := vg.Point{X: mid, Y: y1 + vg.Points(2)}
			if v < 0 {
				sty.YAlign = draw.YTop
				at.Y = y1 - vg.Points(2)
			}
			c.FillText(sty, at, formatValue(v))
		}
	}
}

// DataRange implements plot.DataRanger: the labels' span on x, and 0 to
// the largest value (with headroom for the value labels) on y.
func (b *groupedBars) DataRange() (xmin, xmax, ymin, ymax float64) {
	lo, hi := 0.0, 0.0
	for _, g := range b.groups {
		for _, v := range g.Values {
			if !math.IsNaN(v) {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	if lo == 0 && hi == 0 {
		hi = 1
	}
	pad := 0.25 * (hi - lo) // room for the value labels and the legend
	if lo < 0 {
		lo -= pad
	}
	if hi > 0 {
		hi += pad
	}
	return -0.5, float64(b.n) - 0.5, lo, hi
}

// formatValue writes a bar's value with three significant digits.
func formatValue(v float64) string {
	if v == 0 {
		return "0"
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// swatch is a legend thumbnail: a filled square of one colour.
type swatch struct{ c color.Color }

// Thumbnail implements plot.Thumbnailer.
func (s swatch) Thumbnail(c *draw.Canvas) {
	pts := []vg.Point{
		{X: c.Min.X, Y: c.Min.Y}, {X: c.Min.X, Y: c.Max.Y},
		{X: c.Max.X, Y: c.Max.Y}, {X: c.Max.X, Y: c.Min.Y},
	}
	c.FillPolygon(s.c, c.ClipPolygonY(pts))
}
