// CUDA max pool (stride 1, padding k/2, NHWC) and SPPF (CPU twin: kernels/cpu/pool.cpp).
// Each block owns an 8x8 pixel tile of one image and L channels, staged in shared memory as f32
// with a halo; global traffic moves in 16-byte packs when C and the pointers allow.
// sppf_fwd is one kernel (Note [SPPF in one pass]); backward is a deterministic gather.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "core/cuda_check.h"
#include "core/cuda_state.h"
#include "kernels/cuda/convert.cuh"
#include "kernels/pool.h"

namespace yolo {
namespace {

// Note [SPPF in one pass]
// With stride 1 and -inf padding (padding never wins), a pool of size k applied to a pool of
// size k is a pool of size 2k-1 over the original image, clipped to the image: every in-image
// position within 2r of h is within r of some in-image h' within r of h (walk from h towards it).
// So p1, p2, p3 = pools of radius r, 2r, 3r over x, and max is exact (no rounding; NaN
// propagates either way), so the values equal the cascade's bit for bit. sppf_fwd loads one tile
// with halo 3r, takes nested row maxima at radii r, 2r, 3r, then nested column maxima, and writes
// [x, p1, p2, p3]. The backward cannot take this shortcut: gradients must follow the cascade's
// argmaxes (of p1 over x, p2 over p1, p3 over p2), so sppf_bwd runs three gather passes over the
// x, p1, p2 stored in `out` (kernels/cpu/pool.cpp spells the same recursion). The gradients of
// p2 and p1 are kept in f32 scratch, so f16/bf16 round once, at dx, like an f32 reference.

constexpr int kTile = 8;
constexpr int kMaxThreads = 256;
constexpr size_t kSmemBudget = 48 * 1024;
constexpr int kMaxK = 15;  // argmax codes dh * k + dw fit in one byte

using cuda::from_f32;
using cuda::to_f32;

// V channels of one pixel as f32; global memory moves them as one 16-byte word when V > 1.
template <int V>
struct Lanes {
  float v[V];
};

template <typename T, int V>
__device__ __forceinline__ Lanes<V> load_lanes(const T* p) {
  Lanes<V> r;
  if constexpr (V > 1) {
    static_assert(sizeof(T) * V % 16 == 0, "packs are whole 16-byte words");
    int4 w[sizeof(T) * V / 16];
#pragma unroll
    for (int i = 0; i < int(sizeof(T) * V / 16); ++i) w[i] = reinterpret_cast<const int4*>(p)[i];
    const T* e = reinterpret_cast<const T*>(w);
#pragma unroll
    for (int j = 0; j < V; ++j) r.v[j] = to_f32(e[j]);
  } else {
    r.v[0] = to_f32(p[0]);
  }
  return r;
}

template <typename T, int V>
__device__ __forceinline__ void store_lanes(T* p, const Lanes<V>& r) {
  if constexpr (V > 1) {
    int4 w[sizeof(T) * V / 16];
    T* e = reinterpret_cast<T*>(w);
#pragma unroll
    for (int j = 0; j < V; ++j) e[j] = from_f32<T>(r.v[j]);
#pragma unroll
    for (int i = 0; i < int(sizeof(T) * V / 16); ++i) reinterpret_cast<int4*>(p)[i] = w[i];
  } else {
    p[0] = from_f32<T>(r.v[0]);
  }
}

// Shared-memory f32 lanes: float4 accesses when V is a multiple of 4 (16-byte aligned by
// construction: L and every channel offset are multiples of V), else scalar.
template <int V>
__device__ __forceinline__ Lanes<V> smem_load(const float* s) {
  Lanes<V> r;
  if constexpr (V % 4 == 0) {
#pragma unroll
    for (int i = 0; i < V / 4; ++i) {
      const float4 q = reinterpret_cast<const float4*>(s)[i];
      r.v[4 * i] = q.x;
      r.v[4 * i + 1] = q.y;
      r.v[4 * i + 2] = q.z;
      r.v[4 * i + 3] = q.w;
    }
  } else {
#pragma unroll
    for (int j = 0; j < V; ++j) r.v[j] = s[j];
  }
  return r;
}

template <int V>
__device__ __forceinline__ void smem_store(float* s, const Lanes<V>& r) {
  if constexpr (V % 4 == 0) {
#pragma unroll
    for (int i = 0; i < V / 4; ++i)
      reinterpret_cast<float4*>(s)[i] =
          make_float4(r.v[4 * i], r.v[4 * i + 1], r.v[4 * i + 2], r.v[4 * i + 3]);
  } else {
#pragma unroll
    for (int j = 0; j < V; ++j) s[j] = r.v[j];
  }
}

// PyTorch's window rule: take v when it is greater than the best so far or NaN.
__device__ __forceinline__ bool takes(float v, float best) {
  return v > best || isnan(v);
}

template <int V>
__device__ __forceinline__ void max_into(Lanes<V>& m, const float* s) {
  const Lanes<V> v = smem_load<V>(s);
#pragma unroll
  for (int j = 0; j < V; ++j)
    if (takes(v.v[j], m.v[j])) m.v[j] = v.v[j];
}

// Forward: NPOOL = 1 writes y = pool_k(x); NPOOL = 3 writes y = [x, p1, p2, p3] (ldy = 4C).
// Block: one image (blockIdx.z), one kTile x kTile tile (blockIdx.x), channels [c0, c0 + L).
// Shared: tile[IH][IW][L] (x with halo R = NPOOL * r, -inf outside the image) and
// rowmax[NPOOL][IH][kTile][L] (row maxima of radius p * r around each output column).
template <typename T, int V, int NPOOL>
__global__ void pool_fwd_kernel(const T* x, int64_t ldx, T* y, int64_t ldy, int H, int W, int C,
                                int r, int L, int tiles_w) {
  extern __shared__ float4 smem_words[];
  float* smem = reinterpret_cast<float*>(smem_words);
  const int R = NPOOL * r, IH = kTile + 2 * R, IW = kTile + 2 * R;
  float* tile = smem;
  float* rowmax = smem + IH * IW * L;
  const int oh0 = (blockIdx.x / tiles_w) * kTile, ow0 = (blockIdx.x % tiles_w) * kTile;
  const int c0 = blockIdx.y * L, vecs = L / V;
  x += int64_t(blockIdx.z) * H * W * ldx;
  y += int64_t(blockIdx.z) * H * W * ldy;

  for (int t = threadIdx.x; t < IH * IW * vecs; t += blockDim.x) {
    const int pix = t / vecs, c = (t % vecs) * V;
    const int gh = oh0 - R + pix / IW, gw = ow0 - R + pix % IW;
    Lanes<V> v;
    if (gh >= 0 && gh < H && gw >= 0 && gw < W && c0 + c < C) {
      v = load_lanes<T, V>(x + (int64_t(gh) * W + gw) * ldx + c0 + c);
    } else {
#pragma unroll
      for (int j = 0; j < V; ++j) v.v[j] = -INFINITY;
    }
    smem_store<V>(tile + pix * L + c, v);
  }
  __syncthreads();

  for (int t = threadIdx.x; t < IH * kTile * vecs; t += blockDim.x) {
    const int row = t / (kTile * vecs), col = (t / vecs) % kTile, c = (t % vecs) * V;
    const float* center = tile + (row * IW + col + R) * L + c;
    Lanes<V> m = smem_load<V>(center);
    for (int p = 1; p <= NPOOL; ++p) {
      for (int d = (p - 1) * r + 1; d <= p * r; ++d) {
        max_into(m, center - d * L);
        max_into(m, center + d * L);
      }
      smem_store<V>(rowmax + (((p - 1) * IH + row) * kTile + col) * L + c, m);
    }
  }
  __syncthreads();

  for (int t = threadIdx.x; t < kTile * kTile * vecs; t += blockDim.x) {
    const int i = t / (kTile * vecs), j0 = (t / vecs) % kTile, c = (t % vecs) * V;
    const int gh = oh0 + i, gw = ow0 + j0;
    if (gh >= H || gw >= W || c0 + c >= C) continue;
    T* py = y + (int64_t(gh) * W + gw) * ldy + c0 + c;
    if (NPOOL == 3) {
      store_lanes<T, V>(py, smem_load<V>(tile + ((i + R) * IW + j0 + R) * L + c));
    }
    for (int p = 1; p <= NPOOL; ++p) {
      const float* center = rowmax + (((p - 1) * IH + i + R) * kTile + j0) * L + c;
      Lanes<V> m = smem_load<V>(center);
      for (int d = 1; d <= p * r; ++d) {
        max_into(m, center - d * kTile * L);
        max_into(m, center + d * kTile * L);
      }
      store_lanes<T, V>(py + (NPOOL == 3 ? p * C : 0), m);
    }
  }
}

// Backward as a gather: dx = addend (if given) + the dy of every output whose window maximum is
// this position, summed in row-major output order (the CPU scatter's order). x and addend are T;
// dy is TG and dx TO, so SPPF keeps its intermediate gradients in f32 (Note [SPPF in one pass]).
// Shared: tile[XH][XW][L] (x with halo 2r) and arg[OH][OW][L], the window offset dh * k + dw of
// each output's maximum for the outputs within r of the tile.
template <typename T, typename TG, typename TO, int V>
__global__ void pool_bwd_kernel(const T* x, int64_t ldx, const TG* dy, int64_t lddy,
                                const T* addend, int64_t ldadd, TO* dx, int64_t lddx, int H, int W,
                                int C, int r, int L, int tiles_w) {
  extern __shared__ float4 smem_words[];
  float* smem = reinterpret_cast<float*>(smem_words);
  const int k = 2 * r + 1, XH = kTile + 4 * r, XW = XH, OH = kTile + 2 * r, OW = OH;
  float* tile = smem;
  uint8_t* arg = reinterpret_cast<uint8_t*>(smem + XH * XW * L);
  const int h0 = (blockIdx.x / tiles_w) * kTile, w0 = (blockIdx.x % tiles_w) * kTile;
  const int c0 = blockIdx.y * L, vecs = L / V;
  const int64_t image = int64_t(blockIdx.z) * H * W;

  for (int t = threadIdx.x; t < XH * XW * vecs; t += blockDim.x) {
    const int pix = t / vecs, c = (t % vecs) * V;
    const int gh = h0 - 2 * r + pix / XW, gw = w0 - 2 * r + pix % XW;
    Lanes<V> v;
    if (gh >= 0 && gh < H && gw >= 0 && gw < W && c0 + c < C) {
      v = load_lanes<T, V>(x + (image + int64_t(gh) * W + gw) * ldx + c0 + c);
    } else {
#pragma unroll
      for (int j = 0; j < V; ++j) v.v[j] = -INFINITY;
    }
    smem_store<V>(tile + pix * L + c, v);
  }
  __syncthreads();

  for (int t = threadIdx.x; t < OH * OW * vecs; t += blockDim.x) {
    const int opix = t / vecs, c = (t % vecs) * V;
    const int oi = opix / OW, oj = opix % OW;
    const int gh = h0 - r + oi, gw = w0 - r + oj;
    if (gh < 0 || gh >= H || gw < 0 || gw >= W) continue;
    const int hs = max(gh - r, 0), he = min(gh + r, H - 1);
    const int ws = max(gw - r, 0), we = min(gw + r, W - 1);
    float best[V];
    int code[V];
#pragma unroll
    for (int j = 0; j < V; ++j) {
      best[j] = -INFINITY;
      code[j] = (hs - gh + r) * k + (ws - gw + r);
    }
    for (int hh = hs; hh <= he; ++hh) {
      for (int ww = ws; ww <= we; ++ww) {
        const Lanes<V> s =
            smem_load<V>(tile + ((hh - h0 + 2 * r) * XW + (ww - w0 + 2 * r)) * L + c);
#pragma unroll
        for (int j = 0; j < V; ++j) {
          if (takes(s.v[j], best[j])) {
            best[j] = s.v[j];
            code[j] = (hh - gh + r) * k + (ww - gw + r);
          }
        }
      }
    }
#pragma unroll
    for (int j = 0; j < V; ++j) arg[opix * L + c + j] = uint8_t(code[j]);
  }
  __syncthreads();

  for (int t = threadIdx.x; t < kTile * kTile * vecs; t += blockDim.x) {
    const int i = t / (kTile * vecs), j0 = (t / vecs) % kTile, c = (t % vecs) * V;
    const int gh = h0 + i, gw = w0 + j0;
    if (gh >= H || gw >= W || c0 + c >= C) continue;
    const int64_t pixel = image + int64_t(gh) * W + gw;
    Lanes<V> acc;
    if (addend != nullptr) {
      acc = load_lanes<T, V>(addend + pixel * ldadd + c0 + c);
    } else {
#pragma unroll
      for (int j = 0; j < V; ++j) acc.v[j] = 0.0f;
    }
    for (int a = -r; a <= r; ++a) {
      const int oh = gh + a;
      if (oh < 0 || oh >= H) continue;
      for (int b = -r; b <= r; ++b) {
        const int ow = gw + b;
        if (ow < 0 || ow >= W) continue;
        const uint8_t want = uint8_t((r - a) * k + (r - b));
        const uint8_t* codes = arg + ((i + r + a) * OW + (j0 + r + b)) * L + c;
        bool hit[V];
        if constexpr (V % 4 == 0) {  // four codes per 32-bit compare
#pragma unroll
          for (int q = 0; q < V / 4; ++q) {
            const uint32_t eq = __vcmpeq4(reinterpret_cast<const uint32_t*>(codes)[q],
                                          uint32_t(want) * 0x01010101u);
#pragma unroll
            for (int e = 0; e < 4; ++e) hit[4 * q + e] = (eq >> (8 * e)) & 1u;
          }
        } else {
#pragma unroll
          for (int j = 0; j < V; ++j) hit[j] = codes[j] == want;
        }
        bool any = false;
#pragma unroll
        for (int j = 0; j < V; ++j) any |= hit[j];
        if (!any) continue;
        const Lanes<V> g = load_lanes<TG, V>(dy + (image + int64_t(oh) * W + ow) * lddy + c0 + c);
#pragma unroll
        for (int j = 0; j < V; ++j)
          if (hit[j]) acc.v[j] += g.v[j];
      }
    }
    store_lanes<TO, V>(dx + pixel * lddx + c0 + c, acc);
  }
}

bool aligned16(const void* p) {
  return p == nullptr || reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

// Channels per block: the most packs of V that fit the shared-memory budget (at most 8 packs),
// never more than C rounded up to V; 0 when not even one pack fits.
int channels_per_block(int C, int V, size_t smem_per_channel) {
  int packs = int(kSmemBudget / (smem_per_channel * size_t(V)));
  const int needed = (C + V - 1) / V;
  packs = packs < 8 ? packs : 8;
  packs = packs < needed ? packs : needed;
  return packs * V;
}

struct Geometry {
  int N, H, W, C;
};

template <typename T, int V, int NPOOL>
bool try_fwd(Context& ctx, const T* x, int64_t ldx, T* y, int64_t ldy, Geometry g, int r) {
  const int R = NPOOL * r, IH = kTile + 2 * R;
  const size_t per_channel = sizeof(float) * size_t(IH * IH + NPOOL * IH * kTile);
  const int L = channels_per_block(g.C, V, per_channel);
  if (L == 0) return false;
  const int tiles_w = (g.W + kTile - 1) / kTile, tiles_h = (g.H + kTile - 1) / kTile;
  const dim3 grid(unsigned(tiles_w * tiles_h), unsigned((g.C + L - 1) / L), unsigned(g.N));
  const int threads = kTile * kTile * (L / V) < kMaxThreads ? kTile * kTile * (L / V) : kMaxThreads;
  pool_fwd_kernel<T, V, NPOOL><<<grid, threads, per_channel * L, ctx.cuda().stream>>>(
      x, ldx, y, ldy, g.H, g.W, g.C, r, L, tiles_w);
  YOLO_LAUNCH_CHECK();
  return true;
}

template <typename T, int NPOOL>
void launch_fwd(Context& ctx, const void* x, int64_t ldx, void* y, int64_t ldy, Geometry g, int k) {
  if (int64_t(g.N) * g.H * g.W * g.C == 0) return;
  constexpr int kV = 16 / sizeof(T);
  const T* px = static_cast<const T*>(x);
  T* py = static_cast<T*>(y);
  const bool vec = g.C % kV == 0 && ldx % kV == 0 && ldy % kV == 0 && aligned16(x) && aligned16(y);
  if (vec && try_fwd<T, kV, NPOOL>(ctx, px, ldx, py, ldy, g, k / 2)) return;
  const bool launched = try_fwd<T, 1, NPOOL>(ctx, px, ldx, py, ldy, g, k / 2);
  YOLO_CHECK(launched, (NPOOL == 3 ? "sppf_fwd" : "maxpool_fwd")
                           << " cuda: kernel size " << k
                           << " needs more shared memory than one block has");
}

template <typename T, typename TG, typename TO, int V>
bool try_bwd(Context& ctx, const T* x, int64_t ldx, const TG* dy, int64_t lddy, const T* addend,
             int64_t ldadd, TO* dx, int64_t lddx, Geometry g, int r) {
  const int XH = kTile + 4 * r, OH = kTile + 2 * r;
  const size_t per_channel = sizeof(float) * size_t(XH * XH) + size_t(OH * OH);
  const int L = channels_per_block(g.C, V, per_channel);
  if (L == 0) return false;
  const int tiles_w = (g.W + kTile - 1) / kTile, tiles_h = (g.H + kTile - 1) / kTile;
  const dim3 grid(unsigned(tiles_w * tiles_h), unsigned((g.C + L - 1) / L), unsigned(g.N));
  const int threads = kTile * kTile * (L / V) < kMaxThreads ? kTile * kTile * (L / V) : kMaxThreads;
  pool_bwd_kernel<T, TG, TO, V><<<grid, threads, per_channel * L, ctx.cuda().stream>>>(
      x, ldx, dy, lddy, addend, ldadd, dx, lddx, g.H, g.W, g.C, r, L, tiles_w);
  YOLO_LAUNCH_CHECK();
  return true;
}

// dx (pixel stride lddx) = addend + maxpool_k backward of (x, dy); addend may be null.
template <typename T, typename TG = T, typename TO = T>
void launch_bwd(Context& ctx, const void* x, int64_t ldx, const void* dy, int64_t lddy,
                const void* addend, int64_t ldadd, void* dx, int64_t lddx, Geometry g, int k) {
  if (int64_t(g.N) * g.H * g.W * g.C == 0) return;
  YOLO_CHECK(k <= kMaxK, "maxpool backward cuda: kernel size " << k << " is above the largest "
                                                               << "supported, " << kMaxK);
  constexpr int kV = 16 / sizeof(T);
  const T* px = static_cast<const T*>(x);
  const TG* pdy = static_cast<const TG*>(dy);
  const T* padd = static_cast<const T*>(addend);
  TO* pdx = static_cast<TO*>(dx);
  const bool vec = g.C % kV == 0 && ldx % kV == 0 && lddy % kV == 0 && ldadd % kV == 0 &&
                   lddx % kV == 0 && aligned16(x) && aligned16(dy) && aligned16(addend) &&
                   aligned16(dx);
  if (vec && try_bwd<T, TG, TO, kV>(ctx, px, ldx, pdy, lddy, padd, ldadd, pdx, lddx, g, k / 2))
    return;
  const bool launched =
      try_bwd<T, TG, TO, 1>(ctx, px, ldx, pdy, lddy, padd, ldadd, pdx, lddx, g, k / 2);
  YOLO_CHECK(launched,
             "maxpool backward cuda: kernel size " << k << " needs too much shared memory");
}

Geometry geometry(const Tensor& t, int64_t channels) {
  return {int(t.dim(0)), int(t.dim(1)), int(t.dim(2)), int(channels)};
}

template <typename F>
void by_dtype(DType d, F f) {
  switch (d) {
    case DType::f32:
      f(float{});
      break;
    case DType::f16:
      f(__half{});
      break;
    case DType::bf16:
      f(__nv_bfloat16{});
      break;
    default:
      YOLO_FAIL("pool cuda: unsupported dtype " << dtype_name(d));
  }
}

}  // namespace

void maxpool_fwd_cuda(Context& ctx, const Tensor& x, const Tensor& y, int k) {
  const int64_t C = x.dim(3);
  by_dtype(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    launch_fwd<T, 1>(ctx, x.raw(), C, y.raw(), C, geometry(x, C), k);
  });
}

void maxpool_bwd_cuda(Context& ctx, const Tensor& x, const Tensor& dy, const Tensor& dx, int k) {
  const int64_t C = x.dim(3);
  by_dtype(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    launch_bwd<T>(ctx, x.raw(), C, dy.raw(), C, nullptr, C, dx.raw(), C, geometry(x, C), k);
  });
}

