// mmablate's CUDA kernels: the CPU engine's layers (models/engine), fused
// where the CPU runs separate passes. Compiled at run time by NVRTC for the
// detected GPU (nvrtc.go). Tensors are row-major, laid out as the CPU
// engine lays them out, float32 unless named bf16 (unsigned short: the
// products' bf16 operands and outputs, doc.go); shapes are in the comments.
// Backward kernels ADD into gradients unless the comment says "sets".

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
// pack4_bf16 rounds four floats to bf16 (bf16_rn), in memory order.
__device__ __forceinline__ uint2 pack4_bf16(float4 v) {
    return make_uint2((unsigned int)bf16_rn(v.x) | ((unsigned int)bf16_rn(v.y) << 16),
                      (unsigned int)bf16_rn(v.z) | ((unsigned int)bf16_rn(v.w) << 16));
}
// ld_bf16x4 widens bf16 elements 4·i … 4·i+3 of p (8-byte aligned).
__device__ __forceinline__ float4 ld_bf16x4(const unsigned short* p, i64 i) {
    uint2 u = ((const uint2*)p)[i];
    return make_float4(__uint_as_float(u.x << 16), __uint_as_float(u.x & 0xffff0000u), __uint_as_float(u.y << 16),
                       __uint_as_float(u.y & 0xffff0000u));
}
// An input of q or k heads is x (fp32) or, where x is null, xh (bf16:
// bf16 precision's projection writes q|k so), its tokens xs elements
// apart; xat is element i, xat4 elements i … i+3 (i a multiple of 4).
__device__ __forceinline__ float xat(const float* x, const unsigned short* xh, i64 i) {
    return x ? x[i] : bf16_f(xh[i]);
}
__device__ __forceinline__ float4 xat4(const float* x, const unsigned short* xh, i64 i) {
    return x ? *(const float4*)(x + i) : ld_bf16x4(xh + i, 0);
}

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
// gets out rounded to bf16, a linear layer's operand in bf16 precision;
// out may then be null (bf16 precision's linear layers read only oh).
// With a (not null) the row is first set to x = a + b (the residual add
// before a norm, in the same pass); with b null, b's bf16 form bh (bf16
// precision's branch output).
__global__ void rmsnorm_fwd(float* out, float* rstd, float* x, const float* w, int n, int d, float eps,
                            unsigned short* oh, const float* a, const float* b, const unsigned short* bh) {
    int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (row >= n) return;
    float* xr = x + (i64)row * d;
    float* o = out ? out + (i64)row * d : 0;
    float ss = 0.f;
    if (a) {
        const float* ar = a + (i64)row * d;
        for (int j = lane; j < d; j += 32) {
            float v = ar[j] + (b ? b[(i64)row * d + j] : bf16_f(bh[(i64)row * d + j]));
            xr[j] = v;
            ss += v * v;
        }
    } else {
        for (int j = lane; j < d; j += 32) ss += xr[j] * xr[j];
    }
    ss = warp_sum(ss);
    float r = 1.f / sqrtf(ss / (float)d + eps);
    if (lane == 0) rstd[row] = r;
    unsigned short* ohr = oh ? oh + (i64)row * d : 0;
    for (int j = lane; j < d; j += 32) {
        float v = xr[j] * r * w[j];
        if (o) o[j] = v;
        if (ohr) ohr[j] = bf16_rn(v);
    }
}
// dx += r·(g⊙w − x·r·dot), dot = Σ g·w·x·r / d; dw += Σrows g·x·r.
// With res, dx = res + … instead (sets: the residual stream's gradient
// passing the norm, without a copy first); with dxh, dx's bf16 rounding
// goes there as well (the next linear backward's operand).
// Block = some warps over rows [blockIdx.x·rows, +rows); dynamic shared
// memory d floats for the block's dw partial. dx may be null. dout may be
// null and its bf16 form douth given instead (bf16 precision's products
// write the norms' output gradients so).
__global__ void rmsnorm_bwd(float* dx, float* dw, const float* dout, const float* x, const float* w,
                            const float* rstd, int n, int d, int rows, const float* res, unsigned short* dxh,
                            const unsigned short* douth) {
    extern __shared__ float sdw[];
    for (int j = threadIdx.x; j < d; j += blockDim.x) sdw[j] = 0.f;
    __syncthreads();
    int lane = threadIdx.x & 31, nw = blockDim.x >> 5;
    int r0 = blockIdx.x * rows, r1 = min(r0 + rows, n);
    for (int row = r0 + (threadIdx.x >> 5); row < r1; row += nw) {
        const float* xr = x + (i64)row * d;
        const float* g = dout ? dout + (i64)row * d : 0;
        const unsigned short* gh = douth + (i64)row * d;
        float r = rstd[row], dot = 0.f;
        for (int j = lane; j < d; j += 32) dot += (g ? g[j] : bf16_f(gh[j])) * w[j] * xr[j] * r;
        dot = warp_sum(dot) / (float)d;
        for (int j = lane; j < d; j += 32) {
            float gj = g ? g[j] : bf16_f(gh[j]);
            atomicAdd(&sdw[j], gj * xr[j] * r);
            if (dx) {
                i64 i = (i64)row * d + j;
                float v = (res ? res[i] : dx[i]) + r * (gj * w[j] - xr[j] * r * dot);
                dx[i] = v;
                if (dxh) dxh[i] = bf16_rn(v);
            }
        }
    }
    __syncthreads();
    if (dw)
        for (int j = threadIdx.x; j < d; j += blockDim.x) atomicAdd(&dw[j], sdw[j]);
}

// Vectorised forms for rows of d % 4 == 0 floats, 16-byte aligned (the
// launchers check; else the kernels above): rmsnorm_fwd4 for d ≤
// 128·RMS_VEC, each lane keeping its float4 chunks (lane + 32·k) of the
// row in registers, so every input is read once with 16-byte loads, and
// rmsnorm_bwd_cols for d ≤ 4096. The arithmetic is the kernels above's,
// element for element; only the order of the row sums differs.
#define RMS_VEC 8
__device__ __forceinline__ float4 ld_w4(const float* w, int c) {
    return make_float4(w[4 * c], w[4 * c + 1], w[4 * c + 2], w[4 * c + 3]); // w: anywhere in the arena
}
__global__ void rmsnorm_fwd4(float* out, float* rstd, float* x, const float* w, int n, int d, float eps,
                             unsigned short* oh, const float* a, const float* b, const unsigned short* bh) {
    int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31, d4 = d >> 2;
    if (row >= n) return;
    i64 base = (i64)row * d;
    float4* xr = (float4*)(x + base);
    float4 v[RMS_VEC];
    float ss = 0.f;
#pragma unroll
    for (int k = 0; k < RMS_VEC; k++) {
        int c = lane + 32 * k;
        if (c < d4) {
            float4 t;
            if (a) {
                float4 p = ((const float4*)(a + base))[c], q = b ? ((const float4*)(b + base))[c] : ld_bf16x4(bh + base, c);
                t = make_float4(p.x + q.x, p.y + q.y, p.z + q.z, p.w + q.w);
                xr[c] = t;
            } else {
                t = xr[c];
            }
            v[k] = t;
            ss += t.x * t.x + t.y * t.y + t.z * t.z + t.w * t.w;
        }
    }
    ss = warp_sum(ss);
    float r = 1.f / sqrtf(ss / (float)d + eps);
    if (lane == 0) rstd[row] = r;
#pragma unroll
    for (int k = 0; k < RMS_VEC; k++) {
        int c = lane + 32 * k;
        if (c < d4) {
            float4 t = v[k], g = ld_w4(w, c);
            float4 o = make_float4(t.x * r * g.x, t.y * r * g.y, t.z * r * g.z, t.w * r * g.w);
            if (out) ((float4*)(out + base))[c] = o;
            if (oh) ((uint2*)(oh + base))[c] = pack4_bf16(o);
        }
    }
}
// rmsnorm_bwd_cols: the vectorised backward with a block across the row:
// thread c owns the float4 chunk c of every row (blockDim.x ≥ d/4), so a
// thread holds three float4 of a row and needs ~40 registers. A warp per
// row holding its lanes' chunks in registers (the kernel this replaced)
// needed ~220: two blocks of four warps an SM, each warp waiting out its
// row's loads with few others to cover them, at 122 µs a reference call
// (2.2 TB/s) where this one takes 97 (2.75 TB/s; BenchmarkBandwidthKernels,
// which also measured two and four rows an iteration no faster). The
// warps' sums of a row meet in shared memory, double-buffered: one
// barrier a row. dw: each thread's chunk partial in registers across the
// block's rows, then one atomic add per column a block.
__global__ void rmsnorm_bwd_cols(float* dx, float* dw, const float* dout, const float* x, const float* w,
                                 const float* rstd, int n, int d, int rows, const float* res, unsigned short* dxh,
                                 const unsigned short* douth) {
    __shared__ float part[2][32];
    int c = threadIdx.x, lane = c & 31, wid = c >> 5, nw = blockDim.x >> 5, d4 = d >> 2;
    bool on = c < d4;
    float4 z = make_float4(0.f, 0.f, 0.f, 0.f), ww = on ? ld_w4(w, c) : z, acc = z;
    int r0 = blockIdx.x * rows, r1 = min(r0 + rows, n), buf = 0;
    for (int row = r0; row < r1; row++, buf ^= 1) {
        i64 base = (i64)row * d;
        float4 g = z, xx = z, o = z;
        if (on) {
            g = dout ? ((const float4*)(dout + base))[c] : ld_bf16x4(douth + base, c);
            xx = ((const float4*)(x + base))[c];
            if (dx) o = ((const float4*)(res ? res + base : dx + base))[c];
        }
        float r = rstd[row];
        float dot = warp_sum(g.x * ww.x * xx.x * r + g.y * ww.y * xx.y * r + g.z * ww.z * xx.z * r +
                             g.w * ww.w * xx.w * r);
        if (lane == 0) part[buf][wid] = dot;
        // Every thread read part[buf] of two rows ago before it reached
        // the last row's barrier: this row's writes are safe.
        __syncthreads();
        dot = 0.f;
        for (int i = 0; i < nw; i++) dot += part[buf][i];
        dot /= (float)d;
        if (!on) continue;
        acc.x += g.x * xx.x * r;
        acc.y += g.y * xx.y * r;
        acc.z += g.z * xx.z * r;
        acc.w += g.w * xx.w * r;
        if (dx) {
            o.x += r * (g.x * ww.x - xx.x * r * dot);
            o.y += r * (g.y * ww.y - xx.y * r * dot);
            o.z += r * (g.z * ww.z - xx.z * r * dot);
            o.w += r * (g.w * ww.w - xx.w * r * dot);
            ((float4*)(dx + base))[c] = o;
            if (dxh) ((uint2*)(dxh + base))[c] = pack4_bf16(o);
        }
    }
    if (dw && on) {
        atomicAdd(&dw[4 * c], acc.x);
        atomicAdd(&dw[4 * c + 1], acc.y);
        atomicAdd(&dw[4 * c + 2], acc.z);
        atomicAdd(&dw[4 * c + 3], acc.w);
    }
}

// ---------------------------------------------------------------- RoPE
// rot_store writes a rotated pair (a at i, b at i + half): rounded to bf16
// into h at ho where h is not null, else to f at fo.
__device__ __forceinline__ void rot_store(float* f, i64 fo, unsigned short* h, i64 ho, int i, int half, float a, float b) {
    if (h) {
        h[ho + i] = bf16_rn(a);
        h[ho + i + half] = bf16_rn(b);
    } else {
        f[fo + i] = a;
        f[fo + i + half] = b;
    }
}
// Rotate-half pairs (i, i+hd/2) of each head of x [n, heads·hd] by the
// angle of pos[t]; sign -1 is the backward (the transpose rotation). cs,
// sn [maxPos, hd/2]. out may alias x. With
// oh (bf16 precision's forward) the result goes, rounded to bf16, to oh
// instead of out: q and k as the attention products' operands, which
// nothing else reads, or their gradients as the products read them; oh's
// rows are hs elements apart (heads·hd, or the fused q|k|v gradient's
// width).
__global__ void rope(float* out, const float* x, const int* pos, const float* cs, const float* sn,
                     int n, int heads, int hd, float sign, unsigned short* oh, int hs,
                     const unsigned short* xh, int xs) {
    i64 idx = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    int half = hd / 2;
    if (idx >= (i64)n * heads * half) return;
    int i = idx % half;
    i64 th = idx / half;
    int h = th % heads;
    i64 t = th / heads;
    int p = pos[t];
    float co = cs[p * half + i], s = sign * sn[p * half + i];
    i64 off = t * heads * hd + (i64)h * hd, xo = t * xs + (i64)h * hd;
    float a = xat(x, xh, xo + i), b = xat(x, xh, xo + i + half);
    rot_store(out, off, oh, t * hs + (i64)h * hd, i, half, a * co - b * s, b * co + a * s);
}

