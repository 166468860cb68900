package ptx

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/mlbuild/mlbuild/gpu/cuda"
)

// Limits that keep hostile or broken input from exhausting memory.
const (
	maxSlots    = 1 << 16 // register slots per kernel
	maxVarBytes = 1 << 30 // one variable
	maxDepth    = 64      // nested { } scopes
	// deviceArch is the compute capability the interpreter presents.
	deviceArch = 80
)

// Module is a parsed PTX module: its kernels decoded and ready to run.
// Parse makes one without a device; Context.LoadModule parses and also
// places the module's .global and .const variables in device memory.
type Module struct {
	// Version is the .version directive ("7.0"), Target the .target
	// ("sm_80").
	Version, Target string

	kernels []*kernel
	byName  map[string]*kernel
	globals []*symbol // .global and .const variables, in order
}

// Kernel describes a kernel (a .entry) of a module.
type Kernel struct {
	Name string
	// Line is where the .entry directive is.
	Line   int
	Params []Param
	// SharedBytes is the static shared memory per block; dynamic shared
	// memory (an .extern .shared array) starts at DynamicSharedOffset.
	SharedBytes, DynamicSharedOffset int
	// LocalBytes is the .local memory of each thread.
	LocalBytes int
	// Slots is the size of each thread's register file: declared
	// registers, immediates and special registers.
	Slots int
	// Instructions counts the decoded instructions.
	Instructions int
}

// Param is one .param of a kernel, laid out as cuLaunchKernel expects.
type Param struct {
	Name string
	// Type is the PTX type (".u64", ".f32"); an array (.b8 name[16])
	// has Size larger than the type's.
	Type                string
	Size, Align, Offset int
	kind                kind
}

// Kernels lists the module's kernels in source order.
func (m *Module) Kernels() []Kernel {
	out := make([]Kernel, len(m.kernels))
	for i, k := range m.kernels {
		out[i] = k.info()
	}
	return out
}

// Kernel describes the kernel name.
func (m *Module) Kernel(name string) (Kernel, bool) {
	k, ok := m.byName[name]
	if !ok {
		return Kernel{}, false
	}
	return k.info(), true
}

type symKind uint8

const (
	symShared symKind = iota + 1
	symGlobal
	symConst
	symLocal
	symParam
	symFunc
)

// symbol is a variable (or function) name.
type symbol struct {
	name   string
	kind   symKind
	align  int
	size   int
	extern bool // .extern .shared name[]: dynamic shared memory
	init   []byte
	index  int // .global/.const: index in Module.globals
	off    int // .param: offset in the parameter buffer
	line   int
	module bool
}

// parseFail carries a parse error through panic to parse's recover; any
// other panic is a bug and is not caught.
type parseFail struct{ e *Error }

type parser struct {
	src       []byte
	toks      []token
	pos       int
	mod       *Module
	syms      map[string]*symbol
	modShared []*symbol
}

// Parse parses PTX text and decodes its kernels. Errors are *Error values
// that name the line and wrap cuda.ErrInvalidPTX (malformed PTX) or
// cuda.ErrUnsupportedPTX (valid PTX the interpreter does not implement).
func Parse(src []byte) (*Module, error) {
	m, err := parse(src)
	if err != nil {
		return nil, err
	}
	return m, nil
}

func parse(src []byte) (m *Module, err *Error) {
	toks, lerr := lex(src)
	if lerr != nil {
		return nil, lerr
	}
	p := &parser{src: src, toks: toks, mod: &Module{byName: map[string]*kernel{}}, syms: map[string]*symbol{}}
	defer func() {
		if r := recover(); r != nil {
			pf, ok := r.(parseFail)
			if !ok {
				panic(r)
			}
			m, err = nil, pf.e
		}
	}()
	p.module()
	return p.mod, nil
}

func (p *parser) failAt(line int, code *cuda.Error, format string, args ...any) {
	panic(parseFail{&Error{Line: line, Msg: fmt.Sprintf(format, args...), Err: code}})
}

func (p *parser) fail(t token, format string, args ...any) {
	p.failAt(t.line, cuda.ErrInvalidPTX, format, args...)
}

