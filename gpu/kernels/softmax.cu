// softmax.cu: row-wise softmax, its backward, and cross-entropy fused with
// the softmax (loss and gradient), one block of ROW_THREADS threads per
// row. As the CPU backend: e^(x − max) in float32, sums in float64, the
// loss and the label's gradient entry in float64.
#include "common.cuh"

// softmax: y = e^(x−max)/Σ, the exponentials in float64 as the CPU's
// softmaxRows.
KERNEL softmax(float* y, const float* x, i32 v) {
	__shared__ float fbuf[ROW_THREADS];
	__shared__ double buf[ROW_THREADS];
	i64 row = ctaid_x();
	const float* xr = x + row * v;
	float mx = -u2f(0x7F800000);
	for (i32 i = tid_x(); i < v; i += ntid_x()) mx = __builtin_fmaxf(mx, xr[i]);
	mx = block_max(mx, fbuf);
	double s = 0;
	for (i32 i = tid_x(); i < v; i += ntid_x()) s += expd_((double)xr[i] - (double)mx);
	s = block_sum(s, buf);
	for (i32 i = tid_x(); i < v; i += ntid_x()) y[row * v + i] = (float)(expd_((double)xr[i] - (double)mx) / s);
}

// softmax_backward: dx = y·(dy − Σ dy·y), in float64.
KERNEL softmax_backward(float* dx, const float* dy, const float* y, i32 v) {
	__shared__ double buf[ROW_THREADS];
	i64 row = ctaid_x();
	const float *yr = y + row * v, *dyr = dy + row * v;
	double dot = 0;
	for (i32 i = tid_x(); i < v; i += ntid_x()) dot += (double)dyr[i] * (double)yr[i];
	dot = block_sum(dot, buf);
	for (i32 i = tid_x(); i < v; i += ntid_x()) dx[row * v + i] = (float)((double)yr[i] * ((double)dyr[i] - dot));
}

// Row statistics of the fused cross-entropy: the row's max and
// Σ e^(x − max) (float32 terms, float64 sum).
DEV float row_max(const float* xr, i32 v, float* fbuf) {
	float mx = -u2f(0x7F800000);
	for (i32 i = tid_x(); i < v; i += ntid_x()) mx = __builtin_fmaxf(mx, xr[i]);
	return block_max(mx, fbuf);
}

DEV double row_expsum(const float* xr, i32 v, float mx, double* buf) {
	double s = 0;
	for (i32 i = tid_x(); i < v; i += ntid_x()) s += (double)expf_(xr[i] - mx);
	return block_sum(s, buf);
}

// cross_entropy: loss[row] = max + log Σ e^(x−max) − x[label] (float64),
// 0 for rows whose label is -100 (tensor.IgnoreIndex).
KERNEL cross_entropy(double* loss, const float* logits, const i32* labels, i32 v) {
	__shared__ float fbuf[ROW_THREADS];
	__shared__ double buf[ROW_THREADS];
	i64 row = ctaid_x();
	i32 label = labels[row];
	if (label == -100) {
		if (tid_x() == 0) loss[row] = 0;
		return;
	}
	const float* xr = logits + row * v;
	float mx = row_max(xr, v, fbuf);
	double s = row_expsum(xr, v, mx, buf);
	if (tid_x() == 0) loss[row] = (double)mx + logd_(s) - (double)xr[label];
}

// cross_entropy_backward: d = scale·(softmax − onehot(label)), zero for
// ignored rows; the label's entry in float64 (p − 1 cancels when p is
// near 1).
KERNEL cross_entropy_backward(float* d, const float* logits, const i32* labels, i32 v, float scale) {
	__shared__ float fbuf[ROW_THREADS];
	__shared__ double buf[ROW_THREADS];
	i64 row = ctaid_x();
	i32 label = labels[row];
	float* dr = d + row * v;
	if (label == -100) {
		for (i32 i = tid_x(); i < v; i += ntid_x()) dr[i] = 0;
		return;
	}
	const float* xr = logits + row * v;
	float mx = row_max(xr, v, fbuf);
	double s = row_expsum(xr, v, mx, buf);
	double k = (double)scale / s;
	for (i32 i = tid_x(); i < v; i += ntid_x()) {
		if (i == label) dr[i] = (float)(k * expd_((double)xr[i] - (double)mx) - (double)scale);
		else dr[i] = (float)(k * (double)expf_(xr[i] - mx));
	}
}
