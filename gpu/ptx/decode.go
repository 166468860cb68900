package ptx

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/mlbuild/mlbuild/gpu/cuda"
)

// Address windows. Global memory: allocation k is at globalBase + k<<32.
// Generic addresses of shared and local memory are the state-space
// address plus a window base; state-space addresses start at 0.
const (
	globalBase   = 1 << 40
	sharedWindow = 1 << 36
	localWindow  = 1 << 37
	windowSize   = 1 << 32
)

// Special registers.
const (
	spTidX uint8 = iota
	spTidY
	spTidZ
	spNtidX
	spNtidY
	spNtidZ
	spCtaidX
	spCtaidY
	spCtaidZ
	spNctaidX
	spNctaidY
	spNctaidZ
	spLaneid
	spWarpid
	spNwarpid
)

var specialNames = map[string]uint8{
	"%tid.x": spTidX, "%tid.y": spTidY, "%tid.z": spTidZ,
	"%ntid.x": spNtidX, "%ntid.y": spNtidY, "%ntid.z": spNtidZ,
	"%ctaid.x": spCtaidX, "%ctaid.y": spCtaidY, "%ctaid.z": spCtaidZ,
	"%nctaid.x": spNctaidX, "%nctaid.y": spNctaidY, "%nctaid.z": spNctaidZ,
	"%laneid": spLaneid, "%warpid": spWarpid, "%nwarpid": spNwarpid,
}

// kernel is a decoded .entry.
type kernel struct {
	name     string
	line     int
	params   []Param
	psize    int // parameter buffer size
	code     []inst
	lines    []int32
	texts    []string
	tmpl     []uint64 // initial register file: zeros and constants
	specials []special
	relocs   []reloc // slots that hold addresses of .global/.const variables
	static   int     // static shared bytes
	dynOff   int     // offset of dynamic shared memory
	local    int     // local bytes per thread
	maxntid  [3]uint32
	reqntid  [3]uint32
}

type special struct {
	slot int32
	id   uint8
}

type reloc struct {
	slot   int32
	global int
	addend int64
}

func (k *kernel) info() Kernel {
	return Kernel{Name: k.name, Line: k.line, Params: append([]Param(nil), k.params...), SharedBytes: k.static,
		DynamicSharedOffset: k.dynOff, LocalBytes: k.local, Slots: len(k.tmpl), Instructions: len(k.code)}
}

type regInfo struct {
	slot int32
	k    kind
}

type regRange struct {
	base int32
	n    int
	k    kind
}

type scope struct {
	names  map[string]regInfo
	ranges map[string]regRange
}

type symKey struct {
	s       *symbol
	generic bool
	addend  int64
}

type symRef struct {
	slot int32
	symKey
}

type fixup struct {
	pc    int
	label string
	s     *stmt
}

// dec decodes one entry's body.
type dec struct {
	p         *parser
	k         *kernel
	scopes    []*scope
	consts    map[uint64]int32
	specials  map[uint8]int32
	syms      map[symKey]int32
	refs      []symRef
	labels    map[string]int
	fixups    []fixup
	params    map[string]*symbol
	shared    []*symbol // entry-scope .shared, in order
	locals    []*symbol
	used      map[*symbol]bool // module-scope .shared variables referenced
	entrySyms map[string]*symbol
	zero      int32
	one       int32
	sink      int32
	cc        int32
	s         *stmt // statement being decoded
}

func newDec(p *parser, k *kernel) *dec {
	d := &dec{p: p, k: k, consts: map[uint64]int32{}, specials: map[uint8]int32{}, syms: map[symKey]int32{},
		labels: map[string]int{}, params: map[string]*symbol{}, used: map[*symbol]bool{}}
	d.zero = d.constSlot(0)
	d.one = d.constSlot(1)
	d.sink = d.slot(0)
	d.cc = d.slot(0)
	return d
}

func (d *dec) slot(v uint64) int32 {
	if len(d.k.tmpl) >= maxSlots {
		d.p.failAt(d.line(), cuda.ErrUnsupportedPTX, "kernel %s needs more than %d register slots", d.k.name, maxSlots)
	}
	d.k.tmpl = append(d.k.tmpl, v)
	return int32(len(d.k.tmpl) - 1)
}

func (d *dec) constSlot(v uint64) int32 {
	if s, ok := d.consts[v]; ok {
		return s
	}
	s := d.slot(v)
	d.consts[v] = s
	return s
}

func (d *dec) line() int {
	if d.s != nil {
		return d.s.line
	}
	return d.p.peek().line
}

// fail reports a malformed statement; unsupported an unimplemented one.
func (d *dec) fail(format string, args ...any) {
	d.failCode(cuda.ErrInvalidPTX, format, args...)
}

func (d *dec) unsupported(format string, args ...any) {
	d.failCode(cuda.ErrUnsupportedPTX, format, args...)
}

func (d *dec) failCode(code *cuda.Error, format string, args ...any) {
	e := &Error{Kernel: d.k.name, Line: d.line(), Msg: fmt.Sprintf(format, args...), Err: code}
	if d.s != nil {
		e.Instr = d.s.text
	}
	panic(parseFail{e})
}

func (d *dec) param() {
	p := d.p
	t := p.expect(".param")
	var k kind
	align := 0
	for {
		a := p.peek()
		if a.kind != tIdent || a.text[0] != '.' {
			break
		}
		p.next()
		switch {
		case a.text == ".align":
			align = p.alignment(a)
		case a.text == ".ptr" || a.text == ".global" || a.text == ".shared" || a.text == ".const" || a.text == ".local":
		case kindNames[a.text[1:]] != kNone && a.text != ".pred":
			k = kindNames[a.text[1:]]
		default:
			p.failAt(a.line, cuda.ErrUnsupportedPTX, "kernel parameter attribute %s is not supported", a.text)
		}
	}
	if k == kNone {
		p.fail(t, ".param without a type")
	}
	name := p.ident()
	count := 1
	if p.accept("[") {
		count = p.number()
		p.expect("]")
		if count > 1<<12 {
			p.fail(name, "parameter %s is too large", name.text)
		}
	}
	size := k.bits() / 8 * count
	if align == 0 {
		align = k.bits() / 8
	}
	off := (d.k.psize + align - 1) / align * align
	if d.params[name.text] != nil {
		p.fail(name, "parameter %s is declared twice", name.text)
	}
	d.k.params = append(d.k.params, Param{Name: name.text, Type: k.String(), Size: size, Align: align, Offset: off, kind: k})
	d.params[name.text] = &symbol{name: name.text, kind: symParam, off: off, size: size, line: name.line}
	d.k.psize = off + size
}

func (d *dec) push() {
	if len(d.scopes) >= maxDepth {
		d.fail("scopes nested too deeply")
	}
	d.scopes = append(d.scopes, &scope{names: map[string]regInfo{}, ranges: map[string]regRange{}})
}

// body parses statements up to the entry's closing brace.
func (d *dec) body() {
	p := d.p
	open := p.toks[p.pos-1]
	d.push()
	for len(d.scopes) > 0 {
		d.s = nil
		t := p.peek()
		switch {
		case t.kind == tEOF:
			p.fail(t, "missing } at the end of .entry %s (opened at line %d)", d.k.name, open.line)
		case t.kind == tPunct && t.text == "{":
			p.next()
			d.push()
		case t.kind == tPunct && t.text == "}":
			p.next()
			d.scopes = d.scopes[:len(d.scopes)-1]
		case t.kind == tPunct && t.text == ";":
			p.next()
		case t.kind == tIdent && t.text[0] == '.':
			d.directive()
		case t.kind == tIdent && p.peekAt(1).kind == tPunct && p.peekAt(1).text == ":":
			p.next()
			p.next()
			if _, dup := d.labels[t.text]; dup {
				p.fail(t, "label %s is defined twice", t.text)
			}
			d.labels[t.text] = len(d.k.code)
		default:
			d.s = p.stmt()
			d.inst(d.s)
		}
	}
	d.s = nil
}

