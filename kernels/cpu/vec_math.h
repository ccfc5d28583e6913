// Element-wise maths the CPU kernels share, written so loops over it vectorise: e^x in f32
// without calls (Cephes expf), the sigmoid on top of it, and the ISA-clone attribute that compiles
// a hot loop for AVX2 and for the baseline ISA (Note [ISA clones]).
//   #pragma omp simd
//   for (int64_t j = 0; j < n; ++j) y[j] = x[j] * sigmoid(x[j]);
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace yolo {

// Note [ISA clones]: the row loops are compiled for AVX2 and for the baseline ISA, and the loader
// picks one per CPU (target_clones; x86-64 GCC/Clang only, elsewhere one baseline build). AVX2
// doubles the vector width; it does not enable FMA, so both versions run the same IEEE operations
// per element (and per f64 accumulator lane) and give identical results.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define YOLO_ISA_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define YOLO_ISA_CLONES
#endif

// e^v in f32 for |v| <= 87 (e^-87 or e^87 beyond, NaN included), written so that a loop over it
// vectorises: no calls, and the clamp is an integer select on |v|'s bits (a float compare would
// keep GCC from if-converting the loop under -ftrapping-math).
inline float exp_f32(float v) {
  const uint32_t bits = std::bit_cast<uint32_t>(v);
  const uint32_t mag = (bits & 0x7fffffffu) > 0x42ae0000u ? 0x42ae0000u : bits & 0x7fffffffu;
  v = std::bit_cast<float>(mag | (bits & 0x80000000u));  // 0x42ae0000 = 87.0f
  const float magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float t = v * 1.44269504088896341f + magic;
  const float n = t - magic;
  float r = v - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const uint32_t e = (std::bit_cast<uint32_t>(t) - 0x4B400000u + 127u) << 23;
  return p * std::bit_cast<float>(e);
}

inline float exp_t(float v) { return exp_f32(v); }
inline double exp_t(double v) { return std::exp(v); }

template <typename T>
inline T sigmoid(T v) {
  return T(1) / (T(1) + exp_t(-v));
}

}  // namespace yolo