func (p *parser) peek() token { return p.toks[p.pos] }

func (p *parser) peekAt(n int) token {
	if p.pos+n < len(p.toks) {
		return p.toks[p.pos+n]
	}
	return p.toks[len(p.toks)-1]
}

func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tEOF {
		p.pos++
	}
	return t
}

func (p *parser) is(text string) bool {
	t := p.peek()
	return (t.kind == tPunct || t.kind == tIdent) && t.text == text
}

func (p *parser) accept(text string) bool {
	if p.is(text) {
		p.next()
		return true
	}
	return false
}

func describe(t token) string {
	if t.kind == tEOF {
		return "end of input"
	}
	return strconv.Quote(t.text)
}

func (p *parser) expect(text string) token {
	t := p.peek()
	if !p.is(text) {
		p.fail(t, "expected %q, found %s", text, describe(t))
	}
	return p.next()
}

func (p *parser) ident() token {
	t := p.next()
	if t.kind != tIdent {
		p.fail(t, "expected a name, found %s", describe(t))
	}
	return t
}

// number reads a non-negative integer that fits an int.
// alignment reads the number after the .align token a: a power of two up
// to 4096.
func (p *parser) alignment(a token) int {
	n := p.number()
	if n <= 0 || n&(n-1) != 0 || n > 1<<12 {
		p.fail(a, "bad alignment %d", n)
	}
	return n
}

func (p *parser) number() int {
	t := p.next()
	if t.kind != tNum {
		p.fail(t, "expected a number, found %s", describe(t))
	}
	l, ok := parseLit(t.text, false)
	if !ok || l.kind != litInt || l.u > math.MaxInt32 {
		p.fail(t, "bad number %q", t.text)
	}
	return int(l.u)
}

// skipTo skips past the next text (";") at bracket depth 0.
func (p *parser) skipTo(text string) {
	depth := 0
	for {
		t := p.next()
		switch {
		case t.kind == tEOF:
			p.fail(t, "expected %q before end of input", text)
		case t.kind == tPunct && (t.text == "(" || t.text == "{" || t.text == "["):
			depth++
		case t.kind == tPunct && (t.text == ")" || t.text == "}" || t.text == "]"):
			depth--
		}
		if depth <= 0 && t.text == text && t.kind != tStr {
			return
		}
	}
}

// skipLine skips the tokens left on line.
func (p *parser) skipLine(line int) {
	for p.peek().kind != tEOF && p.peek().line == line {
		p.next()
	}
}

// skipBlock skips a { ... } block (the next token must be "{").
func (p *parser) skipBlock() {
	p.expect("{")
	depth := 1
	for depth > 0 {
		t := p.next()
		switch {
		case t.kind == tEOF:
			p.fail(t, "unterminated { block")
		case t.kind == tPunct && t.text == "{":
			depth++
		case t.kind == tPunct && t.text == "}":
			depth--
		}
	}
}

