// The x86 direct conv kernels (kernels/cpu/conv_direct.h): register-blocked AVX-512 / AVX2+FMA
// loops for the convs that im2col + GEMM serves badly (few channels, the 3-channel stem, strided
// backward-data, small weight gradients). Non-x86 or non-GCC/Clang builds compile the launchers
// only, returning false.
#include "kernels/cpu/conv_direct.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/vec_math.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define YOLO_CONV_DIRECT 1
#define YOLO_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma")))
#define YOLO_TARGET_AVX2 __attribute__((target("avx2,fma")))
#endif

namespace yolo::cpu {

#ifdef YOLO_CONV_DIRECT
namespace {

using Geometry = ConvGeometry;

// Loops touching fewer elements than this run on the calling thread: waking the OpenMP team costs
// more than the work.
constexpr int64_t kParallelWork = int64_t(1) << 16;

// Note [CPU direct conv]
// With few channels a conv is a bad GEMM: the stem (Conv(3 -> o, k=6, s=2, p=2) on the RGB image)
// makes im2col copy 108 values per output pixel from 36 runs of 3, and a 3x3 16 -> 16 conv
// multiplies a (pixels x 144) patch matrix by only 16 columns, which OpenBLAS packs and runs far
// below its peak. So on x86 CPUs with AVX-512 or AVX2+FMA (and o >= 8) it is computed directly:
// weights packed per slice of OB vectors of output channels as (kh, kw, c, slice channels; zeros
// past o, where the slice's last vector is masked at the bias load and the store), and a block of P
// output pixels of one line x the slice's OB vectors held in registers; each step of the (kw, c)
// loop of an input row loads OB weight vectors and broadcasts one input value per pixel against
// them (fused multiply-adds); the P pixels' inputs are stride x c floats apart. Each line splits
// into a left edge, an interior where every tap column is inside the image, and a right edge; edge
// pixels run one at a time over their valid tap columns, and rows outside the image are left out of
// every pixel's sum. Bias initialises the accumulators and SiLU is applied at the store. The output
// pixels may be strided (the phases of backward-data write every s-th pixel). The ISA comes from
// cpu::isa() (kernels/cpu/cpu_isa.h); other CPUs, channel counts, groups and f64 take the
// patch-matrix path. FMAs round differently from OpenBLAS's kernel, so results are reproducible per
// machine, as OpenBLAS's own kernel choice already is. Measured on yolov5n layers, 2 cores of an
// AVX-512 Xeon, batch 8 at 320x320 unless said (im2col + GEMM -> direct): stem + SiLU batch 1 924
// -> 313 us, batch 8 7.4 -> 2.6 ms (the AVX2 kernel on the same CPU: 435 us, 3.5 ms); 3x3 16 -> 16
// at 80x80 1.9 -> 1.1 ms; 3x3 32 -> 32 at 40x40 1.36 -> 0.77 ms; 3x3 s2 16 -> 32 at 160x160 3.4
// -> 2.1 ms.
// Where the direct kernels beat im2col + GEMM (yolov5n layers at batch 8, 320x320, 2 cores of an
// AVX-512 Xeon): the forward up to 64 input channels, and up to 128 at stride 1 (3x3 128 -> 128:
// yolov5s's at 40x40 3.96 -> 2.94 ms, yolov5n's at 10x10 within noise; 128 -> 256 at stride 2 up
// to 4% slower); the phases of backward-data up to 256 (the GEMM's input) channels; the weight
// gradient up to c * o = 128 * 128.
constexpr int64_t kDirectMaxChannels = 64;
constexpr int64_t kDirectMaxChannelsStride1 = 128;
// Plain 1x1 convs stay on OpenBLAS (Note [Small GEMM blocks] in kernels/cpu/blas.cpp: as fast as
// the direct kernel) unless o is not a multiple of 16, where OpenBLAS's ragged edge loses to the
// direct kernel's masked last vector: yolov5n's detect convs (o = 255) 64 -> 255 at 40x40 2.40 ->
// 1.77 ms, 128 -> 255 at 20x20 1.07 -> 0.84 ms, equal at 256 input channels.
constexpr int64_t kDirect1x1MaxChannels = 256;
constexpr int64_t kPhaseMaxChannels = 256;
constexpr int64_t kWgradMaxChannelProduct = 128 * 128;

struct DirectConv {
  const float* x = nullptr;     // (n, h, w, c)
  const float* wt = nullptr;    // packed per channel slice (pack_direct_weights)
  const float* bias = nullptr;  // (o) or nullptr
  float* y = nullptr;  // output pixel (n, oh, ow) at y + n * y_image + oh * y_line + ow * y_pixel
  bool silu = false;
  int64_t h = 0, w = 0, c = 0, o = 0, kh = 0, kw = 0, sh = 1, sw = 1, ph = 0, pw = 0, oh = 0,
          ow = 0;
  int64_t y_image = 0, y_line = 0, y_pixel = 0;
};

// What one call of a block kernel sums: `rows` input rows `in_row` floats apart (weights `w_row`
// apart), each of `taps` consecutive (kw, c) values per pixel, the pixels `step` = stride * c
// floats apart in the input and `ystep` floats apart in the output; of the last vector of
// channels only the first `last` lanes exist (bias read and y written for those only).
struct BlockArgs {
  int64_t in_row, w_row, o, rows, taps, step, ystep, last;
  bool silu;
};

// y (P pixels ystep apart, OB * lanes channels, the last vector cut to `last` lanes) = act(bias +
// sum over rows and taps of in[p * step + tap] * w[tap * o + channel]); in and w point at the
// first tap of pixel 0.
using BlockFn = void (*)(const float* in, const float* w, const float* bias, float* y,
                         const BlockArgs& a);

template <int OB, int P>
YOLO_TARGET_AVX512 void block_avx512(const float* in, const float* w, const float* bias, float* y,
                                     const BlockArgs& a) {
  __m512 acc[OB][P];
  const __mmask16 tail = __mmask16((1u << a.last) - 1u);  // a.last in 1 .. 16
#pragma GCC unroll 8
  for (int b = 0; b < OB; ++b) {
    const __mmask16 m = b == OB - 1 ? tail : __mmask16(0xffff);
    const __m512 init = bias ? _mm512_maskz_loadu_ps(m, bias + 16 * b) : _mm512_setzero_ps();
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p) acc[b][p] = init;
  }
  const int64_t step = a.step;
  for (int64_t r = 0; r < a.rows; ++r) {
    const float* row = in + r * a.in_row;
    const float* wk = w + r * a.w_row;
    for (int64_t t = 0; t < a.taps; ++t, wk += a.o) {
      __m512 wv[OB];
#pragma GCC unroll 8
      for (int b = 0; b < OB; ++b) wv[b] = _mm512_loadu_ps(wk + 16 * b);
#pragma GCC unroll 16
      for (int p = 0; p < P; ++p) {
        const __m512 xv = _mm512_set1_ps(row[p * step + t]);
#pragma GCC unroll 8
        for (int b = 0; b < OB; ++b) acc[b][p] = _mm512_fmadd_ps(xv, wv[b], acc[b][p]);
      }
    }
  }
  const int64_t ldy = a.ystep;  // a local: the stores below could otherwise alias a.ystep
#pragma GCC unroll 16
  for (int p = 0; p < P; ++p) {
#pragma GCC unroll 8
    for (int b = 0; b < OB - 1; ++b) _mm512_storeu_ps(y + p * ldy + 16 * b, acc[b][p]);
    _mm512_mask_storeu_ps(y + p * ldy + 16 * (OB - 1), tail, acc[OB - 1][p]);
  }
  if (a.silu) {
    const int64_t n = 16 * (OB - 1) + a.last;
    for (int p = 0; p < P; ++p) {
      float* yp = y + p * ldy;
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) yp[i] = yp[i] * sigmoid(yp[i]);
    }
  }
}

