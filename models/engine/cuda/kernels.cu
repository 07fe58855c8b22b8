// mmablate's CUDA kernels: the CPU engine's layers (models/engine), fused
// where the CPU runs separate passes. Compiled at run time by NVRTC for the
// detected GPU (nvrtc.go). Every tensor is float32, row-major, laid out as
// the CPU engine lays it out; shapes are in the comments. Backward kernels
// ADD into gradients unless the comment says "sets".

typedef long long i64;

#define FULL 0xffffffffu
#define NEG_INF (-__int_as_float(0x7f800000))

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL, v, o);
    return v;
}
__device__ __forceinline__ double warp_sum_d(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL, v, o);
    return v;
}
// bf16_rn rounds x to bfloat16, to nearest with ties to even (what
// __float2bfloat16_rn does, without needing cuda_bf16.h's -I path); a NaN
// stays a (quiet) NaN.
__device__ __forceinline__ unsigned short bf16_rn(float x) {
    unsigned int u = __float_as_uint(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u);
    return (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
// bf16_f widens a bfloat16 to float (exact).
__device__ __forceinline__ float bf16_f(unsigned short h) { return __uint_as_float((unsigned int)h << 16); }

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(FULL, v, o));
    return v;
}

// block_sum / block_max: every thread gets the block's result. sh holds 32
// floats; blockDim.x is a multiple of 32, at most 1024.
__device__ float block_sum(float v, float* sh) {
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : 0.f;
    return warp_sum(v);
}
__device__ float block_max(float v, float* sh) {
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : NEG_INF;
    return warp_max(v);
}
__device__ double block_sum_d(double v, double* sh) {
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_sum_d(v);
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : 0.0;
    return warp_sum_d(v);
}

