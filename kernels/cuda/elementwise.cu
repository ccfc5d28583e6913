// CUDA elementwise ops (CPU twin: kernels/cpu/elementwise.cpp). Grid-stride loops over 16-byte
// packs when every pointer is 16-byte aligned, else one element per step; f16/bf16 math in f32.
// Conversions reproduce core/dtype.h bit for bit (round to nearest even, same NaN bits), so a cast
// on CUDA equals the CPU cast exactly. Outputs may alias inputs (no __restrict__).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <cstring>

#include "core/cuda_check.h"
#include "core/cuda_state.h"
#include "kernels/cuda/common.cuh"
#include "kernels/elementwise.h"

namespace yolo {
namespace {

constexpr int kThreads = 256;

// Storage <-> f32. NaNs get the bits core/dtype.h gives them: f16 keeps the sign and becomes
// 0x7e00, bf16 keeps the top 16 bits with the quiet bit set; f16 -> f32 keeps the payload.
__device__ __forceinline__ float to_f32(float v) {
  return v;
}
__device__ __forceinline__ float to_f32(__half v) {
  const uint32_t b = __half_as_ushort(v);
  if ((b & 0x7c00u) == 0x7c00u && (b & 0x3ffu) != 0u)
    return __uint_as_float(((b & 0x8000u) << 16) | 0x7f800000u | ((b & 0x3ffu) << 13));
  return __half2float(v);
}
__device__ __forceinline__ float to_f32(__nv_bfloat16 v) {
  return __uint_as_float(uint32_t(__bfloat16_as_ushort(v)) << 16);
}

template <typename T>
__device__ __forceinline__ T from_f32(float v);
template <>
__device__ __forceinline__ float from_f32<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __half from_f32<__half>(float v) {
  const uint32_t x = __float_as_uint(v);
  if ((x & 0x7fffffffu) > 0x7f800000u)
    return __ushort_as_half(uint16_t(((x >> 16) & 0x8000u) | 0x7e00u));
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) {
  const uint32_t x = __float_as_uint(v);
  if ((x & 0x7fffffffu) > 0x7f800000u) return __ushort_as_bfloat16(uint16_t((x >> 16) | 0x40u));
  return __float2bfloat16_rn(v);
}

// V consecutive elements, moved as 16-byte words when the pack is a multiple of 16 bytes.
template <typename T, int V>
struct Pack {
  T v[V];
};

template <typename T, int V>
__device__ __forceinline__ Pack<T, V> load_pack(const T* p) {
  Pack<T, V> r;
  if constexpr (sizeof(T) * V % 16 == 0) {
    int4 w[sizeof(T) * V / 16];
#pragma unroll
    for (int i = 0; i < int(sizeof(T) * V / 16); ++i) w[i] = reinterpret_cast<const int4*>(p)[i];
    memcpy(&r, w, sizeof(r));
  } else {
#pragma unroll
    for (int i = 0; i < V; ++i) r.v[i] = p[i];
  }
  return r;
}

template <typename T, int V>
__device__ __forceinline__ void store_pack(T* p, const Pack<T, V>& r) {
  if constexpr (sizeof(T) * V % 16 == 0) {
    int4 w[sizeof(T) * V / 16];
    memcpy(w, &r, sizeof(r));
#pragma unroll
    for (int i = 0; i < int(sizeof(T) * V / 16); ++i) reinterpret_cast<int4*>(p)[i] = w[i];
  } else {
#pragma unroll
    for (int i = 0; i < V; ++i) p[i] = r.v[i];
  }
}

struct AddOp {
  __device__ float operator()(float a, float b) const { return a + b; }
};
struct AddScaledOp {
  float alpha;
  __device__ float operator()(float a, float b) const { return a + alpha * b; }
};
struct MulOp {
  __device__ float operator()(float a, float b) const { return a * b; }
};
struct ScaleOp {
  float alpha;
  __device__ float operator()(float x) const { return alpha * x; }
};
struct IdentityOp {
  __device__ float operator()(float x) const { return x; }
};

// y[i] = op(x[i]) for i < n: packs of V first, then the n % V tail one element at a time.
template <typename In, typename Out, int V, typename Op>
__global__ void unary_kernel(const In* x, Out* y, int64_t n, Op op) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t first = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const int64_t packs = n / V;
  for (int64_t i = first; i < packs; i += stride) {
    const Pack<In, V> a = load_pack<In, V>(x + i * V);
    Pack<Out, V> r;
#pragma unroll
    for (int j = 0; j < V; ++j) r.v[j] = from_f32<Out>(op(to_f32(a.v[j])));
    store_pack<Out, V>(y + i * V, r);
  }
  for (int64_t i = packs * V + first; i < n; i += stride) y[i] = from_f32<Out>(op(to_f32(x[i])));
}

// out[i] = op(a[i], b[i]).
template <typename T, int V, typename Op>
__global__ void binary_kernel(const T* a, const T* b, T* out, int64_t n, Op op) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t first = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const int64_t packs = n / V;
  for (int64_t i = first; i < packs; i += stride) {
    const Pack<T, V> pa = load_pack<T, V>(a + i * V);
    const Pack<T, V> pb = load_pack<T, V>(b + i * V);
    Pack<T, V> r;
#pragma unroll
    for (int j = 0; j < V; ++j) r.v[j] = from_f32<T>(op(to_f32(pa.v[j]), to_f32(pb.v[j])));
    store_pack<T, V>(out + i * V, r);
  }
  for (int64_t i = packs * V + first; i < n; i += stride)
    out[i] = from_f32<T>(op(to_f32(a[i]), to_f32(b[i])));
}