template <int OB, int P>
YOLO_TARGET_AVX2 void block_avx2(const float* in, const float* w, const float* bias, float* y,
                                 const BlockArgs& a) {
  __m256 acc[OB][P];
  // Lane i of the last vector exists when i < a.last (a.last in 1 .. 8).
  const __m256i tail =
      _mm256_cmpgt_epi32(_mm256_set1_epi32(int(a.last)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
#pragma GCC unroll 8
  for (int b = 0; b < OB; ++b) {
    const __m256i m = b == OB - 1 ? tail : _mm256_set1_epi32(-1);
    const __m256 init = bias ? _mm256_maskload_ps(bias + 8 * b, m) : _mm256_setzero_ps();
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p) acc[b][p] = init;
  }
  const int64_t step = a.step;
  for (int64_t r = 0; r < a.rows; ++r) {
    const float* row = in + r * a.in_row;
    const float* wk = w + r * a.w_row;
    for (int64_t t = 0; t < a.taps; ++t, wk += a.o) {
      __m256 wv[OB];
#pragma GCC unroll 8
      for (int b = 0; b < OB; ++b) wv[b] = _mm256_loadu_ps(wk + 8 * b);
#pragma GCC unroll 16
      for (int p = 0; p < P; ++p) {
        const __m256 xv = _mm256_broadcast_ss(row + p * step + t);
#pragma GCC unroll 8
        for (int b = 0; b < OB; ++b) acc[b][p] = _mm256_fmadd_ps(xv, wv[b], acc[b][p]);
      }
    }
  }
  const int64_t ldy = a.ystep;  // a local: the stores below could otherwise alias a.ystep
#pragma GCC unroll 16
  for (int p = 0; p < P; ++p) {
#pragma GCC unroll 8
    for (int b = 0; b < OB - 1; ++b) _mm256_storeu_ps(y + p * ldy + 8 * b, acc[b][p]);
    _mm256_maskstore_ps(y + p * ldy + 8 * (OB - 1), tail, acc[OB - 1][p]);
  }
  if (a.silu) {
    const int64_t n = 8 * (OB - 1) + a.last;
    for (int p = 0; p < P; ++p) {
      float* yp = y + p * ldy;
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) yp[i] = yp[i] * sigmoid(yp[i]);
    }
  }
}

// One slice of output channels [c0, c0 + lanes * OB): the kernels for P pixels, for P / 2 (the
// rest of a line's interior) and for one.
struct ChannelSlice {
  int64_t c0, width, valid;  // width = lanes * OB channels, of which the first `valid` exist
  BlockFn wide, half, one;
  int pixels;
  int64_t last;  // lanes of the last vector that exist
};

