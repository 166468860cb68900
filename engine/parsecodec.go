package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// The parse cache's AST encoding (see parsecache.go for the entries that
// hold it). A body is encoded depth first, in a fixed order of fields, so
// that decoding rebuilds exactly the nodes hclsyntax's parser made:
//
//   - an integer is a uvarint, a position's fields zigzag varints (each the
//     difference from the position encoded before it, so mostly one byte);
//   - a string is an index into a table of the strings seen so far, or 0
//     and then the new string (its length as a uvarint and its bytes);
//   - a range is its file name, as a string, then its start and end;
//   - a slice or map is 0 when nil, else its length plus one, then its
//     elements (a body's attributes sorted by name);
//   - an expression is a tag byte (exprNil, exprLiteral, ...) then its
//     fields; an operation is its index in ops;
//   - a cty value is a tag byte, then a string's text or a number's
//     decimal text (which cty.ParseNumberVal reads back to the parser's
//     very value);
//   - a splat's anonymous symbol (*hclsyntax.AnonSymbolExpr) is defined
//     where it is first met (exprAnon and its range) and referred to by
//     index afterwards (exprAnonRef), so that a splat's Each refers to the
//     same symbol as its Item, as the parser's does.
//
// Only what the parser of a file without errors makes is encodable: any
// other node or value (an ExprSyntaxError, an unknown value, a node type a
// later hcl adds) makes encoding fail, and the file is not cached.

// Expression tags.
const (
	exprNil byte = iota
	exprLiteral
	exprScopeTraversal
	exprRelativeTraversal
	exprFunctionCall
	exprConditional
	exprBinaryOp
	exprUnaryOp
	exprObjectCons
	exprObjectConsKey
	exprTupleCons
	exprTemplate
	exprTemplateJoin
	exprTemplateWrap
	exprFor
	exprIndex
	exprSplat
	exprAnon
	exprAnonRef
	exprParentheses
)

// Traversal step tags.
const (
	stepRoot byte = iota
	stepAttr
	stepIndex
	stepSplat
)

// cty value tags.
const (
	valString byte = iota
	valNumber
	valTrue
	valFalse
	valNull    // cty.NullVal(cty.DynamicPseudoType): the literal null
	valDynamic // cty.DynamicVal
)

// ops are hclsyntax's operations, which expressions point to: an
// operation is encoded as its index.
var ops = []*hclsyntax.Operation{
	hclsyntax.OpLogicalOr, hclsyntax.OpLogicalAnd, hclsyntax.OpLogicalNot,
	hclsyntax.OpEqual, hclsyntax.OpNotEqual,
	hclsyntax.OpGreaterThan, hclsyntax.OpGreaterThanOrEqual, hclsyntax.OpLessThan, hclsyntax.OpLessThanOrEqual,
	hclsyntax.OpAdd, hclsyntax.OpSubtract, hclsyntax.OpMultiply, hclsyntax.OpDivide, hclsyntax.OpModulo,
	hclsyntax.OpNegate,
}

// maxASTDepth bounds the nesting the codec follows: deeper files are not
// cached, and deeper entries are corrupt (decoding recurses).
const maxASTDepth = 2000

// errUnencodable says that a file's AST holds something the codec does
// not encode.
var errUnencodable = errors.New("not encodable in the parse cache")

// errBadAST says that an encoded AST is corrupt.
var errBadAST = errors.New("corrupt parse cache entry")

// astEncoder appends an AST's encoding to b.
type astEncoder struct {
	b []byte
	// src is the parsed source, where number literals' text is found.
	src  []byte
	prev hcl.Pos
	strs map[string]uint64
	// file is the file name of the range encoded last, fileIndex its
	// index in strs.
	file      string
	fileIndex uint64
	anon      map[*hclsyntax.AnonSymbolExpr]uint64
	nanon     uint64
	depth     int
	failure   error
}