extern "C" {

// ---------------------------------------------------------------- embedding
// out [n, D] = W[ids[i]]; grid n, block any.
__global__ void embed_fwd(float* out, const float* W, const int* ids, int n, int D) {
    int i = blockIdx.x;
    const float* w = W + (i64)ids[i] * D;
    float* o = out + (i64)i * D;
    for (int j = threadIdx.x; j < D; j += blockDim.x) o[j] = w[j];
}
// dW[ids[i]] += dout[i]; grid n.
__global__ void embed_bwd(float* dW, const float* dout, const int* ids, int n, int D) {
    int i = blockIdx.x;
    float* dw = dW + (i64)ids[i] * D;
    const float* g = dout + (i64)i * D;
    for (int j = threadIdx.x; j < D; j += blockDim.x) atomicAdd(&dw[j], g[j]);
}

// ---------------------------------------------------------------- image tokens
// x[places[r]] = rows[r]: the connector's tokens (computed on the host)
// replace the placeholders' embeddings. rows [nrows, D]; grid nrows.
__global__ void rows_scatter(float* x, const float* rows, const int* places, int D) {
    int r = blockIdx.x;
    float* o = x + (i64)places[r] * D;
    const float* s = rows + (i64)r * D;
    for (int j = threadIdx.x; j < D; j += blockDim.x) o[j] = s[j];
}
// rows[r] = dx[places[r]], then dx[places[r]] = 0: the placeholders'
// input gradient belongs to the image tokens, not to the embedding table.
__global__ void rows_gather_clear(float* rows, float* dx, const int* places, int D) {
    int r = blockIdx.x;
    float* g = dx + (i64)places[r] * D;
    float* o = rows + (i64)r * D;
    for (int j = threadIdx.x; j < D; j += blockDim.x) { o[j] = g[j]; g[j] = 0.f; }
}

// ---------------------------------------------------------------- RMSNorm
// One warp per row. x, out [n, d]; rstd [n] saved; w [d]. oh (null: none)
// gets out rounded to bf16, a linear layer's operand in bf16 precision.
__global__ void rmsnorm_fwd(float* out, float* rstd, const float* x, const float* w, int n, int d, float eps,
                            unsigned short* oh) {
    int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (row >= n) return;
    const float* xr = x + (i64)row * d;
    float* o = out + (i64)row * d;
    float ss = 0.f;
    for (int j = lane; j < d; j += 32) ss += xr[j] * xr[j];
    ss = warp_sum(ss);
    float r = 1.f / sqrtf(ss / (float)d + eps);
    if (lane == 0) rstd[row] = r;
    unsigned short* ohr = oh ? oh + (i64)row * d : 0;
    for (int j = lane; j < d; j += 32) {
        float v = xr[j] * r * w[j];
        o[j] = v;
        if (ohr) ohr[j] = bf16_rn(v);
    }
}
// dx += r·(g⊙w − x·r·dot), dot = Σ g·w·x·r / d; dw += Σrows g·x·r.
// Block = some warps over rows [blockIdx.x·rows, +rows); dynamic shared
// memory d floats for the block's dw partial. dx may be null.
__global__ void rmsnorm_bwd(float* dx, float* dw, const float* dout, const float* x, const float* w,
                            const float* rstd, int n, int d, int rows) {
    extern __shared__ float sdw[];
    for (int j = threadIdx.x; j < d; j += blockDim.x) sdw[j] = 0.f;
    __syncthreads();
    int lane = threadIdx.x & 31, nw = blockDim.x >> 5;
    int r0 = blockIdx.x * rows, r1 = min(r0 + rows, n);
    for (int row = r0 + (threadIdx.x >> 5); row < r1; row += nw) {
        const float* xr = x + (i64)row * d;
        const float* g = dout + (i64)row * d;
        float r = rstd[row], dot = 0.f;
        for (int j = lane; j < d; j += 32) dot += g[j] * w[j] * xr[j] * r;
        dot = warp_sum(dot) / (float)d;
        for (int j = lane; j < d; j += 32) {
            atomicAdd(&sdw[j], g[j] * xr[j] * r);
            if (dx) dx[(i64)row * d + j] += r * (g[j] * w[j] - xr[j] * r * dot);
        }
    }
    __syncthreads();
    if (dw)
        for (int j = threadIdx.x; j < d; j += blockDim.x) atomicAdd(&dw[j], sdw[j]);
}

// ---------------------------------------------------------------- RoPE
// Rotate-half pairs (i, i+hd/2) of each head of x [n, heads·hd] by the
// angle of pos[t]; sign -1 is the backward (the transpose rotation);
// accumulate adds into out. cs, sn [maxPos, hd/2]. out may alias x. With
// oh (bf16 precision's forward) the result goes, rounded to bf16, to oh
// instead of out: q and k as the attention products' operands, which
// nothing else reads.
__global__ void rope(float* out, const float* x, const int* pos, const float* cs, const float* sn,
                     int n, int heads, int hd, float sign, int accumulate, unsigned short* oh) {
    i64 idx = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    int half = hd / 2;
    if (idx >= (i64)n * heads * half) return;
    int i = idx % half;
    i64 th = idx / half;
    int h = th % heads;
    i64 t = th / heads;
    int p = pos[t];
    float co = cs[p * half + i], s = sign * sn[p * half + i];
    i64 off = t * heads * hd + (i64)h * hd;
    float a = x[off + i], b = x[off + i + half];
    float oa = a * co - b * s, ob = b * co + a * s;
    if (oh) {
        oh[off + i] = bf16_rn(oa);
        oh[off + i + half] = bf16_rn(ob);
    } else if (accumulate) {
        out[off + i] += oa;
        out[off + i + half] += ob;
    } else {
        out[off + i] = oa;
        out[off + i + half] = ob;
    }
}

// ---------------------------------------------------------------- elementwise
// out = a + b over n.
__global__ void add(float* out, const float* a, const float* b, i64 n) {
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x)
        out[i] = a[i] + b[i];
}
// SwiGLU: s = σ(h1) saved, g = h1·s·h3 (sets); gh (null: none) gets g
// rounded to bf16.
__global__ void swiglu_fwd(float* g, float* s, const float* h1, const float* h3, i64 n, unsigned short* gh) {
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) {
        float v = h1[i], sg = 1.f / (1.f + expf(-v));
        s[i] = sg;
        float gi = v * sg * h3[i];
        g[i] = gi;
        if (gh) gh[i] = bf16_rn(gi);
    }
}
// In place: dg becomes dh1 = dg·h3·s·(1 + h1·(1−s)); dh3 = dg·h1·s (sets).
// With dgh (bf16 precision) the results go, rounded to bf16, to dgh and
// dh3h instead (the products' operands; nothing else reads them).
__global__ void swiglu_bwd(float* dg, float* dh3, const float* h1, const float* h3, const float* s, i64 n,
                           unsigned short* dgh, unsigned short* dh3h) {
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) {
        float v = h1[i], sg = s[i], d = dg[i];
        float a = d * v * sg, b = d * h3[i] * sg * (1.f + v * (1.f - sg));
        if (dgh) {
            dh3h[i] = bf16_rn(a);
            dgh[i] = bf16_rn(b);
        } else {
            dh3[i] = a;
            dg[i] = b;
        }
    }
}