func (p *parser) module() {
	extern := false
	sawVersion := false
	for {
		t := p.peek()
		if t.kind == tEOF {
			break
		}
		if t.kind == tPunct && t.text == ";" {
			p.next()
			continue
		}
		if t.kind != tIdent || t.text[0] != '.' {
			p.fail(t, "unexpected %s at module scope", describe(t))
		}
		switch t.text {
		case ".version":
			p.next()
			v := p.next()
			maj, _, ok := strings.Cut(v.text, ".")
			n, err := strconv.Atoi(maj)
			if v.kind != tNum || !ok || err != nil {
				p.fail(v, "bad .version %s", describe(v))
			}
			if n > 8 {
				p.failAt(v.line, cuda.ErrUnsupportedPTX, "PTX ISA version %s is newer than the interpreter supports (8.x)", v.text)
			}
			p.mod.Version = v.text
			sawVersion = true
		case ".target":
			p.next()
			for {
				v := p.ident()
				switch {
				case strings.HasPrefix(v.text, "sm_"):
					digits := strings.TrimRight(v.text[3:], "abf")
					n, err := strconv.Atoi(digits)
					if err != nil {
						p.fail(v, "bad target %q", v.text)
					}
					if n > deviceArch {
						p.fail(v, "target %s is newer than the interpreter's device (sm_%d)", v.text, deviceArch)
					}
					p.mod.Target = v.text
				case v.text == "texmode_unified" || v.text == "texmode_independent" || v.text == "debug":
				case v.text == "map_f64_to_f32":
					p.failAt(v.line, cuda.ErrUnsupportedPTX, "target option map_f64_to_f32 is not supported")
				default:
					p.fail(v, "unknown target %q", v.text)
				}
				if !p.accept(",") {
					break
				}
			}
		case ".address_size":
			p.next()
			if n := p.number(); n != 64 {
				p.failAt(t.line, cuda.ErrUnsupportedPTX, ".address_size %d: only 64-bit addressing is supported", n)
			}
		case ".file", ".loc":
			p.next()
			p.skipLine(t.line)
		case ".section":
			p.next()
			p.ident()
			p.skipBlock()
		case ".pragma", ".alias":
			p.skipTo(";")
		case ".visible", ".weak", ".common":
			p.next()
			continue
		case ".extern":
			p.next()
			extern = true
			continue
		case ".entry":
			if !sawVersion {
				p.fail(t, ".entry before the .version directive")
			}
			p.entry()
		case ".func":
			p.function()
		case ".global", ".const", ".shared":
			s := p.variable(nil, extern)
			s.module = true
			if p.syms[s.name] != nil {
				p.fail(t, "%s is declared twice", s.name)
			}
			p.syms[s.name] = s
			switch s.kind {
			case symShared:
				p.modShared = append(p.modShared, s)
			case symGlobal, symConst:
				if extern {
					p.failAt(t.line, cuda.ErrUnsupportedPTX, ".extern %s variable %s: linking is not supported", t.text, s.name)
				}
				s.index = len(p.mod.globals)
				p.mod.globals = append(p.mod.globals, s)
			}
		case ".local":
			p.failAt(t.line, cuda.ErrUnsupportedPTX, ".local variables at module scope are not supported")
		default:
			p.fail(t, "unknown directive %s at module scope", t.text)
		}
		extern = false
	}
	if !sawVersion {
		p.failAt(1, cuda.ErrInvalidPTX, "missing .version directive")
	}
}

// function skips a .func: declarations are harmless; calls are rejected
// where they appear.
func (p *parser) function() {
	p.next()
	for {
		t := p.peek()
		switch {
		case t.kind == tEOF:
			p.fail(t, "unterminated .func")
		case t.kind == tPunct && t.text == ";":
			p.next()
			return
		case t.kind == tPunct && t.text == "{":
			p.skipBlock()
			return
		case t.kind == tPunct && t.text == "(":
			p.skipTo(")")
		case t.kind == tIdent && t.text[0] != '.' && p.syms[t.text] == nil:
			p.syms[t.text] = &symbol{name: t.text, kind: symFunc, line: t.line}
			p.next()
		default:
			p.next()
		}
	}
}