// directive handles a directive inside a body.
func (d *dec) directive() {
	p := d.p
	t := p.peek()
	switch t.text {
	case ".reg":
		p.next()
		var k kind
		for {
			a := p.peek()
			if a.kind != tIdent || a.text[0] != '.' {
				break
			}
			p.next()
			if kk := kindNames[a.text[1:]]; kk != kNone {
				k = kk
			} else {
				p.failAt(a.line, cuda.ErrUnsupportedPTX, ".reg %s is not supported", a.text)
			}
		}
		if k == kNone {
			p.fail(t, ".reg without a type")
		}
		sc := d.scopes[len(d.scopes)-1]
		for {
			n := p.ident()
			if _, ok := specialNames[n.text]; ok {
				p.fail(n, "%s is a special register", n.text)
			}
			if p.accept("<") {
				c := p.number()
				p.expect(">")
				if len(d.k.tmpl)+c > maxSlots {
					p.failAt(n.line, cuda.ErrUnsupportedPTX, "kernel %s declares more than %d registers", d.k.name, maxSlots)
				}
				base := int32(len(d.k.tmpl))
				for i := 0; i < c; i++ {
					d.slot(0)
				}
				sc.ranges[n.text] = regRange{base, c, k}
			} else {
				sc.names[n.text] = regInfo{d.slot(0), k}
			}
			if !p.accept(",") {
				break
			}
		}
		p.expect(";")
	case ".shared", ".local":
		s := d.p.variable(d.k, false)
		if d.lookupSym(s.name) != nil && !d.lookupSym(s.name).module {
			p.fail(t, "%s is declared twice", s.name)
		}
		if s.kind == symShared {
			d.shared = append(d.shared, s)
		} else {
			d.locals = append(d.locals, s)
		}
		d.scopeSyms()[s.name] = s
	case ".pragma":
		p.skipTo(";")
	case ".loc", ".file":
		p.next()
		p.skipLine(t.line)
	case ".global", ".const":
		p.failAt(t.line, cuda.ErrUnsupportedPTX, "%s variables inside a kernel are not supported", t.text)
	case ".param":
		p.failAt(t.line, cuda.ErrUnsupportedPTX, ".param declarations inside a kernel (for calls) are not supported")
	case ".extern":
		p.next()
		if !p.is(".shared") {
			p.fail(t, "unexpected .extern inside a kernel")
		}
		s := d.p.variable(d.k, true)
		d.shared = append(d.shared, s)
		d.scopeSyms()[s.name] = s
	default:
		p.fail(t, "unknown directive %s inside a kernel", t.text)
	}
}

// entry-scope variables (kept with the kernel's outermost scope).
func (d *dec) scopeSyms() map[string]*symbol {
	if d.entrySyms == nil {
		d.entrySyms = map[string]*symbol{}
	}
	return d.entrySyms
}

func (d *dec) lookupSym(name string) *symbol {
	if s := d.entrySyms[name]; s != nil {
		return s
	}
	if s := d.params[name]; s != nil {
		return s
	}
	return d.p.syms[name]
}

// lookup finds a register, innermost scope first. %r12 is found in the
// range %r<N> when 12 < N.
func (d *dec) lookup(name string) (regInfo, bool) {
	j := len(name)
	for j > 0 && isDigit(name[j-1]) {
		j--
	}
	idx := -1
	if j < len(name) && (name[j] != '0' || j == len(name)-1) && len(name)-j < 8 {
		idx, _ = strconv.Atoi(name[j:])
	}
	for i := len(d.scopes) - 1; i >= 0; i-- {
		sc := d.scopes[i]
		if r, ok := sc.names[name]; ok {
			return r, true
		}
		if idx >= 0 {
			if rr, ok := sc.ranges[name[:j]]; ok && idx < rr.n {
				return regInfo{rr.base + int32(idx), rr.k}, true
			}
		}
	}
	return regInfo{}, false
}

func regBits(k kind) int {
	if k == kPred {
		return 1
	}
	return k.bits()
}

// src resolves a source operand of type t to a slot.
func (d *dec) src(o opnd, t kind) int32 {
	switch o.kind {
	case oImm:
		v, ok := immBits(o.lit, t)
		if !ok {
			d.fail("immediate does not fit %s", t)
		}
		return d.constSlot(v)
	case oIdent:
		if o.neg {
			d.fail("!%s: negation is allowed only on predicate operands of setp, selp and bar.red", o.name)
		}
		if r, ok := d.lookup(o.name); ok {
			if o.addend != 0 {
				d.fail("%s%+d: registers take no offset outside [ ]", o.name, o.addend)
			}
			switch {
			case t == kPred && r.k != kPred:
				d.fail("%s is a %s register, not a predicate", o.name, r.k)
			case t != kPred && r.k == kPred:
				d.fail("predicate %s used as a %s operand", o.name, t)
			case regBits(r.k) < t.bits():
				d.fail("%s is a %d-bit register, too narrow for %s", o.name, regBits(r.k), t)
			}
			return r.slot
		}
		if id, ok := specialNames[o.name]; ok {
			if t == kPred || t.isFloat() {
				d.fail("special register %s used as a %s operand", o.name, t)
			}
			s, ok := d.specials[id]
			if !ok {
				s = d.slot(0)
				d.specials[id] = s
				d.k.specials = append(d.k.specials, special{s, id})
			}
			return s
		}
		if o.name == "WARP_SZ" {
			return d.constSlot(32)
		}
		if sym := d.lookupSym(o.name); sym != nil {
			if t.bits() < 32 || t.isFloat() {
				d.fail("address of %s used as a %s operand", o.name, t)
			}
			return d.symSlot(sym, false, o.addend)
		}
		if strings.HasPrefix(o.name, "%") {
			if strings.HasPrefix(o.name, "%clock") || strings.HasPrefix(o.name, "%globaltimer") || strings.HasPrefix(o.name, "%smid") ||
				strings.HasPrefix(o.name, "%lanemask") || strings.HasPrefix(o.name, "%envreg") || strings.HasPrefix(o.name, "%pm") ||
				strings.HasPrefix(o.name, "%cluster") || strings.HasPrefix(o.name, "%nsmid") || strings.HasPrefix(o.name, "%gridid") ||
				strings.HasPrefix(o.name, "%dynamic_smem_size") || strings.HasPrefix(o.name, "%total_smem_size") {
				d.unsupported("special register %s is not supported", o.name)
			}
		}
		d.fail("undeclared register or variable %s", o.name)
	case oAddr:
		d.fail("unexpected address operand")
	case oVec:
		d.fail("unexpected vector operand")
	case oPair:
		d.fail("unexpected %s|%s operand", o.name, o.name2)
	}
	return 0
}

