// CPU SiLU and sigmoid, forward and backward: the reference for kernels/cuda/activation.cu.
// Element-wise over the flat tensor (any shape), f32 or f64, computed in the tensor's own type.
// Outputs may alias inputs: each element is read before it is written.
#include "kernels/activation.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/cpu/vec_math.h"

namespace yolo {
namespace {

// Elements per parallel chunk: big enough to amortise the loop, small enough to balance.
constexpr int64_t kChunk = 1 << 14;

// out[i] = f(a[i], b[i]) over [begin, end): one vectorised loop (sigmoid is exp_f32 for f32,
// Note [ISA clones]).
template <typename T, typename F>
YOLO_ISA_CLONES void map2_range(const T* pa, const T* pb, T* po,
                                int64_t begin, int64_t end, F f) {
#pragma omp simd
  for (int64_t i = begin; i < end; ++i) po[i] = f(pa[i], pb[i]);
}

// out[i] = f(a[i], b[i]) over n elements, in parallel chunks. out may alias a or b (each element
// is read before it is written, and chunks do not overlap).
template <typename T, typename F>
void map2(const Tensor& a, const Tensor& b, const Tensor& out, F f) {
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  T* po = out.data<T>();
  const int64_t n = a.numel();
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c)
    map2_range(pa, pb, po, c * kChunk, std::min(n, (c + 1) * kChunk), f);
}

template <typename T>
void silu_fwd_impl(const Tensor& x, const Tensor& y) {
  map2<T>(x, x, y, [](T v, T) { return v * sigmoid(v); });
}

template <typename T>
void silu_bwd_impl(const Tensor& x, const Tensor& dy, const Tensor& dx) {
  map2<T>(x, dy, dx, [](T v, T g) {
    const T s = sigmoid(v);
    return g * s * (T(1) + v * (T(1) - s));
  });
}

template <typename T>
void sigmoid_fwd_impl(const Tensor& x, const Tensor& y) {
  map2<T>(x, x, y, [](T v, T) { return sigmoid(v); });
}

template <typename T>
void sigmoid_bwd_impl(const Tensor& y, const Tensor& dy, const Tensor& dx) {
  map2<T>(y, dy, dx, [](T s, T g) { return g * s * (T(1) - s); });
}

}  // namespace

void silu_fwd_cpu(Context&, const Tensor& x, const Tensor& y) {
  if (x.dtype() == DType::f64)
    silu_fwd_impl<double>(x, y);
  else
    silu_fwd_impl<float>(x, y);
}

void silu_bwd_cpu(Context&, const Tensor& x, const Tensor& dy, const Tensor& dx) {
  if (x.dtype() == DType::f64)
    silu_bwd_impl<double>(x, dy, dx);
  else
    silu_bwd_impl<float>(x, dy, dx);
}

void sigmoid_fwd_cpu(Context&, const Tensor& x, const Tensor& y) {
  if (x.dtype() == DType::f64)
    sigmoid_fwd_impl<double>(x, y);
  else
    sigmoid_fwd_impl<float>(x, y);
}

void sigmoid_bwd_cpu(Context&, const Tensor& y, const Tensor& dy, const Tensor& dx) {
  if (y.dtype() == DType::f64)
    sigmoid_bwd_impl<double>(y, dy, dx);
  else
    sigmoid_bwd_impl<float>(y, dy, dx);
}

}  // namespace yolo