template <int OB, int P>
ChannelSlice slice_avx512(int64_t c0, int64_t o) {
  const int64_t valid = std::min<int64_t>(16 * OB, o - c0);
  return {c0,
          16 * OB,
          valid,
          block_avx512<OB, P>,
          block_avx512<OB, P / 2>,
          block_avx512<OB, 1>,
          P,
          valid - 16 * (OB - 1)};
}
template <int OB, int P>
ChannelSlice slice_avx2(int64_t c0, int64_t o) {
  const int64_t valid = std::min<int64_t>(8 * OB, o - c0);
  return {c0,
          8 * OB,
          valid,
          block_avx2<OB, P>,
          block_avx2<OB, P / 2>,
          block_avx2<OB, 1>,
          P,
          valid - 8 * (OB - 1)};
}

// Packs the weights for the slices: slice s's (taps, s.width) block at wt + s.c0 * taps, channels
// innermost, so a slice's kernel streams one contiguous block. weight(oc, t) gives w[oc, tap t].
template <typename F>
void pack_direct_weights(const std::vector<ChannelSlice>& slices, int64_t taps, F&& weight,
                         float* wt) {
  for (const ChannelSlice& s : slices) {
    float* block = wt + s.c0 * taps;
    for (int64_t t = 0; t < taps; ++t)
      for (int64_t j = 0; j < s.width; ++j)
        block[t * s.width + j] = j < s.valid ? weight(s.c0 + j, t) : 0.0f;
  }
}

// The channel slices for this CPU and o, sized so accumulators and weights fit the 32 zmm / 16 ymm
// registers; the last vector may be partly outside o (its lanes masked). Empty when the direct
// kernel does not apply (no AVX2 / AVX-512, or fewer than 8 channels).
std::vector<ChannelSlice> direct_slices(int64_t o) {
  std::vector<ChannelSlice> s;
  const cpu::Isa isa = cpu::isa();
  if (isa == cpu::Isa::baseline || o < 8) return s;
  const int64_t lanes = isa == cpu::Isa::avx512 ? 16 : 8;
  for (int64_t c0 = 0; c0 < o;) {
    const int64_t left = (o - c0 + lanes - 1) / lanes;  // vectors of channels still to cover
    if (isa == cpu::Isa::avx512) {
      if (left == 1)
        s.push_back(slice_avx512<1, 14>(c0, o));
      else if (left == 2)
        s.push_back(slice_avx512<2, 12>(c0, o));
      else if (left == 3)
        s.push_back(slice_avx512<3, 8>(c0, o));
      else if (left == 5)
        s.push_back(slice_avx512<5, 4>(c0, o));
      else
        s.push_back(slice_avx512<4, 6>(c0, o));
    } else if (left >= 2) {
      s.push_back(slice_avx2<2, 6>(c0, o));
    } else {
      s.push_back(slice_avx2<1, 12>(c0, o));
    }
    c0 += s.back().width;
  }
  return s;
}

// Channels the packed weights of the slices cover (a multiple of the vector width).
int64_t padded_channels(const std::vector<ChannelSlice>& slices) {
  return slices.back().c0 + slices.back().width;
}

// One output line (n, oh) for all channel slices.
void direct_line(const DirectConv& d, const std::vector<ChannelSlice>& slices, int64_t line) {
  const int64_t n = line / d.oh, oh = line % d.oh;
  const int64_t ih0 = oh * d.sh - d.ph;
  const int64_t kh0 = std::max<int64_t>(0, -ih0), kh1 = std::min(d.kh, d.h - ih0);
  const int64_t run = d.kw * d.c, taps = d.kh * run;
  const int64_t rows = std::max<int64_t>(0, kh1 - kh0);
  // in_line: the first valid input row at column 0.
  const float* in_line = rows > 0 ? d.x + ((n * d.h + ih0 + kh0) * d.w) * d.c : d.x;
  float* y_line = d.y + n * d.y_image + oh * d.y_line;
  const int64_t yp = d.y_pixel;
  // Interior: ow * sw - pw >= 0 and ow * sw - pw + kw <= w.
  const int64_t lo = std::min(d.ow, (d.pw + d.sw - 1) / d.sw);
  const int64_t hi =
      d.w + d.pw - d.kw < 0 ? lo : std::clamp((d.w + d.pw - d.kw) / d.sw + 1, lo, d.ow);
  for (const ChannelSlice& s : slices) {
    const float* bias = d.bias ? d.bias + s.c0 : nullptr;
    const BlockArgs a{d.w * d.c,  run * s.width, s.width, rows,  run,
                      d.sw * d.c, d.y_pixel,     s.last,  d.silu};
    // The slice's weights for the first valid input row (pack_direct_weights).
    const float* w_line = d.wt + s.c0 * taps + (rows > 0 ? kh0 : 0) * run * s.width;
    auto edge = [&](int64_t ow) {
      const int64_t iw0 = ow * d.sw - d.pw;
      const int64_t kw0 = std::max<int64_t>(0, -iw0), kw1 = std::min(d.kw, d.w - iw0);
      BlockArgs e = a;
      e.taps = std::max<int64_t>(0, kw1 - kw0) * d.c;
      const int64_t first = e.taps > 0 ? kw0 : 0;
      const float* in = e.taps > 0 ? in_line + (iw0 + kw0) * d.c : in_line;
      s.one(in, w_line + first * d.c * s.width, bias, y_line + ow * yp + s.c0, e);
    };
    for (int64_t ow = 0; ow < lo; ++ow) edge(ow);
    int64_t ow = lo;
    for (; ow + s.pixels <= hi; ow += s.pixels)
      s.wide(in_line + (ow * d.sw - d.pw) * d.c, w_line, bias, y_line + ow * yp + s.c0, a);
    for (; ow + s.pixels / 2 <= hi; ow += s.pixels / 2)
      s.half(in_line + (ow * d.sw - d.pw) * d.c, w_line, bias, y_line + ow * yp + s.c0, a);
    for (; ow < hi; ++ow)
      s.one(in_line + (ow * d.sw - d.pw) * d.c, w_line, bias, y_line + ow * yp + s.c0, a);
    for (ow = hi; ow < d.ow; ++ow) edge(ow);
  }
}

