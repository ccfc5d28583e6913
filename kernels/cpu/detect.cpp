// CPU Detect decode (the reference for kernels/cuda/detect.cu): one pass over the level's conv
// output, written in the reference's row order. The arithmetic follows models/yolo.py step by
// step in the input's type: xy = (s * 2 + (i - 0.5)) * stride, wh = (s * 2)^2 * (anchor * stride).
#include <cmath>

#include "kernels/cpu/vec_math.h"
#include "kernels/detect.h"

namespace yolo {
namespace {

// o[k] = sigmoid(in[k]) for k < n, one vectorised loop (f32: exp_f32, about 1 ulp; Note [ISA
// clones]).
template <typename T>
YOLO_ISA_CLONES void sigmoid_run(const T* in, T* o, int64_t n) {
#pragma omp simd
  for (int64_t k = 0; k < n; ++k) o[k] = sigmoid(in[k]);
}

template <typename T>
void decode_typed(const Tensor& x, const Tensor& anchors, double stride_d, const Tensor& out,
                  int64_t row_offset) {
  const int64_t N = x.dim(0), ny = x.dim(1), nx = x.dim(2);
  const int64_t na = anchors.dim(0), no = out.dim(2), R = out.dim(1);
  const T stride = T(stride_d);
  const T* px = x.data<T>();
  const T* pa = anchors.data<T>();
  T* po = out.data<T>();
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < N * ny; ++row) {  // row = n * ny + y
    const int64_t n = row / ny, y = row % ny;
    for (int64_t xi = 0; xi < nx; ++xi) {
      const T* cell = px + (row * nx + xi) * na * no;
      for (int64_t a = 0; a < na; ++a) {
        const T* in = cell + a * no;
        T* o = po + (n * R + row_offset + (a * ny + y) * nx + xi) * no;
        sigmoid_run(in, o, no);
        o[0] = (o[0] * T(2) + (T(xi) - T(0.5))) * stride;
        o[1] = (o[1] * T(2) + (T(y) - T(0.5))) * stride;
        const T w = o[2] * T(2), h = o[3] * T(2);
        o[2] = (w * w) * (pa[2 * a] * stride);
        o[3] = (h * h) * (pa[2 * a + 1] * stride);
      }
    }
  }
}

}  // namespace

void detect_decode_cpu(Context& ctx, const Tensor& x, const Tensor& anchors, double stride,
                       const Tensor& out, int64_t row_offset) {
  if (x.dtype() == DType::f64) {
    decode_typed<double>(x, anchors, stride, out, row_offset);
  } else {
    decode_typed<float>(x, anchors, stride, out, row_offset);
  }
}

}  // namespace yolo
