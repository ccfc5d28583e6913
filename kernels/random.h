// Random fills from the Philox4x32-10 stream (core/philox.h): element i of (seed, offset) is word
// i % 4 of philox(counter = offset + i / 4, key = seed), so CPU and CUDA produce identical bits.
// f32 only.
#pragma once

#include <cstdint>

#include "core/context.h"

namespace yolo {

// t[i] = lo + (hi - lo) * u_i, u_i in [0, 1).
void fill_uniform(Context& ctx, const Tensor& t, uint64_t seed, uint64_t offset, float lo,
                  float hi);
// t[i] = mean + std * z_i, z from Box-Muller on word pairs (0,1) and (2,3) of each block.
void fill_normal(Context& ctx, const Tensor& t, uint64_t seed, uint64_t offset, float mean,
                 float std);

void fill_uniform_cpu(Context& ctx, const Tensor& t, uint64_t seed, uint64_t offset, float lo,
                      float hi);
void fill_normal_cpu(Context& ctx, const Tensor& t, uint64_t seed, uint64_t offset, float mean,
                     float std);
void fill_uniform_cuda(Context& ctx, const Tensor& t, uint64_t seed, uint64_t offset, float lo,
                       float hi);
void fill_normal_cuda(Context& ctx, const Tensor& t, uint64_t seed, uint64_t offset, float mean,
                      float std);

}  // namespace yolo
