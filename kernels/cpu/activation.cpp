// CPU SiLU and sigmoid, forward and backward: the reference for kernels/cuda/activation.cu.
// Element-wise over the flat tensor (any shape), f32 or f64, computed in the tensor's own type.
// Outputs may alias inputs: each element is read before it is written.
#include "kernels/activation.h"

#include <cmath>
#include <cstdint>

namespace yolo {
namespace {

template <typename T>
T sigmoid(T v) {
  return T(1) / (T(1) + std::exp(-v));
}

// out[i] = f(a[i], b[i]) over n elements, in parallel.
template <typename T, typename F>
void map2(const Tensor& a, const Tensor& b, const Tensor& out, F f) {
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  T* po = out.data<T>();
  const int64_t n = a.numel();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) po[i] = f(pa[i], pb[i]);
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