// ---------------------------------------------------------------- attention
// Masked softmax in place over the score rows p [B·H, T, T] (already
// scaled): row t of sequence b sees keys s ≤ t (causal) whose document id
// equals its own (docs [B·T], null = one document); masked entries become
// 0 and a row with no allowed key is all 0. One pass over memory: the row's
// allowed scores are cached in shared memory (T floats). With causal row
// blocks of bs rows the products read only the first (t/bs+1)·bs entries of
// row t, so only those are written. grid (T, B·H).
__global__ void attn_softmax(float* p, const int* docs, int T, int H, int causal, int bs) {
    extern __shared__ float cache[];
    __shared__ float sh[32];
    int t = blockIdx.x, bh = blockIdx.y, b = bh / H;
    float* row = p + ((i64)bh * T + t) * T;
    const int* dc = docs ? docs + (i64)b * T : 0;
    int limit = causal ? t + 1 : T;
    int wend = causal ? min(T, (t / bs + 1) * bs) : T;
    int mine = dc ? dc[t] : 0;
    float mx = NEG_INF;
    for (int s = threadIdx.x; s < limit; s += blockDim.x) {
        float v = (!dc || dc[s] == mine) ? row[s] : NEG_INF;
        cache[s] = v;
        mx = fmaxf(mx, v);
    }
    mx = block_max(mx, sh);
    float sum = 0.f;
    for (int s = threadIdx.x; s < limit; s += blockDim.x) {
        float v = cache[s];
        float e = (v == NEG_INF || mx == NEG_INF) ? 0.f : expf(v - mx);
        cache[s] = e;
        sum += e;
    }
    sum = block_sum(sum, sh);
    float inv = sum > 0.f ? 1.f / sum : 0.f;
    for (int s = threadIdx.x; s < wend; s += blockDim.x) row[s] = s < limit ? cache[s] * inv : 0.f;
}
// Softmax backward in place: dp = p⊙(dp − Σ p·dp) per row over the entries
// the causal row blocks use (as attn_softmax); p and dp are read once into
// shared memory (2·T floats). grid (T, B·H).
__global__ void attn_softmax_bwd(float* dp, const float* p, int T, int causal, int bs) {
    extern __shared__ float cache[];
    __shared__ float sh[32];
    int t = blockIdx.x;
    i64 off = ((i64)blockIdx.y * T + t) * T;
    float* dr = dp + off;
    const float* pr = p + off;
    int limit = causal ? t + 1 : T;
    int wend = causal ? min(T, (t / bs + 1) * bs) : T;
    float* cp = cache;
    float* cd = cache + T;
    float dot = 0.f;
    for (int s = threadIdx.x; s < limit; s += blockDim.x) {
        float a = pr[s], g = dr[s];
        cp[s] = a;
        cd[s] = g;
        dot += a * g;
    }
    dot = block_sum(dot, sh);
    for (int s = threadIdx.x; s < wend; s += blockDim.x) dr[s] = s < limit ? cp[s] * (cd[s] - dot) : 0.f;
}

