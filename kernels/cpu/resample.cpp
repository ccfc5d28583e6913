// CPU nearest 2x upsample and channel concat / split, NHWC (the reference for
// kernels/cuda/resample.cu). The upsample backward sums each 2x2 block in the order
// (0,0), (0,1), (1,0), (1,1), as the CUDA gather does. Parallel over output rows.
#include <cstring>

#include "kernels/resample.h"

namespace yolo {
namespace {

template <typename T>
void upsample_fwd_typed(const Tensor& x, const Tensor& y) {
  const int64_t N = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
  const T* px = x.data<T>();
  T* py = y.data<T>();
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < N * 2 * H; ++row) {  // row = n * 2H + oh
    const int64_t n = row / (2 * H), h = (row % (2 * H)) / 2;
    const T* src = px + (n * H + h) * W * C;
    T* dst = py + row * 2 * W * C;
    for (int64_t w = 0; w < W; ++w) {
      std::memcpy(dst + (2 * w) * C, src + w * C, size_t(C) * sizeof(T));
      std::memcpy(dst + (2 * w + 1) * C, src + w * C, size_t(C) * sizeof(T));
    }
  }
}

template <typename T>
void upsample_bwd_typed(const Tensor& dy, const Tensor& dx) {
  const int64_t N = dx.dim(0), H = dx.dim(1), W = dx.dim(2), C = dx.dim(3);
  const T* pdy = dy.data<T>();
  T* pdx = dx.data<T>();
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < N * H; ++row) {  // row = n * H + h
    const T* top = pdy + (2 * row) * 2 * W * C;  // dy row 2h of image n
    const T* bottom = top + 2 * W * C;
    T* out = pdx + row * W * C;
    for (int64_t w = 0; w < W; ++w)
      for (int64_t c = 0; c < C; ++c)
        out[w * C + c] = top[2 * w * C + c] + top[(2 * w + 1) * C + c] + bottom[2 * w * C + c] +
                         bottom[(2 * w + 1) * C + c];
  }
}

// Channel width of each part; an undefined part (at most one, checked by the dispatcher) takes
// what the others leave of `total`.
std::vector<int64_t> part_widths(const std::vector<Tensor>& parts, int64_t total) {
  std::vector<int64_t> widths(parts.size());
  int64_t used = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    widths[i] = parts[i].defined() ? parts[i].dim(3) : 0;
    used += widths[i];
  }
  for (size_t i = 0; i < parts.size(); ++i)
    if (!parts[i].defined()) widths[i] = total - used;
  return widths;
}

// Copies between `whole` (P pixels x total channels) and each defined part (P x width) at its
// channel offset; to_whole picks the direction.
void move_parts(const Tensor& whole, const std::vector<Tensor>& parts, bool to_whole) {
  const int64_t total = whole.dim(3);
  const int64_t P = whole.numel() / (total > 0 ? total : 1);
  const size_t es = dtype_size(whole.dtype());
  const std::vector<int64_t> widths = part_widths(parts, total);
  char* pw = static_cast<char*>(whole.raw());
  int64_t offset = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const int64_t c = widths[i];
    if (parts[i].defined() && c > 0) {
      char* pp = static_cast<char*>(parts[i].raw());
#pragma omp parallel for schedule(static)
      for (int64_t p = 0; p < P; ++p) {
        char* w = pw + (p * total + offset) * es;
        char* q = pp + p * c * es;
        if (to_whole) std::memcpy(w, q, size_t(c) * es);
        else std::memcpy(q, w, size_t(c) * es);
      }
    }
    offset += c;
  }
}

}  // namespace

void upsample_nearest2x_fwd_cpu(Context&, const Tensor& x, const Tensor& y) {
  if (x.dtype() == DType::f32) upsample_fwd_typed<float>(x, y);
  else upsample_fwd_typed<double>(x, y);
}

void upsample_nearest2x_bwd_cpu(Context&, const Tensor& dy, const Tensor& dx) {
  if (dx.dtype() == DType::f32) upsample_bwd_typed<float>(dy, dx);
  else upsample_bwd_typed<double>(dy, dx);
}

void concat_channels_fwd_cpu(Context&, const std::vector<Tensor>& xs, const Tensor& out) {
  move_parts(out, xs, true);
}

void concat_channels_bwd_cpu(Context&, const Tensor& dout, const std::vector<Tensor>& dxs) {
  move_parts(dout, dxs, false);
}

}  // namespace yolo