// Runs d over its n * oh output lines.
void run_direct(const DirectConv& d, const std::vector<ChannelSlice>& slices, int64_t n) {
  const int64_t lines = n * d.oh;
#pragma omp parallel for schedule(static) if (lines * d.ow * d.o * d.kh * d.kw * d.c >= \
                                              kParallelWork)
  for (int64_t line = 0; line < lines; ++line) direct_line(d, slices, line);
}

// Note [CPU direct conv weight gradient]
// dw[o, kh, kw, c] = sum over output pixels of dy[pixel, o] * x[the pixel's (kh, kw) tap, c]. For
// one kernel row kh the (kw, c) taps of a pixel are kw * c consecutive floats of one input row,
// and neighbouring pixels are stride * c floats apart, so the gradient of a block of taps is a sum
// of outer products: per pixel, TV vectors of taps are loaded from x, kCo values of dy broadcast,
// and kCo x TV accumulators in registers take the products (fused multiply-adds); nothing like the
// patch matrix is built. x is first copied into a zero-padded buffer (every tap of every pixel in
// bounds, plus slack so a tap block may run past the end of a row; those lanes are discarded).
// Output lines are taken in chunks of about kWgradChunkBytes of dy and x, and consecutive chunks in
// groups: when the data far outweighs dw (kWgradDataPerPartial), each group sums into its own
// partial gradient and the partials are added in group order afterwards, so the threads split
// the data between them instead of each reading all of it (the small-channel layers are memory
// bound: yolov5n stem 6.2 -> 5.1 ms, 3x3 16 -> 16 at 80x80 1.26 -> 0.99 ms). Work items (group,
// unit), with units (kh, tap block, channel block), are split evenly over the threads; a thread
// walks its groups' chunks in order and runs its units over each chunk while it is in cache,
// adding into the block of dw (or of its group's partial) that only that unit writes. The group
// count depends only on the shape, so every element sums the same terms in the same order
// whatever the number of threads. yolov5n at batch 8, 320x320, 2 cores of an AVX-512 Xeon (im2col
// + GEMM -> direct, before the groups): the stem (6x6 s2, 3 -> 16) 11.7 -> 6.0 ms, 3x3 16 -> 16 at
// 80x80 2.9 -> 1.3 ms, 3x3 s2 16 -> 32 at 160x160 4.4 -> 3.4 ms, 3x3 128 -> 128 at 10x10 1.0 ->
// 0.84 ms.
// With stride 2, even kernels and at most 4 channels (the stem), the padded copy is laid out
// space-to-depth, which makes the conv a stride-1 one with half the kernel over 4c channels: the
// stem's kernel rows then have 36 taps (36 of 48 lanes used) instead of 18 (18 of 32). yolov5s
// stem (3 -> 32) 13.0 -> 10.8 ms; yolov5n's 6.3 -> 6.1 ms, within noise.
constexpr int64_t kCo = 8;                    // output channels per unit (broadcasts)
constexpr int64_t kWgradVectors = 3;          // tap vectors per unit at most
constexpr int64_t kWgradDataPerPartial = 16;  // bytes of dy + x per byte of partials, at least
constexpr int64_t kWgradMaxGroups = 16;
constexpr size_t kWgradChunkBytes = size_t(1) << 20;  // dy + x bytes a chunk of lines reads

// What one call of a weight-gradient kernel sums: `lines` output lines of `pixels` pixels; the
// input taps of pixel p of line l at in + l * in_line + p * step, dy at dy + (l * pixels + p) *
// ldy.
struct WgradArgs {
  int64_t lines, pixels, in_line, step, ldy;
};