// attn_softmax and attn_softmax_bwd for rows of T ≤ 1024 keys: one warp
// per row, its 32 scores a lane in registers, 8 rows a block, so no shared
// memory and no block barriers (the block kernels above spend most of
// their time there at T = 1024). rows = B·H·T; grid ⌈rows/8⌉, block 256.
__global__ void attn_softmax_warp(float* p, const int* docs, int T, int H, int causal, int bs, i64 rows) {
    int lane = threadIdx.x & 31;
    i64 r = (i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (r >= rows) return;
    int t = r % T, b = (r / T) / H;
    float* row = p + r * T;
    const int* dc = docs ? docs + (i64)b * T : 0;
    int limit = causal ? t + 1 : T;
    int wend = causal ? min(T, (t / bs + 1) * bs) : T;
    int mine = dc ? dc[t] : 0;
    float v[32];
    float mx = NEG_INF;
#pragma unroll
    for (int i = 0; i < 32; i++) {
        int s = lane + 32 * i;
        float x = NEG_INF;
        if (s < limit && (!dc || dc[s] == mine)) x = row[s];
        v[i] = x;
        mx = fmaxf(mx, x);
    }
    mx = warp_max(mx);
    float sum = 0.f;
#pragma unroll
    for (int i = 0; i < 32; i++) {
        float e = (v[i] == NEG_INF || mx == NEG_INF) ? 0.f : expf(v[i] - mx);
        v[i] = e;
        sum += e;
    }
    sum = warp_sum(sum);
    float inv = sum > 0.f ? 1.f / sum : 0.f;
#pragma unroll
    for (int i = 0; i < 32; i++) {
        int s = lane + 32 * i;
        if (s < wend) row[s] = s < limit ? v[i] * inv : 0.f;
    }
}
__global__ void attn_softmax_bwd_warp(float* dp, const float* p, int T, int causal, int bs, i64 rows) {
    int lane = threadIdx.x & 31;
    i64 r = (i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (r >= rows) return;
    int t = r % T;
    float* dr = dp + r * T;
    const float* pr = p + r * T;
    int limit = causal ? t + 1 : T;
    int wend = causal ? min(T, (t / bs + 1) * bs) : T;
    float pv[32], gv[32];
    float dot = 0.f;
#pragma unroll
    for (int i = 0; i < 32; i++) {
        int s = lane + 32 * i;
        float a = 0.f, g = 0.f;
        if (s < limit) {
            a = pr[s];
            g = dr[s];
        }
        pv[i] = a;
        gv[i] = g;
        dot += a * g;
    }
    dot = warp_sum(dot);
#pragma unroll
    for (int i = 0; i < 32; i++) {
        int s = lane + 32 * i;
        if (s < wend) dr[s] = s < limit ? pv[i] * (gv[i] - dot) : 0.f;
    }
}

// bf16 precision's forms of the four kernels above, separate so the fp32
// ones keep their code and these carry no per-element mode branch (a
// runtime null-pointer test inside the unrolled register loops made both
// directions slower than fp32). attn_softmax_h reads the fp32 scores from
// s and writes the probabilities, rounded to bf16, to ph [B·H, T, T]: the
// products' operand and what the backward reads. attn_softmax_bwd_h reads
// dP from dp and the probabilities from ph, and writes dS, rounded to
// bf16, to dh (the products' operand; nothing else reads it). Same grids.
__global__ void attn_softmax_h(const float* sc, const int* docs, int T, int H, int causal, int bs, unsigned short* ph) {
    extern __shared__ float cache[];
    __shared__ float sh[32];
    int t = blockIdx.x, bh = blockIdx.y, b = bh / H;
    i64 off = ((i64)bh * T + t) * T;
    const float* row = sc + off;
    unsigned short* hrow = ph + off;
    const int* dc = docs ? docs + (i64)b * T : 0;
    int limit = causal ? t + 1 : T;
    int wend = causal ? min(T, (t / bs + 1) * bs) : T;
    int mine = dc ? dc[t] : 0;
    float mx = NEG_INF;
    for (int s = threadIdx.x; s < limit; s += blockDim.x) {
        float v = (!dc || dc[s] == mine) ? row[s] : NEG_INF;
        cache[s] = v;
        mx = fmaxf(mx, v);
    }
    mx = block_max(mx, sh);
    float sum = 0.f;
    for (int s = threadIdx.x; s < limit; s += blockDim.x) {
        float v = cache[s];
        float e = (v == NEG_INF || mx == NEG_INF) ? 0.f : expf(v - mx);
        cache[s] = e;
        sum += e;
    }
    sum = block_sum(sum, sh);
    float inv = sum > 0.f ? 1.f / sum : 0.f;
    for (int s = threadIdx.x; s < wend; s += blockDim.x) hrow[s] = bf16_rn(s < limit ? cache[s] * inv : 0.f);
}
__global__ void attn_softmax_bwd_h(const float* dp, const unsigned short* ph, int T, int causal, int bs, unsigned short* dh) {
    extern __shared__ float cache[];
    __shared__ float sh[32];
    int t = blockIdx.x;
    i64 off = ((i64)blockIdx.y * T + t) * T;
    const float* dr = dp + off;
    const unsigned short* pr = ph + off;
    unsigned short* dhr = dh + off;
    int limit = causal ? t + 1 : T;
    int wend = causal ? min(T, (t / bs + 1) * bs) : T;
    float* cp = cache;
    float* cd = cache + T;
    float dot = 0.f;
    for (int s = threadIdx.x; s < limit; s += blockDim.x) {
        float a = bf16_f(pr[s]), g = dr[s];
        cp[s] = a;
        cd[s] = g;
        dot += a * g;
    }
    dot = block_sum(dot, sh);
    for (int s = threadIdx.x; s < wend; s += blockDim.x) dhr[s] = bf16_rn(s < limit ? cp[s] * (cd[s] - dot) : 0.f);
}
__global__ void attn_softmax_warp_h(const float* sc, const int* docs, int T, int H, int causal, int bs, i64 rows,
                                    unsigned short* ph) {
    int lane = threadIdx.x & 31;
    i64 r = (i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (r >= rows) return;
    int t = r % T, b = (r / T) / H;
    const float* row = sc + r * T;
    unsigned short* hrow = ph + r * T;
    const int* dc = docs ? docs + (i64)b * T : 0;
    int limit = causal ? t + 1 : T;
    int wend = causal ? min(T, (t / bs + 1) * bs) : T;
    int mine = dc ? dc[t] : 0;
    float v[32];
    float mx = NEG_INF;
#pragma unroll
    for (int i = 0; i < 32; i++) {
        int s = lane + 32 * i;
        float x = NEG_INF;
        if (s < limit && (!dc || dc[s] == mine)) x = row[s];
        v[i] = x;
        mx = fmaxf(mx, x);
    }
    mx = warp_max(mx);
    float sum = 0.f;
#pragma unroll
    for (int i = 0; i < 32; i++) {
        float e = (v[i] == NEG_INF || mx == NEG_INF) ? 0.f : expf(v[i] - mx);
        v[i] = e;
        sum += e;
    }
    sum = warp_sum(sum);
    float inv = sum > 0.f ? 1.f / sum : 0.f;
#pragma unroll
    for (int i = 0; i < 32; i++) {
        int s = lane + 32 * i;
        if (s < wend) hrow[s] = bf16_rn(s < limit ? v[i] * inv : 0.f);
    }
}
__global__ void attn_softmax_bwd_warp_h(const float* dp, const unsigned short* ph, int T, int causal, int bs, i64 rows,
                                        unsigned short* dh) {
    int lane = threadIdx.x & 31;
    i64 r = (i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (r >= rows) return;
    int t = r % T;
    const float* dr = dp + r * T;
    const unsigned short* pr = ph + r * T;
    unsigned short* dhr = dh + r * T;
    int limit = causal ? t + 1 : T;
    int wend = causal ? min(T, (t / bs + 1) * bs) : T;
    float pv[32], gv[32];
    float dot = 0.f;
#pragma unroll
    for (int i = 0; i < 32; i++) {
        int s = lane + 32 * i;
        float a = 0.f, g = 0.f;
        if (s < limit) {
            a = bf16_f(pr[s]);
            g = dr[s];
        }
        pv[i] = a;
        gv[i] = g;
        dot += a * g;
    }
    dot = warp_sum(dot);
#pragma unroll
    for (int i = 0; i < 32; i++) {
        int s = lane + 32 * i;
        if (s < wend) dhr[s] = bf16_rn(s < limit ? pv[i] * (gv[i] - dot) : 0.f);
    }
}

// ---------------------------------------------------------------- cross-entropy
// Per row i of logits [n, V]: stats[2i] = max, stats[2i+1] = log Σ exp(x −
// max); rowloss[i] = mask[i]·(max − x[target] + logsum) (0 where mask is 0).
// grid n.
__global__ void ce_fwd(float* stats, float* rowloss, const float* logits, const int* targets,
                       const float* mask, int V) {
    __shared__ float sh[32];
    int i = blockIdx.x;
    const float* row = logits + (i64)i * V;
    // Online max and sum (one read of the row): s is Σ exp(x − m) so far.
    float m = NEG_INF, s = 0.f;
    for (int j = threadIdx.x; j < V; j += blockDim.x) {
        float v = row[j];
        if (v > m) {
            s = s * expf(m - v) + 1.f;
            m = v;
        } else {
            s += expf(v - m);
        }
    }
    float mx = block_max(m, sh);
    s = block_sum(m == NEG_INF ? 0.f : s * expf(m - mx), sh);
    if (threadIdx.x == 0) {
        float ls = logf(s);
        stats[2 * i] = mx;
        stats[2 * i + 1] = ls;
        float mk = mask[i];
        rowloss[i] = mk == 0.f ? 0.f : mk * ((mx - row[targets[i]]) + ls);
    }
}
// Sets dlogits = w·mask·(softmax − onehot(target)) (0 on unmasked rows).
// With dh (bf16 precision) it sets dh [n, V], rounded to bf16, instead:
// the logits products' operand, which nothing else reads.
__global__ void ce_bwd(float* dlogits, const float* logits, const float* stats, const int* targets,
                       const float* mask, int V, float w, unsigned short* dh) {
    int i = blockIdx.x;
    float* drow = dlogits + (i64)i * V;
    unsigned short* hrow = dh ? dh + (i64)i * V : 0;
    float m = mask[i];
    if (m == 0.f) {
        for (int j = threadIdx.x; j < V; j += blockDim.x) {
            if (hrow) hrow[j] = 0;
            else drow[j] = 0.f;
        }
        return;
    }
    const float* row = logits + (i64)i * V;
    float wi = w * m, mx = stats[2 * i], ls = stats[2 * i + 1];
    int t = targets[i];
    for (int j = threadIdx.x; j < V; j += blockDim.x) {
        float g = wi * expf(row[j] - mx - ls);
        g = j == t ? g - wi : g;
        if (hrow) hrow[j] = bf16_rn(g);
        else drow[j] = g;
    }
}

// ---------------------------------------------------------------- reductions
// partial[blockIdx.x] = Σ x² over a grid-stride share of x [n], in double.
__global__ void sumsq(double* partial, const float* x, i64 n) {
    __shared__ double sh[32];
    double acc = 0.0;
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) {
        double v = x[i];
        acc += v * v;
    }
    acc = block_sum_d(acc, sh);
    if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}
// partial[blockIdx.x] = Σ x over a grid-stride share, in double.
__global__ void sum(double* partial, const float* x, i64 n) {
    __shared__ double sh[32];
    double acc = 0.0;
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x)
        acc += x[i];
    acc = block_sum_d(acc, sh);
    if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

// ---------------------------------------------------------------- bf16 operands
// cast_bf16 sets out [n] (bf16) to in [n] rounded (bf16_rn): the operands
// of the bf16 matrix products. Four elements a thread where in and out are
// 16- and 8-byte aligned (whole allocations are), then the tail.
__global__ void cast_bf16(unsigned short* out, const float* in, i64 n) {
    i64 stride = (i64)gridDim.x * blockDim.x, i0 = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    i64 n4 = ((((unsigned long long)in | (unsigned long long)out) & 15) == 0) ? n / 4 : 0;
    const float4* in4 = (const float4*)in;
    uint2* out4 = (uint2*)out;
    for (i64 i = i0; i < n4; i += stride) {
        float4 f = in4[i];
        out4[i] = make_uint2((unsigned int)bf16_rn(f.x) | ((unsigned int)bf16_rn(f.y) << 16),
                             (unsigned int)bf16_rn(f.z) | ((unsigned int)bf16_rn(f.w) << 16));
    }
    for (i64 i = 4 * n4 + i0; i < n; i += stride) out[i] = bf16_rn(in[i]);
}

// ---------------------------------------------------------------- AdamW
// One block per chunk [lo[c], hi[c]) of the parameter arena (chunks never
// straddle tensors; frozen tensors have none); flags[c] & 1 = decay. The
// gradient is scaled by clip first (1 = no clipping), as the CPU engine's
// ClipGradNorm then AdamW.Step compute it. Where wh is not null (bf16
// precision) it also sets wh [P] to the new weights rounded to bf16: the
// copy the matrix products read, refreshed once per step.
__global__ void adamw(float* w, float* g, float* m, float* v, const i64* lo, const i64* hi, const int* flags,
                      float clip, float b1, float b2, float eps, float step, float inv, float decay, unsigned short* wh) {
    int c = blockIdx.x;
    int dec = flags[c] & 1;
    float ob1 = 1.f - b1, ob2 = 1.f - b2;
    for (i64 i = lo[c] + threadIdx.x; i < hi[c]; i += blockDim.x) {
        float gi = g[i] * clip;
        float mi = b1 * m[i] + ob1 * gi;
        float vi = b2 * v[i] + ob2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float upd = step * mi / (sqrtf(vi) * inv + eps);
        float wi = dec ? w[i] * decay - upd : w[i] - upd;
        w[i] = wi;
        if (wh) wh[i] = bf16_rn(wi);
    }
}

// ---------------------------------------------------------------- image path
// The ViT's and the connectors' layers (models/vision, models/connector):
// LayerNorm (the ViT's and LayerNorm2d, channels-last), broadcast adds
// (biases, the position embedding), GELU (erf), SiLU, a plain row softmax
// (bidirectional and cross attention), adaptive average pooling and the
// im2col / col2im of a convolution on NHWC grids.

// LayerNorm over the last dimension, one warp per row: out = (x − mean)·rstd
// ⊙ w + b (biased variance); mean, rstd [n] saved. x, out [n, d].
__global__ void layernorm_fwd(float* out, float* mean, float* rstd, const float* x, const float* w,
                              const float* b, int n, int d, float eps) {
    int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (row >= n) return;
    const float* xr = x + (i64)row * d;
    float s = 0.f;
    for (int j = lane; j < d; j += 32) s += xr[j];
    float mu = warp_sum(s) / (float)d;
    float ss = 0.f;
    for (int j = lane; j < d; j += 32) {
        float e = xr[j] - mu;
        ss += e * e;
    }
    float r = 1.f / sqrtf(warp_sum(ss) / (float)d + eps);
    if (lane == 0) {
        mean[row] = mu;
        rstd[row] = r;
    }
    float* o = out + (i64)row * d;
    for (int j = lane; j < d; j += 32) o[j] = (xr[j] - mu) * r * w[j] + b[j];
}
// With x̂ = (x − mean)·r and g = dout ⊙ w: dx += r·(g − mean(g) − x̂·mean(g ⊙ x̂)),
// dw += Σrows dout ⊙ x̂, db += Σrows dout. Blocks of warps over rows
// [blockIdx.x·rows, +rows), one row per warp at a time; dynamic shared
// memory 2·d floats for the block's dw and db partials. dx may be null.
__global__ void layernorm_bwd(float* dx, float* dw, float* db, const float* dout, const float* x, const float* w,
                              const float* mean, const float* rstd, int n, int d, int rows) {
    extern __shared__ float sdw[];
    float* sdb = sdw + d;
    for (int j = threadIdx.x; j < 2 * d; j += blockDim.x) sdw[j] = 0.f;
    __syncthreads();
    int lane = threadIdx.x & 31, nw = blockDim.x >> 5;
    int r0 = blockIdx.x * rows, r1 = min(r0 + rows, n);
    for (int row = r0 + (threadIdx.x >> 5); row < r1; row += nw) {
        const float* xr = x + (i64)row * d;
        const float* g = dout + (i64)row * d;
        float m = mean[row], r = rstd[row], sg = 0.f, sgx = 0.f;
        for (int j = lane; j < d; j += 32) {
            float gw = g[j] * w[j];
            sg += gw;
            sgx += gw * (xr[j] - m) * r;
        }
        sg = warp_sum(sg) / (float)d;
        sgx = warp_sum(sgx) / (float)d;
        for (int j = lane; j < d; j += 32) {
            float xh = (xr[j] - m) * r;
            atomicAdd(&sdw[j], g[j] * xh);
            atomicAdd(&sdb[j], g[j]);
            if (dx) dx[(i64)row * d + j] += r * (g[j] * w[j] - sg - xh * sgx);
        }
    }
    __syncthreads();
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        atomicAdd(&dw[j], sdw[j]);
        atomicAdd(&db[j], sdb[j]);
    }
}

// y[i] += row[i mod period] over y [n]: a bias on every row of [n/period,
// period], or the position embedding [Np·D] on every image of [K, Np, D].
__global__ void add_bcast(float* y, const float* row, i64 n, int period) {
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x)
        y[i] += row[i % period];
}

// dst [cols] += Σ_r src [rows, cols]: block (x, y) sums columns
// [x·blockDim, +blockDim) over rows [y·chunk, +chunk), reading rows
// coalesced, and adds its partial atomically (bias gradients, the position
// embedding's gradient over images, attnpool's query gradient).
__global__ void colsum(float* dst, const float* src, int rows, int cols, int chunk) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    int r0 = blockIdx.y * chunk, r1 = min(r0 + chunk, rows);
    float s = 0.f;
    for (int r = r0; r < r1; r++) s += src[(i64)r * cols + c];
    atomicAdd(&dst[c], s);
}