// dst resolves a destination register for a result of type t; widen
// allows a register wider than t (ld, cvt), which then holds the value
// sign-extended for signed t. It returns the slot and the register
// width.
func (d *dec) dst(o opnd, t kind, widen bool) (int32, int) {
	if o.kind != oIdent || o.neg || o.addend != 0 {
		d.fail("destination must be a register")
	}
	if o.name == "_" {
		return d.sink, t.bits()
	}
	r, ok := d.lookup(o.name)
	if !ok {
		if _, sp := specialNames[o.name]; sp {
			d.fail("special register %s is read-only", o.name)
		}
		d.fail("undeclared register %s", o.name)
	}
	rb := regBits(r.k)
	switch {
	case t == kPred && r.k != kPred:
		d.fail("%s is a %s register, not a predicate", o.name, r.k)
	case t != kPred && r.k == kPred:
		d.fail("predicate %s used as a %s destination", o.name, t)
	case rb < t.bits():
		d.fail("%s is a %d-bit register, too narrow for %s", o.name, rb, t)
	case rb > t.bits() && t.signed() && !widen:
		d.unsupported("%s is wider (%d bits) than the %s result", o.name, rb, t)
	}
	return r.slot, rb
}

func (d *dec) pred(o opnd) (int32, bool) {
	if o.kind != oIdent {
		d.fail("expected a predicate register")
	}
	neg := o.neg
	o.neg = false
	s, _ := d.dst(o, kPred, false)
	return s, neg
}

// symSlot is a slot holding the address of sym (generic: its generic
// address) plus addend, filled once the kernel's memory is laid out.
func (d *dec) symSlot(sym *symbol, generic bool, addend int64) int32 {
	switch sym.kind {
	case symFunc:
		d.unsupported("%s is a function: device function calls and function pointers are not supported", sym.name)
	case symParam:
		if generic {
			d.unsupported("generic addresses of kernel parameters are not supported")
		}
		return d.constSlot(uint64(int64(sym.off) + addend))
	case symGlobal, symConst:
		generic = false
	}
	key := symKey{sym, generic, addend}
	if s, ok := d.syms[key]; ok {
		return s
	}
	s := d.slot(0)
	d.syms[key] = s
	d.refs = append(d.refs, symRef{s, key})
	if sym.kind == symShared && sym.module {
		d.used[sym] = true
	}
	return s
}

// Memory spaces.
const (
	spGeneric uint8 = iota
	spGlobal
	spShared
	spLocal
	spParam
	spConst
)

var spaceNames = []string{"generic", ".global", ".shared", ".local", ".param", ".const"}

// address resolves [base+offset] for an access in space.
func (d *dec) address(o opnd, space uint8) (int32, uint64) {
	if o.kind != oAddr {
		d.fail("expected an address operand [...]")
	}
	if o.name == "" {
		return d.zero, uint64(o.addend)
	}
	if r, ok := d.lookup(o.name); ok {
		if r.k == kPred || regBits(r.k) < 32 {
			d.fail("address register %s must be 32 or 64 bits wide", o.name)
		}
		return r.slot, uint64(o.addend)
	}
	sym := d.lookupSym(o.name)
	if sym == nil {
		d.fail("undeclared register or variable %s", o.name)
	}
	want := map[symKind]uint8{symShared: spShared, symGlobal: spGlobal, symConst: spConst, symLocal: spLocal, symParam: spParam}[sym.kind]
	switch {
	case sym.kind == symFunc:
		d.unsupported("%s is a function", o.name)
	case space == spGeneric && sym.kind != symParam:
		return d.symSlot(sym, true, 0), uint64(o.addend)
	case space != want && !(space == spGlobal && want == spConst):
		d.fail("%s is a %s variable, accessed as %s", o.name, spaceNames[want], spaceNames[space])
	}
	if sym.kind == symParam {
		return d.zero, uint64(int64(sym.off) + o.addend)
	}
	return d.symSlot(sym, false, 0), uint64(o.addend)
}

// mods are the dot-separated parts of an opcode after its name.
type mods struct {
	d     *dec
	base  string
	parts []string
	types []kind
}

func (d *dec) mods(s *stmt) *mods {
	parts := strings.Split(s.op, ".")
	m := &mods{d: d, base: parts[0]}
	for _, x := range parts[1:] {
		if x == "" {
			d.fail("malformed instruction %q", s.op)
		}
		if k, ok := kindNames[x]; ok {
			m.types = append(m.types, k)
		} else {
			m.parts = append(m.parts, x)
		}
	}
	return m
}

// has removes modifier x if present.
func (m *mods) has(x string) bool {
	for i, p := range m.parts {
		if p == x {
			m.parts = append(m.parts[:i:i], m.parts[i+1:]...)
			return true
		}
	}
	return false
}

// peek reports whether one of xs is present.
func (m *mods) peek(xs ...string) bool {
	for _, p := range m.parts {
		for _, x := range xs {
			if p == x {
				return true
			}
		}
	}
	return false
}

// one removes and returns the one of xs present ("" if none).
func (m *mods) one(xs ...string) string {
	found := ""
	for _, x := range xs {
		if m.has(x) {
			if found != "" {
				m.d.fail("modifiers .%s and .%s conflict", found, x)
			}
			found = x
		}
	}
	return found
}

// done fails on modifiers nobody took.
func (m *mods) done() {
	if len(m.parts) > 0 {
		m.d.unsupported("modifier .%s of %s is not supported", m.parts[0], m.base)
	}
}

// typ requires exactly one type and returns it.
func (m *mods) typ() kind {
	if len(m.types) != 1 {
		m.d.fail("%s needs one type, has %d", m.base, len(m.types))
	}
	return m.types[0]
}

// dropHints removes cache, eviction and memory-order qualifiers, which
// do not change results when threads run one at a time.
func (m *mods) dropHints() {
	kept := m.parts[:0:0]
	for _, p := range m.parts {
		switch {
		case strings.HasPrefix(p, "L1::") || strings.HasPrefix(p, "L2::"):
		case p == "ca" || p == "cg" || p == "cs" || p == "lu" || p == "cv" || p == "wb" || p == "wt":
		case p == "volatile" || p == "relaxed" || p == "acquire" || p == "release" || p == "weak" || p == "mmio":
		case p == "cta" || p == "gpu" || p == "sys":
		default:
			kept = append(kept, p)
		}
	}
	m.parts = kept
}

// space removes the state space modifier.
func (m *mods) space() uint8 {
	switch m.one("global", "shared", "shared::cta", "local", "param", "const", "shared::cluster", "param::entry", "param::func") {
	case "global":
		return spGlobal
	case "shared", "shared::cta":
		return spShared
	case "local":
		return spLocal
	case "param", "param::entry":
		return spParam
	case "const":
		return spConst
	case "shared::cluster":
		m.d.unsupported("cluster shared memory is not supported")
	case "param::func":
		m.d.unsupported("function parameters are not supported")
	}
	return spGeneric
}

func (m *mods) rounding() uint8 {
	switch m.one("rn", "rz", "rm", "rp") {
	case "rn":
		return rRN
	case "rz":
		return rRZ
	case "rm":
		return rRM
	case "rp":
		return rRP
	}
	return rNone
}

func (d *dec) nargs(s *stmt, n ...int) {
	for _, k := range n {
		if len(s.args) == k {
			return
		}
	}
	if len(n) == 1 {
		d.fail("%s takes %d operands, has %d", s.op, n[0], len(s.args))
	}
	d.fail("%s takes %v operands, has %d", s.op, n, len(s.args))
}

func bitKind(bits int) kind {
	switch bits {
	case 8:
		return kB8
	case 16:
		return kB16
	case 32:
		return kB32
	}
	return kB64
}

