// Philox4x32-10 counter-based RNG (Salmon et al., SC'11), identical on host and device: the same
// (key, counter) gives the same four 32-bit words on the CPU and in a CUDA kernel. Used for weight
// init, augmentation plans keyed by (seed, epoch, index), and test inputs.
//   yolo::Philox4 r = yolo::philox4x32_10({ctr0, ctr1, ctr2, ctr3}, {key0, key1});
#pragma once

#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#define YOLO_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define YOLO_HOST_DEVICE inline
#endif

namespace yolo {

struct Philox4 {
  uint32_t v[4];
};
struct PhiloxKey {
  uint32_t k[2];
};

YOLO_HOST_DEVICE void philox_mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t p = static_cast<uint64_t>(a) * b;
  hi = static_cast<uint32_t>(p >> 32);
  lo = static_cast<uint32_t>(p);
}

YOLO_HOST_DEVICE Philox4 philox4x32_10(Philox4 ctr, PhiloxKey key) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(kM0, ctr.v[0], hi0, lo0);
    philox_mulhilo(kM1, ctr.v[2], hi1, lo1);
    ctr = Philox4{{hi1 ^ ctr.v[1] ^ key.k[0], lo1, hi0 ^ ctr.v[3] ^ key.k[1], lo0}};
    key.k[0] += kW0;
    key.k[1] += kW1;
  }
  return ctr;
}

// Uniform float in [0, 1) from the top 24 bits of a word.
YOLO_HOST_DEVICE float philox_uniform(uint32_t x) {
  return static_cast<float>(x >> 8) * (1.0f / 16777216.0f);
}

// Element i of the stream (seed, offset): word (i % 4) of philox(counter = offset + i / 4, key =
// seed). Every fill kernel uses this mapping, which is what makes CPU and CUDA agree element by
// element.
YOLO_HOST_DEVICE Philox4 philox_block(uint64_t seed, uint64_t offset, uint64_t block) {
  const uint64_t c = offset + block;
  return philox4x32_10(Philox4{{static_cast<uint32_t>(c), static_cast<uint32_t>(c >> 32), 0u, 0u}},
                       PhiloxKey{{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)}});
}

// Standard normal pair from two words (Box-Muller), in float.
YOLO_HOST_DEVICE void philox_normal2(uint32_t a, uint32_t b, float& z0, float& z1) {
  const float u1 = (static_cast<float>(a >> 8) + 1.0f) * (1.0f / 16777216.0f);  // (0, 1]
  const float u2 = philox_uniform(b);
  const float r = sqrtf(-2.0f * logf(u1));
  const float theta = 6.283185307179586f * u2;
  z0 = r * cosf(theta);
  z1 = r * sinf(theta);
}

}  // namespace yolo
