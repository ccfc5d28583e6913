// HSV round trip of one RGB row for the CPU augmentation apply (kernels/cpu/augment_hsv.h): the
// portable per-pixel code of kernels/augment_pixel.h, and the same arithmetic 8 pixels at a time
// with AVX2 (Note [HSV in AVX2]), chosen at run time. Tests compare the two on every input.
#include "kernels/cpu/augment_hsv.h"

#include <cstring>

#include "kernels/augment_pixel.h"
#include "kernels/cpu/cpu_isa.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define YOLO_HSV_X86 1
#include <immintrin.h>
#else
#define YOLO_HSV_X86 0
#endif

namespace yolo::augment_cpu {

using namespace augment_pixel;

HsvRowTables::HsvRowTables(const uint8_t (*sample_lut)[256]) {
  for (int i = 0; i < 256; ++i) {
    sdiv[i] = hsv_sdiv(i);
    hdiv[i] = hsv_hdiv(i);
  }
  for (int c = 0; c < 3; ++c) {
    for (int i = 0; i < 256; ++i) lut[c][i] = sample_lut[c][i];
  }
  for (int i = 0; i < 256; ++i) {
    vtab[i] = sdiv[i] | (int(lut[2][i]) << 20);
    hue32[i] = lut[0][i];
    sat32[i] = lut[1][i];
  }
}

namespace {

struct IdentityLuts {
  uint8_t lut[3][256];
};
const IdentityLuts& identity_luts() {
  static const IdentityLuts t = [] {
    IdentityLuts x;
    for (int c = 0; c < 3; ++c) {
      for (int i = 0; i < 256; ++i) x.lut[c][i] = uint8_t(i);
    }
    return x;
  }();
  return t;
}

// Columns [x0, x1) of a width-n row, per pixel.
void hsv_pixels_portable(uint8_t* rgb, int x0, int x1, int n, const HsvRowTables& t) {
  for (int x = x0; x < x1; ++x) {
    uint8_t* p = rgb + size_t(x) * 3;
    int h, s, v, r, g, b;
    rgb_to_hsv(p[0], p[1], p[2], h, s, v, t.sdiv, t.hdiv);
    hsv_to_rgb(t.lut[0][h], t.lut[1][s], t.lut[2][v], hsv_simd_column(x, n), r, g, b);
    p[0] = uint8_t(r);
    p[1] = uint8_t(g);
    p[2] = uint8_t(b);
  }
}

}  // namespace

void hsv_row_portable(uint8_t* rgb, int n, const HsvRowTables& t) {
  hsv_pixels_portable(rgb, 0, n, n, t);
}

void hsv_row(uint8_t* rgb, int n, const HsvRowTables& t) {
  static const bool avx2 = hsv_avx2_supported();
  if (avx2) {
    hsv_row_avx2(rgb, n, t);
  } else {
    hsv_row_portable(rgb, n, t);
  }
}

#if YOLO_HSV_X86

// Note [HSV in AVX2]
// Eight pixels per step, as 32-bit lanes. Loading splits 24 interleaved bytes into r, g, b with
// byte shuffles; storing packs each lane to r | g << 8 | b << 16 and squeezes out the fourth byte.
// RGB -> HSV is rgb_to_hsv lane by lane: max/min, the branch chosen with compare masks, the two
// division tables and the sample's three lookup tables read with gathers, arithmetic shifts as
// C++'s >> on negative ints. HSV -> RGB is hsv_to_rgb's vector flavour: every product, sum and
// conversion is the same single-precision operation, and _mm256_fnmadd_ps gives 1 - s h and
// 1 - s (1 - h) rounded once, which is what cv2's contracted code computes; nothing else may be
// fused. GCC contracts a * b + c in C++ even in ISO mode once FMA is enabled, so every product
// that feeds a sum passes through `rounded` (an empty asm the optimiser cannot see through). The
// sector's table index per channel comes from a permute of two bit tables and picks among the four
// candidates with blends; float -> int truncates, as cv2's vector path does.
#define YOLO_AVX2_FN __attribute__((target("avx2,fma"))) inline
#define YOLO_AVX2_INLINE __attribute__((target("avx2,fma"), always_inline)) inline

namespace {

// v as computed, never fused into the operation that consumes it.
YOLO_AVX2_INLINE __m256 rounded(__m256 v) {
  asm("" : "+x"(v));
  return v;
}

struct Lanes3 {
  __m256i a, b, c;  // first, second, third channel of 8 pixels, one per 32-bit lane
};

YOLO_AVX2_INLINE Lanes3 load8(const uint8_t* p) {
  const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i hi = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 16));
  const __m128i a = _mm_or_si128(
      _mm_shuffle_epi8(lo,
                       _mm_setr_epi8(0, 3, 6, 9, 12, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1)),
      _mm_shuffle_epi8(
          hi, _mm_setr_epi8(-1, -1, -1, -1, -1, -1, 2, 5, -1, -1, -1, -1, -1, -1, -1, -1)));
  const __m128i b = _mm_or_si128(_mm_shuffle_epi8(lo, _mm_setr_epi8(1, 4, 7, 10, 13, -1, -1, -1, -1,
                                                                    -1, -1, -1, -1, -1, -1, -1)),
                                 _mm_shuffle_epi8(hi, _mm_setr_epi8(-1, -1, -1, -1, -1, 0, 3, 6, -1,
                                                                    -1, -1, -1, -1, -1, -1, -1)));
  const __m128i c = _mm_or_si128(_mm_shuffle_epi8(lo, _mm_setr_epi8(2, 5, 8, 11, 14, -1, -1, -1, -1,
                                                                    -1, -1, -1, -1, -1, -1, -1)),
                                 _mm_shuffle_epi8(hi, _mm_setr_epi8(-1, -1, -1, -1, -1, 1, 4, 7, -1,
                                                                    -1, -1, -1, -1, -1, -1, -1)));
  return {_mm256_cvtepu8_epi32(a), _mm256_cvtepu8_epi32(b), _mm256_cvtepu8_epi32(c)};
}