// GELU, the exact form: a = h·Φ(h) = 0.5·h·(1 + erf(h/√2)) (sets).
__global__ void gelu_fwd(float* a, const float* h, i64 n) {
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) {
        float v = h[i];
        a[i] = 0.5f * v * (1.f + erff(v * 0.70710678118654752f));
    }
}
// In place: d ⊙= GELU'(h) = Φ(h) + h·φ(h).
__global__ void gelu_bwd(float* d, const float* h, i64 n) {
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) {
        float v = h[i];
        float g = 0.5f * (1.f + erff(v * 0.70710678118654752f)) + v * 0.39894228040143268f * expf(-0.5f * v * v);
        d[i] *= g;
    }
}

// SiLU: out = x·σ(x) (sets).
__global__ void silu_fwd(float* out, const float* x, i64 n) {
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) {
        float v = x[i];
        out[i] = v / (1.f + expf(-v));
    }
}
// dx = dout·σ(x)·(1 + x·(1 − σ(x))) (sets).
__global__ void silu_bwd(float* dx, const float* dout, const float* x, i64 n) {
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) {
        float v = x[i], s = 1.f / (1.f + expf(-v));
        dx[i] = dout[i] * s * (1.f + v * (1.f - s));
    }
}

// Unmasked softmax in place over each row of p [rows, L] (the scores,
// already scaled), the row cached in shared memory (L floats). grid rows.
__global__ void softmax_rows(float* p, int L) {
    extern __shared__ float cache[];
    __shared__ float sh[32];
    float* row = p + (i64)blockIdx.x * L;
    float mx = NEG_INF;
    for (int s = threadIdx.x; s < L; s += blockDim.x) {
        float v = row[s];
        cache[s] = v;
        mx = fmaxf(mx, v);
    }
    mx = block_max(mx, sh);
    float sum = 0.f;
    for (int s = threadIdx.x; s < L; s += blockDim.x) {
        float e = expf(cache[s] - mx);
        cache[s] = e;
        sum += e;
    }
    sum = block_sum(sum, sh);
    float inv = 1.f / sum;
    for (int s = threadIdx.x; s < L; s += blockDim.x) row[s] = cache[s] * inv;
}
// Its backward in place: dp = p ⊙ (dp − Σ p·dp) per row. grid rows.
__global__ void softmax_rows_bwd(float* dp, const float* p, int L) {
    __shared__ float sh[32];
    i64 off = (i64)blockIdx.x * L;
    float* dr = dp + off;
    const float* pr = p + off;
    float dot = 0.f;
    for (int s = threadIdx.x; s < L; s += blockDim.x) dot += pr[s] * dr[s];
    dot = block_sum(dot, sh);
    for (int s = threadIdx.x; s < L; s += blockDim.x) dr[s] = pr[s] * (dr[s] - dot);
}