// encodeBody encodes a body that hclsyntax parsed from src.
func encodeBody(body *hclsyntax.Body, src []byte) (b []byte, err error) {
	e := &astEncoder{b: make([]byte, 0, 2*len(src)+64), src: src, strs: map[string]uint64{},
		anon: map[*hclsyntax.AnonSymbolExpr]uint64{}}
	defer func() {
		// A node the parser does not make (a typed nil pointer, say) may
		// panic the encoder: that file is not cached.
		if r := recover(); r != nil {
			b, err = nil, fmt.Errorf("%w: %v", errUnencodable, r)
		}
	}()
	e.body(body)
	if e.failure != nil {
		return nil, e.failure
	}
	return e.b, nil
}

func (e *astEncoder) fail(format string, args ...any) {
	if e.failure == nil {
		e.failure = fmt.Errorf("%w: %s", errUnencodable, fmt.Sprintf(format, args...))
	}
}

func (e *astEncoder) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *astEncoder) int(v int64)   { e.b = binary.AppendVarint(e.b, v) }

func (e *astEncoder) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

func (e *astEncoder) str(s string) {
	if i, ok := e.strs[s]; ok {
		e.uint(i)
		return
	}
	e.strs[s] = uint64(len(e.strs) + 1)
	e.uint(0)
	e.uint(uint64(len(s)))
	e.b = append(e.b, s...)
}

// count encodes a slice's or map's length: 0 for nil.
func (e *astEncoder) count(n int, isNil bool) {
	if isNil {
		e.uint(0)
	} else {
		e.uint(uint64(n) + 1)
	}
}

func (e *astEncoder) pos(p hcl.Pos) {
	e.int(int64(p.Line - e.prev.Line))
	e.int(int64(p.Column - e.prev.Column))
	e.int(int64(p.Byte - e.prev.Byte))
	e.prev = p
}

func (e *astEncoder) rng(r hcl.Range) {
	if r.Filename == e.file && e.fileIndex > 0 {
		// Every range of a file but a few names it.
		e.uint(e.fileIndex)
	} else {
		e.str(r.Filename)
		e.file, e.fileIndex = r.Filename, e.strs[r.Filename]
	}
	e.pos(r.Start)
	e.pos(r.End)
}

func (e *astEncoder) body(b *hclsyntax.Body) {
	if b == nil {
		e.fail("a nil body")
		return
	}
	if e.depth++; e.depth > maxASTDepth {
		e.fail("nested more than %d deep", maxASTDepth)
		return
	}
	defer func() { e.depth-- }()
	names := make([]string, 0, len(b.Attributes))
	for name := range b.Attributes {
		names = append(names, name)
	}
	slices.Sort(names)
	e.count(len(names), b.Attributes == nil)
	for _, name := range names {
		a := b.Attributes[name]
		if a == nil || a.Name != name {
			e.fail("attribute %q", name)
			return
		}
		e.str(name)
		e.need(a.Expr)
		e.rng(a.SrcRange)
		e.rng(a.NameRange)
		e.rng(a.EqualsRange)
	}
	e.count(len(b.Blocks), b.Blocks == nil)
	for _, blk := range b.Blocks {
		if blk == nil || len(blk.Labels) != len(blk.LabelRanges) {
			e.fail("a block")
			return
		}
		e.str(blk.Type)
		e.count(len(blk.Labels), blk.Labels == nil)
		for _, l := range blk.Labels {
			e.str(l)
		}
		e.count(len(blk.LabelRanges), blk.LabelRanges == nil)
		for _, r := range blk.LabelRanges {
			e.rng(r)
		}
		e.rng(blk.TypeRange)
		e.rng(blk.OpenBraceRange)
		e.rng(blk.CloseBraceRange)
		e.body(blk.Body)
	}
	e.rng(b.SrcRange)
	e.rng(b.EndRange)
}

func (e *astEncoder) exprs(xs []hclsyntax.Expression) {
	e.count(len(xs), xs == nil)
	for _, x := range xs {
		e.need(x)
	}
}

