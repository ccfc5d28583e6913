// CPU random fills: the reference the CUDA fills must match bit for bit.
#include "kernels/random.h"

#include "core/philox.h"

namespace yolo {

void fill_uniform_cpu(Context&, const Tensor& t, uint64_t seed, uint64_t offset, float lo,
                      float hi) {
  float* p = t.data<float>();
  const int64_t n = t.numel();
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < (n + 3) / 4; ++b) {
    const Philox4 r = philox_block(seed, offset, uint64_t(b));
    for (int j = 0; j < 4 && b * 4 + j < n; ++j)
      p[b * 4 + j] = lo + (hi - lo) * philox_uniform(r.v[j]);
  }
}

void fill_normal_cpu(Context&, const Tensor& t, uint64_t seed, uint64_t offset, float mean,
                     float std) {
  float* p = t.data<float>();
  const int64_t n = t.numel();
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < (n + 3) / 4; ++b) {
    const Philox4 r = philox_block(seed, offset, uint64_t(b));
    float z[4];
    philox_normal2(r.v[0], r.v[1], z[0], z[1]);
    philox_normal2(r.v[2], r.v[3], z[2], z[3]);
    for (int j = 0; j < 4 && b * 4 + j < n; ++j) p[b * 4 + j] = mean + std * z[j];
  }
}

}  // namespace yolo