// qk-norm then RoPE in one pass (the reference decoder's q and k): the
// input is x or xh (xat: the projection's output, tokens xs elements
// apart), rows = n·heads rows of hd; rstd [rows] saved; w [hd] the norm's
// weight. The normalised row (as
// rmsnorm_fwd computes it) rotated by pos[row / heads] (as rope, sign +1)
// goes to out, or rounded to bf16 to oh where oh is not null. One warp per
// row; lane l holds the rotate pairs (i, i + hd/2), i = l, l + 32, ….
__global__ void qknorm_rope_fwd(float* out, unsigned short* oh, float* rstd, const float* x, const float* w,
                                const int* pos, const float* cs, const float* sn, i64 rows, int heads, int hd,
                                float eps, const unsigned short* xh, int xs) {
    i64 row = (i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31, half = hd >> 1;
    if (row >= rows) return;
    i64 xo = row / heads * xs + row % heads * hd;
    float ss = 0.f;
    for (int j = lane; j < hd; j += 32) {
        float v = xat(x, xh, xo + j);
        ss += v * v;
    }
    ss = warp_sum(ss);
    float r = 1.f / sqrtf(ss / (float)hd + eps);
    if (lane == 0) rstd[row] = r;
    int p = pos[row / heads];
    i64 off = row * hd;
    for (int i = lane; i < half; i += 32) {
        float a = xat(x, xh, xo + i) * r * w[i], b = xat(x, xh, xo + i + half) * r * w[i + half];
        float co = cs[p * half + i], s = sn[p * half + i];
        rot_store(out, off, oh, off, i, half, a * co - b * s, b * co + a * s);
    }
}
// Its backward: dy [rows, hd] is ∂L/∂(rotated row). Rotated back (sign
// −1) it is g, the normalised row's gradient; then as rmsnorm_bwd, dx =
// r·(g⊙w − x·r·dot) (sets dx, or rounded to bf16 dxh where dxh is not
// null; dxh's tokens hs elements apart, as rope's oh) and dw += Σrows g·x·r. Rows [blockIdx.x·per, +per), each warp
// every nw-th; dynamic shared memory nw·hd floats, each warp's dw partial
// (each lane owns its columns, so no atomics until the block's one sum).
__global__ void qknorm_rope_bwd(float* dx, unsigned short* dxh, float* dw, const float* dy, const float* x,
                                const float* w, const float* rstd, const int* pos, const float* cs, const float* sn,
                                i64 rows, int heads, int hd, int per, int hs, const unsigned short* xh, int xs) {
    extern __shared__ float sqk[];
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5, half = hd >> 1;
    float* my = sqk + wid * hd;
    for (int j = lane; j < hd; j += 32) my[j] = 0.f;
    i64 r0 = (i64)blockIdx.x * per, r1 = min(r0 + (i64)per, rows);
    for (i64 row = r0 + wid; row < r1; row += nw) {
        i64 off = row * hd, xo = row / heads * xs + row % heads * hd;
        const float* dr = dy + off;
        int p = pos[row / heads];
        i64 ho = row / heads * hs + row % heads * hd;
        float r = rstd[row], dot = 0.f;
        for (int i = lane; i < half; i += 32) {
            float co = cs[p * half + i], s = -sn[p * half + i], a = dr[i], b = dr[i + half];
            float ga = a * co - b * s, gb = b * co + a * s;
            dot += ga * w[i] * xat(x, xh, xo + i) * r;
            dot += gb * w[i + half] * xat(x, xh, xo + i + half) * r;
        }
        dot = warp_sum(dot) / (float)hd;
        for (int i = lane; i < half; i += 32) {
            float co = cs[p * half + i], s = -sn[p * half + i], a = dr[i], b = dr[i + half];
            float ga = a * co - b * s, gb = b * co + a * s;
            float xa = xat(x, xh, xo + i), xb = xat(x, xh, xo + i + half);
            my[i] += ga * xa * r;
            my[i + half] += gb * xb * r;
            rot_store(dx, off, dxh, ho, i, half, r * (ga * w[i] - xa * r * dot), r * (gb * w[i + half] - xb * r * dot));
        }
    }
    __syncthreads();
    for (int j = threadIdx.x; j < hd; j += blockDim.x) {
        float s = 0.f;
        for (int k = 0; k < nw; k++) s += sqk[k * hd + j];
        atomicAdd(&dw[j], s);
    }
}

// rot_store4 is rot_store for four consecutive pairs (i0 a multiple of 4).
__device__ __forceinline__ void rot_store4(float* f, i64 fo, unsigned short* h, i64 ho, int i0, int half, float4 a, float4 b) {
    if (h) {
        *(uint2*)(h + ho + i0) = pack4_bf16(a);
        *(uint2*)(h + ho + half + i0) = pack4_bf16(b);
    } else {
        *(float4*)(f + fo + i0) = a;
        *(float4*)(f + fo + half + i0) = b;
    }
}

// The same two for head widths hd = 8·L, L a power of two ≤ 32 (the
// reference's 64: L = 8), with 16-byte aligned rows (the launchers check):
// L lanes share a row, lane l holding pairs 4l … 4l+3 as two float4, so a
// warp works on 32/L rows at once with 16-byte loads, striding over the
// rows. One warp per row (above) waits on memory latency at a quarter of
// the bandwidth. In the backward each lane's dw columns stay fixed, so
// their partial sums stay in registers until the block's one sum.
__device__ __forceinline__ float4 f4(float a) { return make_float4(a, a, a, a); }
__device__ __forceinline__ float4 ld4(const float* p) { return *(const float4*)p; }
__device__ __forceinline__ float seg_sum(float v, int L) { // over the L lanes of a row
    for (int o = L >> 1; o > 0; o >>= 1) v += __shfl_xor_sync(FULL, v, o);
    return v;
}
__global__ void qknorm_rope_fwd4(float* out, unsigned short* oh, float* rstd, const float* x, const float* w,
                                 const int* pos, const float* cs, const float* sn, i64 rows, int heads, int hd,
                                 float eps, const unsigned short* xh, int xs) {
    int lane = threadIdx.x & 31, L = hd >> 3, R = 32 / L, half = hd >> 1, i0 = 4 * (lane % L);
    float4 wa = ld_w4(w + i0, 0), wb = ld_w4(w + half + i0, 0);
    i64 warp = ((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5, nwarps = ((i64)gridDim.x * blockDim.x) >> 5;
    for (i64 g = warp; g * R < rows; g += nwarps) {
        i64 row = g * R + lane / L, off = row * hd, xo = row / heads * xs + row % heads * hd;
        bool ok = row < rows;
        float4 a = f4(0.f), b = f4(0.f);
        int p = 0;
        if (ok) {
            a = xat4(x, xh, xo + i0);
            b = xat4(x, xh, xo + half + i0);
            p = pos[row / heads];
        }
        float ss = seg_sum(a.x * a.x + a.y * a.y + a.z * a.z + a.w * a.w + b.x * b.x + b.y * b.y + b.z * b.z + b.w * b.w, L);
        if (!ok) continue;
        float r = 1.f / sqrtf(ss / (float)hd + eps);
        if (i0 == 0) rstd[row] = r;
        float4 co = ld4(cs + p * half + i0), s = ld4(sn + p * half + i0);
        float4 na = make_float4(a.x * r * wa.x, a.y * r * wa.y, a.z * r * wa.z, a.w * r * wa.w);
        float4 nb = make_float4(b.x * r * wb.x, b.y * r * wb.y, b.z * r * wb.z, b.w * r * wb.w);
        float4 oa = make_float4(na.x * co.x - nb.x * s.x, na.y * co.y - nb.y * s.y, na.z * co.z - nb.z * s.z, na.w * co.w - nb.w * s.w);
        float4 ob = make_float4(nb.x * co.x + na.x * s.x, nb.y * co.y + na.y * s.y, nb.z * co.z + na.z * s.z, nb.w * co.w + na.w * s.w);
        rot_store4(out, off, oh, off, i0, half, oa, ob);
    }
}
// Dynamic shared memory hd floats: the block's dw sum.
__global__ void qknorm_rope_bwd4(float* dx, unsigned short* dxh, float* dw, const float* dy, const float* x,
                                 const float* w, const float* rstd, const int* pos, const float* cs, const float* sn,
                                 i64 rows, int heads, int hd, int hs, const unsigned short* xh, int xs) {
    extern __shared__ float sqk4[];
    int lane = threadIdx.x & 31, L = hd >> 3, R = 32 / L, half = hd >> 1, i0 = 4 * (lane % L);
    for (int j = threadIdx.x; j < hd; j += blockDim.x) sqk4[j] = 0.f;
    float4 wa = ld_w4(w + i0, 0), wb = ld_w4(w + half + i0, 0), accA = f4(0.f), accB = f4(0.f);
    i64 warp = ((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5, nwarps = ((i64)gridDim.x * blockDim.x) >> 5;
    for (i64 g = warp; g * R < rows; g += nwarps) {
        i64 row = g * R + lane / L, off = row * hd, xo = row / heads * xs + row % heads * hd;
        bool ok = row < rows;
        float4 a = f4(0.f), b = f4(0.f), xa = f4(0.f), xb = f4(0.f), co = f4(0.f), s = f4(0.f);
        float r = 0.f;
        if (ok) {
            a = ld4(dy + off + i0);
            b = ld4(dy + off + half + i0);
            xa = xat4(x, xh, xo + i0);
            xb = xat4(x, xh, xo + half + i0);
            r = rstd[row];
            int p = pos[row / heads];
            co = ld4(cs + p * half + i0);
            s = ld4(sn + p * half + i0);
            s = make_float4(-s.x, -s.y, -s.z, -s.w);
        }
        // g = the rows rotated back; zero where !ok, so the sums below get 0.
        float4 ga = make_float4(a.x * co.x - b.x * s.x, a.y * co.y - b.y * s.y, a.z * co.z - b.z * s.z, a.w * co.w - b.w * s.w);
        float4 gb = make_float4(b.x * co.x + a.x * s.x, b.y * co.y + a.y * s.y, b.z * co.z + a.z * s.z, b.w * co.w + a.w * s.w);
        float dot = ga.x * wa.x * xa.x * r + ga.y * wa.y * xa.y * r + ga.z * wa.z * xa.z * r + ga.w * wa.w * xa.w * r +
                    gb.x * wb.x * xb.x * r + gb.y * wb.y * xb.y * r + gb.z * wb.z * xb.z * r + gb.w * wb.w * xb.w * r;
        dot = seg_sum(dot, L) / (float)hd;
        accA.x += ga.x * xa.x * r;
        accA.y += ga.y * xa.y * r;
        accA.z += ga.z * xa.z * r;
        accA.w += ga.w * xa.w * r;
        accB.x += gb.x * xb.x * r;
        accB.y += gb.y * xb.y * r;
        accB.z += gb.z * xb.z * r;
        accB.w += gb.w * xb.w * r;
        if (!ok) continue;
        float4 va = make_float4(r * (ga.x * wa.x - xa.x * r * dot), r * (ga.y * wa.y - xa.y * r * dot),
                                r * (ga.z * wa.z - xa.z * r * dot), r * (ga.w * wa.w - xa.w * r * dot));
        float4 vb = make_float4(r * (gb.x * wb.x - xb.x * r * dot), r * (gb.y * wb.y - xb.y * r * dot),
                                r * (gb.z * wb.z - xb.z * r * dot), r * (gb.w * wb.w - xb.w * r * dot));
        rot_store4(dx, off, dxh, row / heads * hs + row % heads * hd, i0, half, va, vb);
    }
    // The warp's rows groups share columns: sum over them, then the block.
    for (int o = L; o < 32; o <<= 1) {
        accA.x += __shfl_xor_sync(FULL, accA.x, o);
        accA.y += __shfl_xor_sync(FULL, accA.y, o);
        accA.z += __shfl_xor_sync(FULL, accA.z, o);
        accA.w += __shfl_xor_sync(FULL, accA.w, o);
        accB.x += __shfl_xor_sync(FULL, accB.x, o);
        accB.y += __shfl_xor_sync(FULL, accB.y, o);
        accB.z += __shfl_xor_sync(FULL, accB.z, o);
        accB.w += __shfl_xor_sync(FULL, accB.w, o);
    }
    __syncthreads();
    if (lane < L) {
        atomicAdd(&sqk4[i0], accA.x);
        atomicAdd(&sqk4[i0 + 1], accA.y);
        atomicAdd(&sqk4[i0 + 2], accA.z);
        atomicAdd(&sqk4[i0 + 3], accA.w);
        atomicAdd(&sqk4[half + i0], accB.x);
        atomicAdd(&sqk4[half + i0 + 1], accB.y);
        atomicAdd(&sqk4[half + i0 + 2], accB.z);
        atomicAdd(&sqk4[half + i0 + 3], accB.w);
    }
    __syncthreads();
    for (int j = threadIdx.x; j < hd; j += blockDim.x) atomicAdd(&dw[j], sqk4[j]);
}

// ---------------------------------------------------------------- elementwise
// out = a + b over n.
__global__ void add(float* out, const float* a, const float* b, i64 n) {
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x)
        out[i] = a[i] + b[i];
}
// SwiGLU in fp32 and tf32 precision: g = h1·σ(h1)·h3 (sets). σ(h1) is
// recomputed by the backward, not saved: reading h1 again costs less than
// writing and reading σ.
__global__ void swiglu_fwd(float* g, const float* h1, const float* h3, i64 n) {
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) {
        float v = h1[i], sg = 1.f / (1.f + expf(-v));
        g[i] = v * sg * h3[i];
    }
}
// In place: dg becomes dh1 = dg·h3·s·(1 + h1·(1−s)); dh3 = dg·h1·s (sets),
// s = σ(h1) as the forward computed it.
__global__ void swiglu_bwd(float* dg, float* dh3, const float* h1, const float* h3, i64 n) {
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) {
        float v = h1[i], sg = 1.f / (1.f + expf(-v)), d = dg[i];
        dh3[i] = d * v * sg;
        dg[i] = d * h3[i] * sg * (1.f + v * (1.f - sg));
    }
}

// bf16 precision's SwiGLU: the products write h1, h3 and dg (∂L/∂g) in
// bf16 and read g and the backward's results in bf16, so only bf16 crosses
// memory here. Four elements a thread (every buffer is a whole
// allocation, so aligned), then the tail; the arithmetic is swiglu_fwd's
// and swiglu_bwd's. dg may be dgh (each element is read before it is
// written, by the same thread).
__device__ __forceinline__ float swish(float v) { return v * (1.f / (1.f + expf(-v))); }
__global__ void swiglu_fwd_h(unsigned short* gh, const unsigned short* h1, const unsigned short* h3, i64 n) {
    i64 stride = (i64)gridDim.x * blockDim.x, i0 = (i64)blockIdx.x * blockDim.x + threadIdx.x, n4 = n / 4;
    for (i64 i = i0; i < n4; i += stride) {
        float4 a = ld_bf16x4(h1, i), b = ld_bf16x4(h3, i);
        ((uint2*)gh)[i] = pack4_bf16(make_float4(swish(a.x) * b.x, swish(a.y) * b.y, swish(a.z) * b.z, swish(a.w) * b.w));
    }
    for (i64 i = 4 * n4 + i0; i < n; i += stride) gh[i] = bf16_rn(swish(bf16_f(h1[i])) * bf16_f(h3[i]));
}
__device__ __forceinline__ void swiglu_grad(float d, float v, float h3, float* dh1, float* dh3) {
    float sg = 1.f / (1.f + expf(-v));
    *dh3 = d * v * sg;
    *dh1 = d * h3 * sg * (1.f + v * (1.f - sg));
}
__global__ void swiglu_bwd_h(unsigned short* dgh, unsigned short* dh3h, const unsigned short* dg,
                             const unsigned short* h1, const unsigned short* h3, i64 n) {
    i64 stride = (i64)gridDim.x * blockDim.x, i0 = (i64)blockIdx.x * blockDim.x + threadIdx.x, n4 = n / 4;
    for (i64 i = i0; i < n4; i += stride) {
        float4 a = ld_bf16x4(h1, i), b = ld_bf16x4(h3, i), d = ld_bf16x4(dg, i), g1, g3;
        swiglu_grad(d.x, a.x, b.x, &g1.x, &g3.x);
        swiglu_grad(d.y, a.y, b.y, &g1.y, &g3.y);
        swiglu_grad(d.z, a.z, b.z, &g1.z, &g3.z);
        swiglu_grad(d.w, a.w, b.w, &g1.w, &g3.w);
        ((uint2*)dgh)[i] = pack4_bf16(g1);
        ((uint2*)dh3h)[i] = pack4_bf16(g3);
    }
    for (i64 i = 4 * n4 + i0; i < n; i += stride) {
        float g1, g3;
        swiglu_grad(bf16_f(dg[i]), bf16_f(h1[i]), bf16_f(h3[i]), &g1, &g3);
        dgh[i] = bf16_rn(g1);
        dh3h[i] = bf16_rn(g3);
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
// ce_row_out writes row i's max mx and log-sum-exp ls (less mx) and its
// loss mk·(log Σexp − logit of the target), 0 where the mask mk is 0.
__device__ __forceinline__ void ce_row_out(float* stats, float* rowloss, int i, float mx, float ls, float mk,
                                           float target) {
    stats[2 * i] = mx;
    stats[2 * i + 1] = ls;
    rowloss[i] = mk == 0.f ? 0.f : mk * ((mx - target) + ls);
}
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
    if (threadIdx.x == 0) ce_row_out(stats, rowloss, i, mx, logf(s), mask[i], row[targets[i]]);
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

// The same two for V % 4 == 0 (the launchers check): 16-byte loads (and
// 8-byte bf16 stores), and the forward's running max moves once per four
// logits, not per logit — one rescale where the old kernel branched on
// every element.
// ce_grad4 is the gradient w·(softmax − onehot(t)) of logits 4c … 4c+3,
// v, given the row's max mx and log-sum-exp ls less mx.
__device__ __forceinline__ float4 ce_grad4(float4 v, int c, int t, float w, float mx, float ls) {
    float4 g = make_float4(w * expf(v.x - mx - ls), w * expf(v.y - mx - ls), w * expf(v.z - mx - ls),
                           w * expf(v.w - mx - ls));
    if (t >> 2 == c) {
        int k = t & 3;
        if (k == 0) g.x -= w;
        else if (k == 1) g.y -= w;
        else if (k == 2) g.z -= w;
        else g.w -= w;
    }
    return g;
}
__global__ void ce_fwd4(float* stats, float* rowloss, const float* logits, const int* targets,
                        const float* mask, int V) {
    __shared__ float sh[32];
    int i = blockIdx.x;
    const float* row = logits + (i64)i * V;
    const float4* row4 = (const float4*)row;
    float m = NEG_INF, s = 0.f;
    for (int c = threadIdx.x; c < V / 4; c += blockDim.x) {
        float4 v = row4[c];
        float cm = fmaxf(fmaxf(v.x, v.y), fmaxf(v.z, v.w));
        if (cm > m) {
            s *= expf(m - cm);
            m = cm;
        }
        s += expf(v.x - m) + expf(v.y - m) + expf(v.z - m) + expf(v.w - m);
    }
    float mx = block_max(m, sh);
    s = block_sum(m == NEG_INF ? 0.f : s * expf(m - mx), sh);
    if (threadIdx.x == 0) ce_row_out(stats, rowloss, i, mx, logf(s), mask[i], row[targets[i]]);
}
__global__ void ce_bwd4(float* dlogits, const float* logits, const float* stats, const int* targets,
                        const float* mask, int V, float w, unsigned short* dh) {
    int i = blockIdx.x, V4 = V / 4;
    float4* drow = (float4*)(dlogits + (i64)i * V);
    uint2* hrow = dh ? (uint2*)(dh + (i64)i * V) : 0;
    float m = mask[i];
    if (m == 0.f) {
        for (int c = threadIdx.x; c < V4; c += blockDim.x) {
            if (hrow) hrow[c] = make_uint2(0u, 0u);
            else drow[c] = make_float4(0.f, 0.f, 0.f, 0.f);
        }
        return;
    }
    const float4* row4 = (const float4*)(logits + (i64)i * V);
    float wi = w * m, mx = stats[2 * i], ls = stats[2 * i + 1];
    int t = targets[i];
    for (int c = threadIdx.x; c < V4; c += blockDim.x) {
        float4 g = ce_grad4(row4[c], c, t, wi, mx, ls);
        if (hrow) hrow[c] = pack4_bf16(g);
        else drow[c] = g;
    }
}

// ce_fused is ce_fwd4 and ce_bwd4 in one pass for rows of V ≤
// 4·CE_THREADS·CE_VEC logits, V % 4 == 0 (the launcher checks): the row
// stays in registers between its max, its sum and the gradient, so the
// logits ([B·T, V], fp32 or bf16: the step's largest buffer) are read
// once, not twice. The forward computes the gradient then, with the loss
// weight w (1/Σmask) known before the step; the backward only runs the
// products.
#define CE_VEC 16
#define CE_THREADS 512
// Where logits is null the logits are bf16 (lh, 8-byte aligned rows: bf16
// precision's head product writes them so, as autocast's would, for half
// the bytes written and read).
__global__ void __launch_bounds__(CE_THREADS) ce_fused(float* stats, float* rowloss, const float* logits,
                                                      const int* targets, const float* mask, int V, float w,
                                                      float* dlogits, unsigned short* dh, const unsigned short* lh) {
    __shared__ float sh[32];
    int i = blockIdx.x, V4 = V >> 2;
    i64 base = (i64)i * V;
    float4 v[CE_VEC];
    float m = NEG_INF;
#pragma unroll
    for (int k = 0; k < CE_VEC; k++) {
        int c = threadIdx.x + CE_THREADS * k;
        if (c < V4) {
            v[k] = xat4(logits, lh, base + 4 * c);
            m = fmaxf(m, fmaxf(fmaxf(v[k].x, v[k].y), fmaxf(v[k].z, v[k].w)));
        }
    }
    float mx = block_max(m, sh), s = 0.f;
#pragma unroll
    for (int k = 0; k < CE_VEC; k++)
        if (threadIdx.x + CE_THREADS * k < V4)
            s += expf(v[k].x - mx) + expf(v[k].y - mx) + expf(v[k].z - mx) + expf(v[k].w - mx);
    float ls = logf(block_sum(s, sh)), mk = mask[i], wi = w * mk;
    int t = targets[i];
    if (threadIdx.x == 0) ce_row_out(stats, rowloss, i, mx, ls, mk, xat(logits, lh, base + t));
    float4* drow = (float4*)(dlogits + base);
    uint2* hrow = dh ? (uint2*)(dh + base) : 0;
#pragma unroll
    for (int k = 0; k < CE_VEC; k++) {
        int c = threadIdx.x + CE_THREADS * k;
        if (c < V4) {
            float4 g = mk != 0.f ? ce_grad4(v[k], c, t, wi, mx, ls) : make_float4(0.f, 0.f, 0.f, 0.f);
            if (hrow) hrow[c] = pack4_bf16(g);
            else drow[c] = g;
        }
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
        out4[i] = pack4_bf16(in4[i]);
    }
    for (i64 i = 4 * n4 + i0; i < n; i += stride) out[i] = bf16_rn(in[i]);
}

// cast_bf16_rows sets rows [rows, w] of out, os elements apart, to in
// [rows, w] rounded: v's gradient into its columns of the fused q|k|v
// gradient the one input-gradient product reads.
__global__ void cast_bf16_rows(unsigned short* out, int os, const float* in, int w, i64 rows) {
    i64 n = rows * w;
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x)
        out[i / w * os + i % w] = bf16_rn(in[i]);
}

// ---------------------------------------------------------------- AdamW
// One block per chunk [lo[c], hi[c]) of the parameter arena (chunks never
// straddle tensors; frozen tensors have none); flags[c] & 1 = decay. The
// gradient is scaled by clip first (1 = no clipping), as the CPU engine's
// ClipGradNorm then AdamW.Step compute it. Where wh is not null (bf16
// precision) it also sets wh [P] to the new weights rounded to bf16: the
// copy the matrix products read, refreshed once per step.
// adamw1 is one parameter's update, in place.
__device__ __forceinline__ void adamw1(float* w, float* m, float* v, float g, float clip, float b1, float b2, float eps,
                                       float step, float inv, float decay, int dec) {
    float gi = g * clip;
    float mi = b1 * *m + (1.f - b1) * gi;
    float vi = b2 * *v + (1.f - b2) * gi * gi;
    *m = mi;
    *v = vi;
    float upd = step * mi / (sqrtf(vi) * inv + eps);
    *w = dec ? *w * decay - upd : *w - upd;
}
// lrs[c] is chunk c's tensor's LRScale (engine.Param): its own learning
// rate, decay included, as a PyTorch parameter group's; lrwd is lr·wd.
__global__ void adamw(float* w, float* g, float* m, float* v, const i64* lo, const i64* hi, const int* flags,
                      const float* lrs, float clip, float b1, float b2, float eps, float step, float inv, float decay,
                      float lrwd, unsigned short* wh) {
    int c = blockIdx.x;
    int dec = flags[c] & 1;
    i64 l = lo[c], h = hi[c];
    float s = lrs[c];
    if (s != 1.f) {
        step *= s;
        decay = 1.f - lrwd * s;
    }
    // Four parameters a thread with 16-byte accesses where the chunk's
    // ends allow (every tensor of the reference decoder), else one.
    if (((l | h) & 3) == 0) {
        float4 *w4 = (float4*)w, *g4 = (float4*)g, *m4 = (float4*)m, *v4 = (float4*)v;
        for (i64 i = l / 4 + threadIdx.x; i < h / 4; i += blockDim.x) {
            float4 wi = w4[i], gi = g4[i], mi = m4[i], vi = v4[i];
            adamw1(&wi.x, &mi.x, &vi.x, gi.x, clip, b1, b2, eps, step, inv, decay, dec);
            adamw1(&wi.y, &mi.y, &vi.y, gi.y, clip, b1, b2, eps, step, inv, decay, dec);
            adamw1(&wi.z, &mi.z, &vi.z, gi.z, clip, b1, b2, eps, step, inv, decay, dec);
            adamw1(&wi.w, &mi.w, &vi.w, gi.w, clip, b1, b2, eps, step, inv, decay, dec);
            w4[i] = wi;
            m4[i] = mi;
            v4[i] = vi;
            if (wh) ((uint2*)wh)[i] = pack4_bf16(wi);
        }
        return;
    }
    for (i64 i = l + threadIdx.x; i < h; i += blockDim.x) {
        float wi = w[i], mi = m[i], vi = v[i];
        adamw1(&wi, &mi, &vi, g[i], clip, b1, b2, eps, step, inv, decay, dec);
        w[i] = wi;
        m[i] = mi;
        v[i] = vi;
        if (wh) wh[i] = bf16_rn(wi);
    }
}

// ---------------------------------------------------------------- image path
// The ViT's and the connectors' layers (models/vision, models/connector):
// LayerNorm (the ViT's and LayerNorm2d, channels-last), broadcast adds
// (biases, the position embedding), GELU (erf), SiLU, a plain row softmax
// (bidirectional and cross attention), adaptive average pooling and the
// im2col / col2im of a convolution on NHWC grids.

} // extern "C": the templates below have C++ linkage

// store_as writes v to *p as the output's type: float, or bf16 rounded.
__device__ __forceinline__ void store_as(float* p, float v) { *p = v; }
__device__ __forceinline__ void store_as(unsigned short* p, float v) { *p = bf16_rn(v); }

// LayerNorm over the last dimension, one warp per row: out = (x − mean)·rstd
// ⊙ w + b (biased variance); mean, rstd [n] saved. x, out [n, d]; out is
// float (layernorm_fwd) or bf16 (layernorm_fwd_h: bf16 precision's image
// path, whose readers are products).
template <typename O>
__device__ void layernorm_fwd_t(O* out, float* mean, float* rstd, const float* x, const float* w, const float* b,
                                int n, int d, float eps) {
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
    O* o = out + (i64)row * d;
    for (int j = lane; j < d; j += 32) store_as(o + j, (xr[j] - mu) * r * w[j] + b[j]);
}
extern "C" {
__global__ void layernorm_fwd(float* out, float* mean, float* rstd, const float* x, const float* w, const float* b,
                              int n, int d, float eps) {
    layernorm_fwd_t(out, mean, rstd, x, w, b, n, d, eps);
}
__global__ void layernorm_fwd_h(unsigned short* oh, float* mean, float* rstd, const float* x, const float* w,
                                const float* b, int n, int d, float eps) {
    layernorm_fwd_t(oh, mean, rstd, x, w, b, n, d, eps);
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
// position of the cell (cells may overlap), gathered per input pixel: a
// block per pixel, its threads across the channels, each of the pixel's
// cells found once and added in turn. Only the cells around the pixel
// are tried (i from ⌊y·oh/H⌋ to ⌈(y+1)·oh/H⌉ − 1, widened by one each way;
// the checks decide). A thread per element trying every cell took 210 µs
// a reference step on an H200; a thread per element trying the nearby
// cells, their bounds' divisions in the channel loop, 71.
__global__ void avgpool_bwd(float* dx, const float* dout, int B, int H, int W, int C, int oh, int ow) {
    int p = blockIdx.x, xx = p % W, y = p / W % H, b = p / (W * H);
    int i0 = max(0, y * oh / H - 1), i1 = min(oh - 1, (y + 1) * oh / H + 1);
    int j0 = max(0, xx * ow / W - 1), j1 = min(ow - 1, (xx + 1) * ow / W + 1);
    float* dst = dx + (i64)p * C;
    for (int i = i0; i <= i1; i++) {
        int y0 = i * H / oh, y1 = ((i + 1) * H + oh - 1) / oh;
        if (y < y0 || y >= y1) continue;
        for (int j = j0; j <= j1; j++) {
            int x0 = j * W / ow, x1 = ((j + 1) * W + ow - 1) / ow;
            if (xx < x0 || xx >= x1) continue;
            float w = 1.f / (float)((y1 - y0) * (x1 - x0));
            const float* src = dout + (((i64)b * oh + i) * ow + j) * C;
            for (int c = threadIdx.x; c < C; c += blockDim.x) dst[c] += w * src[c];
        }
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
// gathered per dx element (no atomics), 32-bit index arithmetic (the Go
// side checks the sizes); col2im_h reads bf16 columns.
} // extern "C": the template below has C++ linkage
__device__ __forceinline__ float widen(float x) { return x; }
__device__ __forceinline__ float widen(unsigned short x) { return bf16_f(x); }
template <typename T>
__device__ void col2im_t(float* dx, const T* cols, int B, int H, int W, int C, int K, int stride, int pad, int Ho,
                         int Wo) {
    int row = C * K * K, n = B * H * W * C;
    for (int idx = blockIdx.x * blockDim.x + threadIdx.x; idx < n; idx += gridDim.x * blockDim.x) {
        int c = idx % C, t = idx / C;
        int xx = t % W;
        t /= W;
        int y = t % H, b = t / H;
        float s = 0.f;
        for (int ky = 0; ky < K; ky++) {
            int sy = y + pad - ky;
            if (sy < 0 || sy % stride != 0 || sy / stride >= Ho) continue;
            for (int kx = 0; kx < K; kx++) {
                int sx = xx + pad - kx;
                if (sx < 0 || sx % stride != 0 || sx / stride >= Wo) continue;
                int r = (b * Ho + sy / stride) * Wo + sx / stride;
                s += widen(cols[(i64)r * row + c * K * K + ky * K + kx]);
            }
        }
        dx[idx] += s;
    }
}
extern "C" {
__global__ void col2im(float* dx, const float* cols, int B, int H, int W, int C, int K, int stride, int pad, int Ho,
                       int Wo) {
    col2im_t(dx, cols, B, H, W, C, K, stride, pad, Ho, Wo);
}
__global__ void col2im_h(float* dx, const unsigned short* cols, int B, int H, int W, int C, int K, int stride, int pad,
                         int Ho, int Wo) {
    col2im_t(dx, cols, B, H, W, C, K, stride, pad, Ho, Wo);
}


// ---------------------------------------------------------------- the image path in bf16
// bf16 precision's image path (image.go) keeps the residual stream, its
// gradient and the norms' statistics in fp32 and everything only products
// read in bf16: the norms' outputs, q|k|v, the probabilities, the attention
// output, the MLP's hidden layer and their gradients. These kernels are the
// plain image kernels' bf16 forms; the fp32 ones stay as they are.


// layernorm_bwd_h: layernorm_bwd in bf16 precision, reading the output
// gradient in bf16 (gh; or fp32 g where gh is null: the final norm's,
// from the connector), adding into dx and writing dx's bf16 rounding to
// dxh beside it (dxh may be null): the next products read it. One warp
// per row, its lanes' share of the row (j = lane + 32·i, d ≤ 32·LN_SLOTS)
// in registers; block (4 warps) blockIdx.x takes rows [blockIdx.x·rows,
// +rows). dw and db are summed in the same pass: each lane keeps its
// columns' partials in registers across its rows, the block's warps meet
// in shared memory (2·d floats, dynamic) and the block adds to dw and db
// once. (A second kernel of column sums read g and x again: on an H200
// the ViT blocks' norm backwards took 0.72 ms a step that way.)
#define LN_SLOTS 32
__global__ void layernorm_bwd_h(float* dx, unsigned short* dxh, float* dw, float* db, const float* g,
                                const unsigned short* gh, const float* x, const float* w, const float* mean,
                                const float* rstd, int n, int d, int rows) {
    extern __shared__ float sdwb[]; // dw [d], db [d]
    int lane = threadIdx.x & 31, nw = blockDim.x >> 5;
    for (int j = threadIdx.x; j < 2 * d; j += blockDim.x) sdwb[j] = 0.f;
    float aw[LN_SLOTS], ab[LN_SLOTS];
#pragma unroll
    for (int i = 0; i < LN_SLOTS; i++) aw[i] = ab[i] = 0.f;
    int r1 = min((blockIdx.x + 1) * rows, n);
    for (int row = blockIdx.x * rows + (threadIdx.x >> 5); row < r1; row += nw) {
        i64 off = (i64)row * d;
        float m = mean[row], r = rstd[row], sg = 0.f, sgx = 0.f;
        float gv[LN_SLOTS], xv[LN_SLOTS];
#pragma unroll
        for (int i = 0; i < LN_SLOTS; i++) {
            int j = lane + 32 * i;
            gv[i] = xv[i] = 0.f;
            if (j < d) {
                float gj = gh ? bf16_f(gh[off + j]) : g[off + j];
                float gw = gj * w[j];
                float xh = (x[off + j] - m) * r;
                aw[i] += gj * xh;
                ab[i] += gj;
                gv[i] = gw;
                xv[i] = xh;
                sg += gw;
                sgx += gw * xh;
            }
        }
        sg = warp_sum(sg) / (float)d;
        sgx = warp_sum(sgx) / (float)d;
#pragma unroll
        for (int i = 0; i < LN_SLOTS; i++) {
            int j = lane + 32 * i;
            if (j < d) {
                float v = dx[off + j] + r * (gv[i] - sg - xv[i] * sgx);
                dx[off + j] = v;
                if (dxh) dxh[off + j] = bf16_rn(v);
            }
        }
    }
    __syncthreads(); // the shared partials are zeroed
#pragma unroll
    for (int i = 0; i < LN_SLOTS; i++) {
        int j = lane + 32 * i;
        if (j < d) {
            atomicAdd(&sdwb[j], aw[i]);
            atomicAdd(&sdwb[d + j], ab[i]);
        }
    }
    __syncthreads();
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        atomicAdd(&dw[j], sdwb[j]);
        atomicAdd(&db[j], sdwb[d + j]);
    }
}

// bias_rows_h sets y [rows, period] (bf16) to b [period] on every row,
// rounded: the C operand of a product run with beta 1, so the bias is
// added in its fp32 accumulators and the sum rounded once. Four columns a
// thread (period a multiple of 4); grid (⌈period/4/blockDim⌉, row blocks).
// (Written by the norm before the product instead, from a warp a row, the
// block's norms and these passes took 0.68 against 0.62 ms a reference
// step on an H200.)
__global__ void bias_rows_h(unsigned short* y, const float* b, int rows, int period) {
    int c = 4 * (blockIdx.x * blockDim.x + threadIdx.x);
    if (c >= period) return;
    uint2 v = pack4_bf16(make_float4(b[c], b[c + 1], b[c + 2], b[c + 3]));
    for (int r = blockIdx.y; r < rows; r += gridDim.y) *(uint2*)(y + (i64)r * period + c) = v;
}

// residual_bias sets y [rows, period] = x + b on every row: the residual
// and the bias a beta-1 product then adds its result to (fp32); grid as
// bias_rows_h.
__global__ void residual_bias(float* y, const float* x, const float* b, int rows, int period) {
    int c = 4 * (blockIdx.x * blockDim.x + threadIdx.x);
    if (c >= period) return;
    float4 bb = make_float4(b[c], b[c + 1], b[c + 2], b[c + 3]);
    for (int r = blockIdx.y; r < rows; r += gridDim.y) {
        i64 i = (i64)r * period + c;
        float4 v = *(const float4*)(x + i);
        v.x += bb.x;
        v.y += bb.y;
        v.z += bb.z;
        v.w += bb.w;
        *(float4*)(y + i) = v;
    }
}

// im2col_h: im2col writing the columns in bf16 (the conv product's
// operand). A thread per (output pixel, channel) writes that channel's K·K
// entries, with 32-bit index arithmetic (the pixel and channel counts of
// an image path fit; the Go side checks): im2col's per-entry 64-bit
// divisions made it the connector's slowest kernel.
__global__ void im2col_h(unsigned short* cols, const float* x, int B, int H, int W, int C, int K, int stride,
                         int pad, int Ho, int Wo) {
    int n = B * Ho * Wo * C, row = C * K * K;
    for (int idx = blockIdx.x * blockDim.x + threadIdx.x; idx < n; idx += gridDim.x * blockDim.x) {
        int c = idx % C, r = idx / C;
        int ox = r % Wo, t = r / Wo;
        int oy = t % Ho, b = t / Ho;
        unsigned short* out = cols + (i64)r * row + c * K * K;
        for (int ky = 0; ky < K; ky++) {
            int y = oy * stride - pad + ky;
            for (int kx = 0; kx < K; kx++) {
                int xx = ox * stride - pad + kx;
                float v = (y >= 0 && y < H && xx >= 0 && xx < W) ? x[((i64)(b * H + y) * W + xx) * C + c] : 0.f;
                out[ky * K + kx] = bf16_rn(v);
            }
        }
    }
}

// im2col_h3: im2col_h for the C-Abstractor's 3×3 convolutions (stride 1,
// padding 1) with C % 8 == 0 and 16-byte aligned x and cols: a thread per
// (output pixel, 8 channels) reads the 9 positions' channels by 16-byte
// loads and writes their 72 entries, contiguous in the (channel, ky, kx)
// order, by nine 16-byte stores. im2col_h's thread wrote its channel's 9
// entries by 2-byte stores 18 bytes apart from its neighbours': 105 µs a
// call on the reference's 3136 × 6912 columns.
__global__ void im2col_h3(unsigned short* cols, const float* x, int B, int H, int W, int C) {
    int C8 = C >> 3, n = B * H * W * C8;
    for (int idx = blockIdx.x * blockDim.x + threadIdx.x; idx < n; idx += gridDim.x * blockDim.x) {
        int g = idx % C8, r = idx / C8;
        int ox = r % W, t = r / W;
        int oy = t % H, b = t / H;
        float v[9][8];
#pragma unroll
        for (int kk = 0; kk < 9; kk++) {
            int y = oy - 1 + kk / 3, xx = ox - 1 + kk % 3;
            float4 lo = make_float4(0.f, 0.f, 0.f, 0.f), hi = lo;
            if (y >= 0 && y < H && xx >= 0 && xx < W) {
                const float4* p = (const float4*)(x + ((i64)(b * H + y) * W + xx) * C + 8 * g);
                lo = p[0];
                hi = p[1];
            }
            v[kk][0] = lo.x, v[kk][1] = lo.y, v[kk][2] = lo.z, v[kk][3] = lo.w;
            v[kk][4] = hi.x, v[kk][5] = hi.y, v[kk][6] = hi.z, v[kk][7] = hi.w;
        }
        uint4* out = (uint4*)(cols + (i64)r * 9 * C + 72 * g);
#pragma unroll
        for (int q = 0; q < 9; q++) {
            unsigned w[4];
#pragma unroll
            for (int h = 0; h < 4; h++) {
                int e0 = 8 * q + 2 * h, e1 = e0 + 1; // entry e: channel e / 9, position e % 9
                w[h] = (unsigned)bf16_rn(v[e0 % 9][e0 / 9]) | ((unsigned)bf16_rn(v[e1 % 9][e1 / 9]) << 16);
            }
            out[q] = make_uint4(w[0], w[1], w[2], w[3]);
        }
    }
}

// col2im_h3: col2im_h for the same convolutions (C % 32 == 0, cols
// 16-byte aligned): dx [B, H, W, C] += the entries of cols [B·H·W, 9C]
// (bf16) that came from it. A block per (image row y, 32 channels) stages
// the cols rows of image rows y−1 … y+1, its channels' 288 entries each
// (576 contiguous bytes), in shared memory by 16-byte loads, then sums
// each (x, channel)'s nine entries there. col2im_h gathered each entry by
// a 2-byte load, one useful pair in every 18 bytes a warp's load touched:
// 78 µs a reference call. Dynamic shared memory 3·W·288 bf16.
#define C2I_CG 32
__global__ void col2im_h3(float* dx, const unsigned short* cols, int B, int H, int W, int C) {
    extern __shared__ __align__(16) unsigned short tile[]; // [3][W][C2I_CG·9]
    const int seg = C2I_CG * 9, seg16 = seg / 8;          // entries a staged row; its 16-byte chunks
    int by = blockIdx.x, y = by % H, b = by / H, c0 = blockIdx.y * C2I_CG;
    for (int i = threadIdx.x; i < 3 * W * seg16; i += blockDim.x) {
        int q = i % seg16, t = i / seg16, x = t % W, dy = t / W, yy = y - 1 + dy;
        uint4 v = make_uint4(0u, 0u, 0u, 0u);
        if (yy >= 0 && yy < H) v = ((const uint4*)(cols + ((i64)(b * H + yy) * W + x) * 9 * C + 9 * c0))[q];
        ((uint4*)tile)[t * seg16 + q] = v;
    }
    __syncthreads();
    for (int i = threadIdx.x; i < W * C2I_CG; i += blockDim.x) {
        int c = i % C2I_CG, x = i / C2I_CG;
        float s = 0.f;
#pragma unroll
        for (int ky = 0; ky < 3; ky++) {
            // dx (y, x) took entry (ky, kx) of output (y + 1 − ky, x + 1 − kx)
            const unsigned short* rowp = tile + (2 - ky) * W * seg;
#pragma unroll
            for (int kx = 0; kx < 3; kx++) {
                int ox = x + 1 - kx;
                if (ox >= 0 && ox < W) s += bf16_f(rowp[ox * seg + c * 9 + ky * 3 + kx]);
            }
        }
        dx[((i64)(b * H + y) * W + x) * C + c0 + c] += s;
    }
}

// gelu_fwd_h: a = GELU(h), both bf16, four elements a thread (n a
// multiple of 4).
__global__ void gelu_fwd_h(unsigned short* a, const unsigned short* h, i64 n) {
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; 4 * i < n; i += (i64)gridDim.x * blockDim.x) {
        float4 v = ld_bf16x4(h, i);
        v.x = 0.5f * v.x * (1.f + erff(v.x * 0.70710678118654752f));
        v.y = 0.5f * v.y * (1.f + erff(v.y * 0.70710678118654752f));
        v.z = 0.5f * v.z * (1.f + erff(v.z * 0.70710678118654752f));
        v.w = 0.5f * v.w * (1.f + erff(v.w * 0.70710678118654752f));
        ((uint2*)a)[i] = pack4_bf16(v);
    }
}
__device__ __forceinline__ float gelu_grad(float v) {
    return 0.5f * (1.f + erff(v * 0.70710678118654752f)) + v * 0.39894228040143268f * expf(-0.5f * v * v);
}
// gelu_bwd_h: dd ⊙= GELU'(h) in place, both bf16, four elements a thread.
__global__ void gelu_bwd_h(unsigned short* dd, const unsigned short* h, i64 n) {
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; 4 * i < n; i += (i64)gridDim.x * blockDim.x) {
        float4 v = ld_bf16x4(h, i), g = ld_bf16x4(dd, i);
        g.x *= gelu_grad(v.x);
        g.y *= gelu_grad(v.y);
        g.z *= gelu_grad(v.z);
        g.w *= gelu_grad(v.w);
        ((uint2*)dd)[i] = pack4_bf16(g);
    }
}

// colsum_h: colsum over a bf16 src.
__global__ void colsum_h(float* dst, const unsigned short* src, int rows, int cols, int chunk) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    int r0 = blockIdx.y * chunk, r1 = min(r0 + chunk, rows);
    float s = 0.f;
    for (int r = r0; r < r1; r++) s += bf16_f(src[(i64)r * cols + c]);
    atomicAdd(&dst[c], s);
}

// softmax_rows_h: the unmasked softmax of each row of the fp32 scores s
// [rows, ld] over its first L ≤ 1024 entries, written rounded to ph
// [rows, ld] (the columns from L on are neither read nor written). One
// warp per row, the row in registers; grid ⌈rows/8⌉, block 256.
__global__ void softmax_rows_h(const float* s, unsigned short* ph, int L, int ld, i64 rows) {
    int lane = threadIdx.x & 31;
    i64 r = (i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (r >= rows) return;
    const float* row = s + r * ld;
    float v[32];
    float mx = NEG_INF;
#pragma unroll
    for (int i = 0; i < 32; i++) {
        int j = lane + 32 * i;
        v[i] = j < L ? row[j] : NEG_INF;
        mx = fmaxf(mx, v[i]);
    }
    mx = warp_max(mx);
    float sum = 0.f;
#pragma unroll
    for (int i = 0; i < 32; i++) {
        v[i] = lane + 32 * i < L ? expf(v[i] - mx) : 0.f;
        sum += v[i];
    }
    float inv = 1.f / warp_sum(sum);
    unsigned short* out = ph + r * ld;
#pragma unroll
    for (int i = 0; i < 32; i++) {
        int j = lane + 32 * i;
        if (j < L) out[j] = bf16_rn(v[i] * inv);
    }
}
// softmax_rows_bwd_h: dS = P ⊙ (dP − Σ P·dP) per row, from the fp32 dP
// (dp) and the bf16 P (ph), written rounded to dh; same shapes and grid.
__global__ void softmax_rows_bwd_h(const float* dp, const unsigned short* ph, unsigned short* dh, int L, int ld,
                                   i64 rows) {
    int lane = threadIdx.x & 31;
    i64 r = (i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (r >= rows) return;
    const float* dr = dp + r * ld;
    const unsigned short* pr = ph + r * ld;
    float pv[32], gv[32];
    float dot = 0.f;
#pragma unroll
    for (int i = 0; i < 32; i++) {
        int j = lane + 32 * i;
        pv[i] = gv[i] = 0.f;
        if (j < L) {
            pv[i] = bf16_f(pr[j]);
            gv[i] = dr[j];
        }
        dot += pv[i] * gv[i];
    }
    dot = warp_sum(dot);
    unsigned short* out = dh + r * ld;
#pragma unroll
    for (int i = 0; i < 32; i++) {
        int j = lane + 32 * i;
        if (j < L) out[j] = bf16_rn(pv[i] * (gv[i] - dot));
    }
}

} // extern "C"

// ---------------------------------------------------------------- flash attention
// bf16 precision's causal attention without the [B·H, T, T] square
// (FlashAttention-2's schedule): one block of 4 warps per 128 query rows
// (forward) or 64 keys of a kv head
// (backward), looping over the other side's tiles of 64 staged in shared
// memory; scores and probabilities live in
// registers only, and dS in registers and one bf16 tile of shared memory
// (the backward's dQ product). Products run on the tensor cores through mma.sync
// m16n8k16 (bf16 operands, fp32 accumulation), so the kernels exist from
// sm_80 on (the Go side checks before asking for them). q, k, v and dO are
// the bf16 copies in the [B·T, heads·HD] layout the linear layers use;
// the masking is attn_softmax's (causal, equal document id). Scores are
// kept in the base-2 domain (scale2 = log2(e)/√HD), so lse2 [B·H, T] is
// log2 of each row's softmax denominator plus its max; the backward
// recomputes P = 2^(s·scale2 − lse2) from it. As in the bf16 products they
// replace, P and dS are rounded to bf16 as operands.
#if MMABLATE_CC >= 80

typedef unsigned short bf16_t;
#define FLASH_TILE 64
#define FLASH_THREADS 128
#define POS_INF (__int_as_float(0x7f800000))

// pack2 puts lo (lower half) and hi, rounded to bf16, in one register.
__device__ __forceinline__ unsigned pack2(float lo, float hi) {
    unsigned r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}

// mma16816: c (16×8 fp32) += a (16×16 bf16, row) · b (16×8 bf16, col).
// Lane l holds, with g = l/4 and t = l%4: a = {A[g][2t..], A[g+8][2t..],
// A[g][2t+8..], A[g+8][2t+8..]}, b = {B[2t..][g], B[2t+8..][g]}, c = {C[g][2t],
// C[g][2t+1], C[g+8][2t], C[g+8][2t+1]}.
__device__ __forceinline__ void mma16816(float* c, const unsigned* a, unsigned b0, unsigned b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// load_a: this warp's A fragments of rows row0 … row0+15 of src (row
// stride ld elements), HD/16 chunks of 16 columns; rows ≥ T are 0.
template <int HD>
__device__ __forceinline__ void load_a(unsigned (*a)[4], const bf16_t* src, int ld, int row0, int T) {
    int g = (threadIdx.x & 31) >> 2, t = threadIdx.x & 3;
    int r0 = row0 + g, r1 = r0 + 8;
    const bf16_t* p0 = src + (i64)r0 * ld + 2 * t;
    const bf16_t* p1 = src + (i64)r1 * ld + 2 * t;
#pragma unroll
    for (int kc = 0; kc < HD / 16; kc++) {
        a[kc][0] = r0 < T ? *(const unsigned*)(p0 + kc * 16) : 0u;
        a[kc][1] = r1 < T ? *(const unsigned*)(p1 + kc * 16) : 0u;
        a[kc][2] = r0 < T ? *(const unsigned*)(p0 + kc * 16 + 8) : 0u;
        a[kc][3] = r1 < T ? *(const unsigned*)(p1 + kc * 16 + 8) : 0u;
    }
}

// smem32 is p's shared-window address (ldmatrix and cp.async take those).
// The builtin rather than inline cvta.to.shared: the compiler sees through
// it, to the __shared__ array's offset plus constants, and folds those into
// the ldmatrix immediates (sm_90 open-tile loops: flash_fwd_64 734 → 700
// instructions, flash_bwd_64 822 → 732, round 2).
__device__ __forceinline__ unsigned smem32(const void* p) { return (unsigned)__cvta_generic_to_shared(p); }

// bt_frag2: the B fragments (k0 … k0+15) × (n0 … n0+7) and × (n0+8 …
// n0+15) of a shared tile stored as tile[k][n] (pitch elements a row,
// 16-byte aligned), transposed by ldmatrix on the way to the registers.
__device__ __forceinline__ void bt_frag2(const bf16_t* tile, int pitch, int n0, int k0, unsigned* b) {
    int l = threadIdx.x & 31;
    unsigned a = smem32(tile + (k0 + (l & 15)) * pitch + n0 + (l >> 4) * 8);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(b[0]), "=r"(b[1]), "=r"(b[2]), "=r"(b[3]) : "r"(a));
}

// ex2 is 2^x by the SFU (relative error ~2⁻²²; 2^−∞ = 0).
__device__ __forceinline__ float ex2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

// stage: starts copying rows row0 … row0+63 of src (row stride ld) into
// dst [64][HD+8] with cp.async (rows ≥ T are zero-filled); the caller
// commits the group and waits for it, so the copy overlaps the tile before.
// The loop's trip count is a constant (the tile's HD/16 16-byte chunks a
// thread), so it unrolls into straight-line copies at constant offsets
// (a loop over threadIdx.x compiled to a general loop with its remainder
// and index arithmetic: ~100 integer instructions a tile).
template <int HD>
__device__ __forceinline__ void stage(bf16_t* dst, const bf16_t* src, int ld, int row0, int T) {
    static_assert(FLASH_TILE * HD / 8 % FLASH_THREADS == 0, "whole chunks a thread");
#pragma unroll
    for (int j = 0; j < FLASH_TILE * HD / 8 / FLASH_THREADS; j++) {
        unsigned i = threadIdx.x + j * FLASH_THREADS;
        int r = i / (HD / 8), c = i % (HD / 8) * 8;
        bool in = row0 + r < T;
        const bf16_t* g = src + (i64)(in ? row0 + r : 0) * ld + c;
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(smem32(dst + r * (HD + 8) + c)), "l"(g),
                     "r"(in ? 16 : 0));
    }
}
__device__ __forceinline__ void stage_commit() { asm volatile("cp.async.commit_group;"); }
// stage_wait: all but the newest `pending` groups have landed.
template <int pending>
__device__ __forceinline__ void stage_wait() { asm volatile("cp.async.wait_group %0;" ::"n"(pending)); }

// stage_rows: per-row floats of a tile (lse2 − sub1, D; rows ≥ T get pad)
// and the tile's document ids.
__device__ __forceinline__ void stage_rows(float* s1, const float* r1, float sub1, float pad1, float* s2,
                                           const float* r2, int* sdoc, const int* dc, int row0, int T) {
    int i = threadIdx.x;
    if (i < FLASH_TILE) {
        bool in = row0 + i < T;
        if (s1) s1[i] = in ? r1[row0 + i] - sub1 : pad1;
        if (s2) s2[i] = in ? r2[row0 + i] : 0.f;
        sdoc[i] = (dc && in) ? dc[row0 + i] : 0;
    }
}

// one_doc: whether every key of the staged tile and both of this lane's
// rows (over the warp: all 16) share one document, so no entry of the
// warp's block is masked by documents (the warp agrees).
__device__ __forceinline__ bool one_doc(const int* sdoc, const int* mine, const int* dc) {
    if (!dc) return true;
    int lane = threadIdx.x & 31, ref = sdoc[0];
    return __all_sync(FULL, sdoc[lane] == ref && sdoc[lane + 32] == ref && mine[0] == ref && mine[1] == ref);
}

// Rows (queries) and keys per block: 4 warps of 16.
#define FLASH_ROWS 64
#define FLASH_PITCH(HD) (FLASH_TILE * ((HD) + 8))

// The kernels below write their tile loops out in full, though they share
// their shape: with the products factored into shared helpers (one call a
// product, a struct for the query-side blocks' geometry) the backward (then
// a dK/dV and a dQ kernel) measured 13.6 → 15.2 ms a reference step on an
// H200, because the backward interleaves two products' fragment loads and
// mma instructions in one loop.

// Grid orders (blocks start in the order of their linear index, x
// fastest), as measured on an H200 at the reference shape: the forward's
// grid is (B·H, ⌈T/128⌉), all heads' longest row blocks first and the
// shortest last (longest-processing-time order, a short tail; its K and V
// fit in the L2): 2.73 → 2.63 ms a step against each head's blocks
// together. The backward's is (B·KV, ⌈T/64⌉), longest first too. Round 2
// (a block per query head, each 1/16 of a head's work at most) measured
// the head-grouped order faster (11.4 against 12.2 ms): there the blocks
// running at once were all query heads' longest ones, each reading its
// head's Q and dO from memory, and the tail was short anyway. A block now
// does the H/KV query heads of its kv head (4× the work, up to 64 steps at
// the reference shape): in the head-grouped order the last kv head's
// longest block would start near the end of the grid, a tail of up to
// half the kernel by estimate; the blocks of a kv head running at once
// (about 4 of its 16 at 264 resident blocks) step through the query tiles
// with the heads inner, close together, and share the Q/dO tiles in L2.

// b_frag4: the B fragments (k0 … k0+15) × (n0 … n0+7) in b[0], b[1] and
// × (n0+8 … n0+15) in b[2], b[3] of a shared tile stored as tile[n][k]
// (pitch elements a row, 16-byte aligned), by one ldmatrix.x4: lane l
// addresses row n0 + (l/16)·8 + l%8 from column k0 + (l/8 % 2)·8, and
// ldmatrix gives lane l of each 8×8 matrix its row l/4, columns 2(l%4) and
// +1 — b_frag's layout.
__device__ __forceinline__ void b_frag4(const bf16_t* tile, int pitch, int n0, int k0, unsigned* b) {
    int l = threadIdx.x & 31;
    unsigned p = smem32(tile + (n0 + (l >> 4) * 8 + (l & 7)) * pitch + k0 + ((l >> 3) & 1) * 8);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(b[0]), "=r"(b[1]), "=r"(b[2]), "=r"(b[3]) : "r"(p));
}

// Query rows per block of flash_fwd: 4 warps of 32.
#define FLASH_ROWS128 128

// flash_fwd: grid (B·H, ⌈T/128⌉), 128 query rows a block, 32 a warp (two
// m16 row groups, FlashAttention-2's forward layout): each B fragment of K
// and V read from shared memory (K by ldmatrix.x4) feeds two mma
// instructions, and each staged K/V tile serves 128 rows (round 1's 64
// rows a block, 16 a warp, measured 3.60 against 2.63 ms a reference
// step). The softmax folds the score scale into the exponent (p =
// 2^(s·scale2 − m), one FFMA before the MUFU) and takes the row max on the
// raw scores, and there is one barrier a tile (the next tile's load is
// issued after it). Sets oh [B·T, H·HD] (bf16), o (fp32, where not null:
// the tests) and lse2.
//
// CAUSAL false is the bidirectional form (the ViT's): every key tile of the
// image, masked only past T, and q rows ldq, k and v rows ldkv elements
// apart (column blocks of the ViT's q|k|v); the causal form takes the
// [B·T, heads·HD] layouts and ignores ldq and ldkv, so its code is the
// one the decoder had before the flag.
template <int HD, bool CAUSAL>
__device__ void flash_fwd(const bf16_t* q, const bf16_t* k, const bf16_t* v, const int* docs, float* o, bf16_t* oh,
                          float* lse2, int T, int H, int KV, float scale2, int ldq, int ldkv) {
    __shared__ __align__(16) bf16_t sK[2 * FLASH_PITCH(HD)];
    __shared__ __align__(16) bf16_t sV[2 * FLASH_PITCH(HD)];
    __shared__ int sDoc[2 * FLASH_TILE];
    // the longest rows start first (see the grid orders above)
    int qt = gridDim.y - 1 - blockIdx.y;
    int bh = blockIdx.x, b = bh / H, h = bh % H, kh = h / (H / KV);
    int qd = H * HD, kvd = CAUSAL ? KV * HD : ldkv, lq = CAUSAL ? qd : ldq;
    int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    int row0 = qt * FLASH_ROWS128 + (threadIdx.x >> 5) * 32;
    const bf16_t* kb = k + (i64)b * T * kvd + kh * HD;
    const bf16_t* vb = v + (i64)b * T * kvd + kh * HD;
    const int* dc = docs ? docs + (i64)b * T : 0;
    auto load = [&](int kt) {
        int buf = kt & 1;
        stage<HD>(sK + buf * FLASH_PITCH(HD), kb, kvd, kt * FLASH_TILE, T);
        stage<HD>(sV + buf * FLASH_PITCH(HD), vb, kvd, kt * FLASH_TILE, T);
        stage_commit();
        stage_rows(0, 0, 0.f, 0.f, 0, 0, sDoc + buf * FLASH_TILE, dc, kt * FLASH_TILE, T);
    };
    int ntiles = ((CAUSAL ? min(T, (qt + 1) * FLASH_ROWS128) : T) + FLASH_TILE - 1) / FLASH_TILE;
    load(0);
    // Row group mg (0, 1) of the warp: rows row0 + 16·mg + g and + 8.
    unsigned qa[2][HD / 16][4];
    load_a<HD>(qa[0], q + (i64)b * T * lq + h * HD, lq, row0, T);
    load_a<HD>(qa[1], q + (i64)b * T * lq + h * HD, lq, row0 + 16, T);
    int rows[4] = {row0 + g, row0 + g + 8, row0 + g + 16, row0 + g + 24}, mine[4];
    for (int i = 0; i < 4; i++) mine[i] = (dc && rows[i] < T) ? dc[rows[i]] : 0;
    float acc[2][HD / 8][4];
#pragma unroll
    for (int mg = 0; mg < 2; mg++)
#pragma unroll
        for (int d = 0; d < HD / 8; d++) acc[mg][d][0] = acc[mg][d][1] = acc[mg][d][2] = acc[mg][d][3] = 0.f;
    float m[4] = {NEG_INF, NEG_INF, NEG_INF, NEG_INF}, l[4] = {0.f, 0.f, 0.f, 0.f};
    for (int kt = 0; kt < ntiles; kt++) {
        int key0 = kt * FLASH_TILE;
        // One barrier a tile: tile kt has landed for every thread, and every
        // warp is done with tile kt − 1, whose buffers the next load takes.
        stage_wait<0>();
        __syncthreads();
        if (kt + 1 < ntiles) load(kt + 1);
        const bf16_t* tK = sK + (kt & 1) * FLASH_PITCH(HD);
        const bf16_t* tV = sV + (kt & 1) * FLASH_PITCH(HD);
        const int* tDoc = sDoc + (kt & 1) * FLASH_TILE;
        if (!CAUSAL || key0 <= row0 + 31) { // else every key of the tile is after this warp's rows
            bool open = (!CAUSAL || key0 + FLASH_TILE - 1 <= row0) && key0 + FLASH_TILE <= T;
            if (dc) {
                int ref = tDoc[0];
                open = open && __all_sync(FULL, tDoc[lane] == ref && tDoc[lane + 32] == ref && mine[0] == ref &&
                                                    mine[1] == ref && mine[2] == ref && mine[3] == ref);
            }
            float s[2][8][4];
#pragma unroll
            for (int mg = 0; mg < 2; mg++)
#pragma unroll
                for (int nt = 0; nt < 8; nt++) s[mg][nt][0] = s[mg][nt][1] = s[mg][nt][2] = s[mg][nt][3] = 0.f;
#pragma unroll
            for (int nt = 0; nt < 8; nt += 2)
#pragma unroll
                for (int kc = 0; kc < HD / 16; kc++) {
                    unsigned bk[4];
                    b_frag4(tK, HD + 8, nt * 8, kc * 16, bk);
#pragma unroll
                    for (int mg = 0; mg < 2; mg++) {
                        mma16816(s[mg][nt], qa[mg][kc], bk[0], bk[1]);
                        mma16816(s[mg][nt + 1], qa[mg][kc], bk[2], bk[3]);
                    }
                }
            // Row j = 2·mg + i of this lane's four: s[mg][·][2i], [2i+1].
            float mx[4] = {NEG_INF, NEG_INF, NEG_INF, NEG_INF};
            if (open) {
#pragma unroll
                for (int mg = 0; mg < 2; mg++)
#pragma unroll
                    for (int nt = 0; nt < 8; nt++)
#pragma unroll
                        for (int e = 0; e < 4; e++) mx[2 * mg + (e >> 1)] = fmaxf(mx[2 * mg + (e >> 1)], s[mg][nt][e]);
            } else {
#pragma unroll
                for (int mg = 0; mg < 2; mg++)
#pragma unroll
                    for (int nt = 0; nt < 8; nt++)
#pragma unroll
                        for (int e = 0; e < 4; e++) {
                            int j = 2 * mg + (e >> 1), kl = nt * 8 + 2 * t + (e & 1), key = key0 + kl;
                            bool ok = (!CAUSAL || key <= rows[j]) && key < T && (!dc || tDoc[kl] == mine[j]);
                            float x = ok ? s[mg][nt][e] : NEG_INF;
                            s[mg][nt][e] = x;
                            mx[j] = fmaxf(mx[j], x);
                        }
            }
            float alpha[4], base[4], sum[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
            for (int j = 0; j < 4; j++) {
                mx[j] = fmaxf(mx[j], __shfl_xor_sync(FULL, mx[j], 1));
                mx[j] = fmaxf(mx[j], __shfl_xor_sync(FULL, mx[j], 2));
                float mn = fmaxf(m[j], mx[j] * scale2); // scale2 > 0: the max of the scaled scores
                alpha[j] = mn == NEG_INF ? 1.f : ex2(m[j] - mn);
                m[j] = mn;
                // A row with no key yet: base 0, so its masked scores give 2^−∞ = 0.
                base[j] = mn == NEG_INF ? 0.f : mn;
            }
#pragma unroll
            for (int mg = 0; mg < 2; mg++)
#pragma unroll
                for (int nt = 0; nt < 8; nt++)
#pragma unroll
                    for (int e = 0; e < 4; e++) {
                        int j = 2 * mg + (e >> 1);
                        float p = ex2(fmaf(s[mg][nt][e], scale2, -base[j]));
                        s[mg][nt][e] = p;
                        sum[j] += p;
                    }
#pragma unroll
            for (int j = 0; j < 4; j++) {
                sum[j] += __shfl_xor_sync(FULL, sum[j], 1);
                sum[j] += __shfl_xor_sync(FULL, sum[j], 2);
                l[j] = l[j] * alpha[j] + sum[j];
            }
#pragma unroll
            for (int mg = 0; mg < 2; mg++)
#pragma unroll
                for (int d = 0; d < HD / 8; d++) {
                    acc[mg][d][0] *= alpha[2 * mg];
                    acc[mg][d][1] *= alpha[2 * mg];
                    acc[mg][d][2] *= alpha[2 * mg + 1];
                    acc[mg][d][3] *= alpha[2 * mg + 1];
                }
#pragma unroll
            for (int kk = 0; kk < FLASH_TILE / 16; kk++) {
                unsigned pa[2][4];
#pragma unroll
                for (int mg = 0; mg < 2; mg++) {
                    pa[mg][0] = pack2(s[mg][2 * kk][0], s[mg][2 * kk][1]);
                    pa[mg][1] = pack2(s[mg][2 * kk][2], s[mg][2 * kk][3]);
                    pa[mg][2] = pack2(s[mg][2 * kk + 1][0], s[mg][2 * kk + 1][1]);
                    pa[mg][3] = pack2(s[mg][2 * kk + 1][2], s[mg][2 * kk + 1][3]);
                }
#pragma unroll
                for (int d = 0; d < HD / 8; d += 2) {
                    unsigned bv[4];
                    bt_frag2(tV, HD + 8, d * 8, kk * 16, bv);
#pragma unroll
                    for (int mg = 0; mg < 2; mg++) {
                        mma16816(acc[mg][d], pa[mg], bv[0], bv[1]);
                        mma16816(acc[mg][d + 1], pa[mg], bv[2], bv[3]);
                    }
                }
            }
        }
    }
#pragma unroll
    for (int j = 0; j < 4; j++) {
        int r = rows[j], mg = j >> 1, i = j & 1;
        if (r >= T) continue;
        float inv = l[j] > 0.f ? 1.f / l[j] : 0.f;
        i64 off = ((i64)b * T + r) * qd + h * HD + 2 * t;
#pragma unroll
        for (int d = 0; d < HD / 8; d++) {
            float x0 = acc[mg][d][2 * i] * inv, x1 = acc[mg][d][2 * i + 1] * inv;
            if (o) *(float2*)(o + off + d * 8) = make_float2(x0, x1);
            *(unsigned*)(oh + off + d * 8) = pack2(x0, x1);
        }
        if (t == 0) lse2[(i64)bh * T + r] = l[j] > 0.f ? m[j] + log2f(l[j]) : POS_INF;
    }
}

// at_frag2: the A fragment (m0 … m0+15) × (k0 … k0+15) of a shared tile
// stored transposed, as tile[k][m] (pitch elements a row, 16-byte
// aligned), by ldmatrix.trans: lane l addresses row k0 + (l/16)·8 + l%8,
// columns from m0 + (l/8 % 2)·8, so the four 8×8 matrices land as a[0] …
// a[3] of mma16816's layout (rows 0-7 and 8-15 of k 0-7, then of k 8-15).
__device__ __forceinline__ void at_frag2(const bf16_t* tile, int pitch, int m0, int k0, unsigned* a) {
    int l = threadIdx.x & 31;
    unsigned p = smem32(tile + (k0 + (l >> 4) * 8 + (l & 7)) * pitch + m0 + ((l >> 3) & 1) * 8);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(a[0]), "=r"(a[1]), "=r"(a[2]), "=r"(a[3]) : "r"(p));
}

// red2: p[0] += x, p[1] += y in global memory (p 8-byte aligned), the old
// values unused. From sm_90 and PTX 8.1 (CUDA 12.1) on, one vector
// reduction; before, two red.global.add.f32 (atomicAdd whose result is
// unused compiles to that).
__device__ __forceinline__ void red2(float* p, float x, float y) {
#if MMABLATE_CC >= 90 && __CUDACC_VER_MAJOR__ * 100 + __CUDACC_VER_MINOR__ >= 1201
    asm volatile("red.global.v2.f32.add [%0], {%1, %2};" ::"l"(p), "f"(x), "f"(y) : "memory");
#else
    atomicAdd(p, x);
    atomicAdd(p + 1, y);
#endif
}

// The dS tile that flash_bwd shares between its warps: [64 keys][64
// queries] bf16, this many elements a row.
#define FLASH_DS_PITCH (FLASH_TILE + 8)

// flash_bwd: grid (B·KV, ⌈T/64⌉) (see the grid orders above), one block per
// 64 keys of a kv head, looping over the query tiles from the block's own
// on and, for each, over the H/KV query heads that share the kv head
// (FlashAttention-2's backward: 5 products a tile pair). dK and dV stay in
// registers across the group's query heads, so the block sets dk and dv
// [B·T, KV·HD] (fp32) once: no per-query-head shares and no group sum
// (which cost 2·B·T·H·HD floats of scratch written and read again). Adds
// into dq [B·T, H·HD] (fp32), which must be zero before (flash_dot zeroes
// it): each warp holds dSᵀ for its 16 keys × the tile's 64 queries in
// registers, for dV += Pᵀ·dO and dK += dSᵀ·Q; the block then stages dS
// (bf16) in shared memory, and each warp computes dQ += dS·K for 16 of the
// tile's queries (K, the block's keys, staged once) and adds it into dq
// with red.global.add (red2; the blocks of one query tile's keys run at
// once, in no order, so a sum in memory it is). With HD = 64 the dS tile
// takes the current dO buffer once every warp is done with it: the
// kernel's shared memory then stays under the 48 KiB a static allocation
// may have. The Q and dO B fragments of the first two products come by
// ldmatrix.x4, and there are three barriers a step (the next step's load
// is issued after the step's first barrier, when every warp is done with
// the buffers it takes); round 1's 32-bit fragment loads and four barriers
// measured 12.56 against 12.21 ms a reference step.
// CAUSAL false: as in flash_fwd (every query tile; q, k and v rows ldq
// and ldkv apart; dO and dq keep the [B·T, heads·HD] layouts, and dk and
// dv are bf16, rounded once, with rows ldkv apart like k and v). The
// causal form writes dk in fp32 and dv in bf16 with rows ldkv apart: the
// v columns of the decoder's q|k|v gradient, which the products read (a
// cast from an fp32 dv took 0.2 ms of the reference step on an H200).
template <int HD, bool CAUSAL>
__device__ void flash_bwd(const bf16_t* q, const bf16_t* k, const bf16_t* v, const bf16_t* dO, const float* lse2,
                          const float* dvec, const int* docs, float* dq, float* dk, float* dv, int T, int H, int KV,
                          float scale2, float scale, int ldq, int ldkv) {
    constexpr bool dsInO = HD + 8 >= FLASH_DS_PITCH; // the dO buffer holds the dS tile
    __shared__ __align__(16) bf16_t sQ[2 * FLASH_PITCH(HD)];
    __shared__ __align__(16) bf16_t sO[2 * FLASH_PITCH(HD)];
    __shared__ __align__(16) bf16_t sK[FLASH_PITCH(HD)];
    __shared__ __align__(16) bf16_t sDS[dsInO ? 8 : FLASH_TILE * FLASH_DS_PITCH];
    __shared__ float sL[2 * FLASH_TILE], sD[2 * FLASH_TILE];
    __shared__ int sDoc[2 * FLASH_TILE];
    // the first key tiles see the most queries: they start first, all kv
    // heads' (see the grid orders above)
    int kt = blockIdx.y, bkv = blockIdx.x, b = bkv / KV, kh = bkv % KV, gh = H / KV;
    int qd = H * HD, kvd = KV * HD, nq = (T + FLASH_TILE - 1) / FLASH_TILE;
    int lq = CAUSAL ? qd : ldq, lkv = CAUSAL ? kvd : ldkv;
    int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3, w16 = (threadIdx.x >> 5) * 16;
    int key0 = kt * FLASH_ROWS + w16;
    const int* dc = docs ? docs + (i64)b * T : 0;
    // The steps: the query tiles from qt0 on, and for each the query
    // heads kh·gh … kh·gh + gh − 1 (heads inner: the blocks of a kv head
    // that run at once read nearby Q/dO tiles of all its query heads, and
    // add into nearby rows of dq, so those stay in the L2). (h, q0) is a
    // step's head and first query; next advances it (no division in the
    // loop: two of them cost ~70 instructions a step).
    int qt0 = CAUSAL ? kt * FLASH_ROWS / FLASH_TILE : 0, total = gh * (nq - qt0);
    // P is computed as scale·P (lse2 staged less log2(scale)), so dS comes
    // out as scale·dS, the factor dQ and dK take, and only dV is divided by
    // it, once at the end: no multiply on the 32 dQ values a lane adds each
    // step. (With HD 16 and 64 the scale is a power of 2 and the bf16 P
    // operand the same as P's; with 32, rounded once as before.)
    float lscale = log2f(scale);
    auto next = [&](int& h, int& q0) {
        if (++h == (kh + 1) * gh) {
            h = kh * gh;
            q0 += FLASH_TILE;
        }
    };
    auto load = [&](int buf, int h, int q0) {
        stage<HD>(sQ + buf * FLASH_PITCH(HD), q + (i64)b * T * lq + h * HD, lq, q0, T);
        stage<HD>(sO + buf * FLASH_PITCH(HD), dO + (i64)b * T * qd + h * HD, qd, q0, T);
        stage_commit();
        i64 rowoff = ((i64)b * H + h) * T;
        stage_rows(sL + buf * FLASH_TILE, lse2 + rowoff, lscale, POS_INF, sD + buf * FLASH_TILE, dvec + rowoff,
                   sDoc + buf * FLASH_TILE, dc, q0, T);
    };
    const bf16_t* kb = k + (i64)b * T * lkv + kh * HD;
    stage<HD>(sK, kb, lkv, kt * FLASH_ROWS, T); // lands with load(0)'s group
    int h = kh * gh, q0 = qt0 * FLASH_TILE;
    load(0, h, q0);
    unsigned ka[HD / 16][4], va[HD / 16][4];
    load_a<HD>(ka, kb, lkv, key0, T);
    load_a<HD>(va, v + (i64)b * T * lkv + kh * HD, lkv, key0, T);
    int keys[2] = {key0 + g, key0 + g + 8}, mine[2];
    for (int i = 0; i < 2; i++) mine[i] = (dc && keys[i] < T) ? dc[keys[i]] : 0;
    float dka[HD / 8][4], dva[HD / 8][4];
#pragma unroll
    for (int d = 0; d < HD / 8; d++)
        for (int e = 0; e < 4; e++) dka[d][e] = dva[d][e] = 0.f;
    for (int st = 0; st < total; st++) {
        int buf = st & 1;
        // Step st's tiles have landed for every thread, and every warp is
        // done with step st − 1, whose buffers (and dS tile) the next load
        // takes: no barrier at the step's end.
        stage_wait<0>();
        __syncthreads();
        if (st + 1 < total) {
            int hn = h, qn = q0;
            next(hn, qn);
            load(buf ^ 1, hn, qn);
        }
        const bf16_t* tQ = sQ + buf * FLASH_PITCH(HD);
        const bf16_t* tO = sO + buf * FLASH_PITCH(HD);
        const float* tL = sL + buf * FLASH_TILE;
        const float* tD = sD + buf * FLASH_TILE;
        const int* tDoc = sDoc + buf * FLASH_TILE;
        // Every warp has work in every step: q0 ≥ the block's first key,
        // so the tile's last query, q0 + 63, comes after the warp's keys
        // (causal; bidirectional, every query sees every key).
        bool open = (!CAUSAL || q0 >= key0 + 15) && q0 + FLASH_TILE <= T && key0 + 16 <= T && one_doc(tDoc, mine, dc);
        // Sᵀ (this warp's 16 keys × 64 queries) and dPᵀ = V·dOᵀ
        float s[8][4], dp[8][4];
#pragma unroll
        for (int nt = 0; nt < 8; nt++) {
            s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
            dp[nt][0] = dp[nt][1] = dp[nt][2] = dp[nt][3] = 0.f;
        }
        // the B fragments of two query octets by one ldmatrix.x4 each
#pragma unroll
        for (int nt = 0; nt < 8; nt += 2)
#pragma unroll
            for (int kc = 0; kc < HD / 16; kc++) {
                unsigned bb[4];
                b_frag4(tQ, HD + 8, nt * 8, kc * 16, bb);
                mma16816(s[nt], ka[kc], bb[0], bb[1]);
                mma16816(s[nt + 1], ka[kc], bb[2], bb[3]);
                b_frag4(tO, HD + 8, nt * 8, kc * 16, bb);
                mma16816(dp[nt], va[kc], bb[0], bb[1]);
                mma16816(dp[nt + 1], va[kc], bb[2], bb[3]);
            }
        // P and dSᵀ, in two loops as in flash_fwd: with the mask a
        // condition inside one (ok = open || …, round 2), the compiler
        // branched around each element's exponential, so open tiles too ran
        // ~19 instructions an element (branches, BSSY/BSYNC convergence
        // barriers, a scalar lse load and its address) with each MUFU in a
        // basic block of its own, none overlapping the next; now an open
        // tile's 32 are straight-line FFMA/MUFU with lse and D by LDS.64
        // (sm_90 SASS). A masked element gets the exponent −∞ (2^−∞ = 0):
        // a select, no branch.
        if (open) {
#pragma unroll
            for (int nt = 0; nt < 8; nt++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    int ql = nt * 8 + 2 * t + (e & 1);
                    float p = ex2(fmaf(s[nt][e], scale2, -tL[ql]));
                    s[nt][e] = p;
                    dp[nt][e] = p * (dp[nt][e] - tD[ql]); // dSᵀ
                }
        } else {
#pragma unroll
            for (int nt = 0; nt < 8; nt++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    int i = e >> 1, ql = nt * 8 + 2 * t + (e & 1), qq = q0 + ql;
                    // & rather than &&: no branch around the tDoc load
                    // (without docs tDoc and mine are all 0)
                    bool ok = (!CAUSAL | (qq >= keys[i])) & (qq < T) & (keys[i] < T) & (tDoc[ql] == mine[i]);
                    float p = ex2(ok ? fmaf(s[nt][e], scale2, -tL[ql]) : NEG_INF);
                    s[nt][e] = p;
                    dp[nt][e] = p * (dp[nt][e] - tD[ql]); // dSᵀ
                }
        }
        // dSᵀ as bf16 A fragments: keys g and g+8 of the warp's 16, queries
        // kk·16 + 2t (+1) and kk·16 + 8 + 2t (+1).
        unsigned sa[FLASH_TILE / 16][4];
#pragma unroll
        for (int kk = 0; kk < FLASH_TILE / 16; kk++) {
            sa[kk][0] = pack2(dp[2 * kk][0], dp[2 * kk][1]);
            sa[kk][1] = pack2(dp[2 * kk][2], dp[2 * kk][3]);
            sa[kk][2] = pack2(dp[2 * kk + 1][0], dp[2 * kk + 1][1]);
            sa[kk][3] = pack2(dp[2 * kk + 1][2], dp[2 * kk + 1][3]);
        }
#pragma unroll
        for (int kk = 0; kk < FLASH_TILE / 16; kk++) {
            unsigned pa[4] = {pack2(s[2 * kk][0], s[2 * kk][1]), pack2(s[2 * kk][2], s[2 * kk][3]),
                              pack2(s[2 * kk + 1][0], s[2 * kk + 1][1]), pack2(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
            for (int d = 0; d < HD / 8; d += 2) {
                unsigned bb[4];
                bt_frag2(tO, HD + 8, d * 8, kk * 16, bb);
                mma16816(dva[d], pa, bb[0], bb[1]); // dV += Pᵀ·dO
                mma16816(dva[d + 1], pa, bb[2], bb[3]);
                bt_frag2(tQ, HD + 8, d * 8, kk * 16, bb);
                mma16816(dka[d], sa[kk], bb[0], bb[1]); // dK += dSᵀ·Q
                mma16816(dka[d + 1], sa[kk], bb[2], bb[3]);
            }
        }
        // The dS tile, stored as dSᵀ [key][query]: this warp's rows w16 + g
        // and w16 + g + 8 (32-bit stores, lanes on distinct banks).
        if (dsInO) __syncthreads(); // every warp is done reading tO
        bf16_t* tS = dsInO ? sO + buf * FLASH_PITCH(HD) : sDS;
        {
            bf16_t* r0 = tS + (w16 + g) * FLASH_DS_PITCH + 2 * t;
            bf16_t* r1 = r0 + 8 * FLASH_DS_PITCH;
#pragma unroll
            for (int kk = 0; kk < FLASH_TILE / 16; kk++) {
                *(unsigned*)(r0 + kk * 16) = sa[kk][0];
                *(unsigned*)(r1 + kk * 16) = sa[kk][1];
                *(unsigned*)(r0 + kk * 16 + 8) = sa[kk][2];
                *(unsigned*)(r1 + kk * 16 + 8) = sa[kk][3];
            }
        }
        __syncthreads();
        // dQ += dS·K for the tile's queries q0 + w16 … + 15, all 64 keys.
        if (q0 + w16 < T) {
            float dqa[HD / 8][4];
#pragma unroll
            for (int d = 0; d < HD / 8; d++) dqa[d][0] = dqa[d][1] = dqa[d][2] = dqa[d][3] = 0.f;
#pragma unroll
            for (int kk = 0; kk < FLASH_TILE / 16; kk++) {
                unsigned da[4];
                at_frag2(tS, FLASH_DS_PITCH, w16, kk * 16, da);
#pragma unroll
                for (int d = 0; d < HD / 8; d += 2) {
                    unsigned bk[4];
                    bt_frag2(sK, HD + 8, d * 8, kk * 16, bk);
                    mma16816(dqa[d], da, bk[0], bk[1]);
                    mma16816(dqa[d + 1], da, bk[2], bk[3]);
                }
            }
            for (int i = 0; i < 2; i++) {
                int r = q0 + w16 + g + 8 * i;
                if (r >= T) continue;
                float* p = dq + ((i64)b * T + r) * qd + h * HD + 2 * t;
#pragma unroll
                for (int d = 0; d < HD / 8; d++) red2(p + d * 8, dqa[d][2 * i], dqa[d][2 * i + 1]);
            }
        }
        next(h, q0);
    }
    float inv = 1.f / scale;
    for (int i = 0; i < 2; i++) {
        if (keys[i] >= T) continue;
        if constexpr (CAUSAL) { // dk fp32 (qk-norm's backward reads it), dv bf16 in its rows ldkv apart
            i64 off = ((i64)b * T + keys[i]) * kvd + kh * HD + 2 * t, offv = ((i64)b * T + keys[i]) * ldkv + kh * HD + 2 * t;
#pragma unroll
            for (int d = 0; d < HD / 8; d++) {
                *(float2*)(dk + off + d * 8) = make_float2(dka[d][2 * i], dka[d][2 * i + 1]);
                *(unsigned*)((bf16_t*)dv + offv + d * 8) = pack2(dva[d][2 * i] * inv, dva[d][2 * i + 1] * inv);
            }
        } else { // bf16, rows ldkv apart: the ViT's q|k|v gradient, which products read
            i64 off = ((i64)b * T + keys[i]) * lkv + kh * HD + 2 * t;
#pragma unroll
            for (int d = 0; d < HD / 8; d++) {
                *(unsigned*)((bf16_t*)dk + off + d * 8) = pack2(dka[d][2 * i], dka[d][2 * i + 1]);
                *(unsigned*)((bf16_t*)dv + off + d * 8) = pack2(dva[d][2 * i] * inv, dva[d][2 * i + 1] * inv);
            }
        }
    }
}
extern "C" {
// flash_dot: dvec [B·H, T] = Σ_d dO·O over each head's row, the softmax
// backward's row term, from the bf16 copies (FlashAttention-2's way: half
// the bytes of the fp32 ones, which bf16 precision then need not keep), and
// zeroes the same row of dq [B·T, H·hd] for flash_bwd's sums (one pass over
// the rows instead of a memset of its own). hd/8 lanes a row (hd/8 a power
// of two ≤ 32; rows 16-byte aligned), each with 8 elements of dO and o by
// 16-byte loads and 8 of dq by two 16-byte stores, summed across the row's
// lanes by shuffles: a warp a row with 4-byte loads took 57 µs a reference
// call on an H200, this 39 (BenchmarkBandwidthKernels).
__global__ void flash_dot(float* dvec, float* dq, const bf16_t* dO, const bf16_t* o, int T, int H, int hd, i64 rows) {
    int per = hd >> 3;
    i64 t = (i64)blockIdx.x * blockDim.x + threadIdx.x, r = t / per;
    int j = (int)(t % per);
    float s = 0.f;
    if (r < rows) {
        uint4 a = ((const uint4*)(dO + r * hd))[j], c = ((const uint4*)(o + r * hd))[j];
        unsigned av[4] = {a.x, a.y, a.z, a.w}, cv[4] = {c.x, c.y, c.z, c.w};
#pragma unroll
        for (int i = 0; i < 4; i++)
            s += __uint_as_float(av[i] << 16) * __uint_as_float(cv[i] << 16) +
                 __uint_as_float(av[i] & 0xffff0000u) * __uint_as_float(cv[i] & 0xffff0000u);
        float4* z = (float4*)(dq + r * hd) + 2 * j;
        z[0] = z[1] = make_float4(0.f, 0.f, 0.f, 0.f);
    }
    // the row's lanes are adjacent and per divides 32: every lane of the
    // warp shuffles (those past the rows with 0)
    for (int m = per >> 1; m > 0; m >>= 1) s += __shfl_xor_sync(FULL, s, m);
    if (r < rows && j == 0) {
        int h = (int)(r % H);
        i64 tok = r / H;
        dvec[((tok / T) * H + h) * T + tok % T] = s;
    }
}

#define FLASH_KERNELS_(HD, SUFFIX, CAUSAL)                                                                         \
    __global__ void __launch_bounds__(FLASH_THREADS)                                                               \
        flash_fwd##SUFFIX##HD(const bf16_t* q, const bf16_t* k, const bf16_t* v, const int* docs, float* o,        \
                              bf16_t* oh, float* lse2, int T, int H, int KV, float scale2, int ldq, int ldkv) {    \
        flash_fwd<HD, CAUSAL>(q, k, v, docs, o, oh, lse2, T, H, KV, scale2, ldq, ldkv);                            \
    }                                                                                                              \
    __global__ void __launch_bounds__(FLASH_THREADS)                                                               \
        flash_bwd##SUFFIX##HD(const bf16_t* q, const bf16_t* k, const bf16_t* v, const bf16_t* dO,                 \
                              const float* lse2, const float* dvec, const int* docs, float* dq, float* dk,         \
                              float* dv, int T, int H, int KV, float scale2, float scale, int ldq, int ldkv) {     \
        flash_bwd<HD, CAUSAL>(q, k, v, dO, lse2, dvec, docs, dq, dk, dv, T, H, KV, scale2, scale, ldq, ldkv);     \
    }
// flash_fwd_HD and flash_bwd_HD (causal), flash_fwd_bi_HD and
// flash_bwd_bi_HD (bidirectional).
#define FLASH_KERNELS(HD) FLASH_KERNELS_(HD, _, true) FLASH_KERNELS_(HD, _bi_, false)
FLASH_KERNELS(16)
FLASH_KERNELS(32)
FLASH_KERNELS(64)
} // extern "C"
#endif // MMABLATE_CC >= 80
