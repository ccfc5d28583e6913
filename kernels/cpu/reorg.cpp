// CPU space-to-depth and its inverse (the reference for kernels/cuda/reorg.cu): a copy of C
// contiguous channels per (output pixel, block). Parallel over output rows.
#include <cstring>

#include "kernels/reorg.h"

namespace yolo {
namespace {

constexpr int kDh[4] = {0, 1, 0, 1};
constexpr int kDw[4] = {0, 0, 1, 1};

// forward = true: packed <- full; false: full <- packed.
template <typename T>
void move_typed(const Tensor& full, const Tensor& packed, bool forward) {
  const int64_t N = full.dim(0), H = full.dim(1), W = full.dim(2), C = full.dim(3);
  const int64_t OH = H / 2, OW = W / 2;
  T* pf = static_cast<T*>(full.raw());
  T* pp = static_cast<T*>(packed.raw());
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < N * OH; ++row) {  // row = n * OH + i
    const int64_t n = row / OH, i = row % OH;
    for (int64_t j = 0; j < OW; ++j) {
      for (int b = 0; b < 4; ++b) {
        T* f = pf + ((n * H + 2 * i + kDh[b]) * W + 2 * j + kDw[b]) * C;
        T* p = pp + (row * OW + j) * 4 * C + b * C;
        if (forward) {
          std::memcpy(p, f, size_t(C) * sizeof(T));
        } else {
          std::memcpy(f, p, size_t(C) * sizeof(T));
        }
      }
    }
  }
}

void move(const Tensor& full, const Tensor& packed, bool forward) {
  if (full.dtype() == DType::f64) {
    move_typed<double>(full, packed, forward);
  } else {
    move_typed<float>(full, packed, forward);
  }
}

}  // namespace

void space_to_depth_fwd_cpu(Context& ctx, const Tensor& x, const Tensor& y) { move(x, y, true); }

void space_to_depth_bwd_cpu(Context& ctx, const Tensor& dy, const Tensor& dx) {
  move(dx, dy, false);
}

}  // namespace yolo
