// CPU augmentation apply (the reference for kernels/cuda/augment.cu): one output row of one
// sample at a time, parallel over (sample, row): warp (+ mixup) into a row buffer, HSV on the row
// (kernels/cpu/augment_hsv.h), flip on the write. Per-column warp terms are computed once per
// sample, per-row terms once per row; affine rows and HSV run 8 pixels at a time where the CPU has
// AVX2. The maths is kernels/augment_pixel.h's, the same as the CUDA kernel's, to the byte.
#include "kernels/augment.h"

#include <climits>
#include <cstring>
#include <memory>
#include <vector>

#include "kernels/augment_pixel.h"
#include "kernels/cpu/augment_hsv.h"
#include "kernels/cpu/cpu_isa.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#endif

namespace yolo {
namespace {

using namespace augment_pixel;

// The tile holding the 2x2 block at (sx, sy), or -1. `hint` is tried first. Overlapping tiles
// (not a mosaic) always take the tap-by-tap path, where the first tile wins per tap.
inline int tile_of_block(const PixelView& v, int sx, int sy, int hint) {
  if (!v.disjoint) return -1;
  if (hint >= 0) {
    const PixelTile& q = v.tiles[hint];
    if (sx >= q.x0 && sx + 1 < q.x1 && sy >= q.y0 && sy + 1 < q.y1) return hint;
  }
  for (int t = 0; t < v.n_tiles; ++t) {
    const PixelTile& q = v.tiles[t];
    if (sx >= q.x0 && sx + 1 < q.x1 && sy >= q.y0 && sy + 1 < q.y1) return t;
  }
  return -1;
}

// Bilinear read of one tap; the fast path when one tile holds all four taps.
inline void read_tap(const uint8_t* pixels, const PixelView& v, const Tap& tap, int& hint,
                     uint8_t* dst) {
  const int t = tile_of_block(v, tap.sx, tap.sy, hint);
  if (t < 0) {
    int rgb[3];
    bilinear_general(pixels, v, tap, rgb);
    dst[0] = uint8_t(rgb[0]);
    dst[1] = uint8_t(rgb[1]);
    dst[2] = uint8_t(rgb[2]);
    return;
  }
  hint = t;
  const PixelTile& q = v.tiles[t];
  const uint8_t* p0 = pixels + (q.origin + int64_t(tap.sy) * q.stride + int64_t(tap.sx) * 3);
  const uint8_t* p1 = p0 + q.stride;
  int w[4];
  bilinear_weights(tap.frac, w);
  for (int c = 0; c < 3; ++c) dst[c] = uint8_t(bilinear_mix(p0[c], p0[3 + c], p1[c], p1[3 + c], w));
}

// Columns [x_begin, x_end) of an affine row (row_x, row_y: affine_row_x/_y of the row; dst: the
// row's first pixel): affine_tap's arithmetic inlined, with the current tile's bounds kept in
// registers so a pixel inside it costs a few compares, the 1/32-pixel position and 12 products.
void affine_span(const uint8_t* pixels, const PixelView& v, const int* col_x, const int* col_y,
                 int row_x, int row_y, int x_begin, int x_end, uint8_t* dst) {
  constexpr int kShift = kAbBits - kInterBits;
  int bx0 = 0, bx1 = -1, by0 = 0, by1 = -1;  // top-left taps allowed by the current tile
  int64_t origin = 0, stride = 0;
  dst += size_t(x_begin) * 3;
  for (int x = x_begin; x < x_end; ++x, dst += 3) {
    const int X = add_wrap(row_x, col_x[x]) >> kShift;
    const int Y = add_wrap(row_y, col_y[x]) >> kShift;
    const int sx = saturate_short(X >> kInterBits), sy = saturate_short(Y >> kInterBits);
    if (!(sx >= bx0 && sx < bx1 && sy >= by0 && sy < by1)) {
      const int t = tile_of_block(v, sx, sy, -1);
      if (t < 0) {
        const Tap tap{sx, sy, ((Y & (kInterTab - 1)) << kInterBits) | (X & (kInterTab - 1))};
        int rgb[3];
        bilinear_general(pixels, v, tap, rgb);
        dst[0] = uint8_t(rgb[0]);
        dst[1] = uint8_t(rgb[1]);
        dst[2] = uint8_t(rgb[2]);
        continue;
      }
      const PixelTile& q = v.tiles[t];
      bx0 = q.x0;
      bx1 = q.x1 - 1;
      by0 = q.y0;
      by1 = q.y1 - 1;
      origin = q.origin;
      stride = q.stride;
    }
    // the 15-bit table weights are 32 x these, so (sum * 32 + 2^14) >> 15 == (sum + 2^9) >> 10
    const int fx = X & (kInterTab - 1), fy = Y & (kInterTab - 1);
    const int w0 = (kInterTab - fx) * (kInterTab - fy), w1 = fx * (kInterTab - fy);
    const int w2 = (kInterTab - fx) * fy, w3 = fx * fy;
    const uint8_t* p0 = pixels + (origin + int64_t(sy) * stride + int64_t(sx) * 3);
    const uint8_t* p1 = p0 + stride;
    for (int c = 0; c < 3; ++c) {
      dst[c] = uint8_t((p0[c] * w0 + p0[3 + c] * w1 + p1[c] * w2 + p1[3 + c] * w3 + 512) >> 10);
    }
  }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

// Note [Affine rows in AVX2]
// Eight output pixels per step when the 2x2 blocks of all eight lie in one tile (or in none: then
// every tap is 114 and so is the result). Positions are affine_span's integer sums in 32-bit
// lanes. Each tap pair is one 4-byte gather at the left pixel (r, g, b of it and r of its right
// neighbour) and one at 2 bytes further, shifted down a byte (r, g, b of the right pixel), so no
// byte outside the 2x2 block is read. The bilinear sum is split by axis, which is the same
// integer: top = p00 (32 - fx) + p01 fx (u8 x s8 pairs, maddubs, at most 8160), then
// top (32 - fy) + bottom fy (s16 pairs, madd), + 512, >> 10, exactly the 15-bit weights' result.
// Blocks that straddle tiles, and the last W % 8 pixels, go through affine_span.
#define YOLO_WARP_AVX2 __attribute__((target("avx2")))

// Every lane has lo < sx < hi and lo_y < sy < hi_y.
YOLO_WARP_AVX2 inline bool all_inside(__m256i sx, __m256i sy, __m256i lo, __m256i hi, __m256i lo_y,
                                      __m256i hi_y) {
  const __m256i in = _mm256_and_si256(
      _mm256_and_si256(_mm256_cmpgt_epi32(sx, lo), _mm256_cmpgt_epi32(hi, sx)),
      _mm256_and_si256(_mm256_cmpgt_epi32(sy, lo_y), _mm256_cmpgt_epi32(hi_y, sy)));
  return _mm256_movemask_epi8(in) == -1;
}

// Some lane has lo < sx < hi and lo_y < sy < hi_y.
YOLO_WARP_AVX2 inline bool any_inside(__m256i sx, __m256i sy, __m256i lo, __m256i hi, __m256i lo_y,
                                      __m256i hi_y) {
  const __m256i in = _mm256_and_si256(
      _mm256_and_si256(_mm256_cmpgt_epi32(sx, lo), _mm256_cmpgt_epi32(hi, sx)),
      _mm256_and_si256(_mm256_cmpgt_epi32(sy, lo_y), _mm256_cmpgt_epi32(hi_y, sy)));
  return !_mm256_testz_si256(in, in);
}

YOLO_WARP_AVX2 void affine_row_avx2(const uint8_t* pixels, const PixelView& v, const int* col_x,
                                    const int* col_y, int row_x, int row_y, int W, uint8_t* dst) {
  constexpr int kShift = kAbBits - kInterBits;
  const __m256i vrow_x = _mm256_set1_epi32(row_x), vrow_y = _mm256_set1_epi32(row_y);
  const __m256i lo16 = _mm256_set1_epi32(-32768), hi16 = _mm256_set1_epi32(32767);
  const __m256i frac = _mm256_set1_epi32(kInterTab - 1), full = _mm256_set1_epi32(kInterTab);
  const __m256i squeeze = _mm256_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1,
                                           0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1);
  int tile = -1;
  // the current tile: top-left taps sx in (bx0m1, bx1), sy in (by0m1, by1)
  __m256i bx0m1 = _mm256_set1_epi32(INT_MAX), bx1 = _mm256_set1_epi32(INT_MIN);
  __m256i by0m1 = bx0m1, by1 = bx1;
  const uint8_t* base = nullptr;  // the tile's pixel (x0, y0)
  __m256i vstride = _mm256_setzero_si256();
  int stride = 0;
  int x = 0;
  for (; x + 8 <= W; x += 8) {
    const __m256i cx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(col_x + x));
    const __m256i cy = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(col_y + x));
    const __m256i X = _mm256_srai_epi32(_mm256_add_epi32(vrow_x, cx), kShift);
    const __m256i Y = _mm256_srai_epi32(_mm256_add_epi32(vrow_y, cy), kShift);
    const __m256i sx =
        _mm256_min_epi32(_mm256_max_epi32(_mm256_srai_epi32(X, kInterBits), lo16), hi16);
    const __m256i sy =
        _mm256_min_epi32(_mm256_max_epi32(_mm256_srai_epi32(Y, kInterBits), lo16), hi16);
    if (!all_inside(sx, sy, bx0m1, bx1, by0m1, by1)) {
      const int t = tile_of_block(v, _mm256_extract_epi32(sx, 0), _mm256_extract_epi32(sy, 0), -1);
      bool all = false;
      if (t >= 0 && t != tile) {
        const PixelTile& q = v.tiles[t];
        tile = t;
        bx0m1 = _mm256_set1_epi32(q.x0 - 1);
        bx1 = _mm256_set1_epi32(q.x1 - 1);
        by0m1 = _mm256_set1_epi32(q.y0 - 1);
        by1 = _mm256_set1_epi32(q.y1 - 1);
        stride = q.stride;
        vstride = _mm256_set1_epi32(q.stride);
        base = pixels + (q.origin + int64_t(q.y0) * q.stride + int64_t(q.x0) * 3);
        all = all_inside(sx, sy, bx0m1, bx1, by0m1, by1);
      }
      if (!all) {
        // no tile touches any of the eight blocks: all taps are the border value
        bool touched = false;
        for (int k = 0; k < v.n_tiles && !touched; ++k) {
          const PixelTile& q = v.tiles[k];
          touched = any_inside(sx, sy, _mm256_set1_epi32(q.x0 - 2), _mm256_set1_epi32(q.x1),
                               _mm256_set1_epi32(q.y0 - 2), _mm256_set1_epi32(q.y1));
        }
        if (!touched) {
          std::memset(dst + size_t(x) * 3, kAugmentFill, 24);
        } else {
          affine_span(pixels, v, col_x, col_y, row_x, row_y, x, x + 8, dst);
        }
        continue;
      }
    }
    const __m256i fx = _mm256_and_si256(X, frac), fy = _mm256_and_si256(Y, frac);
    const __m256i ax = _mm256_sub_epi32(full, fx), ay = _mm256_sub_epi32(full, fy);
    // bytes (32 - fx, fx, 32 - fx, fx) and words (32 - fy, fy) per pixel
    const __m256i wx2 = _mm256_or_si256(ax, _mm256_slli_epi32(fx, 8));
    const __m256i wx = _mm256_or_si256(wx2, _mm256_slli_epi32(wx2, 16));
    const __m256i wy = _mm256_or_si256(ay, _mm256_slli_epi32(fy, 16));
    const __m256i idx = _mm256_add_epi32(
        _mm256_mullo_epi32(_mm256_sub_epi32(sy, _mm256_add_epi32(by0m1, _mm256_set1_epi32(1))),
                           vstride),
        _mm256_mullo_epi32(_mm256_sub_epi32(sx, _mm256_add_epi32(bx0m1, _mm256_set1_epi32(1))),
                           _mm256_set1_epi32(3)));
    const int* top = reinterpret_cast<const int*>(base);
    const int* top2 = reinterpret_cast<const int*>(base + 2);
    const int* bot = reinterpret_cast<const int*>(base + stride);
    const int* bot2 = reinterpret_cast<const int*>(base + stride + 2);
    const __m256i t0 = _mm256_i32gather_epi32(top, idx, 1);
    const __m256i t1 = _mm256_srli_epi32(_mm256_i32gather_epi32(top2, idx, 1), 8);
    const __m256i b0 = _mm256_i32gather_epi32(bot, idx, 1);
    const __m256i b1 = _mm256_srli_epi32(_mm256_i32gather_epi32(bot2, idx, 1), 8);
    const __m256i wx_a = _mm256_unpacklo_epi32(wx, wx), wx_b = _mm256_unpackhi_epi32(wx, wx);
    // horizontal: pixels (0, 1 | 4, 5) in *_a, (2, 3 | 6, 7) in *_b; words r, g, b, unused
    const __m256i ht_a = _mm256_maddubs_epi16(_mm256_unpacklo_epi8(t0, t1), wx_a);
    const __m256i ht_b = _mm256_maddubs_epi16(_mm256_unpackhi_epi8(t0, t1), wx_b);
    const __m256i hb_a = _mm256_maddubs_epi16(_mm256_unpacklo_epi8(b0, b1), wx_a);
    const __m256i hb_b = _mm256_maddubs_epi16(_mm256_unpackhi_epi8(b0, b1), wx_b);
    // vertical: one pixel per 128-bit half, dwords r, g, b, unused
    const __m256i round = _mm256_set1_epi32(1 << 9);
    const __m256i p0 = _mm256_srli_epi32(  // pixels 0, 4
        _mm256_add_epi32(
            _mm256_madd_epi16(_mm256_unpacklo_epi16(ht_a, hb_a), _mm256_shuffle_epi32(wy, 0x00)),
            round),
        10);
    const __m256i p1 = _mm256_srli_epi32(  // pixels 1, 5
        _mm256_add_epi32(
            _mm256_madd_epi16(_mm256_unpackhi_epi16(ht_a, hb_a), _mm256_shuffle_epi32(wy, 0x55)),
            round),
        10);
    const __m256i p2 = _mm256_srli_epi32(  // pixels 2, 6
        _mm256_add_epi32(
            _mm256_madd_epi16(_mm256_unpacklo_epi16(ht_b, hb_b), _mm256_shuffle_epi32(wy, 0xAA)),
            round),
        10);
    const __m256i p3 = _mm256_srli_epi32(  // pixels 3, 7
        _mm256_add_epi32(
            _mm256_madd_epi16(_mm256_unpackhi_epi16(ht_b, hb_b), _mm256_shuffle_epi32(wy, 0xFF)),
            round),
        10);
    const __m256i bytes = _mm256_shuffle_epi8(
        _mm256_packus_epi16(_mm256_packus_epi32(p0, p1), _mm256_packus_epi32(p2, p3)), squeeze);
    uint8_t* out = dst + size_t(x) * 3;
    const __m128i lo = _mm256_castsi256_si128(bytes), hi = _mm256_extracti128_si256(bytes, 1);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), lo);  // bytes 12..15 rewritten just below
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out + 12), hi);
    const int last = _mm_cvtsi128_si32(_mm_srli_si128(hi, 8));
    std::memcpy(out + 20, &last, 4);
  }
  affine_span(pixels, v, col_x, col_y, row_x, row_y, x, W, dst);
}

