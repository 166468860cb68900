// rope.cu: rotary position embeddings in HF's rotate_half layout. The host
// computes the cosine and sine of every (row, frequency) in float64,
// rounded to float32, as the CPU backend does (the sine already carries
// the sign: negative for the inverse rotation), so the rotation itself is
// the CPU's float32 arithmetic: y0 = a·c − b·s, y1 = b·c + a·s.
#include "common.cuh"

// rope_f32: one thread per (row, head, pair); y may be x.
KERNEL rope_f32(float* y, const float* x, const float* cosv, const float* sinv, i32 rows, i32 heads, i32 hd) {
	i32 half = hd / 2;
	i64 n = (i64)rows * heads * half;
	for (i64 t = gindex(); t < n; t += gstride()) {
		i64 r = t / ((i64)heads * half);
		i32 rem = (i32)(t - r * heads * half);
		i32 h = rem / half, i = rem - h * half;
		i64 base = r * heads * hd + (i64)h * hd;
		float c = cosv[r * half + i], s = sinv[r * half + i];
		float a = x[base + i], b = x[base + i + half];
		y[base + i] = a * c - b * s;
		y[base + i + half] = b * c + a * s;
	}
}