func fmtOf(k kind) ffmt {
	switch k {
	case kF16, kF16x2:
		return fmtF16
	case kBF16, kBF16x2:
		return fmtBF16
	case kF32:
		return fmtF32
	}
	return fmtF64
}

// PTX instructions the interpreter knows but does not implement, with
// the reason given.
var unsupportedOps = map[string]string{
	"atom": "atomics are not supported", "red": "atomics are not supported", "mbarrier": "mbarriers are not supported",
	"shfl": "warp shuffles are not supported (threads do not run warp-synchronously)",
	"vote": "warp votes are not supported", "activemask": "warp-level instructions are not supported",
	"match": "warp-level instructions are not supported", "redux": "warp-level instructions are not supported",
	"elect": "warp-level instructions are not supported",
	"call":  "device function calls are not supported: mark device functions __forceinline__",
	"brx":   "indirect branches are not supported", "tex": "textures are not supported", "tld4": "textures are not supported",
	"txq": "textures are not supported", "suld": "surfaces are not supported", "sust": "surfaces are not supported",
	"sured": "surfaces are not supported", "suq": "surfaces are not supported", "istypep": "textures are not supported",
	"cp": "asynchronous copies are not supported", "mma": "tensor core instructions are not supported",
	"wmma": "tensor core instructions are not supported", "wgmma": "tensor core instructions are not supported",
	"ldmatrix": "tensor core instructions are not supported", "stmatrix": "tensor core instructions are not supported",
	"isspacep": "isspacep is not supported", "alloca": "alloca is not supported", "stacksave": "stack instructions are not supported",
	"stackrestore": "stack instructions are not supported", "getctarank": "clusters are not supported", "mapa": "clusters are not supported",
	"mul24": "24-bit multiplication is not supported", "mad24": "24-bit multiplication is not supported",
	"madc": "extended-precision mad is not supported", "sad": "sad is not supported", "set": "set is not supported (use setp)",
	"slct": "slct is not supported", "lop3": "lop3 is not supported", "dp4a": "dp4a is not supported", "dp2a": "dp2a is not supported",
	"bmsk": "bmsk is not supported", "szext": "szext is not supported", "fns": "fns is not supported", "multimem": "multimem is not supported",
	"griddepcontrol": "griddepcontrol is not supported", "setmaxnreg": "setmaxnreg is not supported", "tensormap": "tensormap is not supported",
	"tcgen05": "tensor core instructions are not supported", "createpolicy": "createpolicy is not supported",
	"applypriority": "applypriority is not supported", "discard": "discard is not supported", "clusterlaunchcontrol": "clusters are not supported",
	"vadd": "video instructions are not supported", "vsub": "video instructions are not supported", "vmad": "video instructions are not supported",
	"vmin": "video instructions are not supported", "vmax": "video instructions are not supported", "vshl": "video instructions are not supported",
	"vshr": "video instructions are not supported", "vset": "video instructions are not supported", "vabsdiff": "video instructions are not supported",
	"vadd2": "video instructions are not supported", "vadd4": "video instructions are not supported", "vsub2": "video instructions are not supported",
	"vsub4": "video instructions are not supported", "vavrg2": "video instructions are not supported", "vavrg4": "video instructions are not supported",
	"vabsdiff2": "video instructions are not supported", "vabsdiff4": "video instructions are not supported",
	"vmin2": "video instructions are not supported", "vmin4": "video instructions are not supported", "vmax2": "video instructions are not supported",
	"vmax4": "video instructions are not supported", "vset2": "video instructions are not supported", "vset4": "video instructions are not supported",
}

func (d *dec) emit(in inst) {
	d.k.code = append(d.k.code, in)
	d.k.lines = append(d.k.lines, int32(d.s.line))
	d.k.texts = append(d.k.texts, d.s.text)
}

// inst decodes one statement.
func (d *dec) inst(s *stmt) {
	m := d.mods(s)
	in := inst{guard: d.one}
	if s.guard != nil {
		g, neg := d.pred(*s.guard)
		in.guard = g
		if !neg {
			in.skip = 0
		} else {
			in.skip = 1
		}
	}
	switch m.base {
	case "mov":
		d.mov(s, m, &in)
	case "ld", "ldu":
		d.ld(s, m, &in)
	case "st":
		d.st(s, m, &in)
	case "cvta":
		d.cvta(s, m, &in)
	case "cvt":
		d.cvt(s, m, &in)
	case "add", "sub", "addc", "subc":
		d.addsub(s, m, &in)
	case "mul", "mad":
		d.mul(s, m, &in)
	case "fma":
		t := m.typ()
		if !m.peek("rn", "rz", "rm", "rp") {
			d.fail("fma needs a rounding modifier (.rn, .rz, .rm or .rp)")
		}
		d.float(s, m, &in, t, fFma, 3, opFmaF32, opFmaF64, true)
	case "div", "rem":
		d.div(s, m, &in)
	case "min", "max":
		d.minmax(s, m, &in)
	case "abs", "neg":
		d.absneg(s, m, &in)
	case "and", "or", "xor", "not", "cnot":
		d.logic(s, m, &in)
	case "shl", "shr":
		t := m.typ()
		m.done()
		d.nargs(s, 3)
		if !t.isInt() {
			d.fail("%s needs an integer type", m.base)
		}
		d.intOp(s, &in, t, 1)
		in.s[1] = d.src(s.args[2], kU32)
		switch {
		case m.base == "shl":
			in.op = opShl
		case t.signed():
			in.op = opShrS
		default:
			in.op = opShrU
		}
	case "popc", "clz", "brev", "bfind":
		d.bitop(s, m, &in)
	case "bfe", "bfi", "prmt", "shf":
		d.bitfield(s, m, &in)
	case "setp":
		d.setp(s, m, &in)
	case "selp":
		t := m.typ()
		m.done()
		d.nargs(s, 4)
		in.op = opSelp
		in.d[0], _ = d.dst(s.args[0], t, false)
		in.s[0] = d.src(s.args[1], t)
		in.s[1] = d.src(s.args[2], t)
		c, neg := d.pred(s.args[3])
		in.s[2] = c
		if neg {
			in.s[0], in.s[1] = in.s[1], in.s[0]
		}
	case "testp":
		op := m.one("finite", "infinite", "number", "notanumber", "normal", "subnormal")
		t := m.typ()
		m.done()
		d.nargs(s, 2)
		if op == "" || (t != kF32 && t != kF64) {
			d.fail("testp needs a test and an .f32 or .f64 type")
		}
		in.op = opTestp
		in.sub = map[string]uint8{"finite": tFinite, "infinite": tInfinite, "number": tNumber, "notanumber": tNotANumber, "normal": tNormal, "subnormal": tSubnormal}[op]
		in.bits = uint8(t.bits())
		in.d[0], _ = d.dst(s.args[0], kPred, false)
		in.s[0] = d.src(s.args[1], t)
	case "copysign":
		t := m.typ()
		m.done()
		d.nargs(s, 3)
		if t != kF32 && t != kF64 {
			d.fail("copysign needs .f32 or .f64")
		}
		d.intOp(s, &in, t, 2)
		in.op = opCopysign
		in.off = 1 << uint(t.bits()-1)
	case "sqrt", "rsqrt", "rcp", "ex2", "lg2", "sin", "cos", "tanh":
		d.unary(s, m, &in)
	case "bra":
		m.has("uni")
		m.done()
		d.nargs(s, 1)
		if s.args[0].kind != oIdent {
			d.fail("bra needs a label")
		}
		in.op = opBra
		d.fixups = append(d.fixups, fixup{len(d.k.code), s.args[0].name, s})
	case "ret", "exit":
		m.has("uni")
		m.done()
		d.nargs(s, 0)
		in.op = opExit
	case "bar", "barrier":
		d.bar(s, m, &in)
	case "membar", "fence":
		m.parts = nil // memory ordering is trivial with one thread running at a time
		in.op = opNop
	case "trap":
		m.done()
		in.op = opTrap
	case "brkpt", "nanosleep", "pmevent", "prefetch", "prefetchu":
		m.parts = nil
		in.op = opNop
	default:
		if why, ok := unsupportedOps[m.base]; ok {
			d.unsupported("%s", why)
		}
		d.fail("unknown instruction %s", m.base)
	}
	d.emit(in)
}

