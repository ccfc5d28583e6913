// cv2-exact resize, letterbox and HSV on yolo::Image (see image_ops.h). Separable passes with
// per-column coefficient tables computed once per call; no OpenMP (called per loader worker).
#include "yolo/data/image_ops.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "kernels/augment_pixel.h"

namespace yolo {
namespace {

// Note [cv2 resize]
// OpenCV 4.6 resize of 8-bit images, as the reference's cv2 runs it:
// - INTER_LINEAR: per output column fx = float((dx + 0.5) * scale - 0.5) (scale = src / dst in
//   double), sx = floor(fx), weights round((1 - fx) * 2048) and round(fx * 2048) (11 bits); a
//   column left of the image or at/after the last one takes the edge pixel with weights (2048, 0).
//   Rows likewise, except the weights are kept and only the row indices are clamped. The horizontal
//   pass is exact in int; the vertical one combines two rows r0, r1 (row values scaled by 2048)
//   with weights b0, b1 the way cv2's vector code does: ((r0 >> 4) * b0 >> 16) + ((r1 >> 4) * b1 >>
//   16), then (x + 2) >> 2. That is not (r0 b0 + r1 b1 + 2^21) >> 22 (cv2's scalar formula), but
//   the reference's cv2 gives the vector result on every byte of a row, tails and 1-pixel rows
//   included (checked on widths 1 to 85), so it is used throughout. A 2x reduction in both axes
//   switches to INTER_AREA.
// - INTER_AREA reduction by integer factors: 2x2 blocks give (a + b + c + d + 2) >> 2, other
//   factors cvRound(sum * (1.f / area)) in float. Other reductions: cv2's area table (for each
//   output cell the source cells it covers with float weights, from double cell edges), rows
//   accumulated in float in table order, cvRound at the end. Enlargement in either axis: the linear
//   machinery with area-mode weights fx = (dx + 1) - (sx + 1) / scale, wrapped to [0, 1).
// - equal sizes: a copy.

constexpr int kCoefBits = 11;
constexpr int kCoefScale = 1 << kCoefBits;

struct LinearTaps {
  std::vector<int> idx;   // source index (clamped) of the first tap
  std::vector<int> idx1;  // second tap (clamped)
  std::vector<int> w0, w1;
};

int cv_floor(float v) {
  return static_cast<int>(std::floor(v));
}
int cv_floor_d(double v) {
  return static_cast<int>(std::floor(v));
}

// Per-axis linear taps. horizontal: cv2's column rule (fx zeroed at the edges); else its row rule.
LinearTaps linear_taps(int src, int dst, bool area_mode, bool horizontal) {
  const double inv_scale = double(dst) / src;
  const double scale = 1.0 / inv_scale;
  LinearTaps t;
  t.idx.resize(size_t(dst));
  t.idx1.resize(size_t(dst));
  t.w0.resize(size_t(dst));
  t.w1.resize(size_t(dst));
  for (int d = 0; d < dst; ++d) {
    int s;
    float f;
    if (!area_mode) {
      f = static_cast<float>((d + 0.5) * scale - 0.5);
      s = cv_floor(f);
      f -= float(s);
    } else {
      s = cv_floor_d(d * scale);
      f = static_cast<float>((d + 1) - (s + 1) * inv_scale);
      f = f <= 0 ? 0.f : f - float(cv_floor(f));
    }
    if (horizontal) {
      if (s < 0) f = 0.f, s = 0;
      if (s >= src - 1) f = 0.f, s = src - 1;
    }
    t.idx[size_t(d)] = std::clamp(s, 0, src - 1);
    t.idx1[size_t(d)] = std::clamp(s + 1, 0, src - 1);
    t.w0[size_t(d)] = augment_pixel::round_float((1.f - f) * float(kCoefScale));
    t.w1[size_t(d)] = augment_pixel::round_float(f * float(kCoefScale));
  }
  return t;
}

Image resize_linear_generic(const Image& im, int w, int h, bool area_mode) {
  const LinearTaps tx = linear_taps(im.width, w, area_mode, true);
  const LinearTaps ty = linear_taps(im.height, h, area_mode, false);
  Image out(w, h);
  const int n = 3 * w;
  // horizontal pass of each source row, cached (rows are reused by neighbouring output rows)
  std::vector<int> rows(size_t(2) * n);
  int cached[2] = {-1, -1};
  const size_t nn = static_cast<size_t>(n);
  std::vector<int> xs0(nn), xs1(nn), a0(nn), a1(nn);
  for (int x = 0; x < w; ++x) {
    for (int c = 0; c < 3; ++c) {
      xs0[size_t(3 * x + c)] = 3 * tx.idx[size_t(x)] + c;
      xs1[size_t(3 * x + c)] = 3 * tx.idx1[size_t(x)] + c;
      a0[size_t(3 * x + c)] = tx.w0[size_t(x)];
      a1[size_t(3 * x + c)] = tx.w1[size_t(x)];
    }
  }
  auto hrow = [&](int sy) -> const int* {
    for (int k = 0; k < 2; ++k) {
      if (cached[k] == sy) return rows.data() + size_t(k) * n;
    }
    const int k = cached[0] == -1 ? 0 : (cached[1] == -1 ? 1 : (cached[0] < cached[1] ? 0 : 1));
    cached[k] = sy;
    int* d = rows.data() + size_t(k) * n;
    const uint8_t* s = im.row(sy);
    for (int i = 0; i < n; ++i)
      d[i] = s[xs0[size_t(i)]] * a0[size_t(i)] + s[xs1[size_t(i)]] * a1[size_t(i)];
    return d;
  };
  for (int y = 0; y < h; ++y) {
    const int* r0 = hrow(ty.idx[size_t(y)]);
    const int* r1 = hrow(ty.idx1[size_t(y)]);
    const int b0 = ty.w0[size_t(y)], b1 = ty.w1[size_t(y)];
    uint8_t* d = out.row(y);
    for (int i = 0; i < n; ++i) {
      const int v = (((r0[i] >> 4) * b0) >> 16) + (((r1[i] >> 4) * b1) >> 16);
      d[i] = uint8_t(augment_pixel::saturate_u8((v + 2) >> 2));
    }
  }
  return out;
}

Image resize_area_fast(const Image& im, int w, int h, int sx, int sy) {
  Image out(w, h);
  const float scale = 1.f / float(sx * sy);
  for (int y = 0; y < h; ++y) {
    uint8_t* d = out.row(y);
    for (int x = 0; x < w; ++x) {
      for (int c = 0; c < 3; ++c) {
        int sum = 0;
        for (int j = 0; j < sy; ++j) {
          const uint8_t* s = im.row(y * sy + j) + 3 * x * sx + c;
          for (int i = 0; i < sx; ++i) sum += s[3 * i];
        }
        d[3 * x + c] = (sx == 2 && sy == 2) ? uint8_t((sum + 2) >> 2)
                                            : uint8_t(augment_pixel::saturate_u8(
                                                  augment_pixel::round_float(float(sum) * scale)));
      }
    }
  }
  return out;
}

struct AreaTap {
  int di, si;
  float alpha;
};

std::vector<AreaTap> area_table(int src, int dst, double scale) {
  std::vector<AreaTap> tab;
  for (int dx = 0; dx < dst; ++dx) {
    const double fsx1 = dx * scale, fsx2 = fsx1 + scale;
    const double cell = std::min(scale, src - fsx1);
    int sx1 = static_cast<int>(std::ceil(fsx1)), sx2 = cv_floor_d(fsx2);
    sx2 = std::min(sx2, src - 1);
    sx1 = std::min(sx1, sx2);
    if (sx1 - fsx1 > 1e-3) tab.push_back({dx, sx1 - 1, static_cast<float>((sx1 - fsx1) / cell)});
    for (int s = sx1; s < sx2; ++s) tab.push_back({dx, s, static_cast<float>(1.0 / cell)});
    if (fsx2 - sx2 > 1e-3) {
      tab.push_back({dx, sx2, static_cast<float>(std::min(std::min(fsx2 - sx2, 1.), cell) / cell)});
    }
  }
  return tab;
}

Image resize_area_general(const Image& im, int w, int h, double scale_x, double scale_y) {
  const std::vector<AreaTap> xt = area_table(im.width, w, scale_x);
  const std::vector<AreaTap> yt = area_table(im.height, h, scale_y);
  Image out(w, h);
  const int n = 3 * w;
  const size_t nn = static_cast<size_t>(n);
  std::vector<float> buf(nn), sum(nn);
  size_t j = 0;
  for (int dy = 0; dy < h; ++dy) {
    std::fill(sum.begin(), sum.end(), 0.f);
    for (; j < yt.size() && yt[j].di == dy; ++j) {
      std::fill(buf.begin(), buf.end(), 0.f);
      const uint8_t* s = im.row(yt[j].si);
      for (const AreaTap& t : xt) {
        for (int c = 0; c < 3; ++c) buf[size_t(3 * t.di + c)] += float(s[3 * t.si + c]) * t.alpha;
      }
      const float beta = yt[j].alpha;
      for (int i = 0; i < n; ++i) sum[size_t(i)] += beta * buf[size_t(i)];
    }
    uint8_t* d = out.row(dy);
    for (int i = 0; i < n; ++i) {
      d[i] = uint8_t(augment_pixel::saturate_u8(augment_pixel::round_float(sum[size_t(i)])));
    }
  }
  return out;
}

void check_size(const char* op, const Image& im, int w, int h) {
  YOLO_CHECK(!im.empty(), op << ": the input image is empty");
  YOLO_CHECK(w > 0 && h > 0, op << ": target size " << w << "x" << h << " must be positive (input "
                                << im.width << "x" << im.height << ")");
}

// cv2's integer-factor test: |scale - round(scale)| < DBL_EPSILON in both axes.
bool integer_factors(double sx, double sy, int& ix, int& iy) {
  ix = augment_pixel::round_double(sx);
  iy = augment_pixel::round_double(sy);
  return std::abs(sx - ix) < DBL_EPSILON && std::abs(sy - iy) < DBL_EPSILON;
}

}  // namespace

Image resize_linear(const Image& im, int w, int h) {
  check_size("resize_linear", im, w, h);
  if (w == im.width && h == im.height) return im;
  const double sx = 1.0 / (double(w) / im.width), sy = 1.0 / (double(h) / im.height);
  int ix, iy;
  if (integer_factors(sx, sy, ix, iy) && ix == 2 && iy == 2)
    return resize_area_fast(im, w, h, 2, 2);
  return resize_linear_generic(im, w, h, false);
}

Image resize_area(const Image& im, int w, int h) {
  check_size("resize_area", im, w, h);
  if (w == im.width && h == im.height) return im;
  const double sx = 1.0 / (double(w) / im.width), sy = 1.0 / (double(h) / im.height);
  if (sx >= 1 && sy >= 1) {
    int ix, iy;
    if (integer_factors(sx, sy, ix, iy)) return resize_area_fast(im, w, h, ix, iy);
    return resize_area_general(im, w, h, sx, sy);
  }
  return resize_linear_generic(im, w, h, true);
}

Image resize_for_load(const Image& im, const LoadSize& size) {
  switch (size.interp) {
    case Interp::linear:
      return resize_linear(im, size.w, size.h);
    case Interp::area:
      return resize_area(im, size.w, size.h);
    case Interp::none:
      break;
  }
  return im;
}

Image letterbox_image(const Image& im, const LetterboxParams& p) {
  const Image resized = (p.unpad_w != im.width || p.unpad_h != im.height)
                            ? resize_linear(im, p.unpad_w, p.unpad_h)
                            : im;
  Image out(p.out_w(), p.out_h());
  std::memset(out.pixels.data(), kAugmentFill, out.pixels.size());
  for (int y = 0; y < resized.height; ++y) {
    std::memcpy(out.at(p.left, p.top + y), resized.row(y), size_t(resized.width) * 3);
  }
  return out;
}

void augment_hsv_image(Image& im, const double gain[3]) {
  using namespace augment_pixel;
  static const HsvDivTables tables;
  uint8_t lut[3][256];
  hsv_tables(gain, lut);
  for (int y = 0; y < im.height; ++y) {
    uint8_t* p = im.row(y);
    for (int x = 0; x < im.width; ++x, p += 3) {
      int h, s, v, r, g, b;
      rgb_to_hsv(p[0], p[1], p[2], h, s, v, tables.sdiv, tables.hdiv);
      hsv_to_rgb(lut[0][h], lut[1][s], lut[2][v], hsv_simd_column(x, im.width), r, g, b);
      p[0] = uint8_t(r);
      p[1] = uint8_t(g);
      p[2] = uint8_t(b);
    }
  }
}

}  // namespace yolo