// out[co * ldo + t] += sum over pixels of dy[co] * in[t], for kCo channels and t < valid taps
// (valid <= TV * lanes; the lanes past it are computed from whatever follows and dropped).
template <int TV>
YOLO_TARGET_AVX512 void wgrad_avx512(const float* in, const float* dy, const WgradArgs& a,
                                     float* out, int64_t ldo, int64_t valid) {
  __m512 acc[kCo][TV];
#pragma GCC unroll 8
  for (int co = 0; co < kCo; ++co)
#pragma GCC unroll 4
    for (int v = 0; v < TV; ++v) acc[co][v] = _mm512_setzero_ps();
  const int64_t step = a.step, ldy = a.ldy;
  for (int64_t l = 0; l < a.lines; ++l) {
    const float* ip = in + l * a.in_line;
    const float* dp = dy + l * a.pixels * ldy;
    for (int64_t p = 0; p < a.pixels; ++p, ip += step, dp += ldy) {
      __m512 xv[TV];
#pragma GCC unroll 4
      for (int v = 0; v < TV; ++v) xv[v] = _mm512_loadu_ps(ip + 16 * v);
#pragma GCC unroll 8
      for (int co = 0; co < kCo; ++co) {
        const __m512 d = _mm512_set1_ps(dp[co]);
#pragma GCC unroll 4
        for (int v = 0; v < TV; ++v) acc[co][v] = _mm512_fmadd_ps(d, xv[v], acc[co][v]);
      }
    }
  }
#pragma GCC unroll 4
  for (int v = 0; v < TV; ++v) {
    const int64_t left = valid - 16 * v;
    const __mmask16 m =
        left >= 16 ? __mmask16(0xffff) : __mmask16((1u << std::max<int64_t>(left, 0)) - 1);
#pragma GCC unroll 8
    for (int co = 0; co < kCo; ++co) {
      float* o = out + co * ldo + 16 * v;
      _mm512_mask_storeu_ps(o, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, o), acc[co][v]));
    }
  }
}

template <int TV>
YOLO_TARGET_AVX2 void wgrad_avx2(const float* in, const float* dy, const WgradArgs& a, float* out,
                                 int64_t ldo, int64_t valid) {
  constexpr int kHalf = kCo / 2;  // 16 ymm registers: two passes of 4 channels
  for (int half = 0; half < 2; ++half) {
    __m256 acc[kHalf][TV];
#pragma GCC unroll 4
    for (int co = 0; co < kHalf; ++co)
#pragma GCC unroll 4
      for (int v = 0; v < TV; ++v) acc[co][v] = _mm256_setzero_ps();
    const int64_t step = a.step, ldy = a.ldy;
    for (int64_t l = 0; l < a.lines; ++l) {
      const float* ip = in + l * a.in_line;
      const float* dp = dy + l * a.pixels * ldy + half * kHalf;
      for (int64_t p = 0; p < a.pixels; ++p, ip += step, dp += ldy) {
        __m256 xv[TV];
#pragma GCC unroll 4
        for (int v = 0; v < TV; ++v) xv[v] = _mm256_loadu_ps(ip + 8 * v);
#pragma GCC unroll 4
        for (int co = 0; co < kHalf; ++co) {
          const __m256 d = _mm256_broadcast_ss(dp + co);
#pragma GCC unroll 4
          for (int v = 0; v < TV; ++v) acc[co][v] = _mm256_fmadd_ps(d, xv[v], acc[co][v]);
        }
      }
    }
    alignas(32) float tmp[8];
    for (int co = 0; co < kHalf; ++co) {
      float* o = out + (half * kHalf + co) * ldo;
#pragma GCC unroll 4
      for (int v = 0; v < TV; ++v) {
        const int64_t left = valid - 8 * v;
        if (left >= 8) {
          _mm256_storeu_ps(o + 8 * v, _mm256_add_ps(_mm256_loadu_ps(o + 8 * v), acc[co][v]));
        } else {
          _mm256_store_ps(tmp, acc[co][v]);
          for (int64_t t = 0; t < left; ++t) o[8 * v + t] += tmp[t];
        }
      }
    }
  }
}

using WgradFn = void (*)(const float*, const float*, const WgradArgs&, float*, int64_t, int64_t);

}  // namespace

// The direct kernel when it applies (Note [CPU direct conv]); false otherwise.
bool direct_conv_fwd(Context& ctx, const ConvGeometry& g, const float* x, const float* w,
                     const float* bias, float* y, bool silu) {
  if (g.groups != 1) return false;
  if (g.no_patch() ? g.o % 16 == 0 || g.c > kDirect1x1MaxChannels
                   : g.c != 3 && g.c > (g.sh == 1 && g.sw == 1 ? kDirectMaxChannelsStride1
                                                               : kDirectMaxChannels))
    return false;
  const std::vector<ChannelSlice> slices = direct_slices(g.o);
  if (slices.empty()) return false;
  const int64_t kcols = g.k();
  Tensor wt_t = ctx.empty({kcols, padded_channels(slices)}, DType::f32);
  float* wt = wt_t.data<float>();
  pack_direct_weights(
      slices, kcols, [&](int64_t oc, int64_t t) { return w[oc * kcols + t]; }, wt);
  DirectConv d{.x = x, .wt = wt, .bias = bias, .y = y, .silu = silu};
  d.h = g.h, d.w = g.w, d.c = g.c, d.o = g.o, d.kh = g.kh, d.kw = g.kw;
  d.sh = g.sh, d.sw = g.sw, d.ph = g.ph, d.pw = g.pw, d.oh = g.oh, d.ow = g.ow;
  d.y_image = g.oh * g.ow * g.o, d.y_line = g.ow * g.o, d.y_pixel = g.o;
  run_direct(d, slices, g.n);
  return true;
}

