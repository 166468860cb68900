// norm.cu: RMSNorm (HF's LlamaRMSNorm) forward and backward, one block of
// ROW_THREADS threads per row. As the CPU backend: the sum of squares and
// the backward's dot product in float64, the scale rsqrt(mean + eps) in
// float64 rounded to float32 for the forward.
#include "common.cuh"

// rmsnorm: y = w · (x · inv), inv = float32(1/sqrt(Σx²/d + eps)); w has
// storage type wt.
KERNEL rmsnorm(float* y, const float* x, const void* w, i32 wt, i32 d, float eps) {
	__shared__ double buf[ROW_THREADS];
	i64 row = ctaid_x();
	const float* xr = x + row * d;
	double ss = 0;
	for (i32 i = tid_x(); i < d; i += ntid_x()) ss += (double)xr[i] * (double)xr[i];
	ss = block_sum(ss, buf);
	float inv = (float)(1.0 / __builtin_sqrt(ss / d + (double)eps));
	for (i32 i = tid_x(); i < d; i += ntid_x()) y[row * d + i] = load(w, wt, i) * (xr[i] * inv);
}

// rmsnorm_backward: dx = inv·(g − x·inv·mean(g·x·inv)), g = dy·w, in
// float64; invs[row] keeps inv for rmsnorm_weight_grad.
KERNEL rmsnorm_backward(float* dx, double* invs, const float* dy, const float* x, const void* w, i32 wt, i32 d, float eps) {
	__shared__ double buf[ROW_THREADS];
	i64 row = ctaid_x();
	const float *xr = x + row * d, *dyr = dy + row * d;
	double ss = 0;
	for (i32 i = tid_x(); i < d; i += ntid_x()) ss += (double)xr[i] * (double)xr[i];
	ss = block_sum(ss, buf);
	double inv = 1.0 / __builtin_sqrt(ss / d + (double)eps);
	double dot = 0;
	for (i32 i = tid_x(); i < d; i += ntid_x()) dot += (double)dyr[i] * (double)load(w, wt, i) * (double)xr[i] * inv;
	dot = block_sum(dot, buf);
	double m = dot / d;
	for (i32 i = tid_x(); i < d; i += ntid_x()) {
		double g = (double)dyr[i] * (double)load(w, wt, i);
		dx[row * d + i] = (float)(inv * (g - (double)xr[i] * inv * m));
	}
	if (tid_x() == 0) invs[row] = inv;
}

// rmsnorm_weight_grad: dw[c] += Σ_rows dy·x·inv for each column c (one
// thread per column, rows in ascending order, float64).
KERNEL rmsnorm_weight_grad(float* dw, const float* dy, const float* x, const double* invs, i32 rows, i32 d) {
	for (i64 c = gindex(); c < d; c += gstride()) {
		double s = 0;
		for (i64 r = 0; r < rows; r++) s += (double)dy[r * d + c] * (double)x[r * d + c] * invs[r];
		dw[c] += (float)s;
	}
}
