// CPU elementwise ops (the reference for kernels/cuda/elementwise.cu): plain loops over contiguous
// tensors, f32 math for f32 (alpha rounded to f32 once, as on CUDA) and f64 math for f64.
// cast gives core/dtype.h's conversions bit for bit (f32 <-> f16 through branch-free twins that
// vectorise), so CPU and CUDA casts agree bit for bit.
#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/elementwise.h"
#include "kernels/cpu/vec_math.h"  // YOLO_ISA_CLONES (Note [ISA clones])

namespace yolo {
namespace {

constexpr int64_t kParallelMin = 1 << 15;  // below this, threads cost more than they save


template <typename T, typename Op>
void map_binary(const Tensor& a, const Tensor& b, const Tensor& out, Op op) {
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  T* po = out.data<T>();
  const int64_t n = out.numel();
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) po[i] = op(pa[i], pb[i]);
}

template <typename Op>
void binary(const Tensor& a, const Tensor& b, const Tensor& out, Op op) {
  if (a.dtype() == DType::f32) map_binary<float>(a, b, out, op);
  else map_binary<double>(a, b, out, op);
}

template <typename T>
void scale_typed(const Tensor& x, T alpha, const Tensor& out) {
  const T* px = x.data<T>();
  T* po = out.data<T>();
  const int64_t n = out.numel();
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) po[i] = alpha * px[i];
}

template <typename T>
void fill_typed(const Tensor& t, T value) {
  T* p = t.data<T>();
  const int64_t n = t.numel();
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) p[i] = value;
}

// Note [Branch-free f16 casts]: float_to_half and half_to_float of core/dtype.h pick a case per
// value (normal, subnormal, overflow, NaN) with branches and a loop, which keeps a loop over them
// scalar. The twins below compute every case and select with integer compares (|x|'s bits fit in
// a signed int32, so the compares are signed): subnormal halves come from f32 arithmetic that is
// exact or rounds once to nearest even (a * 2^24 + 2^23 rounds the product to an integer, fused
// or not), normal ones from the same bit rounding as dtype.h. Checked equal to dtype.h on all
// 2^32 floats and all 2^16 halves; tests/test_elementwise.cpp covers every case.
inline Half half_from_float(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t abs = x & 0x7fffffffu;
  const int32_t a = int32_t(abs);
  const uint32_t normal = (abs + 0xfffu + ((abs >> 13) & 1u) - 0x38000000u) >> 13;
  const float scaled = std::bit_cast<float>(abs) * 16777216.0f + 8388608.0f;  // |f| / 2^-24 + 2^23
  const uint32_t subnormal = std::bit_cast<uint32_t>(scaled) - 0x4B000000u;
  // Masks, not ?: -- GCC would branch around the f32 maths and then not vectorise the loop.
  const uint32_t is_sub = 0u - uint32_t(a < 0x38800000);
  const uint32_t is_inf = 0u - uint32_t(a >= 0x477ff000);  // rounds to >= 65520
  const uint32_t is_nan = 0u - uint32_t(a > 0x7f800000);
  uint32_t r = (subnormal & is_sub) | (normal & ~is_sub);
  r = (0x7c00u & is_inf) | (r & ~is_inf);
  r = (0x7e00u & is_nan) | (r & ~is_nan);  // quiet NaN
  Half h;
  h.bits = uint16_t(sign | r);
  return h;
}

inline float float_from_half(Half h) {
  const uint32_t sign = uint32_t(h.bits & 0x8000u) << 16;
  const int32_t a = int32_t(h.bits & 0x7fffu);
  uint32_t normal = (uint32_t(a) << 13) + 0x38000000u;   // exponent + 112
  normal = a >= 0x7c00 ? normal + 0x38000000u : normal;  // inf / NaN: exponent 255
  const uint32_t subnormal =
      std::bit_cast<uint32_t>(float(a) * 5.9604644775390625e-8f);  // a * 2^-24
  const uint32_t is_sub = 0u - uint32_t(a < 0x400);                // a mask, as in half_from_float
  return std::bit_cast<float>(sign | (subnormal & is_sub) | (normal & ~is_sub));
}