// variable parses a .shared/.global/.const/.local declaration; k is the
// kernel for entry-scope declarations.
func (p *parser) variable(k *kernel, extern bool) *symbol {
	sp := p.next()
	s := &symbol{line: sp.line}
	switch sp.text {
	case ".shared":
		s.kind = symShared
	case ".global":
		s.kind = symGlobal
	case ".const":
		s.kind = symConst
	case ".local":
		s.kind = symLocal
	}
	var t kind
	vec := 1
	for {
		a := p.peek()
		if a.kind != tIdent || a.text[0] != '.' {
			break
		}
		p.next()
		switch {
		case a.text == ".align":
			s.align = p.alignment(a)
		case a.text == ".v2":
			vec = 2
		case a.text == ".v4":
			vec = 4
		case kindNames[a.text[1:]] != kNone:
			t = kindNames[a.text[1:]]
		case a.text == ".attribute":
			p.skipTo(")")
		default:
			p.failAt(a.line, cuda.ErrUnsupportedPTX, "%s variables of %s are not supported", sp.text, a.text)
		}
	}
	if t == kNone || t == kPred {
		p.fail(sp, "%s variable without a data type", sp.text)
	}
	name := p.ident()
	s.name = name.text
	elem := t.bits() / 8 * vec
	count := 1
	flexible := false
	for p.accept("[") {
		if p.accept("]") {
			flexible = true
			continue
		}
		n := p.number()
		p.expect("]")
		if n > maxVarBytes {
			p.fail(name, "%s is too large", s.name)
		}
		count *= n
		if count > maxVarBytes {
			p.fail(name, "%s is too large", s.name)
		}
	}
	if s.align == 0 {
		s.align = elem
	}
	if p.accept("=") {
		if s.kind != symGlobal && s.kind != symConst {
			p.fail(name, "%s: only .global and .const variables have initializers", s.name)
		}
		vals := p.initializer(t)
		if flexible {
			count = (len(vals) + vec - 1) / vec
			flexible = false
		}
		if len(vals) > count*vec {
			p.fail(name, "%s: %d initial values for %d elements", s.name, len(vals), count*vec)
		}
		s.init = make([]byte, 0, len(vals)*t.bits()/8)
		for _, v := range vals {
			s.init = binary.LittleEndian.AppendUint64(s.init, v)[:len(s.init)+t.bits()/8]
		}
	}
	p.expect(";")
	if flexible {
		if s.kind != symShared || !extern {
			p.fail(name, "%s has no size (only .extern .shared arrays may be unsized)", s.name)
		}
		s.extern = true
		count = 0
	} else if extern && s.kind == symShared {
		// A sized .extern .shared variable is an ordinary one.
		extern = false
	}
	s.size = elem * count
	if s.size > maxVarBytes {
		p.fail(name, "%s is too large", s.name)
	}
	return s
}

// initializer reads = { v, v, ... } (nested braces flattened) or = v as
// values of type t.
func (p *parser) initializer(t kind) []uint64 {
	var vals []uint64
	var one func()
	one = func() {
		if p.accept("{") {
			if p.accept("}") {
				return
			}
			for {
				one()
				if p.accept("}") {
					return
				}
				p.expect(",")
			}
		}
		neg := p.accept("-")
		v := p.next()
		if v.kind == tIdent {
			p.failAt(v.line, cuda.ErrUnsupportedPTX, "initializer %s: addresses in initializers are not supported", v.text)
		}
		if v.kind != tNum {
			p.fail(v, "bad initializer %s", describe(v))
		}
		l, ok := parseLit(v.text, neg)
		if !ok {
			p.fail(v, "bad number %q", v.text)
		}
		x, ok := immBits(l, t)
		if !ok {
			p.fail(v, "initializer %s does not fit %s", v.text, t)
		}
		vals = append(vals, x)
		if len(vals) > maxVarBytes {
			p.fail(v, "initializer too long")
		}
	}
	one()
	return vals
}

// entry parses a .entry and decodes its body.
func (p *parser) entry() {
	start := p.next()
	name := p.ident()
	k := &kernel{name: name.text, line: start.line}
	d := newDec(p, k)
	if p.accept("(") && !p.accept(")") {
		for {
			d.param()
			if p.accept(")") {
				break
			}
			p.expect(",")
		}
	}
	for {
		a := p.peek()
		switch a.text {
		case ".maxntid", ".reqntid":
			p.next()
			var dims [3]uint32
			for i := 0; i < 3; i++ {
				dims[i] = uint32(p.number())
				if !p.accept(",") {
					break
				}
			}
			if a.text == ".maxntid" {
				k.maxntid = dims
			} else {
				k.reqntid = dims
			}
			continue
		case ".minnctapersm", ".maxnctapersm", ".maxnreg", ".maxclusterrank":
			p.next()
			p.number()
			continue
		case ".noreturn":
			p.next()
			continue
		case ".pragma":
			p.skipTo(";")
			continue
		}
		break
	}
	if p.accept(";") {
		return // a prototype
	}
	if p.mod.byName[k.name] != nil || p.syms[k.name] != nil {
		p.fail(name, "%s is declared twice", k.name)
	}
	p.expect("{")
	d.body()
	d.finish()
	p.mod.kernels = append(p.mod.kernels, k)
	p.mod.byName[k.name] = k
}