// Lanes hold 0..255. Writes exactly 24 bytes (safe in place: all of p was loaded before).
YOLO_AVX2_INLINE void store8(uint8_t* p, __m256i a, __m256i b, __m256i c) {
  const __m256i packed =
      _mm256_or_si256(a, _mm256_or_si256(_mm256_slli_epi32(b, 8), _mm256_slli_epi32(c, 16)));
  const __m256i squeezed = _mm256_shuffle_epi8(
      packed, _mm256_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1,  //
                               0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1));
  const __m128i lo = _mm256_castsi256_si128(squeezed);
  const __m128i hi = _mm256_extracti128_si256(squeezed, 1);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), lo);  // bytes 12..15 rewritten just below
  _mm_storel_epi64(reinterpret_cast<__m128i*>(p + 12), hi);
  const int last = _mm_cvtsi128_si32(_mm_srli_si128(hi, 8));
  std::memcpy(p + 20, &last, 4);
}

// rgb_to_hsv on 8 lanes: returns (h, s, value_lut[v]). vtab[v] = sdiv[v] | value_lut[v] << 20
// (sdiv < 2^20), so one gather serves both.
YOLO_AVX2_INLINE Lanes3 rgb_to_hsv8(__m256i r, __m256i g, __m256i b, const int* vtab,
                                    const int* hdiv) {
  const __m256i vmax = _mm256_max_epi32(_mm256_max_epi32(b, g), r);
  const __m256i vmin = _mm256_min_epi32(_mm256_min_epi32(b, g), r);
  const __m256i diff = _mm256_sub_epi32(vmax, vmin);
  const __m256i is_r = _mm256_cmpeq_epi32(vmax, r);
  const __m256i is_g = _mm256_cmpeq_epi32(vmax, g);
  const __m256i half = _mm256_set1_epi32(1 << (kHsvShift - 1));
  const __m256i vt = _mm256_i32gather_epi32(vtab, vmax, 4);
  const __m256i sd = _mm256_and_si256(vt, _mm256_set1_epi32((1 << 20) - 1));
  const __m256i s =
      _mm256_srai_epi32(_mm256_add_epi32(_mm256_mullo_epi32(diff, sd), half), kHsvShift);
  const __m256i h_r = _mm256_sub_epi32(g, b);
  const __m256i h_g = _mm256_add_epi32(_mm256_sub_epi32(b, r), _mm256_slli_epi32(diff, 1));
  const __m256i h_b = _mm256_add_epi32(_mm256_sub_epi32(r, g), _mm256_slli_epi32(diff, 2));
  const __m256i hh0 = _mm256_blendv_epi8(_mm256_blendv_epi8(h_b, h_g, is_g), h_r, is_r);
  const __m256i hd = _mm256_i32gather_epi32(hdiv, diff, 4);
  const __m256i hh =
      _mm256_srai_epi32(_mm256_add_epi32(_mm256_mullo_epi32(hh0, hd), half), kHsvShift);
  const __m256i wrap =
      _mm256_and_si256(_mm256_cmpgt_epi32(_mm256_setzero_si256(), hh), _mm256_set1_epi32(180));
  return {_mm256_add_epi32(hh, wrap), s, _mm256_srli_epi32(vt, 20)};
}