// need encodes an expression that must not be nil.
func (e *astEncoder) need(x hclsyntax.Expression) {
	if x == nil {
		e.fail("a missing expression")
		return
	}
	e.expr(x)
}

func (e *astEncoder) op(o *hclsyntax.Operation) {
	i := slices.Index(ops, o)
	if i < 0 {
		e.fail("an unknown operation")
		return
	}
	e.uint(uint64(i))
}

// expr encodes an expression, nil included.
func (e *astEncoder) expr(x hclsyntax.Expression) {
	if e.failure != nil {
		return
	}
	if e.depth++; e.depth > maxASTDepth {
		e.fail("nested more than %d deep", maxASTDepth)
		return
	}
	defer func() { e.depth-- }()
	if x == nil {
		e.b = append(e.b, exprNil)
		return
	}
	switch x := x.(type) {
	case *hclsyntax.LiteralValueExpr:
		e.b = append(e.b, exprLiteral)
		e.value(x.Val, x.SrcRange, false)
		e.rng(x.SrcRange)
	case *hclsyntax.ScopeTraversalExpr:
		e.b = append(e.b, exprScopeTraversal)
		e.traversal(x.Traversal)
		e.rng(x.SrcRange)
	case *hclsyntax.RelativeTraversalExpr:
		e.b = append(e.b, exprRelativeTraversal)
		e.need(x.Source)
		e.traversal(x.Traversal)
		e.rng(x.SrcRange)
	case *hclsyntax.FunctionCallExpr:
		e.b = append(e.b, exprFunctionCall)
		e.str(x.Name)
		e.exprs(x.Args)
		e.bool(x.ExpandFinal)
		e.rng(x.NameRange)
		e.rng(x.OpenParenRange)
		e.rng(x.CloseParenRange)
	case *hclsyntax.ConditionalExpr:
		e.b = append(e.b, exprConditional)
		e.need(x.Condition)
		e.need(x.TrueResult)
		e.need(x.FalseResult)
		e.rng(x.SrcRange)
	case *hclsyntax.BinaryOpExpr:
		e.b = append(e.b, exprBinaryOp)
		e.need(x.LHS)
		e.op(x.Op)
		e.need(x.RHS)
		e.rng(x.SrcRange)
	case *hclsyntax.UnaryOpExpr:
		e.b = append(e.b, exprUnaryOp)
		e.op(x.Op)
		e.need(x.Val)
		e.rng(x.SrcRange)
		e.rng(x.SymbolRange)
	case *hclsyntax.ObjectConsExpr:
		e.b = append(e.b, exprObjectCons)
		e.count(len(x.Items), x.Items == nil)
		for _, it := range x.Items {
			e.need(it.KeyExpr)
			e.need(it.ValueExpr)
		}
		e.rng(x.SrcRange)
		e.rng(x.OpenRange)
	case *hclsyntax.ObjectConsKeyExpr:
		e.b = append(e.b, exprObjectConsKey)
		e.need(x.Wrapped)
		e.bool(x.ForceNonLiteral)
	case *hclsyntax.TupleConsExpr:
		e.b = append(e.b, exprTupleCons)
		e.exprs(x.Exprs)
		e.rng(x.SrcRange)
		e.rng(x.OpenRange)
	case *hclsyntax.TemplateExpr:
		e.b = append(e.b, exprTemplate)
		e.exprs(x.Parts)
		e.rng(x.SrcRange)
	case *hclsyntax.TemplateJoinExpr:
		e.b = append(e.b, exprTemplateJoin)
		e.need(x.Tuple)
	case *hclsyntax.TemplateWrapExpr:
		e.b = append(e.b, exprTemplateWrap)
		e.need(x.Wrapped)
		e.rng(x.SrcRange)
	case *hclsyntax.ForExpr:
		e.b = append(e.b, exprFor)
		e.str(x.KeyVar)
		e.str(x.ValVar)
		e.need(x.CollExpr)
		e.expr(x.KeyExpr)
		e.need(x.ValExpr)
		e.expr(x.CondExpr)
		e.bool(x.Group)
		e.rng(x.SrcRange)
		e.rng(x.OpenRange)
		e.rng(x.CloseRange)
	case *hclsyntax.IndexExpr:
		e.b = append(e.b, exprIndex)
		e.need(x.Collection)
		e.need(x.Key)
		e.rng(x.SrcRange)
		e.rng(x.OpenRange)
		e.rng(x.BracketRange)
	case *hclsyntax.SplatExpr:
		if x.Item == nil {
			e.fail("a splat without its symbol")
			return
		}
		e.b = append(e.b, exprSplat)
		e.need(x.Source)
		e.expr(x.Item)
		e.need(x.Each)
		e.rng(x.SrcRange)
		e.rng(x.MarkerRange)
	case *hclsyntax.AnonSymbolExpr:
		if i, ok := e.anon[x]; ok {
			e.b = append(e.b, exprAnonRef)
			e.uint(i)
			return
		}
		e.anon[x] = e.nanon
		e.nanon++
		e.b = append(e.b, exprAnon)
		e.rng(x.SrcRange)
	case *hclsyntax.ParenthesesExpr:
		e.b = append(e.b, exprParentheses)
		e.need(x.Expression)
		e.rng(x.SrcRange)
	default:
		e.fail("a %T", x)
	}
}