// stmt is one instruction statement before decoding.
type stmt struct {
	line  int
	text  string
	guard *opnd
	op    string
	args  []opnd
}

type okind uint8

const (
	oIdent okind = iota + 1 // register, special register, variable, label
	oImm
	oAddr
	oVec
	oPair // %p|%q
)

type opnd struct {
	kind   okind
	name   string
	name2  string
	neg    bool // !%p
	lit    literal
	addend int64 // [base+addend], name+addend
	elems  []opnd
	line   int
}

const (
	litInt uint8 = iota + 1
	litF32
	litF64
	litDec // a decimal float (an f64 value)
)

type literal struct {
	kind uint8
	u    uint64
}

// parseLit parses an integer (decimal, 0x hex, 0b binary, 0 octal, with
// an optional U suffix) or float (0fXXXXXXXX, 0dXXXXXXXXXXXXXXXX, or
// decimal) literal.
func parseLit(s string, neg bool) (literal, bool) {
	if len(s) >= 2 && s[0] == '0' {
		switch s[1] {
		case 'f', 'F':
			if len(s) != 10 {
				return literal{}, false
			}
			u, err := strconv.ParseUint(s[2:], 16, 32)
			if err != nil {
				return literal{}, false
			}
			if neg {
				u ^= 1 << 31
			}
			return literal{litF32, u}, true
		case 'd', 'D':
			if len(s) != 18 {
				return literal{}, false
			}
			u, err := strconv.ParseUint(s[2:], 16, 64)
			if err != nil {
				return literal{}, false
			}
			if neg {
				u ^= 1 << 63
			}
			return literal{litF64, u}, true
		}
	}
	if strings.ContainsAny(s, ".eE") && !strings.HasPrefix(s, "0x") && !strings.HasPrefix(s, "0X") {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return literal{}, false
		}
		if neg {
			f = -f
		}
		return literal{litDec, math.Float64bits(f)}, true
	}
	t := strings.TrimSuffix(strings.TrimSuffix(s, "U"), "u")
	base := 10
	switch {
	case strings.HasPrefix(t, "0x") || strings.HasPrefix(t, "0X"):
		base, t = 16, t[2:]
	case strings.HasPrefix(t, "0b") || strings.HasPrefix(t, "0B"):
		base, t = 2, t[2:]
	case len(t) > 1 && t[0] == '0':
		base, t = 8, t[1:]
	}
	u, err := strconv.ParseUint(t, base, 64)
	if err != nil {
		return literal{}, false
	}
	if neg {
		u = -u
	}
	return literal{litInt, u}, true
}

// immBits converts a literal to the bits of type t: integers are
// truncated (two's complement), floats converted between f32 and f64,
// integers used as floats converted to their value.
func immBits(l literal, t kind) (uint64, bool) {
	switch {
	case t == kPred:
		if l.kind != litInt {
			return 0, false
		}
		if l.u != 0 {
			return 1, true
		}
		return 0, true
	case t == kF32:
		switch l.kind {
		case litF32:
			return l.u, true
		case litF64, litDec:
			return uint64(math.Float32bits(float32(f64(l.u)))), true
		default:
			return uint64(math.Float32bits(float32(int64(l.u)))), true
		}
	case t == kF64:
		switch l.kind {
		case litF32:
			return math.Float64bits(float64(f32(l.u))), true
		case litF64, litDec:
			return l.u, true
		default:
			return math.Float64bits(float64(int64(l.u))), true
		}
	case t.isFloat(): // f16, bf16 and pairs: bits given as hex
		if l.kind == litDec {
			return fromFloat64(f64(l.u), fmtOf(t), rRN, false), true
		}
		if l.kind != litInt {
			return 0, false
		}
		return l.u & mask(t.bits()), true
	case t.isInt():
		switch l.kind {
		case litDec:
			return 0, false // a decimal float where an integer belongs
		case litF32, litF64:
			// 0f and 0d literals are bit patterns.
			return l.u & mask(t.bits()), true
		}
		return l.u & mask(t.bits()), true
	}
	return 0, false
}