// intOp fills d[0] and s[0..n-1] with operands of type t.
func (d *dec) intOp(s *stmt, in *inst, t kind, n int) {
	in.d[0], _ = d.dst(s.args[0], t, false)
	for i := 0; i < n; i++ {
		in.s[i] = d.src(s.args[1+i], t)
	}
	in.bits = uint8(regBits(t))
	in.mask = mask(regBits(t))
}

func (d *dec) mov(s *stmt, m *mods, in *inst) {
	t := m.typ()
	m.done()
	d.nargs(s, 2)
	dst, src := s.args[0], s.args[1]
	switch {
	case dst.kind == oVec || src.kind == oVec:
		v := dst
		if src.kind == oVec {
			v = src
		}
		n := len(v.elems)
		if dst.kind == oVec && src.kind == oVec || n != 2 && n != 4 || t.bits()%n != 0 || t.bits()/n < 8 || !t.isInt() && !t.isFloat() {
			d.fail("bad vector mov")
		}
		eb := t.bits() / n
		in.bits, in.vec, in.mask = uint8(eb), uint8(n), mask(eb)
		if dst.kind == oVec {
			in.op = opUnpack
			in.s[0] = d.src(src, t)
			for i, e := range v.elems {
				in.d[i], _ = d.dst(e, bitKind(eb), false)
			}
		} else {
			in.op = opPack
			in.d[0], _ = d.dst(dst, t, false)
			for i, e := range v.elems {
				in.s[i] = d.src(e, bitKind(eb))
			}
		}
	default:
		in.op = opMov
		in.d[0], _ = d.dst(dst, t, false)
		in.s[0] = d.src(src, t)
		in.mask = mask(regBits(t))
	}
}

func (d *dec) memOperands(s *stmt, m *mods, in *inst, load bool) (kind, opnd, opnd) {
	vec := 1
	switch m.one("v2", "v4", "v8") {
	case "v2":
		vec = 2
	case "v4":
		vec = 4
	case "v8":
		d.unsupported(".v8 accesses are not supported")
	}
	t := m.typ()
	if t == kPred {
		d.fail("%s of .pred is not allowed", m.base)
	}
	d.nargs(s, 2)
	val, addr := s.args[0], s.args[1]
	if !load {
		val, addr = addr, val
	}
	n := 1
	if val.kind == oVec {
		n = len(val.elems)
	}
	if n != vec {
		d.fail("%d values for a .v%d access", n, vec)
	}
	in.size = uint8(t.bits() / 8)
	in.vec = uint8(vec)
	in.bits = uint8(t.bits())
	return t, val, addr
}

func (d *dec) ld(s *stmt, m *mods, in *inst) {
	space := m.space()
	if m.base == "ldu" {
		space = spGlobal
	}
	m.has("nc")
	m.dropHints()
	t, val, addr := d.memOperands(s, m, in, true)
	m.done()
	elems := []opnd{val}
	if val.kind == oVec {
		elems = val.elems
	}
	rb0 := 0
	for i, e := range elems {
		var rb int
		in.d[i], rb = d.dst(e, t, true)
		if i == 0 {
			rb0 = rb
		} else if rb != rb0 && e.name != "_" {
			d.unsupported("vector elements of different widths")
		}
	}
	in.mask = mask(rb0)
	if t.signed() {
		in.flags |= flSigned
	} else {
		in.mask = mask(t.bits())
	}
	in.s[0], in.off = d.address(addr, space)
	in.op = [...]opcode{spGeneric: opLdGeneric, spGlobal: opLdGlobal, spShared: opLdShared, spLocal: opLdLocal, spParam: opLdParam, spConst: opLdGlobal}[space]
}

func (d *dec) st(s *stmt, m *mods, in *inst) {
	space := m.space()
	m.dropHints()
	t, val, addr := d.memOperands(s, m, in, false)
	m.done()
	elems := []opnd{val}
	if val.kind == oVec {
		elems = val.elems
	}
	for i, e := range elems {
		in.d[i] = d.src(e, t)
	}
	in.s[0], in.off = d.address(addr, space)
	switch space {
	case spParam:
		d.unsupported("st.param (for calls) is not supported")
	case spConst:
		d.fail("st.const is not allowed")
	}
	in.op = [...]opcode{spGeneric: opStGeneric, spGlobal: opStGlobal, spShared: opStShared, spLocal: opStLocal}[space]
}

func (d *dec) cvta(s *stmt, m *mods, in *inst) {
	to := m.has("to")
	space := m.space()
	t := m.typ()
	m.done()
	d.nargs(s, 2)
	if t != kU32 && t != kU64 && t != kB32 && t != kB64 && t != kS64 {
		d.fail("cvta needs .u32 or .u64")
	}
	in.d[0], _ = d.dst(s.args[0], t, false)
	in.s[0] = d.src(s.args[1], t)
	in.mask = mask(t.bits())
	switch space {
	case spGlobal, spConst:
		in.op = opMov
	case spShared, spLocal:
		in.op = opAdd
		if to {
			in.op = opSub
		}
		w := uint64(sharedWindow)
		if space == spLocal {
			w = localWindow
		}
		in.s[1] = d.constSlot(w)
	case spParam:
		d.unsupported("cvta.param is not supported")
	default:
		d.fail("cvta needs a state space")
	}
}

// Kinds of opCvt (sub).
const (
	cvtII uint8 = iota // integer to integer with .sat
	cvtIF
	cvtFI
	cvtFF
	cvtPack // two f32 to f16x2/bf16x2
)

