package plot

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"sync"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// fontSet holds the parsed Go fonts. A parsed font is read-only and can be
// shared; the faces made from it cannot, so each rendering makes its own.
type fontSet struct {
	regular, bold *opentype.Font
}

// loadFonts parses the fonts once, on the first chart drawn: parsing at
// package initialisation would cost every mlbuild process start.
var loadFonts = sync.OnceValues(func() (fontSet, error) {
	regular, err := opentype.Parse(goregular.TTF)
	if err != nil {
		return fontSet{}, fmt.Errorf("plot: parse Go Regular font: %w", err)
	}
	bold, err := opentype.Parse(gobold.TTF)
	if err != nil {
		return fontSet{}, fmt.Errorf("plot: parse Go Bold font: %w", err)
	}
	return fontSet{regular: regular, bold: bold}, nil
})

// Font sizes, in points.
const (
	titleSize  = 12
	labelSize  = 11 // axis labels
	tickSize   = 10 // tick labels
	legendSize = 10
	valueSize  = 8 // the value above a bar
)

// pxPerPt converts points (1/72 inch) to pixels.
const pxPerPt = DPI / 72.0

// textStyle is a face and a colour to write with.
type textStyle struct {
	face font.Face
	col  color.RGBA
}

// faces are the text styles of one rendering.
type faces struct {
	title, label, xTick, yTick, legend, value textStyle
}

// ink is the colour of text, axes and ticks.
var ink = color.RGBA{R: 0x22, G: 0x22, B: 0x22, A: 0xff}

// newFaces returns the text styles of a chart whose x tick labels are
// xTickSize points.
func newFaces(xTickSize float64) (*faces, error) {
	fs, err := loadFonts()
	if err != nil {
		return nil, err
	}
	var f faces
	for _, s := range []struct {
		dst  *textStyle
		font *opentype.Font
		size float64
	}{
		{&f.title, fs.bold, titleSize},
		{&f.label, fs.regular, labelSize},
		{&f.xTick, fs.regular, xTickSize},
		{&f.yTick, fs.regular, tickSize},
		{&f.legend, fs.regular, legendSize},
		{&f.value, fs.regular, valueSize},
	} {
		face, err := opentype.NewFace(s.font, &opentype.FaceOptions{Size: s.size, DPI: DPI, Hinting: font.HintingNone})
		if err != nil {
			return nil, fmt.Errorf("plot: font face of %g pt: %w", s.size, err)
		}
		*s.dst = textStyle{face: face, col: ink}
	}
	return &f, nil
}

// metrics are a face's vertical measures in whole pixels.
type metrics struct {
	ascent, descent, capHeight int
}

// height is the height of a line of text.
func (m metrics) height() int { return m.ascent + m.descent }

// metrics returns the vertical measures of st's face.
func (st textStyle) metrics() metrics {
	m := st.face.Metrics()
	mt := metrics{ascent: m.Ascent.Ceil(), descent: m.Descent.Ceil(), capHeight: m.CapHeight.Round()}
	if mt.capHeight <= 0 || mt.capHeight > mt.ascent {
		mt.capHeight = mt.ascent * 7 / 10
	}
	return mt
}

// width returns the advance width of s in whole pixels.
func (st textStyle) width(s string) int {
	return font.MeasureString(st.face, s).Ceil()
}

// Horizontal anchors of a text: the given x is its left edge, centre or
// right edge.
type hAlign int

const (
	alignLeft hAlign = iota
	alignCenter
	alignRight
)

// Vertical anchors of a text: the given y is the top of its capitals, the
// middle of its capitals, or its baseline.
type vAlign int

const (
	alignCapTop vAlign = iota
	alignMiddle
	alignBaseline
)

// drawText writes s on c with st, anchored at (x, y) as ha and va say.
func (c *canvas) drawText(st textStyle, s string, x, y int, ha hAlign, va vAlign) {
	if s == "" {
		return
	}
	switch ha {
	case alignCenter:
		x -= st.width(s) / 2
	case alignRight:
		x -= st.width(s)
	}
	m := st.metrics()
	switch va {
	case alignCapTop:
		y += m.capHeight
	case alignMiddle:
		y += m.capHeight / 2
	}
	d := font.Drawer{Dst: c.img, Src: image.NewUniform(st.col), Face: st.face, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

// drawTextUp writes s on c with st turned a quarter turn anticlockwise
// (reading upwards), its line box centred at (cx, cy).
func (c *canvas) drawTextUp(st textStyle, s string, cx, cy int) {
	w, m := st.width(s), st.metrics()
	if s == "" || w <= 0 {
		return
	}
	flat := image.NewAlpha(image.Rect(0, 0, w, m.height()))
	d := font.Drawer{Dst: flat, Src: image.Opaque, Face: st.face, Dot: fixed.P(0, m.ascent)}
	d.DrawString(s)
	up := image.NewAlpha(image.Rect(0, 0, m.height(), w))
	for y := range m.height() {
		for x := range w {
			up.SetAlpha(y, w-1-x, flat.AlphaAt(x, y))
		}
	}
	at := image.Pt(cx-m.height()/2, cy-w/2)
	draw.DrawMask(c.img, up.Bounds().Add(at), image.NewUniform(st.col), image.Point{}, up, image.Point{}, draw.Over)
}