// stmt parses one instruction statement.
func (p *parser) stmt() *stmt {
	first := p.peek()
	s := &stmt{line: first.line}
	if p.accept("@") {
		neg := p.accept("!")
		g := p.ident()
		s.guard = &opnd{kind: oIdent, name: g.text, neg: neg, line: g.line}
	}
	op := p.ident()
	if op.text[0] == '.' {
		p.fail(op, "unexpected directive %s", op.text)
	}
	s.op = op.text
	if base, _, _ := strings.Cut(op.text, "."); unsupportedOps[base] != "" {
		// Say why the instruction is unsupported rather than trip over
		// operand syntax (call's parenthesized lists) first.
		for !p.is(";") && p.peek().kind != tEOF {
			p.next()
		}
	}
	if !p.is(";") {
		for {
			s.args = append(s.args, p.operand(0))
			if !p.accept(",") {
				break
			}
		}
	}
	end := p.peek()
	if !p.is(";") {
		p.fail(end, "expected \";\" after %s, found %s", s.op, describe(end))
	}
	p.next()
	s.text = strings.Join(strings.Fields(string(p.src[first.start:end.start])), " ")
	return s
}

func (p *parser) operand(depth int) opnd {
	t := p.peek()
	o := opnd{line: t.line}
	switch {
	case t.kind == tPunct && t.text == "[":
		p.next()
		o.kind = oAddr
		first := true
		for !p.is("]") {
			neg := false
			if !first {
				switch {
				case p.accept("+"):
				case p.accept("-"):
					neg = true
				default:
					p.fail(p.peek(), "expected + or - in address, found %s", describe(p.peek()))
				}
			}
			if p.accept("-") {
				neg = !neg
			}
			x := p.next()
			switch x.kind {
			case tIdent:
				if neg || o.name != "" {
					p.fail(x, "bad address: %s", x.text)
				}
				o.name = x.text
			case tNum:
				l, ok := parseLit(x.text, neg)
				if !ok || l.kind != litInt {
					p.fail(x, "bad address offset %q", x.text)
				}
				o.addend += int64(l.u)
			default:
				p.fail(x, "bad address: %s", describe(x))
			}
			first = false
		}
		p.next()
	case t.kind == tPunct && t.text == "{":
		if depth > 0 {
			p.fail(t, "nested vector operand")
		}
		p.next()
		o.kind = oVec
		for {
			e := p.operand(depth + 1)
			if e.kind != oIdent && e.kind != oImm {
				p.fail(t, "bad vector element")
			}
			o.elems = append(o.elems, e)
			if p.accept("}") {
				break
			}
			p.expect(",")
		}
	case t.kind == tPunct && t.text == "!":
		p.next()
		o.kind, o.name, o.neg = oIdent, p.ident().text, true
	case t.kind == tPunct && t.text == "-" || t.kind == tNum:
		neg := p.accept("-")
		x := p.next()
		if x.kind != tNum {
			p.fail(x, "expected a number after -, found %s", describe(x))
		}
		l, ok := parseLit(x.text, neg)
		if !ok {
			p.fail(x, "bad number %q", x.text)
		}
		o.kind, o.lit = oImm, l
	case t.kind == tIdent:
		p.next()
		o.kind, o.name = oIdent, t.text
		if p.accept("|") {
			o.kind, o.name2 = oPair, p.ident().text
		} else if (p.is("+") || p.is("-")) && p.peekAt(1).kind == tNum {
			neg := p.next().text == "-"
			x := p.next()
			l, ok := parseLit(x.text, neg)
			if !ok || l.kind != litInt {
				p.fail(x, "bad offset %q", x.text)
			}
			o.addend = int64(l.u)
		}
	case t.kind == tPunct && t.text == "(":
		p.failAt(t.line, cuda.ErrUnsupportedPTX, "operand expressions in parentheses are not supported")
	default:
		p.fail(t, "unexpected %s in operand", describe(t))
	}
	return o
}
