// CUDA nearest 2x upsample and channel concat / split, NHWC (CPU twin: kernels/cpu/resample.cpp).
// All are memory-bound copies: grid-stride loops over 16-byte words when channel counts and
// pointers allow, else one element per step. Concat and split move every part in one launch,
// the part table passed by value (groups of kMaxParts parts).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "core/cuda_check.h"
#include "core/cuda_state.h"
#include "kernels/cuda/convert.cuh"
#include "kernels/resample.h"

namespace yolo {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxParts = 8;

using cuda::from_f32;
using cuda::to_f32;

// i = q * d + m for i < n; 32-bit division when it fits (it nearly always does).
__device__ __forceinline__ void divmod(int64_t i, int64_t d, bool small, int64_t& q, int64_t& m) {
  if (small) {
    const uint32_t qi = uint32_t(i) / uint32_t(d);
    q = qi;
    m = int64_t(uint32_t(i) - qi * uint32_t(d));
  } else {
    q = i / d;
    m = i - q * d;
  }
}

// y[n, 2h+a, 2w+b, :] = x[n, h, w, :]; one thread per x word, four stores. CW = C in words.
template <typename Word>
__global__ void upsample_fwd_kernel(const Word* x, Word* y, int64_t pixels, int H, int W,
                                    int64_t CW, bool small) {
  const int64_t n_words = pixels * CW;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n_words; i += stride) {
    int64_t p, j, nh, w;
    divmod(i, CW, small, p, j);
    divmod(p, W, small, nh, w);  // nh = n * H + h
    const Word v = x[i];
    Word* out = y + ((2 * nh) * 2 * W + 2 * w) * CW + j;  // row 2h of image n (2 * nh = n*2H + 2h)
    out[0] = v;
    out[CW] = v;
    out[2 * W * CW] = v;
    out[2 * W * CW + CW] = v;
  }
}

// dx[n, h, w, c] = dy(2h, 2w) + dy(2h, 2w+1) + dy(2h+1, 2w) + dy(2h+1, 2w+1), in that order,
// in f32. V elements per step (16 bytes, or 1). CV = C / V.
template <typename T, int V>
__global__ void upsample_bwd_kernel(const T* dy, T* dx, int64_t pixels, int W, int64_t CV,
                                    bool small) {
  using Word = typename std::conditional<V == 1, T, int4>::type;
  const int64_t n_packs = pixels * CV;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n_packs; i += stride) {
    int64_t p, j, nh, w;
    divmod(i, CV, small, p, j);
    divmod(p, W, small, nh, w);
    const T* base = dy + (((2 * nh) * 2 * W + 2 * w) * CV + j) * V;
    const int64_t right = CV * V, down = 2 * W * CV * V;
    Word src[4];
    src[0] = *reinterpret_cast<const Word*>(base);
    src[1] = *reinterpret_cast<const Word*>(base + right);
    src[2] = *reinterpret_cast<const Word*>(base + down);
    src[3] = *reinterpret_cast<const Word*>(base + down + right);
    Word out;
    T* o = reinterpret_cast<T*>(&out);
#pragma unroll
    for (int e = 0; e < V; ++e) {
      float s = to_f32(reinterpret_cast<const T*>(&src[0])[e]);
      s += to_f32(reinterpret_cast<const T*>(&src[1])[e]);
      s += to_f32(reinterpret_cast<const T*>(&src[2])[e]);
      s += to_f32(reinterpret_cast<const T*>(&src[3])[e]);
      o[e] = from_f32<T>(s);
    }
    *reinterpret_cast<Word*>(dx + i * V) = out;
  }
}

// The parts of one concat / split launch, in words: part q is (pixels, width[q]) at channel
// offset[q] of the whole (pixels, total).
struct PartTable {
  void* ptr[kMaxParts];
  int64_t width[kMaxParts];
  int64_t offset[kMaxParts];
};

// blockIdx.y picks the part; to_whole copies parts into the whole (concat), else out (split).
template <typename Word, bool kToWhole>
__global__ void concat_kernel(Word* whole, int64_t total, int64_t pixels, PartTable table,
                              bool small) {
  const int q = blockIdx.y;
  const int64_t c = table.width[q];
  Word* part = static_cast<Word*>(table.ptr[q]);
  const int64_t n_words = pixels * c;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n_words; i += stride) {
    int64_t p, j;
    divmod(i, c, small, p, j);
    Word* w = whole + p * total + table.offset[q] + j;
    if (kToWhole)
      *w = part[i];
    else
      part[i] = *w;
  }
}

bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}
bool fits32(int64_t n) {
  return n < (int64_t(1) << 31);
}

int grid_for(Context& ctx, int64_t work) {
  const int sms =
      ctx.cuda().props.multiProcessorCount > 0 ? ctx.cuda().props.multiProcessorCount : 80;
  const int64_t want = (work + kThreads - 1) / kThreads, cap = int64_t(sms) * 16;
  return int(want < 1 ? 1 : (want < cap ? want : cap));
}

template <typename Word>
void launch_upsample_fwd(Context& ctx, const Tensor& x, const Tensor& y, int64_t CW) {
  const int64_t pixels = x.numel() / x.dim(3);
  upsample_fwd_kernel<Word><<<grid_for(ctx, pixels * CW), kThreads, 0, ctx.cuda().stream>>>(
      static_cast<const Word*>(x.raw()), static_cast<Word*>(y.raw()), pixels, int(x.dim(1)),
      int(x.dim(2)), CW, fits32(pixels * CW * 4));
  YOLO_LAUNCH_CHECK();
}