// text is the source a range covers ("" when it is not within src).
func (e *astEncoder) text(r hcl.Range) string {
	if r.Start.Byte < 0 || r.Start.Byte > r.End.Byte || r.End.Byte > len(e.src) {
		return ""
	}
	return string(e.src[r.Start.Byte:r.End.Byte])
}

func (e *astEncoder) traversal(t hcl.Traversal) {
	e.count(len(t), t == nil)
	for _, step := range t {
		switch s := step.(type) {
		case hcl.TraverseRoot:
			e.b = append(e.b, stepRoot)
			e.str(s.Name)
			e.rng(s.SrcRange)
		case hcl.TraverseAttr:
			e.b = append(e.b, stepAttr)
			e.str(s.Name)
			e.rng(s.SrcRange)
		case hcl.TraverseIndex:
			e.b = append(e.b, stepIndex)
			e.value(s.Key, s.SrcRange, true)
			e.rng(s.SrcRange)
		case hcl.TraverseSplat:
			e.b = append(e.b, stepSplat)
			e.traversal(s.Each)
			e.rng(s.SrcRange)
		default:
			e.fail("a traversal step %T", step)
			return
		}
	}
}

// value encodes a literal's value, parsed from the source r covers (with
// index, a traversal step's: brackets, or the dot of the legacy a.0
// form, around the key). A number is encoded as its text in the source
// when that reads back to the very value (same precision, accuracy and
// mantissa), else as its shortest decimal if that does.
func (e *astEncoder) value(v cty.Value, r hcl.Range, index bool) {
	switch {
	case v.IsMarked():
		e.fail("a marked value")
	case v.RawEquals(cty.DynamicVal):
		e.b = append(e.b, valDynamic)
	case !v.IsKnown():
		e.fail("an unknown value")
	case v.IsNull():
		if v.Type() != cty.DynamicPseudoType {
			e.fail("a null %s", v.Type().FriendlyName())
			return
		}
		e.b = append(e.b, valNull)
	case v.Type() == cty.String:
		e.b = append(e.b, valString)
		e.str(v.AsString())
	case v.Type() == cty.Bool:
		if v.True() {
			e.b = append(e.b, valTrue)
		} else {
			e.b = append(e.b, valFalse)
		}
	case v.Type() == cty.Number:
		text := e.text(r)
		if index {
			text = strings.TrimSpace(strings.Trim(text, ".[]"))
		}
		for _, t := range []string{text, v.AsBigFloat().Text('g', -1)} {
			if t == "" {
				continue
			}
			if n, err := cty.ParseNumberVal(t); err == nil && reflect.DeepEqual(n, v) {
				e.b = append(e.b, valNumber)
				e.str(t)
				return
			}
		}
		e.fail("the number %s", v.AsBigFloat().Text('g', -1))
	default:
		e.fail("a value of type %s", v.Type().FriendlyName())
	}
}