void sppf_fwd_cuda(Context& ctx, const Tensor& x, const Tensor& out, int k) {
  const int64_t C = x.dim(3);
  by_dtype(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    launch_fwd<T, 3>(ctx, x.raw(), C, out.raw(), 4 * C, geometry(x, C), k);
  });
}

void sppf_bwd_cuda(Context& ctx, const Tensor& out, const Tensor& dout, const Tensor& dx, int k) {
  const int64_t C = out.dim(3) / 4, C4 = 4 * C;
  const Geometry g = geometry(out, C);
  // Gradients of p2 and p1, in f32 whatever the dtype (one rounding, at dx).
  const Tensor g2 = ctx.empty(dx.shape(), DType::f32), g1 = ctx.empty(dx.shape(), DType::f32);
  by_dtype(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* o = static_cast<const T*>(out.raw());
    const T* d = static_cast<const T*>(dout.raw());
    // g2 = dout[p2] + pool_bwd(p2, dout[p3]); g1 = dout[p1] + pool_bwd(p1, g2);
    // dx = dout[x] + pool_bwd(x, g1).
    launch_bwd<T, T, float>(ctx, o + 2 * C, C4, d + 3 * C, C4, d + 2 * C, C4, g2.raw(), C, g, k);
    launch_bwd<T, float, float>(ctx, o + C, C4, g2.raw(), C, d + C, C4, g1.raw(), C, g, k);
    launch_bwd<T, float, T>(ctx, o, C4, g1.raw(), C, d, C4, dx.raw(), C, g, k);
  });
}

}  // namespace yolo