// p[i] = value for raw words (uint32_t for f32, uint16_t for f16/bf16).
template <typename Word, int V>
__global__ void fill_kernel(Word* p, int64_t n, Word value) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t first = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const int64_t packs = n / V;
  Pack<Word, V> r;
#pragma unroll
  for (int j = 0; j < V; ++j) r.v[j] = value;
  for (int64_t i = first; i < packs; i += stride) store_pack<Word, V>(p + i * V, r);
  for (int64_t i = packs * V + first; i < n; i += stride) p[i] = value;
}

using cuda::aligned16;

// Enough blocks to fill the GPU several times over; grid-stride loops cover the rest.
int grid_for(const CudaState& cs, int64_t work) {
  const int64_t want = (work + kThreads - 1) / kThreads;
  const int64_t cap =
      int64_t(cs.props.multiProcessorCount > 0 ? cs.props.multiProcessorCount : 80) * 16;
  return int(want < 1 ? 1 : (want < cap ? want : cap));
}

template <typename In, typename Out, typename Op>
void launch_unary(Context& ctx, const void* x, void* y, int64_t n, Op op) {
  if (n == 0) return;
  CudaState& cs = ctx.cuda();
  constexpr int kV = 16 / (sizeof(In) < sizeof(Out) ? sizeof(In) : sizeof(Out));
  const In* px = static_cast<const In*>(x);
  Out* py = static_cast<Out*>(y);
  if (aligned16(x) && aligned16(y)) {
    unary_kernel<In, Out, kV, Op><<<grid_for(cs, n / kV), kThreads, 0, cs.stream>>>(px, py, n, op);
  } else {
    unary_kernel<In, Out, 1, Op><<<grid_for(cs, n), kThreads, 0, cs.stream>>>(px, py, n, op);
  }
  YOLO_LAUNCH_CHECK();
}

template <typename T, typename Op>
void launch_binary(Context& ctx, const Tensor& a, const Tensor& b, const Tensor& out, Op op) {
  const int64_t n = out.numel();
  if (n == 0) return;
  CudaState& cs = ctx.cuda();
  constexpr int kV = 16 / sizeof(T);
  const T* pa = static_cast<const T*>(a.raw());
  const T* pb = static_cast<const T*>(b.raw());
  T* po = static_cast<T*>(out.raw());
  if (aligned16(pa) && aligned16(pb) && aligned16(po)) {
    binary_kernel<T, kV, Op><<<grid_for(cs, n / kV), kThreads, 0, cs.stream>>>(pa, pb, po, n, op);
  } else {
    binary_kernel<T, 1, Op><<<grid_for(cs, n), kThreads, 0, cs.stream>>>(pa, pb, po, n, op);
  }
  YOLO_LAUNCH_CHECK();
}