func (d *dec) cvt(s *stmt, m *mods, in *inst) {
	r := m.one("rn", "rz", "rm", "rp", "rna", "rni", "rzi", "rmi", "rpi")
	if m.has("ftz") {
		in.flags |= flFtz
	}
	if m.has("sat") {
		in.flags |= flSat
	}
	if m.has("relu") {
		in.flags |= flRelu
	}
	if m.has("satfinite") {
		in.flags |= flSatFin
	}
	m.done()
	if len(m.types) != 2 {
		d.fail("cvt needs two types")
	}
	dt, st := m.types[0], m.types[1]
	if dt == kPred || st == kPred {
		d.fail("cvt of .pred is not allowed")
	}
	in.dk, in.sk = dt, st
	in.rnd = map[string]uint8{"": rNone, "rn": rRN, "rz": rRZ, "rm": rRM, "rp": rRP, "rna": rRNA, "rni": rRN, "rzi": rRZ, "rmi": rRM, "rpi": rRP}[r]
	intRnd := strings.HasSuffix(r, "i")
	if intRnd {
		in.flags |= flIntRnd
	}
	if dt == kF16x2 || dt == kBF16x2 {
		d.nargs(s, 3)
		if st != kF32 {
			d.unsupported("cvt to %s from %s is not supported", dt, st)
		}
		if in.rnd == rNone || intRnd {
			d.fail("cvt to %s needs .rn, .rz, .rm or .rp", dt)
		}
		in.op, in.sub = opCvt, cvtPack
		in.d[0], _ = d.dst(s.args[0], dt, false)
		in.s[0] = d.src(s.args[1], st)
		in.s[1] = d.src(s.args[2], st)
		in.mask = mask(32)
		return
	}
	d.nargs(s, 2)
	if st == kF16x2 || st == kBF16x2 {
		d.unsupported("cvt from %s is not supported", st)
	}
	var rb int
	in.d[0], rb = d.dst(s.args[0], dt, true)
	in.s[0] = d.src(s.args[1], st)
	in.mask = mask(dt.bits())
	if dt.signed() {
		in.mask = mask(rb)
	}
	switch {
	case dt.isInt() && st.isInt():
		if in.rnd != rNone || in.flags&^flSat != 0 {
			d.fail("integer cvt takes no rounding, .ftz or .relu")
		}
		if in.flags&flSat != 0 {
			in.op, in.sub = opCvt, cvtII
			return
		}
		k := st.bits()
		signed := st.signed()
		if dt.bits() <= st.bits() {
			k, signed = dt.bits(), dt.signed()
		}
		in.bits = uint8(k)
		if signed {
			in.op = opSext
		} else {
			in.op = opZext
			in.mask &= mask(k)
		}
	case dt.isInt():
		if !intRnd {
			d.fail("cvt from %s to %s needs an integer rounding modifier (.rni, .rzi, .rmi or .rpi)", st, dt)
		}
		in.op, in.sub = opCvt, cvtFI
	case st.isInt():
		if in.rnd == rNone || intRnd {
			d.fail("cvt from %s to %s needs a rounding modifier (.rn, .rz, .rm or .rp)", st, dt)
		}
		in.op, in.sub = opCvt, cvtIF
	default:
		in.op, in.sub = opCvt, cvtFF
		switch {
		case dt.bits() < st.bits():
			if in.rnd == rNone || intRnd {
				d.fail("cvt from %s to %s needs a rounding modifier (.rn, .rz, .rm or .rp)", st, dt)
			}
		case dt == st:
			if in.rnd != rNone && !intRnd {
				d.fail("cvt from %s to %s takes only integer rounding (.rni ...)", st, dt)
			}
		default:
			if in.rnd != rNone {
				d.fail("cvt from %s to %s is exact and takes no rounding modifier", st, dt)
			}
		}
		if in.rnd == rRNA && dt != kF16 {
			d.unsupported(".rna is supported for .f16 results only")
		}
	}
}

// float fills an f32/f64 arithmetic instruction: fast opcodes for the
// round-to-nearest forms without .ftz/.sat, opFloat for the rest.
func (d *dec) float(s *stmt, m *mods, in *inst, t kind, sub uint8, n int, fast32, fast64 opcode, needRnd bool) {
	rnd := m.rounding()
	if needRnd && rnd == rNone {
		rnd = rRN
	}
	if m.has("ftz") {
		in.flags |= flFtz
	}
	if m.has("sat") {
		in.flags |= flSat
	}
	m.done()
	switch t {
	case kF32, kF64:
	case kF16, kF16x2, kBF16, kBF16x2:
		d.unsupported("%s arithmetic is not supported (only conversions)", t)
	default:
		d.fail("%s needs a float type", m.base)
	}
	if t == kF64 && in.flags&flSat != 0 {
		d.fail(".sat is allowed on .f32 only")
	}
	d.nargs(s, n+1)
	d.intOp(s, in, t, n)
	in.sub, in.rnd = sub, rnd
	if t == kF64 {
		in.bits = 64
	}
	fast := fast32
	if t == kF64 {
		fast = fast64
	}
	if fast != opNop && rnd <= rRN && in.flags == 0 {
		in.op = fast
		return
	}
	in.op = opFloat
}

func (d *dec) addsub(s *stmt, m *mods, in *inst) {
	t := m.typ()
	if t.isFloat() {
		if m.base == "addc" || m.base == "subc" {
			d.fail("%s needs an integer type", m.base)
		}
		if m.base == "add" {
			d.float(s, m, in, t, fAdd, 2, opAddF32, opAddF64, true)
		} else {
			d.float(s, m, in, t, fSub, 2, opSubF32, opSubF64, true)
		}
		return
	}
	cc := m.has("cc")
	sat := m.has("sat")
	m.done()
	d.nargs(s, 3)
	if !t.isInt() {
		d.fail("%s needs a numeric type", m.base)
	}
	d.intOp(s, in, t, 2)
	carry := m.base == "addc" || m.base == "subc"
	switch {
	case cc || carry:
		if t.bits() < 32 {
			d.fail("%s needs a 32- or 64-bit type", s.op)
		}
		in.op = opAddCC
		if m.base == "sub" || m.base == "subc" {
			in.op = opSubCC
		}
		if cc {
			in.flags |= flCC
		}
		if carry {
			in.sub = 1
		}
		in.s[2] = d.cc
		in.d[1] = d.cc
	case sat:
		if t != kS32 {
			d.fail(".sat needs .s32")
		}
		in.op = opAddSat
		if m.base == "sub" {
			in.sub = 1
		}
	case m.base == "add":
		in.op = opAdd
	case m.base == "sub":
		in.op = opSub
	default:
		d.fail("%s needs .cc", m.base)
	}
}

func (d *dec) mul(s *stmt, m *mods, in *inst) {
	t := m.typ()
	isMad := m.base == "mad"
	if t.isFloat() {
		if isMad {
			d.float(s, m, in, t, fFma, 3, opFmaF32, opFmaF64, true)
		} else {
			d.float(s, m, in, t, fMul, 2, opMulF32, opMulF64, true)
		}
		return
	}
	mode := m.one("lo", "hi", "wide")
	if m.has("cc") || m.has("sat") {
		d.unsupported("%s with .cc or .sat is not supported", m.base)
	}
	m.done()
	if !t.isInt() || t.bits() < 16 {
		d.fail("%s needs a 16-, 32- or 64-bit integer type", m.base)
	}
	n := 2
	if isMad {
		n = 3
	}
	d.nargs(s, n+1)
	in.bits = uint8(t.bits())
	in.mask = mask(t.bits())
	if t.signed() {
		in.flags |= flSigned
	}
	switch mode {
	case "lo":
		d.intOp(s, in, t, n)
		in.op = opMul
		if isMad {
			in.op = opMad
		}
	case "hi":
		d.intOp(s, in, t, n)
		in.op = map[bool]opcode{false: opMulHiU, true: opMulHiS}[t.signed()]
		if isMad {
			in.op = map[bool]opcode{false: opMadHiU, true: opMadHiS}[t.signed()]
		}
	case "wide":
		if t.bits() == 64 {
			d.fail("%s.wide needs a 16- or 32-bit type", m.base)
		}
		wt := map[int]kind{16: kU32, 32: kU64}[t.bits()]
		if t.signed() {
			wt = map[int]kind{16: kS32, 32: kS64}[t.bits()]
		}
		in.d[0], _ = d.dst(s.args[0], wt, false)
		in.s[0] = d.src(s.args[1], t)
		in.s[1] = d.src(s.args[2], t)
		if isMad {
			in.s[2] = d.src(s.args[3], wt)
		}
		in.mask = mask(2 * t.bits())
		in.op = map[bool]opcode{false: opMulWideU, true: opMulWideS}[t.signed()]
		if isMad {
			in.op = map[bool]opcode{false: opMadWideU, true: opMadWideS}[t.signed()]
		}
	default:
		d.fail("integer %s needs .lo, .hi or .wide", m.base)
	}
}

