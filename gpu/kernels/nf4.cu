// nf4.cu: NF4 dequantization with double quantization, bit-identical to
// nf4.Tensor.DequantizeRows (bitsandbytes' kDequantizeBlockwise): element
// e of block b = e/bs is Codes[nibble(e)]·absmax(b), where absmax(b) =
// QuantMap8[qabsmax[b]]·absmax2[b/bs2] + offset (two float32 roundings),
// or rawabsmax[b] without double quantization. Products are flushed to
// zero when subnormal and the absmax is below 2^-122, as the CPU does.
#include "common.cuh"

DEV float ftz(float v) { return (f2u(v) & 0x7F800000) == 0 ? u2f(f2u(v) & 0x80000000) : v; }

// dequantize_nf4: dst[i] = element start+i for i < n. tables holds the 16
// NF4 codes then the 256 entries of QuantMap8.
KERNEL dequantize_nf4(float* dst, const u8* packed, const u8* qabsmax, const float* absmax2, const float* rawabsmax,
                      const float* tables, float offset, i64 start, i64 n, i32 bs, i32 bs2) {
	for (i64 i = gindex(); i < n; i += gstride()) {
		i64 e = start + i, b = e / bs;
		float am;
		if (qabsmax) {
			float a = tables[16 + qabsmax[b]] * absmax2[b / bs2];
			am = a + offset;
		} else {
			am = rawabsmax[b];
		}
		u32 code = (packed[e >> 1] >> ((e & 1) ? 0 : 4)) & 15;
		float v = tables[code] * am;
		if (!(am >= 0x1p-122f || am <= -0x1p-122f || am != am)) v = ftz(v);
		dst[i] = v;
	}
}
