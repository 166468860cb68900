// attention.cu: causal softmax attention (tensor.AttnParams: grouped-query
// heads, a KV cache offset, a sliding window), flash-style: keys are read
// in tiles of ATTN_TILE with an online softmax (running max and sum,
// rescaling the accumulator when the max grows), so no score matrix is
// stored. The forward keeps each (query, head)'s log-sum-exp for the
// backward pass, which recomputes the probabilities from it (as
// FlashAttention-2): one kernel for dq (over keys), one for dk and dv
// (over the queries of every head that shares the key/value head), so that
// every gradient element is one thread's fixed-order sum: no atomics.
//
// One block of ATTN_TILE threads per (query row, head) or (key row,
// key/value head); thread t owns output dimensions t, t+ATTN_TILE, ...
// (head dimensions up to ATTN_MAX_DIM).
#include "common.cuh"

#define ATTN_TILE 64
#define ATTN_MAX_DIM 256
#define ATTN_DPT (ATTN_MAX_DIM / ATTN_TILE)

struct attn {
	i32 batch, seqq, seqkv, kvstride, heads, kvheads, hd, posoff, window;
	float scale;
};

// The attention parameters, passed as scalars (cuda.PackParams lays out
// scalars only).
#define ATTN_ARGS i32 batch, i32 seqq, i32 seqkv, i32 kvstride, i32 heads, i32 kvheads, i32 hd, i32 posoff, i32 window, float scale
#define ATTN_STRUCT {batch, seqq, seqkv, kvstride, heads, kvheads, hd, posoff, window, scale}

// keys_of: query i attends keys [start, end).
DEV void keys_of(const attn& p, i32 i, i32* start, i32* end) {
	i32 pos = p.posoff + i;
	*end = pos + 1 < p.seqkv ? pos + 1 : p.seqkv;
	*start = p.window > 0 && pos - p.window + 1 > 0 ? pos - p.window + 1 : 0;
}

DEV float dot(const float* a, const float* b, i32 n) {
	float s = 0;
	for (i32 d = 0; d < n; d++) s += a[d] * b[d];
	return s;
}

// attention_forward: out [batch·seqq, heads·hd] and lse [batch·seqq·heads].
// Grid (batch·seqq, heads).
KERNEL attention_forward(float* out, float* lse, const float* q, const float* k, const float* v, ATTN_ARGS) {
	attn p = ATTN_STRUCT;
	__shared__ float qs[ATTN_MAX_DIM];
	__shared__ float ps[ATTN_TILE];
	__shared__ float red[ATTN_TILE];
	i32 row = ctaid_x(), h = ctaid_y(), t = tid_x();
	i32 b = row / p.seqq, i = row - b * p.seqq;
	i32 kvh = h / (p.heads / p.kvheads);
	i32 start, end;
	keys_of(p, i, &start, &end);
	const float* qr = q + ((i64)row * p.heads + h) * p.hd;
	for (i32 d = t; d < p.hd; d += ATTN_TILE) qs[d] = qr[d];
	__syncthreads();
	float acc[ATTN_DPT];
	for (i32 c = 0; c < ATTN_DPT; c++) acc[c] = 0;
	float m = -u2f(0x7F800000), l = 0;
	for (i32 j0 = start; j0 < end; j0 += ATTN_TILE) {
		i32 j = j0 + t;
		float s = -u2f(0x7F800000);
		if (j < end) s = dot(qs, k + (((i64)b * p.kvstride + j) * p.kvheads + kvh) * p.hd, p.hd) * p.scale;
		float mnew = __builtin_fmaxf(m, block_max(s, red));
		float e = j < end ? expf_(s - mnew) : 0.0f;
		ps[t] = e;
		float alpha = expf_(m - mnew); // 0 on the first tile (m = -Inf)
		l = l * alpha + block_sum(e, red); // block_sum's barriers publish ps
		i32 n = end - j0 < ATTN_TILE ? end - j0 : ATTN_TILE;
		for (i32 c = 0; c < ATTN_DPT; c++) {
			i32 d = t + c * ATTN_TILE;
			if (d >= p.hd) break;
			float a = acc[c] * alpha;
			const float* vj = v + (((i64)b * p.kvstride + j0) * p.kvheads + kvh) * p.hd + d;
			for (i32 jj = 0; jj < n; jj++) a += ps[jj] * vj[(i64)jj * p.kvheads * p.hd];
			acc[c] = a;
		}
		m = mnew;
		__syncthreads();
	}
	float* o = out + ((i64)row * p.heads + h) * p.hd;
	for (i32 c = 0; c < ATTN_DPT; c++) {
		i32 d = t + c * ATTN_TILE;
		if (d < p.hd) o[d] = acc[c] / l;
	}
	if (t == 0) lse[(i64)row * p.heads + h] = m + logf_(l);
}

