package plot

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func curves() []Series {
	var train, val Series
	train.Name, val.Name = "train", "validation"
	for i := 0; i <= 300; i++ {
		train.X = append(train.X, float64(i))
		train.Y = append(train.Y, 4*math.Exp(-float64(i)/80)+0.5+0.05*math.Sin(float64(i)))
		if i%50 == 0 {
			val.X = append(val.X, float64(i))
			val.Y = append(val.Y, 4*math.Exp(-float64(i)/90)+0.7)
		}
	}
	return []Series{train, val}
}

func decode(t *testing.T, b []byte) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if w, h := img.Bounds().Dx(), img.Bounds().Dy(); w < 500 || h < 300 {
		t.Fatalf("image is %dx%d", w, h)
	}
}

func TestLossCurvesDeterministic(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.png"), filepath.Join(dir, "b.png")
	if err := LossCurves(a, "QLoRA training", curves()...); err != nil {
		t.Fatal(err)
	}
	if err := LossCurves(b, "QLoRA training", curves()...); err != nil {
		t.Fatal(err)
	}
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !bytes.Equal(ab, bb) {
		t.Fatal("two renderings of the same curves differ")
	}
	decode(t, ab)
	other := curves()
	other[1].Y[2] += 1
	ob, err := LossCurvesPNG("QLoRA training", other...)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(ob, ab) {
		t.Fatal("different data gave the same image")
	}
}

func TestLossCurvesEdgeCases(t *testing.T) {
	// No points at all, NaN points, an unnamed series: still an image.
	for _, s := range [][]Series{
		nil,
		{{Name: "train"}},
		{{Name: "train", X: []float64{0, 1, 2}, Y: []float64{math.NaN(), 2, math.Inf(1)}}},
		{{X: []float64{0, 1}, Y: []float64{3, 2}}},
	} {
		b, err := LossCurvesPNG("", s...)
		if err != nil {
			t.Fatalf("%v: %v", s, err)
		}
		decode(t, b)
	}
	if _, err := LossCurvesPNG("", Series{Name: "bad", X: []float64{1}, Y: []float64{1, 2}}); err == nil || !strings.Contains(err.Error(), `"bad"`) {
		t.Fatalf("mismatched lengths: %v", err)
	}
	if err := LossCurves(filepath.Join(t.TempDir(), "no", "such", "dir.png"), "", curves()...); err == nil {
		t.Fatal("unwritable path: no error")
	}
}