// Adaptive average pooling of x [B, H, W, C] (NHWC) into out [B, oh, ow, C]
// with PyTorch's cells: output row i spans input rows [⌊i·H/oh⌋,
// ⌈(i+1)·H/oh⌉), likewise columns (sets).
__global__ void avgpool_fwd(float* out, const float* x, int B, int H, int W, int C, int oh, int ow) {
    i64 n = (i64)B * oh * ow * C;
    for (i64 idx = (i64)blockIdx.x * blockDim.x + threadIdx.x; idx < n; idx += (i64)gridDim.x * blockDim.x) {
        int c = idx % C;
        i64 t = idx / C;
        int j = t % ow;
        t /= ow;
        int i = t % oh;
        int b = t / oh;
        int y0 = i * H / oh, y1 = ((i + 1) * H + oh - 1) / oh;
        int x0 = j * W / ow, x1 = ((j + 1) * W + ow - 1) / ow;
        float w = 1.f / (float)((y1 - y0) * (x1 - x0)), s = 0.f;
        for (int y = y0; y < y1; y++)
            for (int xx = x0; xx < x1; xx++) s += w * x[(((i64)b * H + y) * W + xx) * C + c];
        out[idx] = s;
    }
}
// dx [B, H, W, C] += each output cell's gradient share at every input
// position of the cell (cells may overlap), gathered per input element.
__global__ void avgpool_bwd(float* dx, const float* dout, int B, int H, int W, int C, int oh, int ow) {
    i64 n = (i64)B * H * W * C;
    for (i64 idx = (i64)blockIdx.x * blockDim.x + threadIdx.x; idx < n; idx += (i64)gridDim.x * blockDim.x) {
        int c = idx % C;
        i64 t = idx / C;
        int xx = t % W;
        t /= W;
        int y = t % H;
        int b = t / H;
        float s = 0.f;
        for (int i = 0; i < oh; i++) {
            int y0 = i * H / oh, y1 = ((i + 1) * H + oh - 1) / oh;
            if (y < y0 || y >= y1) continue;
            for (int j = 0; j < ow; j++) {
                int x0 = j * W / ow, x1 = ((j + 1) * W + ow - 1) / ow;
                if (xx < x0 || xx >= x1) continue;
                float w = 1.f / (float)((y1 - y0) * (x1 - x0));
                s += w * dout[(((i64)b * oh + i) * ow + j) * C + c];
            }
        }
        dx[idx] += s;
    }
}