// One output channel: candidate t[index] with the index's bits looked up by sector, times 255,
// truncated. Every candidate lies in [0, 1 + 2^-23], so the result is 0..255 without clamping
// (the exhaustive test covers every input).
YOLO_AVX2_INLINE __m256i pick_channel(__m256 t0, __m256 t1, __m256 t2, __m256 t3, __m256i sector,
                                      __m256i bit0, __m256i bit1) {
  const __m256 m0 = _mm256_castsi256_ps(_mm256_permutevar8x32_epi32(bit0, sector));
  const __m256 m1 = _mm256_castsi256_ps(_mm256_permutevar8x32_epi32(bit1, sector));
  const __m256 f = _mm256_blendv_ps(_mm256_blendv_ps(t0, t1, m0), _mm256_blendv_ps(t2, t3, m0), m1);
  return _mm256_cvttps_epi32(_mm256_mul_ps(f, _mm256_set1_ps(255.f)));
}

// hsv_to_rgb(simd = true) on 8 lanes: returns (r, g, b).
YOLO_AVX2_INLINE Lanes3 hsv_to_rgb8(__m256i h, __m256i s, __m256i v) {
  const __m256 one = _mm256_set1_ps(1.f);
  const __m256 inv255 = _mm256_set1_ps(1.f / 255.f);
  const __m256 sf = rounded(_mm256_mul_ps(_mm256_cvtepi32_ps(s), inv255));
  const __m256 vf = _mm256_mul_ps(_mm256_cvtepi32_ps(v), inv255);
  const __m256 hf0 = rounded(_mm256_mul_ps(_mm256_cvtepi32_ps(h), _mm256_set1_ps(6.f / 180.f)));
  const __m256i pre = _mm256_cvttps_epi32(hf0);  // hf0 >= 0: truncation is the floor
  const __m256 hf = _mm256_sub_ps(hf0, _mm256_cvtepi32_ps(pre));
  const __m256i sector = _mm256_sub_epi32(
      pre, _mm256_and_si256(_mm256_cmpgt_epi32(pre, _mm256_set1_epi32(5)), _mm256_set1_epi32(6)));
  const __m256 t0 = vf;
  const __m256 t1 = _mm256_mul_ps(vf, _mm256_sub_ps(one, sf));
  const __m256 t2 = _mm256_mul_ps(vf, _mm256_fnmadd_ps(sf, hf, one));
  const __m256 t3 = _mm256_mul_ps(vf, _mm256_fnmadd_ps(sf, _mm256_sub_ps(one, hf), one));
  // Per sector (0..5) and channel, bit 0 and bit 1 of the candidate index (hsv_to_rgb's table:
  // b {1,1,3,0,0,2}, g {3,0,0,2,1,1}, r {0,2,1,1,3,0}) in the sign bit, for the blends.
  constexpr int kOn = INT_MIN;
  const __m256i b_bit0 = _mm256_setr_epi32(kOn, kOn, kOn, 0, 0, 0, 0, 0);
  const __m256i b_bit1 = _mm256_setr_epi32(0, 0, kOn, 0, 0, kOn, 0, 0);
  const __m256i g_bit0 = _mm256_setr_epi32(kOn, 0, 0, 0, kOn, kOn, 0, 0);
  const __m256i g_bit1 = _mm256_setr_epi32(kOn, 0, 0, kOn, 0, 0, 0, 0);
  const __m256i r_bit0 = _mm256_setr_epi32(0, 0, kOn, kOn, kOn, 0, 0, 0);
  const __m256i r_bit1 = _mm256_setr_epi32(0, kOn, 0, 0, kOn, 0, 0, 0);
  const __m256i ob = pick_channel(t0, t1, t2, t3, sector, b_bit0, b_bit1);
  const __m256i og = pick_channel(t0, t1, t2, t3, sector, g_bit0, g_bit1);
  const __m256i orr = pick_channel(t0, t1, t2, t3, sector, r_bit0, r_bit1);
  return {orr, og, ob};
}