// Note [CPU conv2d backward-data by phases]
// With stride s, input row ih = s * i + a (phase a = 0 .. s-1) only receives kernel rows kh = s * m
// + r with r = (a + pad) mod s, from output row oh = i + q - m, q = (a + pad - r) / s. So the rows
// (and likewise the columns) of one phase are a stride-1 correlation of dy with the sub-kernel of
// those taps, flipped in space and transposed in channels, padded by taps - 1 - q: s * s direct
// convs (Note [CPU direct conv]) that write every s-th pixel of dx, with no patch gradient and no
// col2im scatter-add. The phases run together, line by line, so the dy rows around a line come
// from memory once for all of them (run one after another, each re-read all of dy: yolov5n 16 ->
// 32 at 160x160 3.39 -> 2.56 ms, yolov5s 32 -> 64 9.8 -> 7.2 ms). A phase no tap reaches (1x1
// stride 2) is zero; pads that would need a negative phase pad (k 3, p 2, s 2) keep the patch
// path. yolov5n at batch 8, 320x320, 2 cores (col2im -> phases, before running them together):
// 3x3 s2 16 -> 32 at 160x160 6.2 -> 3.1 ms, 32 -> 64 at 80x80 3.1 -> 2.2 ms, 64 -> 128 2.25 ->
// 1.66 ms.
// Strided backward-data as those phase convs; false when the direct kernel does not apply.
bool direct_conv_bwd_data(Context& ctx, const ConvGeometry& g, const float* dy, const float* w,
                          float* dx) {
  if (g.groups != 1 || g.o > kPhaseMaxChannels || g.ph >= g.kh || g.pw >= g.kw) return false;
  const std::vector<ChannelSlice> slices = direct_slices(g.c);
  if (slices.empty()) return false;
  // Along one axis, phase a: kernel taps k = s * m + r (m < taps), the stride-1 conv's pad, and
  // how many input positions s * i + a there are.
  struct Phase {
    int64_t r, taps, pad, count;
  };
  auto phase = [](int64_t a, int64_t s, int64_t k, int64_t pad, int64_t size) {
    Phase p{};
    p.r = (a + pad) % s;
    p.taps = k > p.r ? (k - p.r + s - 1) / s : 0;
    p.pad = p.taps - 1 - (a + pad - p.r) / s;
    p.count = size > a ? (size - a + s - 1) / s : 0;
    return p;
  };
  std::vector<Phase> rows, cols;
  for (int64_t a = 0; a < g.sh; ++a) rows.push_back(phase(a, g.sh, g.kh, g.ph, g.h));
  for (int64_t b = 0; b < g.sw; ++b) cols.push_back(phase(b, g.sw, g.kw, g.pw, g.w));
  for (const std::vector<Phase>* v : {&rows, &cols})
    for (const Phase& p : *v)
      if (p.taps > 0 && p.pad < 0) return false;  // pads this large leave the patch path
  // The phases' convs, run together line by line (below) so the dy rows a line needs are read
  // once from memory for all phases, not once per phase.
  std::vector<DirectConv> convs;
  std::vector<Tensor> weights;
  int64_t max_lines = 0;
  for (int64_t a = 0; a < g.sh; ++a)
    for (int64_t b = 0; b < g.sw; ++b) {
      const Phase& ph = rows[size_t(a)];
      const Phase& pw = cols[size_t(b)];
      if (ph.count == 0 || pw.count == 0) continue;
      float* y = dx + (a * g.w + b) * g.c;
      if (ph.taps == 0 || pw.taps == 0) {  // no kernel tap lands on this phase
#pragma omp parallel for schedule(static) if (g.n * ph.count * pw.count * g.c >= kParallelWork)
        for (int64_t line = 0; line < g.n * ph.count; ++line) {
          const int64_t n = line / ph.count, i = line % ph.count;
          for (int64_t j = 0; j < pw.count; ++j)
            std::fill_n(y + ((n * g.h + i * g.sh) * g.w + j * g.sw) * g.c, g.c, 0.0f);
        }
        continue;
      }
      // Output channel c, tap (m', n', o) <- w[o, s * (M - 1 - m') + r, s * (N - 1 - n') + r', c]:
      // the phase's taps, flipped.
      const int64_t taps = ph.taps * pw.taps * g.o;
      weights.push_back(ctx.empty({taps, padded_channels(slices)}, DType::f32));
      pack_direct_weights(
          slices, taps,
          [&](int64_t c, int64_t t) {
            const int64_t m = t / (pw.taps * g.o), q = t / g.o % pw.taps, o = t % g.o;
            const int64_t kh = g.sh * (ph.taps - 1 - m) + ph.r;
            const int64_t kw = g.sw * (pw.taps - 1 - q) + pw.r;
            return w[((o * g.kh + kh) * g.kw + kw) * g.c + c];
          },
          weights.back().data<float>());
      // dy (n, oh, ow, o) -> this phase of dx: a stride-1 conv with o inputs and c outputs.
      DirectConv d{
          .x = dy, .wt = weights.back().data<float>(), .bias = nullptr, .y = y, .silu = false};
      d.h = g.oh, d.w = g.ow, d.c = g.o, d.o = g.c, d.kh = ph.taps, d.kw = pw.taps;
      d.sh = d.sw = 1, d.ph = ph.pad, d.pw = pw.pad, d.oh = ph.count, d.ow = pw.count;
      d.y_image = g.h * g.w * g.c, d.y_line = g.sh * g.w * g.c, d.y_pixel = g.sw * g.c;
      convs.push_back(d);
      max_lines = std::max(max_lines, ph.count);
    }
  const int64_t lines = g.n * max_lines;
#pragma omp parallel for schedule(static) if (g.n * g.h * g.w * g.c * g.kh * g.kw * g.o >= \
                                              kParallelWork)
  for (int64_t line = 0; line < lines; ++line) {
    const int64_t n = line / max_lines, i = line % max_lines;
    for (const DirectConv& d : convs)
      if (i < d.oh) direct_line(d, slices, n * d.oh + i);
  }
  return true;
}