func (d *dec) div(s *stmt, m *mods, in *inst) {
	t := m.typ()
	if t.isFloat() && m.base == "div" {
		switch {
		case m.has("approx") || m.has("full"):
			if t != kF32 {
				d.fail("div.approx and div.full need .f32")
			}
			d.float(s, m, in, t, fDivApprox, 2, opNop, opNop, false)
		default:
			d.float(s, m, in, t, fDiv, 2, opDivF32, opDivF64, true)
		}
		return
	}
	m.done()
	d.nargs(s, 3)
	if !t.isInt() || t.bits() < 16 {
		d.fail("%s needs a 16-, 32- or 64-bit integer type", m.base)
	}
	d.intOp(s, in, t, 2)
	switch {
	case m.base == "div" && t.signed():
		in.op = opDivS
	case m.base == "div":
		in.op = opDivU
	case t.signed():
		in.op = opRemS
	default:
		in.op = opRemU
	}
}

func (d *dec) minmax(s *stmt, m *mods, in *inst) {
	t := m.typ()
	isMin := m.base == "min"
	if t.isFloat() {
		if m.has("xorsign") || m.has("abs") {
			d.unsupported("%s.xorsign.abs is not supported", m.base)
		}
		if m.has("NaN") {
			sub := fMaxNaN
			if isMin {
				sub = fMinNaN
			}
			d.float(s, m, in, t, sub, 2, opNop, opNop, false)
			return
		}
		if isMin {
			d.float(s, m, in, t, fMin, 2, opMinF32, opMinF64, false)
		} else {
			d.float(s, m, in, t, fMax, 2, opMaxF32, opMaxF64, false)
		}
		return
	}
	if m.has("relu") {
		d.unsupported("%s.relu is not supported", m.base)
	}
	m.done()
	d.nargs(s, 3)
	if !t.isInt() || t.bits() < 16 {
		d.fail("%s needs a 16-, 32- or 64-bit integer type", m.base)
	}
	d.intOp(s, in, t, 2)
	switch {
	case isMin && t.signed():
		in.op = opMinS
	case isMin:
		in.op = opMinU
	case t.signed():
		in.op = opMaxS
	default:
		in.op = opMaxU
	}
}

func (d *dec) absneg(s *stmt, m *mods, in *inst) {
	t := m.typ()
	isAbs := m.base == "abs"
	if t.isFloat() {
		sub, fast := fNeg, opNegF
		if isAbs {
			sub, fast = fAbs, opAbsF
		}
		d.float(s, m, in, t, sub, 1, fast, fast, false)
		in.off = 1 << uint(t.bits()-1)
		return
	}
	m.done()
	d.nargs(s, 2)
	if !t.isInt() || t.bits() < 16 {
		d.fail("%s needs a 16-, 32- or 64-bit type", m.base)
	}
	d.intOp(s, in, t, 1)
	in.op = opNeg
	if isAbs {
		in.op = opAbs
	}
}

func (d *dec) logic(s *stmt, m *mods, in *inst) {
	t := m.typ()
	m.done()
	if t.isFloat() || t.bits() < 16 && t != kPred {
		d.fail("%s needs a .pred, 16-, 32- or 64-bit type", m.base)
	}
	n := 2
	if m.base == "not" || m.base == "cnot" {
		n = 1
	}
	d.nargs(s, n+1)
	d.intOp(s, in, t, n)
	in.op = map[string]opcode{"and": opAnd, "or": opOr, "xor": opXor, "not": opNot, "cnot": opCnot}[m.base]
	if m.base == "cnot" && t == kPred {
		d.fail("cnot of .pred is not allowed")
	}
}

func (d *dec) bitop(s *stmt, m *mods, in *inst) {
	shiftamt := m.base == "bfind" && m.has("shiftamt")
	t := m.typ()
	m.done()
	d.nargs(s, 2)
	if !t.isInt() || t.bits() < 32 {
		d.fail("%s needs a 32- or 64-bit type", m.base)
	}
	rt := t
	if m.base != "brev" {
		rt = kU32
	}
	in.d[0], _ = d.dst(s.args[0], rt, false)
	in.s[0] = d.src(s.args[1], t)
	in.bits = uint8(t.bits())
	in.mask = mask(t.bits())
	switch m.base {
	case "popc":
		in.op = opPopc
	case "clz":
		in.op = opClz
	case "brev":
		in.op = opBrev
	case "bfind":
		in.op = opBfind
		if t.signed() {
			in.flags |= flSigned
		}
		if shiftamt {
			in.sub = 1
		}
	}
}

var prmtModes = map[string]uint8{"f4e": 1, "b4e": 2, "rc8": 3, "ecl": 4, "ecr": 5, "rc16": 6}

func (d *dec) bitfield(s *stmt, m *mods, in *inst) {
	switch m.base {
	case "bfe":
		t := m.typ()
		m.done()
		d.nargs(s, 4)
		if !t.isInt() || t.bits() < 32 {
			d.fail("bfe needs a 32- or 64-bit type")
		}
		d.intOp(s, in, t, 1)
		in.s[1] = d.src(s.args[2], kU32)
		in.s[2] = d.src(s.args[3], kU32)
		in.op = opBfe
		if t.signed() {
			in.flags |= flSigned
		}
	case "bfi":
		t := m.typ()
		m.done()
		d.nargs(s, 5)
		if !t.isInt() || t.bits() < 32 {
			d.fail("bfi needs a 32- or 64-bit type")
		}
		d.intOp(s, in, t, 2)
		in.s[2] = d.src(s.args[3], kU32)
		in.s[3] = d.src(s.args[4], kU32)
		in.op = opBfi
	case "prmt":
		mode := ""
		for name := range prmtModes {
			if m.has(name) {
				mode = name
			}
		}
		t := m.typ()
		m.done()
		d.nargs(s, 4)
		if t.bits() != 32 || !t.isInt() {
			d.fail("prmt needs .b32")
		}
		d.intOp(s, in, t, 3)
		in.op, in.sub = opPrmt, prmtModes[mode]
	case "shf":
		dir := m.one("l", "r")
		mode := m.one("wrap", "clamp")
		t := m.typ()
		m.done()
		d.nargs(s, 4)
		if dir == "" || mode == "" || t.bits() != 32 || !t.isInt() {
			d.fail("shf needs .l or .r, .wrap or .clamp, and .b32")
		}
		d.intOp(s, in, t, 2)
		in.s[2] = d.src(s.args[3], kU32)
		in.op = opShf
		if dir == "r" {
			in.sub |= 1
		}
		if mode == "clamp" {
			in.sub |= 2
		}
	}
}

var cmpNames = map[string]uint8{
	"eq": cEq, "ne": cNe, "lt": cLt, "le": cLe, "gt": cGt, "ge": cGe,
	"lo": cLt, "ls": cLe, "hi": cGt, "hs": cGe,
	"equ": cEqu, "neu": cNeu, "ltu": cLtu, "leu": cLeu, "gtu": cGtu, "geu": cGeu, "num": cNum, "nan": cNan,
}