YOLO_AVX2_FN void hsv_row_avx2_impl(uint8_t* rgb, int n, const HsvRowTables& t) {
  const int simd_end = (n / 32) * 32;  // hsv_simd_column's boundary, a multiple of 8
  for (int x = 0; x < simd_end; x += 8) {
    uint8_t* p = rgb + size_t(x) * 3;
    const Lanes3 px = load8(p);
    const Lanes3 hsv = rgb_to_hsv8(px.a, px.b, px.c, t.vtab, t.hdiv);
    const __m256i h = _mm256_i32gather_epi32(t.hue32, hsv.a, 4);
    const __m256i s = _mm256_i32gather_epi32(t.sat32, hsv.b, 4);
    const Lanes3 out = hsv_to_rgb8(h, s, hsv.c);
    store8(p, out.a, out.b, out.c);
  }
  hsv_pixels_portable(rgb, simd_end, n, n, t);
}

YOLO_AVX2_FN void rgb_to_hsv_avx2_impl(const uint8_t* rgb, int n, uint8_t* hsv) {
  static const HsvRowTables identity(identity_luts().lut);
  for (int x = 0; x + 8 <= n; x += 8) {
    const Lanes3 px = load8(rgb + size_t(x) * 3);
    const Lanes3 out = rgb_to_hsv8(px.a, px.b, px.c, identity.vtab, identity.hdiv);
    store8(hsv + size_t(x) * 3, out.a, out.b, out.c);
  }
}

YOLO_AVX2_FN void hsv_to_rgb_avx2_impl(const uint8_t* hsv, int n, uint8_t* rgb) {
  for (int x = 0; x + 8 <= n; x += 8) {
    const Lanes3 px = load8(hsv + size_t(x) * 3);
    const Lanes3 out = hsv_to_rgb8(px.a, px.b, px.c);
    store8(rgb + size_t(x) * 3, out.a, out.b, out.c);
  }
}

}  // namespace

bool hsv_avx2_supported() {
  return cpu::isa() >= cpu::Isa::avx2;
}
void hsv_row_avx2(uint8_t* rgb, int n, const HsvRowTables& t) {
  hsv_row_avx2_impl(rgb, n, t);
}
void rgb_to_hsv_avx2(const uint8_t* rgb, int n, uint8_t* hsv) {
  rgb_to_hsv_avx2_impl(rgb, n, hsv);
}
void hsv_to_rgb_avx2(const uint8_t* hsv, int n, uint8_t* rgb) {
  hsv_to_rgb_avx2_impl(hsv, n, rgb);
}

#else  // no x86 vector code: the entry points run the portable arithmetic

bool hsv_avx2_supported() {
  return false;
}
void hsv_row_avx2(uint8_t* rgb, int n, const HsvRowTables& t) {
  hsv_row_portable(rgb, n, t);
}
void rgb_to_hsv_avx2(const uint8_t* rgb, int n, uint8_t* hsv) {
  static const HsvDivTables div;
  for (int x = 0; x < n; ++x) {
    int h, s, v;
    rgb_to_hsv(rgb[3 * x], rgb[3 * x + 1], rgb[3 * x + 2], h, s, v, div.sdiv, div.hdiv);
    hsv[3 * x] = uint8_t(h);
    hsv[3 * x + 1] = uint8_t(s);
    hsv[3 * x + 2] = uint8_t(v);
  }
}
void hsv_to_rgb_avx2(const uint8_t* hsv, int n, uint8_t* rgb) {
  for (int x = 0; x < n; ++x) {
    int r, g, b;
    hsv_to_rgb(hsv[3 * x], hsv[3 * x + 1], hsv[3 * x + 2], true, r, g, b);
    rgb[3 * x] = uint8_t(r);
    rgb[3 * x + 1] = uint8_t(g);
    rgb[3 * x + 2] = uint8_t(b);
  }
}

#endif

}  // namespace yolo::augment_cpu