// The direct weight gradient when it applies (f32, groups 1, o % 8 == 0, AVX-512 or AVX2+FMA);
// false otherwise. dw (o, kh, kw, c).
// The direct weight gradient over an input xp that is already zero-padded (p.ph = p.pw = 0; p.h x
// p.w pixels per image, then slack for the last tap block): dw (o, kh, kw, c) assigned or
// accumulated (Note [CPU direct conv weight gradient]).
void wgrad_padded(Context& ctx, const float* xp, const Geometry& p, const float* dy, float* dw,
                  bool accumulate, bool avx512) {
  const int64_t lanes = avx512 ? 16 : 8;
  const int64_t run = p.kw * p.c;  // taps per kernel row
  // Tap blocks of one kernel row: full blocks of kWgradVectors vectors, then one of those left.
  struct TapBlock {
    int64_t t0, valid;
    WgradFn fn;
  };
  std::vector<TapBlock> blocks;
  for (int64_t t0 = 0; t0 < run;) {
    const int64_t vecs = std::min(kWgradVectors, (run - t0 + lanes - 1) / lanes);
    WgradFn fn = avx512 ? (vecs == 3   ? wgrad_avx512<3>
                           : vecs == 2 ? wgrad_avx512<2>
                                       : wgrad_avx512<1>)
                        : (vecs == 3   ? wgrad_avx2<3>
                           : vecs == 2 ? wgrad_avx2<2>
                                       : wgrad_avx2<1>);
    const int64_t valid = std::min(vecs * lanes, run - t0);
    blocks.push_back({t0, valid, fn});
    t0 += valid;
  }
  // Chunks of output lines of one image, about kWgradChunkBytes of dy and x each.
  const int64_t kcols = p.k();
  const int64_t line_bytes = (p.ow * p.o + p.sh * p.w * p.c) * int64_t(sizeof(float));
  const int64_t chunk = std::clamp<int64_t>(int64_t(kWgradChunkBytes) / line_bytes, 1, p.oh);
  const int64_t per_image = (p.oh + chunk - 1) / chunk, chunks = p.n * per_image;
  const int64_t co_blocks = p.o / kCo, nb = int64_t(blocks.size());
  const int64_t units = p.kh * nb * co_blocks;
  // Groups of consecutive chunks, each summed into its own partial gradient when the data far
  // outweighs dw, so the threads split the data instead of each reading all of it; their number
  // depends only on the shape (Note [CPU direct conv weight gradient]).
  const int64_t dw_size = p.o * kcols;
  const int64_t groups = std::clamp<int64_t>(
      p.lines() * line_bytes / (kWgradDataPerPartial * dw_size * int64_t(sizeof(float))), 1,
      std::min<int64_t>(kWgradMaxGroups, chunks));
  Tensor part_t;
  float* part = dw;
  if (groups > 1) {
    part_t = ctx.empty({groups * dw_size}, DType::f32);
    part = part_t.data<float>();
    std::fill(part, part + groups * dw_size, 0.0f);
  } else if (!accumulate) {
    std::fill(dw, dw + dw_size, 0.0f);
  }
  const WgradArgs base{0, p.ow, p.sh * p.w * p.c, p.sw * p.c, p.o};
  const int64_t items = groups * units;  // (group, unit), group-major
#pragma omp parallel if (p.lines() * p.ow * p.o * kcols >= kParallelWork)
  {
    const int64_t threads = omp_get_num_threads(), tid = omp_get_thread_num();
    const int64_t i0 = items * tid / threads, i1 = items * (tid + 1) / threads;
    for (int64_t grp = i0 / units; grp < groups && grp * units < i1; ++grp) {
      const int64_t u0 = std::max(i0, grp * units) - grp * units;
      const int64_t u1 = std::min(i1, (grp + 1) * units) - grp * units;
      float* out = part + (groups > 1 ? grp * dw_size : 0);
      for (int64_t ch = chunks * grp / groups; ch < chunks * (grp + 1) / groups; ++ch) {
        const int64_t n = ch / per_image, oh0 = (ch % per_image) * chunk;
        WgradArgs a = base;
        a.lines = std::min(p.oh, oh0 + chunk) - oh0;
        for (int64_t u = u0; u < u1; ++u) {
          const int64_t cb = u % co_blocks, b = (u / co_blocks) % nb, kh = u / co_blocks / nb;
          const TapBlock& blk = blocks[size_t(b)];
          const float* in = xp + ((n * p.h + oh0 * p.sh + kh) * p.w) * p.c + blk.t0;
          const float* d = dy + ((n * p.oh + oh0) * p.ow) * p.o + cb * kCo;
          blk.fn(in, d, a, out + cb * kCo * kcols + kh * run + blk.t0, kcols, blk.valid);
        }
      }
    }
  }
  if (groups > 1) {
#pragma omp parallel for schedule(static) if (groups * dw_size >= kParallelWork)
    for (int64_t i = 0; i < dw_size; ++i) {
      float sum = accumulate ? dw[i] : 0.0f;
      for (int64_t grp = 0; grp < groups; ++grp) sum += part[grp * dw_size + i];
      dw[i] = sum;
    }
  }
}