func (d *dec) setp(s *stmt, m *mods, in *inst) {
	cmp := ""
	for name := range cmpNames {
		if m.has(name) {
			if cmp != "" {
				d.fail("setp with two comparisons")
			}
			cmp = name
		}
	}
	bop := m.one("and", "or", "xor")
	if m.has("ftz") {
		in.flags |= flFtz
	}
	t := m.typ()
	m.done()
	if cmp == "" {
		d.fail("setp needs a comparison")
	}
	in.sub = cmpNames[cmp]
	switch {
	case t.isFloat():
		if t != kF32 && t != kF64 {
			d.unsupported("setp on %s is not supported", t)
		}
		if cmp == "lo" || cmp == "ls" || cmp == "hi" || cmp == "hs" {
			d.fail("setp.%s needs an integer type", cmp)
		}
		in.op = opSetpF
	case t.isInt():
		if in.sub >= cEqu {
			d.fail("setp.%s needs a float type", cmp)
		}
		unsigned := !t.signed() || cmp == "lo" || cmp == "ls" || cmp == "hi" || cmp == "hs"
		in.op = opSetpS
		if unsigned {
			in.op = opSetpU
		}
		if in.flags&flFtz != 0 {
			d.fail(".ftz needs a float type")
		}
	default:
		d.fail("setp needs a numeric type")
	}
	if bop == "" {
		d.nargs(s, 3)
	} else {
		d.nargs(s, 4)
	}
	in.bits = uint8(t.bits())
	in.mask = mask(t.bits())
	out := s.args[0]
	switch out.kind {
	case oPair:
		in.d[0], _ = d.dst(opnd{kind: oIdent, name: out.name}, kPred, false)
		in.d[1], _ = d.dst(opnd{kind: oIdent, name: out.name2}, kPred, false)
	default:
		in.d[0], _ = d.dst(out, kPred, false)
		in.d[1] = d.sink
	}
	in.s[0] = d.src(s.args[1], t)
	in.s[1] = d.src(s.args[2], t)
	in.s[2] = d.one
	in.rnd = bAnd
	if bop != "" {
		in.rnd = map[string]uint8{"and": bAnd, "or": bOr, "xor": bXor}[bop]
		c, neg := d.pred(s.args[3])
		in.s[2] = c
		if neg {
			in.flags |= flNegC
		}
	}
}

func (d *dec) unary(s *stmt, m *mods, in *inst) {
	t := m.typ()
	approx := m.has("approx")
	var sub uint8
	fast32, fast64 := opNop, opNop
	needRnd := false
	switch m.base {
	case "sqrt":
		sub, fast32, fast64 = fSqrt, opSqrtF32, opSqrtF64
		if approx {
			sub, fast32, fast64 = fSqrtApprox, opNop, opNop
		} else {
			needRnd = true
		}
	case "rcp":
		sub = fRcp
		if approx {
			sub = fRcpApprox
		} else {
			needRnd = true
		}
	case "rsqrt", "ex2", "lg2", "sin", "cos", "tanh":
		if !approx {
			d.fail("%s needs .approx", m.base)
		}
		sub = map[string]uint8{"rsqrt": fRsqrt, "ex2": fEx2, "lg2": fLg2, "sin": fSin, "cos": fCos, "tanh": fTanh}[m.base]
		if t == kF64 && m.base != "rsqrt" {
			d.fail("%s.approx needs .f32", m.base)
		}
	}
	if approx && m.rounding() != rNone {
		d.fail("%s.approx takes no rounding modifier", m.base)
	}
	d.float(s, m, in, t, sub, 1, fast32, fast64, needRnd)
}

func (d *dec) bar(s *stmt, m *mods, in *inst) {
	if m.has("warp") {
		m.has("sync")
		m.done()
		in.op = opNop // no warp-synchronous execution: nothing to wait for
		return
	}
	m.has("cta")
	m.has("aligned")
	kind := m.one("sync", "arrive", "red")
	if kind == "" && m.base == "bar" && len(m.parts) == 0 && len(m.types) == 0 {
		kind = "sync" // bar 0 is bar.sync 0
	}
	in.op = opBar
	in.s[1] = d.zero
	switch kind {
	case "sync":
		m.done()
		d.nargs(s, 1, 2)
		in.s[0] = d.src(s.args[0], kU32)
		if len(s.args) == 2 {
			in.s[1] = d.src(s.args[1], kU32)
			in.vec = 1
		}
		in.sub = barSync
	case "arrive":
		m.done()
		d.nargs(s, 1, 2)
		for _, a := range s.args {
			d.src(a, kU32)
		}
		in.op = opNop // the arriving thread does not wait
	case "red":
		op := m.one("popc", "and", "or")
		t := m.typ()
		m.done()
		d.nargs(s, 3, 4)
		switch {
		case op == "popc" && t == kU32:
			in.sub = barPopc
		case op == "and" && t == kPred:
			in.sub = barAnd
		case op == "or" && t == kPred:
			in.sub = barOr
		default:
			d.fail("bar.red needs .popc.u32, .and.pred or .or.pred")
		}
		in.d[0], _ = d.dst(s.args[0], t, false)
		in.s[0] = d.src(s.args[1], kU32)
		if len(s.args) == 4 {
			in.s[1] = d.src(s.args[2], kU32)
			in.vec = 1
		}
		c, neg := d.pred(s.args[len(s.args)-1])
		in.s[2] = c
		if neg {
			in.flags |= flNegC
		}
	default:
		d.fail("%s needs .sync, .arrive or .red", m.base)
	}
}

// finish resolves labels, lays out shared and local memory and fills
// the address slots.
func (d *dec) finish() {
	k := d.k
	for _, f := range d.fixups {
		pc, ok := d.labels[f.label]
		if !ok {
			d.s = f.s
			d.fail("undefined label %s", f.label)
		}
		k.code[f.pc].off = uint64(pc)
	}
	// Falling off the end of the body exits.
	k.code = append(k.code, inst{op: opExit, guard: d.one})
	k.lines = append(k.lines, int32(d.p.toks[d.p.pos-1].line))
	k.texts = append(k.texts, "}")

	offsets := map[*symbol]int{}
	off := 0
	place := func(s *symbol) {
		off = (off + s.align - 1) / s.align * s.align
		offsets[s] = off
		off += s.size
	}
	var dyn []*symbol
	for _, group := range [][]*symbol{d.p.modShared, d.shared} {
		for _, s := range group {
			if s.module && !d.used[s] {
				continue
			}
			if s.extern {
				dyn = append(dyn, s)
				continue
			}
			place(s)
			if off > maxVarBytes {
				d.fail("shared memory of %s is too large", k.name)
			}
		}
	}
	k.static = off
	align := 16
	for _, s := range dyn {
		if s.align > align {
			align = s.align
		}
	}
	k.dynOff = (off + align - 1) / align * align
	for _, s := range dyn {
		offsets[s] = k.dynOff
	}
	off = 0
	for _, s := range d.locals {
		place(s)
		if off > maxVarBytes {
			d.fail("local memory of %s is too large", k.name)
		}
	}
	k.local = off
	for _, r := range d.refs {
		switch r.s.kind {
		case symShared, symLocal:
			v := uint64(int64(offsets[r.s]) + r.addend)
			if r.generic {
				if r.s.kind == symShared {
					v += sharedWindow
				} else {
					v += localWindow
				}
			}
			k.tmpl[r.slot] = v
		case symGlobal, symConst:
			k.relocs = append(k.relocs, reloc{r.slot, r.s.index, r.addend})
		}
	}
}