bool warp_avx2_supported() {
  return cpu::isa() >= cpu::Isa::avx2;
}

#else

void affine_row_avx2(const uint8_t* pixels, const PixelView& v, const int* col_x, const int* col_y,
                     int row_x, int row_y, int W, uint8_t* dst) {
  affine_span(pixels, v, col_x, col_y, row_x, row_y, 0, W, dst);
}
bool warp_avx2_supported() {
  return false;
}

#endif

// An affine row into dst (W * 3 bytes).
void affine_row(const uint8_t* pixels, const PixelView& v, const int* col_x, const int* col_y,
                int y, int W, uint8_t* dst) {
  static const bool avx2 = warp_avx2_supported();
  const int row_x = affine_row_x(v.inv, y), row_y = affine_row_y(v.inv, y);
  if (avx2 && v.disjoint) {
    affine_row_avx2(pixels, v, col_x, col_y, row_x, row_y, W, dst);
  } else {
    affine_span(pixels, v, col_x, col_y, row_x, row_y, 0, W, dst);
  }
}

// Row y (pre-flip) of a view into dst (W * 3 bytes). col: the view's per-column affine terms.
void view_row(const uint8_t* pixels, const PixelView& v, const int* col_x, const int* col_y, int y,
              int W, uint8_t* dst) {
  if (v.warp == int32_t(AugmentWarp::none)) {
    std::memset(dst, kAugmentFill, size_t(W) * 3);
    if (y < 0 || y >= v.canvas_h) return;
    for (int t = v.n_tiles - 1; t >= 0; --t) {  // the first tile wins: paint it last
      const PixelTile& q = v.tiles[t];
      if (y < q.y0 || y >= q.y1) continue;
      const int x0 = q.x0, x1 = q.x1 < W ? q.x1 : W;
      if (x1 <= x0) continue;
      std::memcpy(dst + size_t(x0) * 3,
                  pixels + (q.origin + int64_t(y) * q.stride + int64_t(x0) * 3),
                  size_t(x1 - x0) * 3);
    }
    return;
  }
  int hint = -1;
  if (v.warp == int32_t(AugmentWarp::affine)) {
    affine_row(pixels, v, col_x, col_y, y, W, dst);
  } else {
    for (int x = 0; x < W; ++x) {
      read_tap(pixels, v, perspective_tap(v.inv, v.block_w, x, y), hint, dst + size_t(x) * 3);
    }
  }
}

}  // namespace