template <typename Op>
void binary_by_dtype(Context& ctx, const Tensor& a, const Tensor& b, const Tensor& out, Op op) {
  switch (a.dtype()) {
    case DType::f32:
      launch_binary<float>(ctx, a, b, out, op);
      break;
    case DType::f16:
      launch_binary<__half>(ctx, a, b, out, op);
      break;
    case DType::bf16:
      launch_binary<__nv_bfloat16>(ctx, a, b, out, op);
      break;
    default:
      YOLO_FAIL("elementwise cuda: unsupported dtype " << dtype_name(a.dtype()));
  }
}

template <typename In, typename Op>
void unary_to(Context& ctx, const Tensor& x, const Tensor& y, Op op) {
  switch (y.dtype()) {
    case DType::f32:
      launch_unary<In, float>(ctx, x.raw(), y.raw(), x.numel(), op);
      break;
    case DType::f16:
      launch_unary<In, __half>(ctx, x.raw(), y.raw(), x.numel(), op);
      break;
    case DType::bf16:
      launch_unary<In, __nv_bfloat16>(ctx, x.raw(), y.raw(), x.numel(), op);
      break;
    default:
      YOLO_FAIL("elementwise cuda: unsupported dtype " << dtype_name(y.dtype()));
  }
}

template <typename Op>
void unary_by_dtype(Context& ctx, const Tensor& x, const Tensor& y, Op op) {
  switch (x.dtype()) {
    case DType::f32:
      unary_to<float>(ctx, x, y, op);
      break;
    case DType::f16:
      unary_to<__half>(ctx, x, y, op);
      break;
    case DType::bf16:
      unary_to<__nv_bfloat16>(ctx, x, y, op);
      break;
    default:
      YOLO_FAIL("elementwise cuda: unsupported dtype " << dtype_name(x.dtype()));
  }
}

template <typename Word>
void launch_fill(Context& ctx, const Tensor& t, Word value) {
  const int64_t n = t.numel();
  if (n == 0) return;
  CudaState& cs = ctx.cuda();
  constexpr int kV = 16 / sizeof(Word);
  Word* p = static_cast<Word*>(t.raw());
  if (aligned16(p)) {
    fill_kernel<Word, kV><<<grid_for(cs, n / kV), kThreads, 0, cs.stream>>>(p, n, value);
  } else {
    fill_kernel<Word, 1><<<grid_for(cs, n), kThreads, 0, cs.stream>>>(p, n, value);
  }
  YOLO_LAUNCH_CHECK();
}

}  // namespace

void add_cuda(Context& ctx, const Tensor& a, const Tensor& b, const Tensor& out) {
  binary_by_dtype(ctx, a, b, out, AddOp{});
}

void add_scaled_cuda(Context& ctx, const Tensor& a, const Tensor& b, double alpha,
                     const Tensor& out) {
  binary_by_dtype(ctx, a, b, out, AddScaledOp{float(alpha)});
}

void mul_cuda(Context& ctx, const Tensor& a, const Tensor& b, const Tensor& out) {
  binary_by_dtype(ctx, a, b, out, MulOp{});
}

void scale_cuda(Context& ctx, const Tensor& x, double alpha, const Tensor& out) {
  unary_by_dtype(ctx, x, out, ScaleOp{float(alpha)});
}

void fill_cuda(Context& ctx, const Tensor& t, double value) {
  const float v = float(value);
  switch (t.dtype()) {
    case DType::f32: {
      uint32_t bits;
      std::memcpy(&bits, &v, 4);
      launch_fill<uint32_t>(ctx, t, bits);
      break;
    }
    case DType::f16:
      launch_fill<uint16_t>(ctx, t, float_to_half(v).bits);
      break;
    case DType::bf16:
      launch_fill<uint16_t>(ctx, t, float_to_bf16(v).bits);
      break;
    default:
      YOLO_FAIL("fill cuda: unsupported dtype " << dtype_name(t.dtype()));
  }
}

void copy_cuda(Context& ctx, const Tensor& src, const Tensor& dst) {
  if (src.nbytes() == 0 || src.raw() == dst.raw()) return;
  CUDA_CHECK(cudaMemcpyAsync(dst.raw(), src.raw(), src.nbytes(), cudaMemcpyDeviceToDevice,
                             ctx.cuda().stream));
}

void cast_cuda(Context& ctx, const Tensor& src, const Tensor& dst) {
  if (src.dtype() == dst.dtype()) {
    copy_cuda(ctx, src, dst);
    return;
  }
  unary_by_dtype(ctx, src, dst, IdentityOp{});
}

}  // namespace yolo