// im2col of a K×K convolution (stride, zero padding pad) on x [B, H, W, C]:
// cols [B·Ho·Wo, C·K·K], each row one output position's receptive field in
// (channel, ky, kx) order, the order of a weight row [Out, C, K, K] (sets).
__global__ void im2col(float* cols, const float* x, int B, int H, int W, int C, int K, int stride, int pad,
                       int Ho, int Wo) {
    int row = C * K * K;
    i64 n = (i64)B * Ho * Wo * row;
    for (i64 idx = (i64)blockIdx.x * blockDim.x + threadIdx.x; idx < n; idx += (i64)gridDim.x * blockDim.x) {
        int col = idx % row;
        i64 r = idx / row;
        int ox = r % Wo;
        i64 t = r / Wo;
        int oy = t % Ho;
        int b = t / Ho;
        int c = col / (K * K), kk = col % (K * K);
        int y = oy * stride - pad + kk / K, xx = ox * stride - pad + kk % K;
        cols[idx] = (y >= 0 && y < H && xx >= 0 && xx < W) ? x[(((i64)b * H + y) * W + xx) * C + c] : 0.f;
    }
}
// col2im: dx [B, H, W, C] += every cols entry that im2col read from it,
// gathered per dx element (no atomics).
__global__ void col2im(float* dx, const float* cols, int B, int H, int W, int C, int K, int stride, int pad,
                       int Ho, int Wo) {
    int row = C * K * K;
    i64 n = (i64)B * H * W * C;
    for (i64 idx = (i64)blockIdx.x * blockDim.x + threadIdx.x; idx < n; idx += (i64)gridDim.x * blockDim.x) {
        int c = idx % C;
        i64 t = idx / C;
        int xx = t % W;
        t /= W;
        int y = t % H;
        int b = t / H;
        float s = 0.f;
        for (int ky = 0; ky < K; ky++) {
            int sy = y + pad - ky;
            if (sy < 0 || sy % stride != 0 || sy / stride >= Ho) continue;
            for (int kx = 0; kx < K; kx++) {
                int sx = xx + pad - kx;
                if (sx < 0 || sx % stride != 0 || sx / stride >= Wo) continue;
                i64 r = ((i64)b * Ho + sy / stride) * Wo + sx / stride;
                s += cols[r * row + c * K * K + ky * K + kx];
            }
        }
        dx[idx] += s;
    }
}

} // extern "C"
