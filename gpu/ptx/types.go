package ptx

// kind is a PTX fundamental type (.u32, .f32, .pred, ...).
type kind uint8

const (
	kNone kind = iota
	kB8
	kB16
	kB32
	kB64
	kU8
	kU16
	kU32
	kU64
	kS8
	kS16
	kS32
	kS64
	kF16
	kF16x2
	kBF16
	kBF16x2
	kF32
	kF64
	kPred
)

var kindNames = map[string]kind{
	"b8": kB8, "b16": kB16, "b32": kB32, "b64": kB64,
	"u8": kU8, "u16": kU16, "u32": kU32, "u64": kU64,
	"s8": kS8, "s16": kS16, "s32": kS32, "s64": kS64,
	"f16": kF16, "f16x2": kF16x2, "bf16": kBF16, "bf16x2": kBF16x2,
	"f32": kF32, "f64": kF64, "pred": kPred,
}

func (k kind) String() string {
	for n, v := range kindNames {
		if v == k {
			return "." + n
		}
	}
	return ".?"
}

// bits is the width of a value of the type.
func (k kind) bits() int {
	switch k {
	case kB8, kU8, kS8:
		return 8
	case kB16, kU16, kS16, kF16, kBF16:
		return 16
	case kB32, kU32, kS32, kF32, kF16x2, kBF16x2:
		return 32
	case kB64, kU64, kS64, kF64:
		return 64
	case kPred:
		return 1
	}
	return 0
}

func (k kind) signed() bool { return k == kS8 || k == kS16 || k == kS32 || k == kS64 }

func (k kind) isFloat() bool {
	return k == kF16 || k == kF16x2 || k == kBF16 || k == kBF16x2 || k == kF32 || k == kF64
}

// isInt reports a bit-size, unsigned or signed integer type.
func (k kind) isInt() bool { return k >= kB8 && k <= kS64 }

func mask(bits int) uint64 {
	if bits >= 64 {
		return ^uint64(0)
	}
	return 1<<uint(bits) - 1
}

// sext sign-extends the low bits of v.
func sext(v uint64, bits int) uint64 {
	s := uint(64 - bits)
	return uint64(int64(v<<s) >> s)
}