template <typename T>
void launch_upsample_bwd(Context& ctx, const Tensor& dy, const Tensor& dx) {
  constexpr int kV = 16 / sizeof(T);
  const int64_t C = dx.dim(3), pixels = dx.numel() / C;
  const T* pdy = static_cast<const T*>(dy.raw());
  T* pdx = static_cast<T*>(dx.raw());
  const bool small = fits32(dy.numel());
  if (C % kV == 0 && aligned16(pdy) && aligned16(pdx)) {
    upsample_bwd_kernel<T, kV><<<grid_for(ctx, pixels * C / kV), kThreads, 0, ctx.cuda().stream>>>(
        pdy, pdx, pixels, int(dx.dim(2)), C / kV, small);
  } else {
    upsample_bwd_kernel<T, 1><<<grid_for(ctx, pixels * C), kThreads, 0, ctx.cuda().stream>>>(
        pdy, pdx, pixels, int(dx.dim(2)), C, small);
  }
  YOLO_LAUNCH_CHECK();
}

// Concat (to_whole) or split of `whole` and its parts; an undefined part (at most one) takes the
// channels the defined ones leave over and is skipped.
template <typename Word, bool kToWhole>
void launch_concat(Context& ctx, const Tensor& whole, const std::vector<Tensor>& parts) {
  const size_t es = dtype_size(whole.dtype());
  const int64_t total = whole.dim(3), pixels = whole.numel() / (total > 0 ? total : 1);
  const int64_t per_word = int64_t(sizeof(Word) / es);
  int64_t used = 0;
  for (const Tensor& t : parts) used += t.defined() ? t.dim(3) : 0;
  PartTable table{};
  int count = 0;
  int64_t offset = 0, widest = 0;
  auto flush = [&] {
    if (count == 0) return;
    const dim3 grid(unsigned(grid_for(ctx, pixels * widest)), unsigned(count));
    concat_kernel<Word, kToWhole><<<grid, kThreads, 0, ctx.cuda().stream>>>(
        static_cast<Word*>(whole.raw()), total / per_word, pixels, table,
        fits32(pixels * total / per_word));
    YOLO_LAUNCH_CHECK();
    count = 0;
    widest = 0;
  };
  for (const Tensor& t : parts) {
    const int64_t c = t.defined() ? t.dim(3) : total - used;
    if (t.defined() && c > 0 && pixels > 0) {
      table.ptr[count] = t.raw();
      table.width[count] = c / per_word;
      table.offset[count] = offset / per_word;
      widest = widest > c / per_word ? widest : c / per_word;
      if (++count == kMaxParts) flush();
    }
    offset += c;
  }
  flush();
}

// 16-byte words when every channel count and offset is a multiple of 16 bytes and every pointer
// is 16-byte aligned; else element-sized words.
template <bool kToWhole>
void concat_any(Context& ctx, const Tensor& whole, const std::vector<Tensor>& parts) {
  const size_t es = dtype_size(whole.dtype());
  bool vec = aligned16(whole.raw()) && (whole.dim(3) * int64_t(es)) % 16 == 0;
  for (const Tensor& t : parts)
    if (t.defined()) vec = vec && aligned16(t.raw()) && (t.dim(3) * int64_t(es)) % 16 == 0;
  if (vec)
    launch_concat<int4, kToWhole>(ctx, whole, parts);
  else if (es == 4)
    launch_concat<uint32_t, kToWhole>(ctx, whole, parts);
  else
    launch_concat<uint16_t, kToWhole>(ctx, whole, parts);
}

}  // namespace

void upsample_nearest2x_fwd_cuda(Context& ctx, const Tensor& x, const Tensor& y) {
  if (x.numel() == 0) return;
  const size_t es = dtype_size(x.dtype());
  const int64_t row_bytes = x.dim(3) * int64_t(es);
  if (row_bytes % 16 == 0 && aligned16(x.raw()) && aligned16(y.raw()))
    launch_upsample_fwd<int4>(ctx, x, y, row_bytes / 16);
  else if (es == 4)
    launch_upsample_fwd<uint32_t>(ctx, x, y, x.dim(3));
  else
    launch_upsample_fwd<uint16_t>(ctx, x, y, x.dim(3));
}

void upsample_nearest2x_bwd_cuda(Context& ctx, const Tensor& dy, const Tensor& dx) {
  if (dx.numel() == 0) return;
  switch (dx.dtype()) {
    case DType::f32:
      launch_upsample_bwd<float>(ctx, dy, dx);
      break;
    case DType::f16:
      launch_upsample_bwd<__half>(ctx, dy, dx);
      break;
    case DType::bf16:
      launch_upsample_bwd<__nv_bfloat16>(ctx, dy, dx);
      break;
    default:
      YOLO_FAIL("upsample_nearest2x_bwd cuda: unsupported dtype " << dtype_name(dx.dtype()));
  }
}

void concat_channels_fwd_cuda(Context& ctx, const std::vector<Tensor>& xs, const Tensor& out) {
  concat_any<true>(ctx, out, xs);
}

void concat_channels_bwd_cuda(Context& ctx, const Tensor& dout, const std::vector<Tensor>& dxs) {
  concat_any<false>(ctx, dout, dxs);
}

}  // namespace yolo