// astDecoder reads an AST that astEncoder wrote. The strings it makes
// share s; any inconsistency sets bad (and decoding stops early with
// whatever it made, which the caller discards).
type astDecoder struct {
	varintReader
	prev  hcl.Pos
	strs  []string
	anon  []*hclsyntax.AnonSymbolExpr
	depth int
}

// decodeBody decodes a body that encodeBody encoded; it never panics,
// whatever b holds.
func decodeBody(b string) (*hclsyntax.Body, error) {
	d := &astDecoder{varintReader: varintReader{s: b}}
	body := d.body()
	if d.bad || d.pos != len(d.s) {
		return nil, errBadAST
	}
	return body, nil
}

func (d *astDecoder) int() int { return int(d.sint()) }

func (d *astDecoder) byte() byte {
	if d.pos >= len(d.s) {
		d.bad = true
		return 0
	}
	c := d.s[d.pos]
	d.pos++
	return c
}

func (d *astDecoder) bool() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.bad = true
	return false
}

func (d *astDecoder) str() string {
	i := d.uint()
	if i > 0 {
		if i > uint64(len(d.strs)) {
			d.bad = true
			return ""
		}
		return d.strs[i-1]
	}
	n := d.uint()
	if d.bad || n > uint64(len(d.s)-d.pos) {
		d.bad = true
		return ""
	}
	s := d.s[d.pos : d.pos+int(n)]
	d.pos += int(n)
	d.strs = append(d.strs, s)
	return s
}

// count reads a slice's or map's length; nil is false for a nil one. The
// length is bounded by the bytes left, since every element takes at least
// one.
func (d *astDecoder) count() (n int, isNil bool) {
	c := d.uint()
	if c == 0 || d.bad {
		return 0, true
	}
	if c-1 > uint64(len(d.s)-d.pos) {
		d.bad = true
		return 0, true
	}
	return int(c - 1), false
}

func (d *astDecoder) position() hcl.Pos {
	d.prev.Line += d.int()
	d.prev.Column += d.int()
	d.prev.Byte += d.int()
	return d.prev
}

func (d *astDecoder) rng() hcl.Range {
	name := d.str()
	start := d.position()
	return hcl.Range{Filename: name, Start: start, End: d.position()}
}

func (d *astDecoder) body() *hclsyntax.Body {
	if d.depth++; d.depth > maxASTDepth {
		d.bad = true
		return nil
	}
	defer func() { d.depth-- }()
	b := &hclsyntax.Body{}
	if n, isNil := d.count(); !isNil {
		b.Attributes = make(hclsyntax.Attributes, n)
		for range n {
			a := &hclsyntax.Attribute{Name: d.str()}
			a.Expr = d.expr()
			a.SrcRange, a.NameRange, a.EqualsRange = d.rng(), d.rng(), d.rng()
			if _, dup := b.Attributes[a.Name]; dup || d.bad || a.Expr == nil {
				d.bad = true
				return nil
			}
			b.Attributes[a.Name] = a
		}
	}
	if n, isNil := d.count(); !isNil {
		b.Blocks = make(hclsyntax.Blocks, n)
		for i := range b.Blocks {
			blk := &hclsyntax.Block{Type: d.str()}
			if n, isNil := d.count(); !isNil {
				blk.Labels = make([]string, n)
				for j := range blk.Labels {
					blk.Labels[j] = d.str()
				}
			}
			if n, isNil := d.count(); !isNil {
				blk.LabelRanges = make([]hcl.Range, n)
				for j := range blk.LabelRanges {
					blk.LabelRanges[j] = d.rng()
				}
			}
			blk.TypeRange, blk.OpenBraceRange, blk.CloseBraceRange = d.rng(), d.rng(), d.rng()
			blk.Body = d.body()
			if d.bad || len(blk.Labels) != len(blk.LabelRanges) {
				d.bad = true
				return nil
			}
			b.Blocks[i] = blk
		}
	}
	b.SrcRange, b.EndRange = d.rng(), d.rng()
	return b
}

