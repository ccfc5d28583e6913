// CPU augmentation apply (the reference for kernels/cuda/augment.cu): one output row of one
// sample at a time, parallel over (sample, row). Per-column warp terms are computed once per
// sample, per-row terms once per row, and a pixel whose four taps lie in one tile is read straight
// from its source; the maths is kernels/augment_pixel.h, the same as the CUDA kernel's.
#include "kernels/augment.h"

#include <cstring>
#include <memory>
#include <vector>

#include "kernels/augment_pixel.h"
#include "kernels/cpu/augment_hsv.h"

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

// An affine row: affine_tap's arithmetic inlined, with the current tile's bounds kept in
// registers so a pixel inside it costs a few compares, the 1/32-pixel position and 12 products.
void affine_row(const uint8_t* pixels, const PixelView& v, const int* col_x, const int* col_y,
                int y, int W, uint8_t* dst) {
  const int row_x = affine_row_x(v.inv, y), row_y = affine_row_y(v.inv, y);
  constexpr int kShift = kAbBits - kInterBits;
  int bx0 = 0, bx1 = -1, by0 = 0, by1 = -1;  // top-left taps allowed by the current tile
  int64_t origin = 0, stride = 0;
  for (int x = 0; x < W; ++x, dst += 3) {
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