// attention_backward_dq: dq, and delta[row·heads + h] = Σ dout·out for
// attention_backward_dkv. Grid (batch·seqq, heads).
KERNEL attention_backward_dq(float* dq, float* delta, const float* dout, const float* out, const float* lse,
                             const float* q, const float* k, const float* v, ATTN_ARGS) {
	attn p = ATTN_STRUCT;
	__shared__ float qs[ATTN_MAX_DIM];
	__shared__ float dos[ATTN_MAX_DIM];
	__shared__ float ds[ATTN_TILE];
	__shared__ float red[ATTN_TILE];
	i32 row = ctaid_x(), h = ctaid_y(), t = tid_x();
	i32 b = row / p.seqq, i = row - b * p.seqq;
	i32 kvh = h / (p.heads / p.kvheads);
	i32 start, end;
	keys_of(p, i, &start, &end);
	i64 at = ((i64)row * p.heads + h) * p.hd;
	float part = 0;
	for (i32 d = t; d < p.hd; d += ATTN_TILE) {
		qs[d] = q[at + d];
		dos[d] = dout[at + d];
		part += dout[at + d] * out[at + d];
	}
	float di = block_sum(part, red); // its barriers publish qs and dos
	float L = lse[(i64)row * p.heads + h];
	float acc[ATTN_DPT];
	for (i32 c = 0; c < ATTN_DPT; c++) acc[c] = 0;
	for (i32 j0 = start; j0 < end; j0 += ATTN_TILE) {
		i32 j = j0 + t;
		float g = 0;
		if (j < end) {
			i64 kj = (((i64)b * p.kvstride + j) * p.kvheads + kvh) * p.hd;
			float pr = expf_(dot(qs, k + kj, p.hd) * p.scale - L);
			g = pr * (dot(dos, v + kj, p.hd) - di);
		}
		ds[t] = g;
		__syncthreads();
		i32 n = end - j0 < ATTN_TILE ? end - j0 : ATTN_TILE;
		for (i32 c = 0; c < ATTN_DPT; c++) {
			i32 d = t + c * ATTN_TILE;
			if (d >= p.hd) break;
			const float* kd = k + (((i64)b * p.kvstride + j0) * p.kvheads + kvh) * p.hd + d;
			float a = acc[c];
			for (i32 jj = 0; jj < n; jj++) a += ds[jj] * kd[(i64)jj * p.kvheads * p.hd];
			acc[c] = a;
		}
		__syncthreads();
	}
	for (i32 c = 0; c < ATTN_DPT; c++) {
		i32 d = t + c * ATTN_TILE;
		if (d < p.hd) dq[at + d] = acc[c] * p.scale;
	}
	if (t == 0) delta[(i64)row * p.heads + h] = di;
}

// attention_backward_dkv: dk and dv of key row j of key/value head kvh,
// summed over every query (in order) of every head that reads kvh; rows
// at or past seqkv are zeroed. Grid (batch·kvstride, kvheads).
KERNEL attention_backward_dkv(float* dk, float* dv, const float* dout, const float* lse, const float* delta,
                              const float* q, const float* k, const float* v, ATTN_ARGS) {
	attn p = ATTN_STRUCT;
	__shared__ float ks[ATTN_MAX_DIM];
	__shared__ float vs[ATTN_MAX_DIM];
	__shared__ float pr[ATTN_TILE];
	__shared__ float ds[ATTN_TILE];
	i32 row = ctaid_x(), kvh = ctaid_y(), t = tid_x();
	i32 b = row / p.kvstride, j = row - b * p.kvstride;
	i64 at = ((i64)row * p.kvheads + kvh) * p.hd;
	if (j >= p.seqkv) {
		for (i32 d = t; d < p.hd; d += ATTN_TILE) dk[at + d] = dv[at + d] = 0;
		return;
	}
	for (i32 d = t; d < p.hd; d += ATTN_TILE) {
		ks[d] = k[at + d];
		vs[d] = v[at + d];
	}
	__syncthreads();
	float ak[ATTN_DPT], av[ATTN_DPT];
	for (i32 c = 0; c < ATTN_DPT; c++) ak[c] = av[c] = 0;
	i32 group = p.heads / p.kvheads;
	for (i32 h = kvh * group; h < (kvh + 1) * group; h++) {
		for (i32 i0 = 0; i0 < p.seqq; i0 += ATTN_TILE) {
			i32 i = i0 + t;
			float e = 0, g = 0;
			if (i < p.seqq) {
				i32 start, end;
				keys_of(p, i, &start, &end);
				if (j >= start && j < end) {
					i64 qi = (((i64)b * p.seqq + i) * p.heads + h) * p.hd;
					i64 li = ((i64)b * p.seqq + i) * p.heads + h;
					e = expf_(dot(q + qi, ks, p.hd) * p.scale - lse[li]);
					g = e * (dot(dout + qi, vs, p.hd) - delta[li]);
				}
			}
			pr[t] = e;
			ds[t] = g;
			__syncthreads();
			i32 n = p.seqq - i0 < ATTN_TILE ? p.seqq - i0 : ATTN_TILE;
			for (i32 c = 0; c < ATTN_DPT; c++) {
				i32 d = t + c * ATTN_TILE;
				if (d >= p.hd) break;
				i64 q0 = (((i64)b * p.seqq + i0) * p.heads + h) * p.hd + d;
				float sk = ak[c], sv = av[c];
				for (i32 ii = 0; ii < n; ii++) {
					i64 off = q0 + (i64)ii * p.heads * p.hd;
					sk += ds[ii] * q[off];
					sv += pr[ii] * dout[off];
				}
				ak[c] = sk;
				av[c] = sv;
			}
			__syncthreads();
		}
	}
	for (i32 c = 0; c < ATTN_DPT; c++) {
		i32 d = t + c * ATTN_TILE;
		if (d < p.hd) {
			dk[at + d] = ak[c] * p.scale;
			dv[at + d] = av[c];
		}
	}
}
