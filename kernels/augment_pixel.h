// The per-pixel arithmetic of kernels/augment.h, shared word for word by the CPU apply
// (kernels/cpu/augment.cpp) and the CUDA one (kernels/cuda/augment.cu): OpenCV 4.6's warp
// fixed point and bilinear taps, its 8-bit HSV round trip, the reference's HSV lookup tables and
// mixup cast. Every double/float operation goes through dmul/dadd/fmul/... so nvcc cannot fuse
// them into FMAs and both devices produce the same bytes (Note [cv2 warp numerics]).
#pragma once

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/philox.h"  // YOLO_HOST_DEVICE
#include "kernels/augment.h"

#if !defined(__CUDA_ARCH__) && (defined(__SSE2__) || defined(_M_X64))
#include <emmintrin.h>
#endif

namespace yolo::augment_pixel {

// Note [cv2 warp numerics]
// cv2.warpAffine (INTER_LINEAR, OpenCV 4.6) inverts M in double, then maps output pixel (x, y)
// to a source position in 1/32 pixel steps: per column round(M0 * x * 1024) and
// round(M3 * x * 1024), per row round((M1 * y + M2) * 1024) + 16 and likewise for y (AB_BITS 10,
// round_delta 16); the sums are shifted right by 5, giving X, Y in 1/32 pixels. The integer part
// (X >> 5, saturated to int16) is the top-left tap, the fraction indexes a 32 x 32 table of four
// 15-bit weights, out = (p00 w0 + p01 w1 + p10 w2 + p11 w3 + 2^14) >> 15. For bilinear the table
// entries are exact products of multiples of 1/32, so they already sum to 1 << 15 and cv2's
// renormalisation never changes them. cv2.warpPerspective inverts the 3x3 M by cofactors
// (cv::invert, DECOMP_LU for 3x3) and works in 64-column blocks: with x0 the block's first column,
// X0 = M0 x0 + M1 y + M2 (likewise Y0, W0), then per column W = W0 + M6 (x - x0),
// W = W ? 32 / W : 0, X = round(clamp((X0 + M0 (x - x0)) * W)), likewise Y. Taps outside the
// source read the border value 114 (BORDER_CONSTANT), which is what the virtual canvas returns.
// Rounding is cvRound: nearest, ties to even, and out-of-range doubles give INT_MIN as SSE2's
// cvtsd2si does.

inline constexpr int kInterBits = 5;
inline constexpr int kInterTab = 1 << kInterBits;  // 32 sub-pixel positions per axis
inline constexpr int kAbBits = 10;
inline constexpr double kAbScale = 1 << kAbBits;
inline constexpr int kRoundDelta = (1 << kAbBits) / kInterTab / 2;  // 16
inline constexpr int kRemapBits = 15;
inline constexpr int kWarpBlock = 64;  // cv2's BLOCK_SZ in the warp invokers
inline constexpr int kHsvShift = 12;

// ---- arithmetic that nvcc must not contract ----
YOLO_HOST_DEVICE double dmul(double a, double b) {
#ifdef __CUDA_ARCH__
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
YOLO_HOST_DEVICE double dadd(double a, double b) {
#ifdef __CUDA_ARCH__
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}
YOLO_HOST_DEVICE double dsub(double a, double b) {
#ifdef __CUDA_ARCH__
  return __dsub_rn(a, b);
#else
  return a - b;
#endif
}
YOLO_HOST_DEVICE double ddiv(double a, double b) {
#ifdef __CUDA_ARCH__
  return __ddiv_rn(a, b);
#else
  return a / b;
#endif
}
YOLO_HOST_DEVICE float fmul(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
YOLO_HOST_DEVICE float fsub(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}

// cvRound(double): nearest, ties to even; NaN and values outside int give INT_MIN.
YOLO_HOST_DEVICE int round_double(double v) {
  if (!(v > -2147483648.5 && v < 2147483647.5)) return INT_MIN;
#ifdef __CUDA_ARCH__
  return __double2int_rn(v);
#elif defined(__SSE2__) || defined(_M_X64)
  return _mm_cvtsd_si32(_mm_set_sd(v));
#else
  return static_cast<int>(std::nearbyint(v));
#endif
}

// cvRound(float) for values well inside int (HSV outputs).
YOLO_HOST_DEVICE int round_float(float v) {
#ifdef __CUDA_ARCH__
  return __float2int_rn(v);
#elif defined(__SSE2__) || defined(_M_X64)
  return _mm_cvtss_si32(_mm_set_ss(v));
#else
  return static_cast<int>(std::nearbyint(v));
#endif
}

YOLO_HOST_DEVICE int saturate_short(int v) {
  return v < -32768 ? -32768 : (v > 32767 ? 32767 : v);
}
YOLO_HOST_DEVICE int saturate_u8(int v) {
  return v < 0 ? 0 : (v > 255 ? 255 : v);
}
// Modular int addition (cv2 adds in int; wrapping keeps an absurd matrix well defined here).
YOLO_HOST_DEVICE int add_wrap(int a, int b) {
  return static_cast<int>(static_cast<uint32_t>(a) + static_cast<uint32_t>(b));
}

// ---- matrix inversion, as the two cv2 warps do it ----
// warpAffine's own inline inversion of the top two rows of m (row-major 3x3) into inv[0..5].
YOLO_HOST_DEVICE void invert_affine(const double* m, double* inv) {
  double d = dsub(dmul(m[0], m[4]), dmul(m[1], m[3]));
  d = d != 0.0 ? ddiv(1.0, d) : 0.0;
  const double a0 = dmul(m[4], d), a1 = dmul(m[1], -d), a3 = dmul(m[3], -d), a4 = dmul(m[0], d);
  inv[0] = a0;
  inv[1] = a1;
  inv[3] = a3;
  inv[4] = a4;
  inv[2] = dsub(dmul(-a0, m[2]), dmul(a1, m[5]));
  inv[5] = dsub(dmul(-a3, m[2]), dmul(a4, m[5]));
  inv[6] = 0.0;
  inv[7] = 0.0;
  inv[8] = 1.0;
}

// cv::invert(DECOMP_LU) of a 3x3 double matrix: cofactors times 1 / det3; a singular matrix gives
// all zeros (cv::invert's failure result).
YOLO_HOST_DEVICE void invert_perspective(const double* m, double* inv) {
  auto at = [m](int r, int c) { return m[r * 3 + c]; };
  auto minor2 = [&](int r0, int c0, int r1, int c1, int r2, int c2, int r3, int c3) {
    return dsub(dmul(at(r0, c0), at(r1, c1)), dmul(at(r2, c2), at(r3, c3)));
  };
  double d = dadd(dsub(dmul(at(0, 0), minor2(1, 1, 2, 2, 1, 2, 2, 1)),
                       dmul(at(0, 1), minor2(1, 0, 2, 2, 1, 2, 2, 0))),
                  dmul(at(0, 2), minor2(1, 0, 2, 1, 1, 1, 2, 0)));
  if (d == 0.0) {
    for (int i = 0; i < 9; ++i) inv[i] = 0.0;
    return;
  }
  d = ddiv(1.0, d);
  inv[0] = dmul(minor2(1, 1, 2, 2, 1, 2, 2, 1), d);
  inv[1] = dmul(minor2(0, 2, 2, 1, 0, 1, 2, 2), d);
  inv[2] = dmul(minor2(0, 1, 1, 2, 0, 2, 1, 1), d);
  inv[3] = dmul(minor2(1, 2, 2, 0, 1, 0, 2, 2), d);
  inv[4] = dmul(minor2(0, 0, 2, 2, 0, 2, 2, 0), d);
  inv[5] = dmul(minor2(0, 2, 1, 0, 0, 0, 1, 2), d);
  inv[6] = dmul(minor2(1, 0, 2, 1, 1, 1, 2, 0), d);
  inv[7] = dmul(minor2(0, 1, 2, 0, 0, 0, 2, 1), d);
  inv[8] = dmul(minor2(0, 0, 1, 1, 0, 1, 1, 0), d);
}

// ---- warp coordinates ----
// The top-left tap (sx, sy) and the sub-pixel index fy * 32 + fx of one output pixel.
struct Tap {
  int sx;
  int sy;
  int frac;
};

// Affine terms (Note [cv2 warp numerics]): per column and per row, then combined.
YOLO_HOST_DEVICE int affine_col_x(const double* inv, int x) {
  return round_double(dmul(dmul(inv[0], double(x)), kAbScale));
}
YOLO_HOST_DEVICE int affine_col_y(const double* inv, int x) {
  return round_double(dmul(dmul(inv[3], double(x)), kAbScale));
}
YOLO_HOST_DEVICE int affine_row_x(const double* inv, int y) {
  return add_wrap(round_double(dmul(dadd(dmul(inv[1], double(y)), inv[2]), kAbScale)), kRoundDelta);
}
YOLO_HOST_DEVICE int affine_row_y(const double* inv, int y) {
  return add_wrap(round_double(dmul(dadd(dmul(inv[4], double(y)), inv[5]), kAbScale)), kRoundDelta);
}
YOLO_HOST_DEVICE Tap affine_tap(int row_x, int row_y, int col_x, int col_y) {
  const int X = add_wrap(row_x, col_x) >> (kAbBits - kInterBits);
  const int Y = add_wrap(row_y, col_y) >> (kAbBits - kInterBits);
  return {saturate_short(X >> kInterBits), saturate_short(Y >> kInterBits),
          ((Y & (kInterTab - 1)) << kInterBits) | (X & (kInterTab - 1))};
}

// warpPerspective's block width for an out_w x out_h output.
YOLO_HOST_DEVICE int perspective_block_w(int out_w, int out_h) {
  const int bh0 = out_h < kWarpBlock / 2 ? out_h : kWarpBlock / 2;
  const int bw0 = kWarpBlock * kWarpBlock / (bh0 > 0 ? bh0 : 1);
  return bw0 < out_w ? bw0 : out_w;
}

YOLO_HOST_DEVICE double clamp_int_range(double v) {
  const double lo = double(INT_MIN), hi = double(INT_MAX);
  return v < lo ? lo : (v > hi ? hi : v);  // NaN passes through (cv2's std::max/min order)
}

YOLO_HOST_DEVICE Tap perspective_tap(const double* inv, int block_w, int x, int y) {
  const int x0 = (x / block_w) * block_w, x1 = x - x0;
  const double X0 = dadd(dadd(dmul(inv[0], double(x0)), dmul(inv[1], double(y))), inv[2]);
  const double Y0 = dadd(dadd(dmul(inv[3], double(x0)), dmul(inv[4], double(y))), inv[5]);
  const double W0 = dadd(dadd(dmul(inv[6], double(x0)), dmul(inv[7], double(y))), inv[8]);
  double w = dadd(W0, dmul(inv[6], double(x1)));
  w = w != 0.0 ? ddiv(double(kInterTab), w) : 0.0;
  const int X = round_double(clamp_int_range(dmul(dadd(X0, dmul(inv[0], double(x1))), w)));
  const int Y = round_double(clamp_int_range(dmul(dadd(Y0, dmul(inv[3], double(x1))), w)));
  return {saturate_short(X >> kInterBits), saturate_short(Y >> kInterBits),
          ((Y & (kInterTab - 1)) << kInterBits) | (X & (kInterTab - 1))};
}

// The four 15-bit bilinear weights for sub-pixel index frac = fy * 32 + fx, in tap order
// (sx, sy), (sx + 1, sy), (sx, sy + 1), (sx + 1, sy + 1).
YOLO_HOST_DEVICE void bilinear_weights(int frac, int w[4]) {
  const int fx = frac & (kInterTab - 1), fy = frac >> kInterBits;
  constexpr int k = (1 << kRemapBits) / (kInterTab * kInterTab);  // 32
  w[0] = (kInterTab - fx) * (kInterTab - fy) * k;
  w[1] = fx * (kInterTab - fy) * k;
  w[2] = (kInterTab - fx) * fy * k;
  w[3] = fx * fy * k;
}

YOLO_HOST_DEVICE int bilinear_mix(int p00, int p01, int p10, int p11, const int w[4]) {
  return saturate_u8(
      (p00 * w[0] + p01 * w[1] + p10 * w[2] + p11 * w[3] + (1 << (kRemapBits - 1))) >> kRemapBits);
}

// ---- HSV (Note [cv2 8-bit HSV]) ----
// Note [cv2 8-bit HSV]
// COLOR_BGR2HSV on 8 bits is integer: v = max, diff = v - min, s = (diff * sdiv[v] + 2^11) >> 12
// with sdiv[i] = round(255 * 2^12 / i); h from the max channel's branch (g - b, b - r + 2 diff,
// r - g + 4 diff) times hdiv[diff] = round(180 * 2^12 / (6 i)), rounded the same way, plus 180
// when negative; sdiv[0] = hdiv[0] = 0. The divisions never tie, so round(n / i) is the integer
// (2n + i) / (2i). COLOR_HSV2BGR on 8 bits goes through float: h * (6/180), s and v times the
// float constant 1/255, the sector table, channel * 255 back to 8 bits. The reference's cv2 (Debian
// OpenCV 4.6, AVX2 dispatch, checked on all 180 * 256 * 256 inputs) does that in two ways within
// one row: the first width / 32 * 32 pixels go through its 8-float vector code, built with FMA
// contraction (1 - s h and 1 - s (1 - h) each rounded once) and truncating to 8 bits; the rest go
// through its scalar code, where only 1 - s h is contracted and the result is rounded (cvRound).
// Both are reproduced exactly here; another cv2 build (no AVX2) would differ by 1 in places.
YOLO_HOST_DEVICE int hsv_sdiv(int i) {
  return i == 0 ? 0 : (2 * (255 << kHsvShift) + i) / (2 * i);
}
YOLO_HOST_DEVICE int hsv_hdiv(int i) {
  return i == 0 ? 0 : (2 * (180 << kHsvShift) + 6 * i) / (12 * i);
}

YOLO_HOST_DEVICE void rgb_to_hsv(int r, int g, int b, int& h, int& s, int& v, const int* sdiv,
                                 const int* hdiv) {
  int vmax = b > g ? b : g;
  vmax = vmax > r ? vmax : r;
  int vmin = b < g ? b : g;
  vmin = vmin < r ? vmin : r;
  const int diff = vmax - vmin;
  const int vr = vmax == r ? -1 : 0;
  const int vg = vmax == g ? -1 : 0;
  s = (diff * sdiv[vmax] + (1 << (kHsvShift - 1))) >> kHsvShift;
  int hh = (vr & (g - b)) + (~vr & ((vg & (b - r + 2 * diff)) + (~vg & (r - g + 4 * diff))));
  hh = (hh * hdiv[diff] + (1 << (kHsvShift - 1))) >> kHsvShift;
  h = hh + (hh < 0 ? 180 : 0);
  v = vmax;
}

// 1 - a * b rounded once (cv2's build contracts these into FMAs; Note [cv2 8-bit HSV]). On the
// host without an FMA instruction: a * b is exact in double and 1 - a * b is rounded once to
// double; rounding that to float equals the single rounding unless the double lands exactly
// halfway between two floats, which is checked (then libm's exact fmaf decides).
YOLO_HOST_DEVICE float one_minus_product(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fmaf_rn(-a, b, 1.f);
#else
  const double r = 1.0 - double(a) * double(b);
  uint64_t bits;
  std::memcpy(&bits, &r, sizeof bits);
  constexpr uint64_t kLow = (uint64_t{1} << 29) - 1;  // double bits below float precision
  if ((bits & kLow) == (uint64_t{1} << 28)) return std::fmaf(-a, b, 1.f);
  return float(r);
#endif
}

// simd: the pixel lies in the part of its row that cv2 converts 32 pixels at a time
// (x < width / 32 * 32).
YOLO_HOST_DEVICE void hsv_to_rgb(int h, int s, int v, bool simd, int& r, int& g, int& b) {
  const float inv255 = 1.f / 255.f;
  const float hscale = 6.f / 180.f;
  const float sf = fmul(float(s), inv255), vf = fmul(float(v), inv255);
  float hf = fmul(float(h), hscale);
  const float pre = float(int(hf));  // hf >= 0: truncation is cvFloor
  hf = fsub(hf, pre);
  const int sector = int(pre) >= 6 ? int(pre) - 6 : int(pre);  // h <= 255: pre <= 8
  float tab[4];
  tab[0] = vf;
  tab[1] = fmul(vf, fsub(1.f, sf));
  tab[2] = fmul(vf, one_minus_product(sf, hf));
  tab[3] = simd ? fmul(vf, one_minus_product(sf, fsub(1.f, hf)))
                : fmul(vf, fsub(1.f, fmul(sf, fsub(1.f, hf))));
  // (b, g, r) indices into tab per sector, as cv2's sector table
  constexpr int kSector[6][3] = {{1, 3, 0}, {1, 0, 2}, {3, 0, 1}, {0, 2, 1}, {0, 1, 3}, {2, 1, 0}};
  const float fb = fmul(tab[kSector[sector][0]], 255.f);
  const float fg = fmul(tab[kSector[sector][1]], 255.f);
  const float fr = fmul(tab[kSector[sector][2]], 255.f);
  if (simd) {
    b = saturate_u8(int(fb));
    g = saturate_u8(int(fg));
    r = saturate_u8(int(fr));
  } else {
    b = saturate_u8(round_float(fb));
    g = saturate_u8(round_float(fg));
    r = saturate_u8(round_float(fr));
  }
}

// True where cv2's HSV2BGR handles column x of a width-w row in its vector loop.
YOLO_HOST_DEVICE bool hsv_simd_column(int x, int w) {
  return x < (w / 32) * 32;
}

// ---- mixup ----
// uint8(a * r + b * (1 - r)) as NumPy computes it on uint8 arrays and a Python float r:
// float64 products and sum, truncated by the cast.
YOLO_HOST_DEVICE int mixup_value(int a, int b, double r, double one_minus_r) {
  const double v = dadd(dmul(double(a), r), dmul(double(b), one_minus_r));
#ifdef __CUDA_ARCH__
  return saturate_u8(__double2int_rz(v));
#else
  return saturate_u8(static_cast<int>(v));
#endif
}

// ---- the prepared descriptors both devices read ----
struct PixelTile {
  int64_t origin = 0;  // byte offset of canvas pixel (0, 0) in this tile's source coordinates
                       // (may point outside the image; only pixels inside the tile are read)
  int32_t x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  int32_t stride = 0;  // source row bytes
};

struct PixelView {
  int32_t n_tiles = 0;
  PixelTile tiles[4];
  int32_t canvas_w = 0, canvas_h = 0;
  int32_t warp = 0;      // AugmentWarp
  int32_t block_w = 1;   // perspective block width
  int32_t disjoint = 1;  // no two tiles overlap (a 2x2 block inside one tile is read from it)
  double inv[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
};

struct PixelSample {
  PixelView views[2];
  int32_t mixup = 0, hsv = 0, flip_ud = 0, flip_lr = 0;
  double mixup_r = 1.0, mixup_1mr = 0.0;
  uint8_t lut[3][256];  // hue, saturation, value tables
};

// NumPy's float64 modulo (result has the divisor's sign).
inline double numpy_mod(double a, double b) {
  double m = std::fmod(a, b);
  if (m != 0.0) {
    if ((b < 0) != (m < 0)) m += b;
  } else {
    m = std::copysign(0.0, b);
  }
  return m;
}

// float64 -> uint8 as NumPy's astype does on x86-64 for in-range values: truncation.
inline uint8_t numpy_u8(double v) {
  return static_cast<uint8_t>(static_cast<int>(v));
}

// augment_hsv's tables: hue (x * r0) % 180, saturation and value clip(x * r, 0, 255), uint8.
inline void hsv_tables(const double gain[3], uint8_t lut[3][256]) {
  for (int x = 0; x < 256; ++x) {
    const double xd = double(x);
    lut[0][x] = numpy_u8(numpy_mod(xd * gain[0], 180.0));
    for (int c = 1; c < 3; ++c) {
      double v = xd * gain[c];
      v = v < 0.0 ? 0.0 : (v > 255.0 ? 255.0 : v);
      lut[c][x] = numpy_u8(v);
    }
  }
}

// Host: resolves tiles against the sources and inverts the matrices (arguments already checked).
inline PixelView prepare_view(const AugmentView& v, const std::vector<AugmentSource>& sources,
                              int out_w, int out_h) {
  PixelView p;
  p.n_tiles = v.n_tiles;
  for (int t = 0; t < v.n_tiles; ++t) {
    const AugmentTile& tile = v.tiles[t];
    const AugmentSource& src = sources[size_t(tile.source)];
    PixelTile& q = p.tiles[t];
    // clipped to the canvas, so a tile hit is always a canvas pixel
    q.x0 = tile.x0 > 0 ? tile.x0 : 0;
    q.y0 = tile.y0 > 0 ? tile.y0 : 0;
    q.x1 = tile.x1 < v.canvas_w ? tile.x1 : v.canvas_w;
    q.y1 = tile.y1 < v.canvas_h ? tile.y1 : v.canvas_h;
    q.stride = src.width * 3;
    q.origin = src.offset + (int64_t(tile.src_y) - tile.y0) * q.stride +
               (int64_t(tile.src_x) - tile.x0) * 3;
  }
  for (int a = 0; a < p.n_tiles; ++a) {
    for (int b = a + 1; b < p.n_tiles; ++b) {
      const PixelTile &s = p.tiles[a], &t = p.tiles[b];
      if (s.x0 < t.x1 && t.x0 < s.x1 && s.y0 < t.y1 && t.y0 < s.y1) p.disjoint = 0;
    }
  }
  p.canvas_w = v.canvas_w;
  p.canvas_h = v.canvas_h;
  p.warp = static_cast<int32_t>(v.warp);
  if (v.warp == AugmentWarp::affine) {
    invert_affine(v.m, p.inv);
  } else if (v.warp == AugmentWarp::perspective) {
    invert_perspective(v.m, p.inv);
    p.block_w = perspective_block_w(out_w, out_h);
  }
  return p;
}

inline void prepare_sample(const AugmentSample& s, const std::vector<AugmentSource>& sources,
                           int out_w, int out_h, PixelSample& p) {
  p.views[0] = prepare_view(s.views[0], sources, out_w, out_h);
  p.mixup = s.mixup ? 1 : 0;
  if (s.mixup) p.views[1] = prepare_view(s.views[1], sources, out_w, out_h);
  p.mixup_r = s.mixup_r;
  p.mixup_1mr = 1.0 - s.mixup_r;
  p.hsv = s.hsv ? 1 : 0;
  p.flip_ud = s.flip_ud ? 1 : 0;
  p.flip_lr = s.flip_lr ? 1 : 0;
  if (s.hsv) {
    hsv_tables(s.hsv_gain, p.lut);
  } else {
    for (int c = 0; c < 3; ++c) {
      for (int x = 0; x < 256; ++x) p.lut[c][x] = uint8_t(x);
    }
  }
}

// ---- reading the virtual canvas (Note [Virtual canvas]) ----
// Canvas pixel (cx, cy): the first tile holding it, else 114 (also outside the canvas).
YOLO_HOST_DEVICE const uint8_t* canvas_at(const uint8_t* pixels, const PixelView& v, int cx,
                                          int cy) {
  if (cx < 0 || cy < 0 || cx >= v.canvas_w || cy >= v.canvas_h) return nullptr;
  for (int t = 0; t < v.n_tiles; ++t) {
    const PixelTile& q = v.tiles[t];
    if (cx >= q.x0 && cx < q.x1 && cy >= q.y0 && cy < q.y1) {
      return pixels + (q.origin + int64_t(cy) * q.stride + int64_t(cx) * 3);
    }
  }
  return nullptr;
}

YOLO_HOST_DEVICE void canvas_rgb(const uint8_t* pixels, const PixelView& v, int cx, int cy,
                                 int rgb[3]) {
  const uint8_t* p = canvas_at(pixels, v, cx, cy);
  for (int c = 0; c < 3; ++c) rgb[c] = p ? p[c] : kAugmentFill;
}

// The 4 taps of `tap` read one by one through the tile lookup (the general path).
YOLO_HOST_DEVICE void bilinear_general(const uint8_t* pixels, const PixelView& v, const Tap& tap,
                                       int rgb[3]) {
  int w[4];
  bilinear_weights(tap.frac, w);
  const uint8_t* p[4] = {
      canvas_at(pixels, v, tap.sx, tap.sy), canvas_at(pixels, v, tap.sx + 1, tap.sy),
      canvas_at(pixels, v, tap.sx, tap.sy + 1), canvas_at(pixels, v, tap.sx + 1, tap.sy + 1)};
  for (int c = 0; c < 3; ++c) {
    const int a = p[0] ? p[0][c] : kAugmentFill, b = p[1] ? p[1][c] : kAugmentFill;
    const int d = p[2] ? p[2][c] : kAugmentFill, e = p[3] ? p[3][c] : kAugmentFill;
    rgb[c] = bilinear_mix(a, b, d, e, w);
  }
}

// One output pixel (x, y) of a view, computed from scratch (the CUDA path; the CPU path gets the
// same numbers with per-row and per-column terms hoisted).
YOLO_HOST_DEVICE void view_rgb(const uint8_t* pixels, const PixelView& v, int x, int y,
                               int rgb[3]) {
  if (v.warp == int32_t(AugmentWarp::none)) {
    canvas_rgb(pixels, v, x, y, rgb);
    return;
  }
  Tap tap;
  if (v.warp == int32_t(AugmentWarp::affine)) {
    tap = affine_tap(affine_row_x(v.inv, y), affine_row_y(v.inv, y), affine_col_x(v.inv, x),
                     affine_col_y(v.inv, x));
  } else {
    tap = perspective_tap(v.inv, v.block_w, x, y);
  }
  bilinear_general(pixels, v, tap, rgb);
}

// Mixup then HSV for one pixel (a: views[0] value, b: views[1] value when mixup is set).
YOLO_HOST_DEVICE void finish_rgb(const PixelSample& s, int a[3], const int b[3], bool hsv_simd,
                                 const int* sdiv, const int* hdiv, const uint8_t (*lut)[256]) {
  if (s.mixup) {
    for (int c = 0; c < 3; ++c) a[c] = mixup_value(a[c], b[c], s.mixup_r, s.mixup_1mr);
  }
  if (s.hsv) {
    int h, sat, val;
    rgb_to_hsv(a[0], a[1], a[2], h, sat, val, sdiv, hdiv);
    hsv_to_rgb(lut[0][h], lut[1][sat], lut[2][val], hsv_simd, a[0], a[1], a[2]);
  }
}

// Host tables for rgb_to_hsv (sdiv, hdiv of Note [cv2 8-bit HSV]).
struct HsvDivTables {
  int sdiv[256];
  int hdiv[256];
  HsvDivTables() {
    for (int i = 0; i < 256; ++i) {
      sdiv[i] = hsv_sdiv(i);
      hdiv[i] = hsv_hdiv(i);
    }
  }
};

}  // namespace yolo::augment_pixel