func (d *astDecoder) exprs() []hclsyntax.Expression {
	n, isNil := d.count()
	if isNil {
		return nil
	}
	xs := make([]hclsyntax.Expression, n)
	for i := range xs {
		if xs[i] = d.need(); d.bad {
			return nil
		}
	}
	return xs
}

// need decodes an expression that must not be nil.
func (d *astDecoder) need() hclsyntax.Expression {
	x := d.expr()
	if x == nil {
		d.bad = true
	}
	return x
}

func (d *astDecoder) op() *hclsyntax.Operation {
	i := d.uint()
	if i >= uint64(len(ops)) {
		d.bad = true
		return nil
	}
	return ops[i]
}

// expr decodes an expression; nil for exprNil, and after an error.
func (d *astDecoder) expr() hclsyntax.Expression {
	if d.bad {
		return nil
	}
	if d.depth++; d.depth > maxASTDepth {
		d.bad = true
		return nil
	}
	defer func() { d.depth-- }()
	var x hclsyntax.Expression
	switch d.byte() {
	case exprNil:
		return nil
	case exprLiteral:
		e := &hclsyntax.LiteralValueExpr{Val: d.value()}
		e.SrcRange = d.rng()
		x = e
	case exprScopeTraversal:
		e := &hclsyntax.ScopeTraversalExpr{Traversal: d.traversal()}
		e.SrcRange = d.rng()
		if len(e.Traversal) == 0 || e.Traversal.IsRelative() {
			d.bad = true
		}
		x = e
	case exprRelativeTraversal:
		e := &hclsyntax.RelativeTraversalExpr{Source: d.need()}
		e.Traversal = d.traversal()
		e.SrcRange = d.rng()
		if len(e.Traversal) == 0 || !e.Traversal.IsRelative() {
			d.bad = true
		}
		x = e
	case exprFunctionCall:
		e := &hclsyntax.FunctionCallExpr{Name: d.str()}
		e.Args = d.exprs()
		e.ExpandFinal = d.bool()
		e.NameRange, e.OpenParenRange, e.CloseParenRange = d.rng(), d.rng(), d.rng()
		if e.ExpandFinal && len(e.Args) == 0 {
			d.bad = true
		}
		x = e
	case exprConditional:
		e := &hclsyntax.ConditionalExpr{Condition: d.need()}
		e.TrueResult = d.need()
		e.FalseResult = d.need()
		e.SrcRange = d.rng()
		x = e
	case exprBinaryOp:
		e := &hclsyntax.BinaryOpExpr{LHS: d.need()}
		e.Op = d.op()
		e.RHS = d.need()
		e.SrcRange = d.rng()
		x = e
	case exprUnaryOp:
		e := &hclsyntax.UnaryOpExpr{Op: d.op()}
		e.Val = d.need()
		e.SrcRange, e.SymbolRange = d.rng(), d.rng()
		x = e
	case exprObjectCons:
		e := &hclsyntax.ObjectConsExpr{}
		if n, isNil := d.count(); !isNil {
			e.Items = make([]hclsyntax.ObjectConsItem, n)
			for i := range e.Items {
				e.Items[i].KeyExpr = d.need()
				if e.Items[i].ValueExpr = d.need(); d.bad {
					return nil
				}
			}
		}
		e.SrcRange, e.OpenRange = d.rng(), d.rng()
		x = e
	case exprObjectConsKey:
		e := &hclsyntax.ObjectConsKeyExpr{Wrapped: d.need()}
		e.ForceNonLiteral = d.bool()
		x = e
	case exprTupleCons:
		e := &hclsyntax.TupleConsExpr{Exprs: d.exprs()}
		e.SrcRange, e.OpenRange = d.rng(), d.rng()
		x = e
	case exprTemplate:
		e := &hclsyntax.TemplateExpr{Parts: d.exprs()}
		e.SrcRange = d.rng()
		x = e
	case exprTemplateJoin:
		x = &hclsyntax.TemplateJoinExpr{Tuple: d.need()}
	case exprTemplateWrap:
		e := &hclsyntax.TemplateWrapExpr{Wrapped: d.need()}
		e.SrcRange = d.rng()
		x = e
	case exprFor:
		e := &hclsyntax.ForExpr{KeyVar: d.str()}
		e.ValVar = d.str()
		e.CollExpr = d.need()
		e.KeyExpr = d.expr()
		e.ValExpr = d.need()
		e.CondExpr = d.expr()
		e.Group = d.bool()
		e.SrcRange, e.OpenRange, e.CloseRange = d.rng(), d.rng(), d.rng()
		x = e
	case exprIndex:
		e := &hclsyntax.IndexExpr{Collection: d.need()}
		e.Key = d.need()
		e.SrcRange, e.OpenRange, e.BracketRange = d.rng(), d.rng(), d.rng()
		x = e
	case exprSplat:
		e := &hclsyntax.SplatExpr{Source: d.need()}
		item, _ := d.expr().(*hclsyntax.AnonSymbolExpr)
		if item == nil {
			d.bad = true
			return nil
		}
		e.Item = item
		e.Each = d.need()
		e.SrcRange, e.MarkerRange = d.rng(), d.rng()
		x = e
	case exprAnon:
		e := &hclsyntax.AnonSymbolExpr{SrcRange: d.rng()}
		d.anon = append(d.anon, e)
		x = e
	case exprAnonRef:
		i := d.uint()
		if i >= uint64(len(d.anon)) {
			d.bad = true
			return nil
		}
		x = d.anon[i]
	case exprParentheses:
		e := &hclsyntax.ParenthesesExpr{Expression: d.need()}
		e.SrcRange = d.rng()
		x = e
	default:
		d.bad = true
		return nil
	}
	if d.bad {
		return nil
	}
	return x
}