// The direct weight gradient when it applies (f32, groups 1, o % 8 == 0, AVX-512 or AVX2+FMA);
// false otherwise. dw (o, kh, kw, c).
bool direct_conv_bwd_filter(Context& ctx, const ConvGeometry& g, const float* x, const float* dy,
                            float* dw, bool accumulate) {
  const cpu::Isa isa = cpu::isa();
  const bool avx512 = isa == cpu::Isa::avx512;
  if (g.groups != 1 || g.o % kCo != 0 || g.no_patch() || isa == cpu::Isa::baseline ||
      g.c * g.o > kWgradMaxChannelProduct)
    return false;
  const int64_t lanes = avx512 ? 16 : 8;
  // Zero-padded input: hp x wp pixels per image covers every tap of every output pixel. With
  // stride 2, even kernels and few channels it is laid out space-to-depth (Note [CPU direct conv
  // weight gradient]): pixel (i, j) holds the 2 x 2 pixels (2i + a, 2j + b) as channels (a, b, c).
  const int64_t hp = (g.oh - 1) * g.sh + g.kh, wp = (g.ow - 1) * g.sw + g.kw;
  const bool s2d = g.sh == 2 && g.sw == 2 && g.kh % 2 == 0 && g.kw % 2 == 0 && g.c <= 4;
  const int64_t slack = kWgradVectors * lanes, size = g.n * hp * wp * g.c;
  Tensor xp_t = ctx.empty({size + slack}, DType::f32);
  float* xp = xp_t.data<float>();
  std::fill(xp + size, xp + size + slack, 0.0f);
#pragma omp parallel for schedule(static) if (size >= kParallelWork)
  for (int64_t row = 0; row < g.n * hp; ++row) {
    const int64_t n = row / hp, ih = row % hp - g.ph;
    const bool inside = ih >= 0 && ih < g.h;
    const float* src = inside ? x + (n * g.h + ih) * g.w * g.c : nullptr;
    if (s2d) {  // row 2i + a of the padded image -> channels (a, ., .) of row i
      const int64_t i = row % hp / 2, a = row % hp % 2;
      float* dst = xp + ((n * hp / 2 + i) * (wp / 2)) * 4 * g.c + a * 2 * g.c;
      for (int64_t jw = 0; jw < wp; ++jw) {
        float* d = dst + (jw / 2) * 4 * g.c + (jw % 2) * g.c;
        const int64_t iw = jw - g.pw;
        if (inside && iw >= 0 && iw < g.w)
          std::copy_n(src + iw * g.c, g.c, d);
        else
          std::fill_n(d, g.c, 0.0f);
      }
      continue;
    }
    float* dst = xp + row * wp * g.c;
    if (!inside) {
      std::fill(dst, dst + wp * g.c, 0.0f);
      continue;
    }
    const int64_t lo = std::min(wp, g.pw), hi = std::clamp(g.w + g.pw, lo, wp);
    std::fill(dst, dst + lo * g.c, 0.0f);
    if (hi > lo)
      std::memcpy(dst + lo * g.c, src + (lo - g.pw) * g.c, size_t((hi - lo) * g.c) * sizeof(float));
    std::fill(dst + hi * g.c, dst + wp * g.c, 0.0f);
  }
  Geometry p = g;  // the conv over xp: no padding
  p.h = hp, p.w = wp, p.ph = p.pw = 0;
  if (!s2d) {
    wgrad_padded(ctx, xp, p, dy, dw, accumulate, avx512);
    return true;
  }
  // Space-to-depth: a stride-1 conv with kernel kh/2 x kw/2 over 4c channels; its gradient
  // dw2[o, m, q, (a, b, c)] is dw[o, 2m + a, 2q + b, c].
  p.h = hp / 2, p.w = wp / 2, p.c = p.cg = 4 * g.c, p.kh = g.kh / 2, p.kw = g.kw / 2;
  p.sh = p.sw = 1;
  Tensor dw2_t = ctx.empty({g.o * p.k()}, DType::f32);
  float* dw2 = dw2_t.data<float>();
  wgrad_padded(ctx, xp, p, dy, dw2, false, avx512);
  for (int64_t o = 0; o < g.o; ++o)
    for (int64_t kh = 0; kh < g.kh; ++kh)
      for (int64_t kw = 0; kw < g.kw; ++kw)
        for (int64_t c = 0; c < g.c; ++c) {
          const float v =
              dw2[((o * p.kh + kh / 2) * p.kw + kw / 2) * p.c + ((kh % 2) * 2 + kw % 2) * g.c + c];
          float& out = dw[((o * g.kh + kh) * g.kw + kw) * g.c + c];
          out = accumulate ? out + v : v;
        }
  return true;
}

#else

bool direct_conv_fwd(Context&, const ConvGeometry&, const float*, const float*, const float*,
                     float*, bool) {
  return false;
}
bool direct_conv_bwd_data(Context&, const ConvGeometry&, const float*, const float*, float*) {
  return false;
}
bool direct_conv_bwd_filter(Context&, const ConvGeometry&, const float*, const float*, float*,
                            bool) {
  return false;
}

#endif

}  // namespace yolo::cpu