// Element conversions between the float dtypes; 16-bit types go through f32 (exact widening).
float to_float(float v) { return v; }
float to_float(double v) { return float(v); }
float to_float(Half v) { return float_from_half(v); }
float to_float(BFloat16 v) { return bf16_to_float(v); }

template <typename T>
T from_float(float v);
template <>
float from_float<float>(float v) { return v; }
template <>
Half from_float<Half>(float v) { return half_from_float(v); }
template <>
BFloat16 from_float<BFloat16>(float v) { return float_to_bf16(v); }

// pd[i] = ps[i] converted, for i in [0, n) (Note [ISA clones]).
template <typename From, typename To>
YOLO_ISA_CLONES void cast_range(const From* __restrict ps, To* __restrict pd, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if constexpr (std::is_same_v<From, float> && std::is_same_v<To, double>) {
      pd[i] = double(ps[i]);
    } else {
      pd[i] = from_float<To>(to_float(ps[i]));
    }
  }
}

template <typename From, typename To>
void cast_typed(const Tensor& src, const Tensor& dst) {
  const From* ps = src.data<From>();
  To* pd = dst.data<To>();
  const int64_t n = src.numel();
  constexpr int64_t kChunk = 1 << 14;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t b = 0; b < chunks; ++b)
    cast_range(ps + b * kChunk, pd + b * kChunk, std::min(kChunk, n - b * kChunk));
}

template <typename From>
void cast_from(const Tensor& src, const Tensor& dst) {
  switch (dst.dtype()) {
    case DType::f32: cast_typed<From, float>(src, dst); break;
    case DType::f16: cast_typed<From, Half>(src, dst); break;
    case DType::bf16: cast_typed<From, BFloat16>(src, dst); break;
    default: YOLO_FAIL("cast: unsupported destination dtype " << dtype_name(dst.dtype()));
  }
}

}  // namespace

void add_cpu(Context&, const Tensor& a, const Tensor& b, const Tensor& out) {
  binary(a, b, out, [](auto x, auto y) { return x + y; });
}

void add_scaled_cpu(Context&, const Tensor& a, const Tensor& b, double alpha, const Tensor& out) {
  if (a.dtype() == DType::f32) {
    const float alpha_f = float(alpha);
    map_binary<float>(a, b, out, [alpha_f](float x, float y) { return x + alpha_f * y; });
  } else {
    map_binary<double>(a, b, out, [alpha](double x, double y) { return x + alpha * y; });
  }
}

void mul_cpu(Context&, const Tensor& a, const Tensor& b, const Tensor& out) {
  binary(a, b, out, [](auto x, auto y) { return x * y; });
}

void scale_cpu(Context&, const Tensor& x, double alpha, const Tensor& out) {
  if (x.dtype() == DType::f32) scale_typed<float>(x, float(alpha), out);
  else scale_typed<double>(x, alpha, out);
}

void fill_cpu(Context&, const Tensor& t, double value) {
  switch (t.dtype()) {
    case DType::f32: fill_typed<float>(t, float(value)); break;
    case DType::f64: fill_typed<double>(t, value); break;
    case DType::f16: fill_typed<Half>(t, float_to_half(float(value))); break;
    case DType::bf16: fill_typed<BFloat16>(t, float_to_bf16(float(value))); break;
    default: YOLO_FAIL("fill: unsupported dtype " << dtype_name(t.dtype()));
  }
}

void copy_cpu(Context&, const Tensor& src, const Tensor& dst) {
  if (src.raw() != dst.raw()) std::memmove(dst.raw(), src.raw(), src.nbytes());
}

void cast_cpu(Context& ctx, const Tensor& src, const Tensor& dst) {
  if (src.dtype() == dst.dtype()) {
    copy_cpu(ctx, src, dst);
    return;
  }
  switch (src.dtype()) {
    case DType::f32:
      if (dst.dtype() == DType::f64) cast_typed<float, double>(src, dst);
      else cast_from<float>(src, dst);
      break;
    case DType::f64: cast_typed<double, float>(src, dst); break;
    case DType::f16: cast_from<Half>(src, dst); break;
    case DType::bf16: cast_from<BFloat16>(src, dst); break;
    default: YOLO_FAIL("cast: unsupported source dtype " << dtype_name(src.dtype()));
  }
}

}  // namespace yolo