func TestBars(t *testing.T) {
	labels := []string{"tool call", "valid call", "exact args", "uses result"}
	groups := []BarGroup{
		{Name: "base", Values: []float64{0, 0, 0, 0}},
		{Name: "fine-tuned", Values: []float64{0.95, 0.9, 0.7, math.NaN()}},
	}
	path := filepath.Join(t.TempDir(), "bars.png")
	if err := Bars(path, "base vs fine-tuned", labels, groups...); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(path)
	b, err := BarsPNG("base vs fine-tuned", labels, groups...)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("two renderings of the same bars differ")
	}
	decode(t, a)
	// Negative and all-zero values.
	if b, err = BarsPNG("", []string{"a", "b"}, BarGroup{Name: "x", Values: []float64{-1, 2}}); err != nil {
		t.Fatal(err)
	}
	decode(t, b)
	if _, err = BarsPNG("", []string{"a"}, BarGroup{Name: "x", Values: []float64{0}}); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		labels []string
		groups []BarGroup
		want   string
	}{
		"no labels": {nil, groups, "at least one label"},
		"no groups": {labels, nil, "at least one group"},
		"short":     {labels, []BarGroup{{Name: "g", Values: []float64{1}}}, `"g" has 1 values for 4 labels`},
		"infinite":  {[]string{"a"}, []BarGroup{{Name: "g", Values: []float64{math.Inf(1)}}}, "infinite"},
	} {
		if _, err := BarsPNG("", tc.labels, tc.groups...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

// TestWritePNGForInspection writes sample images when PLOT_OUT names a
// directory, for a look by eye.
func TestWritePNGForInspection(t *testing.T) {
	dir := os.Getenv("PLOT_OUT")
	if dir == "" {
		t.Skip("set PLOT_OUT to a directory to write sample images")
	}
	if err := LossCurves(filepath.Join(dir, "loss.png"), "QLoRA training", curves()...); err != nil {
		t.Fatal(err)
	}
	if err := Bars(filepath.Join(dir, "bars.png"), "base vs fine-tuned", []string{"tool call", "valid call", "exact args", "uses result"},
		BarGroup{Name: "base", Values: []float64{0.1, 0.05, 0, 0}},
		BarGroup{Name: "fine-tuned", Values: []float64{0.95, 0.9, 0.7, math.NaN()}}); err != nil {
		t.Fatal(err)
	}
	if err := Bars(filepath.Join(dir, "bars-loss.png"), "Validation loss (nats per token)", []string{"all", "persona (prose)", "chat (assistant turns)"},
		BarGroup{Name: "base", Values: []float64{3.2187, 3.5012, 2.9034}},
		BarGroup{Name: "fine-tuned", Values: []float64{2.0412, 2.3377, 1.6021}}); err != nil {
		t.Fatal(err)
	}
	long := Series{Name: "train"}
	val := Series{Name: "validation", X: []float64{0}, Y: []float64{10.4}}
	for i := 1; i <= 2400; i++ {
		long.X = append(long.X, float64(i))
		long.Y = append(long.Y, 8/(1+float64(i)/150)+1.6+0.3*math.Sin(float64(i)*0.7)*math.Cos(float64(i)*0.13))
		if i%200 == 0 {
			val.X, val.Y = append(val.X, float64(i)), append(val.Y, 8/(1+float64(i)/150)+1.9)
		}
	}
	if err := LossCurves(filepath.Join(dir, "loss-long.png"), "pretrain: loss", long, val); err != nil {
		t.Fatal(err)
	}
	// Odd input, for a look at how it degrades.
	if err := LossCurves(filepath.Join(dir, "loss-odd.png"), "",
		Series{Name: "one point", X: []float64{100}, Y: []float64{2.5}},
		Series{Name: "flat", X: []float64{0, 50, 100, math.NaN()}, Y: []float64{2, 2, 2, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := LossCurves(filepath.Join(dir, "loss-empty.png"), "no points yet"); err != nil {
		t.Fatal(err)
	}
	if err := Bars(filepath.Join(dir, "bars-negative.png"), "change against the base", []string{"accuracy", "loss", "latency"},
		BarGroup{Name: "lora", Values: []float64{0.12, -0.4, 0.031}},
		BarGroup{Name: "qlora", Values: []float64{0.1, -0.35, -0.02}},
		BarGroup{Name: "full", Values: []float64{0.15, -0.5, math.NaN()}}); err != nil {
		t.Fatal(err)
	}
}

func TestImageSize(t *testing.T) {
	if w, h := int(math.Ceil(16/2.54*DPI)), int(math.Ceil(10/2.54*DPI)); Width != w || Height != h {
		t.Fatalf("Width, Height = %d, %d; 16 cm × 10 cm at %d DPI is %d × %d", Width, Height, DPI, w, h)
	}
	loss, err := LossCurvesPNG("t", curves()...)
	if err != nil {
		t.Fatal(err)
	}
	bars, err := BarsPNG("t", []string{"a"}, BarGroup{Name: "g", Values: []float64{1}})
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"loss": loss, "bars": bars} {
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := img.Bounds(); got != image.Rect(0, 0, Width, Height) {
			t.Errorf("%s: bounds %v, want %dx%d", name, got, Width, Height)
		}
	}
}

// countColor returns how many pixels of r in img are exactly col, leaving
// out those in skip.
func countColor(img *image.RGBA, r, skip image.Rectangle, col color.RGBA) int {
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if !image.Pt(x, y).In(skip) && img.RGBAAt(x, y) == col {
				n++
			}
		}
	}
	return n
}

func TestLossCurvesDrawn(t *testing.T) {
	img, lay, err := renderLoss("QLoRA training", curves())
	if err != nil {
		t.Fatal(err)
	}
	if lay.area.Dx() < Width/2 || lay.area.Dy() < Height/2 {
		t.Fatalf("plot area %v is small", lay.area)
	}
	if !lay.legend.In(lay.area) || lay.legend.Empty() {
		t.Fatalf("legend %v not inside the plot area %v", lay.legend, lay.area)
	}
	for i, s := range curves() {
		// A 2-pixel line across the area covers hundreds of pixels fully.
		if n := countColor(img, lay.area, lay.legend, colorOf(i)); n < 300 {
			t.Errorf("series %q: %d pixels of its colour in the plot area", s.Name, n)
		}
		if n := countColor(img, lay.legend, image.Rectangle{}, colorOf(i)); n < 20 {
			t.Errorf("series %q: %d pixels of its colour in the legend", s.Name, n)
		}
	}
	if n := countColor(img, img.Bounds(), image.Rectangle{}, colorOf(2)); n != 0 {
		t.Errorf("%d pixels of a third series' colour", n)
	}
	if dark := countDark(img, lay.title); dark < 50 {
		t.Errorf("%d dark pixels in the title band %v", dark, lay.title)
	}
}

// countDark returns how many pixels of r in img are dark grey (text).
func countDark(img *image.RGBA, r image.Rectangle) int {
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if c := img.RGBAAt(x, y); c.R < 0x80 && c.G < 0x80 && c.B < 0x80 {
				n++
			}
		}
	}
	return n
}