void augment_apply_cpu(Context& ctx, const Tensor& pixels,
                       const std::vector<AugmentSource>& sources,
                       const std::vector<AugmentSample>& samples, const Tensor& out) {
  const int B = int(out.dim(0)), H = int(out.dim(1)), W = int(out.dim(2));
  if (B == 0 || H == 0 || W == 0) return;
  std::vector<PixelSample> prepared(static_cast<size_t>(B));
  // per (sample, view): W column terms for x, then W for y
  std::vector<int> cols(size_t(B) * 2 * 2 * size_t(W));
  for (int n = 0; n < B; ++n) {
    prepare_sample(samples[size_t(n)], sources, W, H, prepared[size_t(n)]);
    for (int k = 0; k < 2; ++k) {
      const PixelView& v = prepared[size_t(n)].views[k];
      if (v.warp != int32_t(AugmentWarp::affine)) continue;
      int* cx = cols.data() + (size_t(n) * 2 + size_t(k)) * 2 * size_t(W);
      for (int x = 0; x < W; ++x) {
        cx[x] = affine_col_x(v.inv, x);
        cx[W + x] = affine_col_y(v.inv, x);
      }
    }
  }
  // per sample with HSV on: the division and lookup tables its rows need
  std::vector<std::unique_ptr<augment_cpu::HsvRowTables>> hsv_tables(static_cast<size_t>(B));
  for (int n = 0; n < B; ++n) {
    const PixelSample& s = prepared[size_t(n)];
    if (s.hsv) hsv_tables[size_t(n)] = std::make_unique<augment_cpu::HsvRowTables>(s.lut);
  }
  const uint8_t* src = pixels.data<uint8_t>();
  const bool to_u8 = out.dtype() == DType::u8;
  uint8_t* out_u8 = to_u8 ? static_cast<uint8_t*>(out.raw()) : nullptr;
  float* out_f32 = to_u8 ? nullptr : static_cast<float*>(out.raw());
  float to_unit[256];  // value / 255, as the CUDA kernel divides
  for (int i = 0; i < 256; ++i) to_unit[i] = float(i) / 255.0f;
  const int64_t jobs = int64_t(B) * H;
#pragma omp parallel num_threads(ctx.cpu_threads() > 0 ? ctx.cpu_threads() : 1) if (jobs > 1)
  {
    std::vector<uint8_t> row_a(size_t(W) * 3), row_b(size_t(W) * 3);
#pragma omp for schedule(static)
    for (int64_t job = 0; job < jobs; ++job) {
      const int n = int(job / H), y = int(job % H);
      const PixelSample& s = prepared[size_t(n)];
      const int ry = s.flip_ud ? H - 1 - y : y;  // the pre-flip row this output row shows
      const int* c0 = cols.data() + size_t(n) * 4 * size_t(W);
      uint8_t* a = row_a.data();
      view_row(src, s.views[0], c0, c0 + W, ry, W, a);
      if (s.mixup) {
        const uint8_t* b = row_b.data();
        view_row(src, s.views[1], c0 + 2 * W, c0 + 3 * W, ry, W, row_b.data());
        for (size_t i = 0; i < size_t(W) * 3; ++i) {
          a[i] = uint8_t(mixup_value(a[i], b[i], s.mixup_r, s.mixup_1mr));
        }
      }
      if (s.hsv) augment_cpu::hsv_row(a, W, *hsv_tables[size_t(n)]);
      const size_t out_row = (size_t(n) * H + size_t(y)) * size_t(W) * 3;
      if (to_u8 && !s.flip_lr) {
        std::memcpy(out_u8 + out_row, a, size_t(W) * 3);
        continue;
      }
      for (int x = 0; x < W; ++x) {
        const size_t o = out_row + size_t(s.flip_lr ? W - 1 - x : x) * 3;
        const uint8_t* p = a + size_t(x) * 3;
        if (to_u8) {
          out_u8[o] = p[0];
          out_u8[o + 1] = p[1];
          out_u8[o + 2] = p[2];
        } else {
          out_f32[o] = to_unit[p[0]];
          out_f32[o + 1] = to_unit[p[1]];
          out_f32[o + 2] = to_unit[p[2]];
        }
      }
    }
  }
}

}  // namespace yolo
