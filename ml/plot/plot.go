// Package plot draws the charts of mlbuild's reports as PNG images: loss
// curves of a training run (LossCurves) and grouped bars comparing models
// on a few metrics (Bars).
//
// The rendering is native: anti-aliased shapes with golang.org/x/image/vector,
// text with the Go fonts through golang.org/x/image/font/opentype, and
// axis-aligned lines and bars as whole-pixel rectangles. Nothing is done at
// package initialisation: the fonts are parsed on the first chart, so a
// process that links this package but draws nothing pays nothing for it.
//
// The images are deterministic: the same input gives the same bytes. The
// canvas size, fonts, colours and layout are fixed, and the PNG is encoded
// with image/png at a fixed compression level. (The rasteriser is written
// to give bit-identical results on every architecture; the layout's float64
// arithmetic could in principle round an edge pixel differently where a
// compiler fuses multiply-adds, which is why reports record metrics as
// numbers too.)
package plot

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
)

// Size and resolution of every image: 16 cm × 10 cm at DPI dots per inch,
// rounded up to whole pixels.
const (
	Width  = 605 // pixels: ⌈16 cm × 96 / 2.54 cm⌉
	Height = 378 // pixels: ⌈10 cm × 96 / 2.54 cm⌉
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
var palette = [...]color.RGBA{
	{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff},
}

// colorOf returns the colour of the i-th series or group, cycling through
// the palette.
func colorOf(i int) color.RGBA { return palette[i%len(palette)] }

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
	img, _, err := renderLoss(title, series)
	if err != nil {
		return nil, err
	}
	return encode(img)
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
	img, _, err := renderBars(title, labels, groups)
	if err != nil {
		return nil, err
	}
	return encode(img)
}

// finite reports whether x is neither NaN nor infinite.
func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// encode writes img as PNG at a fixed compression level.
func encode(img image.Image) ([]byte, error) {
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.DefaultCompression}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("plot: encode PNG: %w", err)
	}
	return buf.Bytes(), nil
}

// writeFile writes a chart's bytes to path.
func writeFile(path string, b []byte) error {
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return nil
}
