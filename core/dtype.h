// Element types (DType) and the host-side 16-bit float types used by casts and tests.
// f32 is the master type, f64 exists for CPU gradient checks, f16/bf16 for mixed precision on GPU.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace yolo {

enum class DType : uint8_t { f32, f64, f16, bf16, i32, i64, u8 };

size_t dtype_size(DType t);
const char* dtype_name(DType t);
bool is_floating(DType t);

// IEEE binary16 and bfloat16 stored as raw bits on the host. Conversions round to nearest even.
struct Half {
  uint16_t bits = 0;
};
struct BFloat16 {
  uint16_t bits = 0;
};

inline float half_to_float(Half h) {
  const uint32_t sign = (uint32_t(h.bits) & 0x8000u) << 16;
  uint32_t exp = (h.bits >> 10) & 0x1f;
  uint32_t mant = h.bits & 0x3ff;
  uint32_t out;
  if (exp == 0) {
    if (mant == 0) {
      out = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400u) == 0);
      out = sign | uint32_t(127 - 15 - e) << 23 | (mant & 0x3ffu) << 13;
    }
  } else if (exp == 0x1f) {
    out = sign | 0x7f800000u | mant << 13;
  } else {
    out = sign | (exp + 112) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &out, 4);
  return f;
}

inline Half float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint16_t sign = uint16_t((x >> 16) & 0x8000u);
  const uint32_t abs = x & 0x7fffffffu;
  Half h;
  if (abs >= 0x7f800000u) {  // inf or nan
    h.bits = uint16_t(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));
    return h;
  }
  if (abs >= 0x477ff000u) {  // rounds to >= 65520: overflow to inf
    h.bits = uint16_t(sign | 0x7c00u);
    return h;
  }
  if (abs < 0x38800000u) {  // below the smallest normal half: subnormal or zero
    // value = abs_float; half subnormal unit is 2^-24.
    float af;
    std::memcpy(&af, &abs, 4);
    const float scaled = af * 16777216.0f;  // / 2^-24, exact in float for this range
    // round half to even
    uint32_t q = uint32_t(scaled);
    const float rem = scaled - float(q);
    if (rem > 0.5f || (rem == 0.5f && (q & 1u))) ++q;
    h.bits = uint16_t(sign | q);
    return h;
  }
  const uint32_t mant_round = abs + 0xfffu + ((abs >> 13) & 1u);  // round to nearest even
  h.bits = uint16_t(sign | (((mant_round - 0x38000000u) >> 13) & 0x7fffu));
  return h;
}

inline float bf16_to_float(BFloat16 b) {
  const uint32_t x = uint32_t(b.bits) << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

inline BFloat16 float_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  BFloat16 b;
  if ((x & 0x7fffffffu) > 0x7f800000u) {  // nan: keep it a quiet nan
    b.bits = uint16_t((x >> 16) | 0x40u);
    return b;
  }
  x += 0x7fffu + ((x >> 16) & 1u);
  b.bits = uint16_t(x >> 16);
  return b;
}

template <typename T>
struct DTypeOf;
template <>
struct DTypeOf<float> {
  static constexpr DType value = DType::f32;
};
template <>
struct DTypeOf<double> {
  static constexpr DType value = DType::f64;
};
template <>
struct DTypeOf<Half> {
  static constexpr DType value = DType::f16;
};
template <>
struct DTypeOf<BFloat16> {
  static constexpr DType value = DType::bf16;
};
template <>
struct DTypeOf<int32_t> {
  static constexpr DType value = DType::i32;
};
template <>
struct DTypeOf<int64_t> {
  static constexpr DType value = DType::i64;
};
template <>
struct DTypeOf<uint8_t> {
  static constexpr DType value = DType::u8;
};

}  // namespace yolo