// longestRun returns the longest vertical run of pixels of col in columns
// x0..x1 of r in img.
func longestRun(img *image.RGBA, r image.Rectangle, x0, x1 int, col color.RGBA) int {
	best := 0
	for x := max(x0, r.Min.X); x < min(x1, r.Max.X); x++ {
		run := 0
		for y := r.Min.Y; y < r.Max.Y; y++ {
			if img.RGBAAt(x, y) == col {
				run++
				best = max(best, run)
			} else {
				run = 0
			}
		}
	}
	return best
}

func TestBarHeights(t *testing.T) {
	img, lay, err := renderBars("heights", []string{"a", "b"}, []BarGroup{{Name: "g", Values: []float64{1, 2}}})
	if err != nil {
		t.Fatal(err)
	}
	mid := (lay.area.Min.X + lay.area.Max.X) / 2
	h1 := longestRun(img, lay.area, lay.area.Min.X, mid, colorOf(0))
	h2 := longestRun(img, lay.area, mid, lay.area.Max.X, colorOf(0))
	if h1 < 50 || math.Abs(float64(h2-2*h1)) > 2 {
		t.Fatalf("bars of 1 and 2 are %d and %d pixels high", h1, h2)
	}
	// The tallest bar with its headroom: 2 of 2.5 of the area's height.
	if want := float64(lay.area.Dy()) * 2 / 2.5; math.Abs(float64(h2)-want) > 2 {
		t.Errorf("bar of 2 is %d pixels high, want %.1f", h2, want)
	}
	if n := countColor(img, lay.legend, image.Rectangle{}, colorOf(0)); n < 50 {
		t.Errorf("legend swatch: %d pixels", n)
	}
	if dark := countDark(img, lay.title); dark < 30 {
		t.Errorf("%d dark pixels in the title band %v", dark, lay.title)
	}
	// Two groups: both colours, side by side.
	img, lay, err = renderBars("", []string{"a"}, []BarGroup{{Name: "x", Values: []float64{1}}, {Name: "y", Values: []float64{-1}}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if n := countColor(img, lay.area, lay.legend, colorOf(i)); n < 500 {
			t.Errorf("group %d: %d pixels of its colour", i, n)
		}
	}
}

func TestLossCurvesOddInput(t *testing.T) {
	huge := math.MaxFloat64
	for name, s := range map[string][]Series{
		"single point": {{Name: "a", X: []float64{3}, Y: []float64{2}}},
		"all equal":    {{Name: "a", X: []float64{0, 1, 2}, Y: []float64{2, 2, 2}}},
		"zeros":        {{Name: "a", X: []float64{0, 0}, Y: []float64{0, 0}}},
		"negative":     {{Name: "a", X: []float64{-5, 5}, Y: []float64{-1e-3, -2e-3}}},
		"huge":         {{Name: "a", X: []float64{-huge, huge}, Y: []float64{huge, -huge}}},
		"tiny spread":  {{Name: "a", X: []float64{1e15, 1e15 + 1}, Y: []float64{1, 1 + 1e-15}}},
		"subnormal":    {{Name: "a", X: []float64{0, 5e-324}, Y: []float64{0, 5e-324}}},
		"many series":  {{Name: "1", X: []float64{0}, Y: []float64{1}}, {Name: "2"}, {Name: "3"}, {Name: "4"}, {Name: "5"}, {Name: "6"}, {Name: "7", X: []float64{1}, Y: []float64{0}}},
	} {
		img, lay, err := renderLoss(name, s)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n := countColor(img, lay.area, lay.legend, colorOf(0)); n == 0 {
			t.Errorf("%s: nothing drawn", name)
		}
	}
}

func TestBarsOddInput(t *testing.T) {
	for name, g := range map[string][]BarGroup{
		"huge":     {{Name: "a", Values: []float64{math.MaxFloat64, -math.MaxFloat64}}},
		"all NaN":  {{Name: "a", Values: []float64{math.NaN(), math.NaN()}}},
		"negative": {{Name: "a", Values: []float64{-1, -2}}},
		"unnamed":  {{Values: []float64{1, 2}}, {Values: []float64{3, 4}}},
	} {
		if _, err := BarsPNG(name, []string{"a very long label indeed, longer than the spacing", "b"}, g...); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestConcurrentRenderings(t *testing.T) {
	want, err := LossCurvesPNG("x", curves()...)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			b, err := LossCurvesPNG("x", curves()...)
			if err == nil && !bytes.Equal(b, want) {
				err = errors.New("a concurrent rendering differs")
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestTicks(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		target int
		want   string
	}{
		{0, 300, 6, "0 50 100 150 200 250 300"},
		{0.55, 4.7, 5, "1 2 3 4"},
		{0, 1.1875, 5, "0 0.2 0.4 0.6 0.8 1.0"},
		{-1.75, 2.75, 5, "-1 0 1 2"},
		{0.001, 0.0012, 5, "0.00100 0.00105 0.00110 0.00115 0.00120"},
		{0, 3e6, 5, "0 5e+05 1e+06 1.5e+06 2e+06 2.5e+06 3e+06"},
		{0.2, 0.9, 3, "0.2 0.4 0.6 0.8"},
	} {
		var got []string
		for _, tk := range niceTicks(tc.lo, tc.hi, tc.target) {
			got = append(got, tk.label)
		}
		if s := strings.Join(got, " "); s != tc.want {
			t.Errorf("ticks of %g..%g: %q, want %q", tc.lo, tc.hi, s, tc.want)
		}
	}
}

func TestFormatValue(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 0.95: "0.95", 1.23456: "1.23", -2: "-2", 12345: "1.23e+04", math.NaN(): "n/a"} {
		if got := formatValue(v); got != want {
			t.Errorf("formatValue(%g) = %q, want %q", v, got, want)
		}
	}
}

func BenchmarkLossCurvesPNG(b *testing.B) {
	cs := curves()
	for b.Loop() {
		if _, err := LossCurvesPNG("QLoRA training", cs...); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBarsPNG(b *testing.B) {
	labels := []string{"tool call", "valid call", "exact args", "uses result"}
	groups := []BarGroup{
		{Name: "base", Values: []float64{0.1, 0.05, 0, 0}},
		{Name: "fine-tuned", Values: []float64{0.95, 0.9, 0.7, math.NaN()}},
	}
	for b.Loop() {
		if _, err := BarsPNG("base vs fine-tuned", labels, groups...); err != nil {
			b.Fatal(err)
		}
	}
}
