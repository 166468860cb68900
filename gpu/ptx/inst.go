package ptx

// opcode is a pre-decoded operation. Integer operations whose low bits do
// not depend on signedness (add, mul.lo, and, ...) are one opcode for all
// widths, the result masked to the width; the others read the width from
// inst.bits.
type opcode uint8

const (
	opNop opcode = iota
	opExit
	opBra
	opBar
	opTrap

	opMov
	opPack
	opUnpack

	opAdd
	opSub
	opMul
	opMad
	opAnd
	opOr
	opXor
	opNot
	opCnot
	opNeg
	opShl
	opShrU
	opShrS
	opAddCC // add.cc, addc, addc.cc (flags say which)
	opSubCC // sub.cc, subc, subc.cc
	opAddSat

	opMulHiU
	opMulHiS
	opMulWideU
	opMulWideS
	opMadHiU
	opMadHiS
	opMadWideU
	opMadWideS
	opDivU
	opDivS
	opRemU
	opRemS
	opMinU
	opMinS
	opMaxU
	opMaxS
	opAbs
	opPopc
	opClz
	opBrev
	opBfind
	opBfe
	opBfi
	opPrmt
	opShf

	opSetpU
	opSetpS
	opSetpF
	opSelp
	opTestp

	opZext
	opSext
	opCvt

	opAddF32
	opSubF32
	opMulF32
	opFmaF32
	opDivF32
	opSqrtF32
	opMinF32
	opMaxF32
	opAddF64
	opSubF64
	opMulF64
	opFmaF64
	opDivF64
	opSqrtF64
	opMinF64
	opMaxF64
	opNegF // sign bit in off
	opAbsF
	opCopysign
	opFloat // everything else, by sub

	opLdGlobal
	opLdShared
	opLdLocal
	opLdParam
	opLdGeneric
	opStGlobal
	opStShared
	opStLocal
	opStGeneric
)

// Comparisons of setp (sub).
const (
	cEq uint8 = iota
	cNe
	cLt
	cLe
	cGt
	cGe
	cEqu // unordered forms: true if either operand is NaN
	cNeu
	cLtu
	cLeu
	cGtu
	cGeu
	cNum
	cNan
)

// Boolean combination of setp and bar.red (rnd field reused as bop).
const (
	bAnd uint8 = iota
	bOr
	bXor
)

// Barrier kinds (sub of opBar).
const (
	barSync uint8 = iota
	barPopc
	barAnd
	barOr
)

// testp operations (sub).
const (
	tFinite uint8 = iota
	tInfinite
	tNumber
	tNotANumber
	tNormal
	tSubnormal
)

// inst is one decoded instruction. Every source operand is a register
// slot: immediates, addresses of variables and special registers live
// in slots of each thread's register file that are filled before the
// thread starts, so execution never tests what kind an operand is. The
// guard is a slot too (a constant 1 for unguarded instructions):
// the instruction is skipped when r[guard] == skip.
type inst struct {
	op    opcode
	sub   uint8 // operation variant: float op, comparison, cvt types, barrier kind
	rnd   uint8 // rounding mode; for setp/bar.red the boolean combination
	flags uint8
	bits  uint8 // operand width in bits
	size  uint8 // memory access: bytes per element
	vec   uint8 // memory access, pack/unpack: elements
	skip  uint8
	dk    kind // cvt: destination type
	sk    kind // cvt: source type
	guard int32
	d     [4]int32
	s     [4]int32
	mask  uint64 // result mask (destination width)
	off   uint64 // address offset, branch target, sign bit
}