func (d *astDecoder) traversal() hcl.Traversal {
	n, isNil := d.count()
	if isNil {
		return nil
	}
	t := make(hcl.Traversal, n)
	for i := range t {
		switch d.byte() {
		case stepRoot:
			if i > 0 {
				d.bad = true
			}
			s := hcl.TraverseRoot{Name: d.str()}
			s.SrcRange = d.rng()
			t[i] = s
		case stepAttr:
			s := hcl.TraverseAttr{Name: d.str()}
			s.SrcRange = d.rng()
			t[i] = s
		case stepIndex:
			s := hcl.TraverseIndex{Key: d.value()}
			s.SrcRange = d.rng()
			t[i] = s
		case stepSplat:
			s := hcl.TraverseSplat{Each: d.traversal()}
			s.SrcRange = d.rng()
			t[i] = s
		default:
			d.bad = true
		}
		if d.bad {
			return nil
		}
	}
	return t
}

func (d *astDecoder) value() cty.Value {
	switch d.byte() {
	case valString:
		return cty.StringVal(d.str())
	case valNumber:
		s := d.str()
		if d.bad {
			return cty.DynamicVal
		}
		v, err := cty.ParseNumberVal(s)
		if err != nil {
			d.bad = true
			return cty.DynamicVal
		}
		return v
	case valTrue:
		return cty.True
	case valFalse:
		return cty.False
	case valNull:
		return cty.NullVal(cty.DynamicPseudoType)
	case valDynamic:
		return cty.DynamicVal
	}
	d.bad = true
	return cty.DynamicVal
}
