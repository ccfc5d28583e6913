// CPU conv2d (f32, f64), the reference for kernels/cuda/conv.cu. A 1x1 stride-1 unpadded conv is
// an OpenBLAS GEMM straight on the NHWC rows; other convs GEMM an NHWC patch matrix built in
// bounded chunks (Note [CPU conv2d patch matrix]); depthwise convs use direct loops. On x86 CPUs
// with AVX-512 or AVX2+FMA, f32 convs with few channels run on the direct kernels of
// kernels/cpu/conv_direct.cpp instead (forward, strided backward-data by phases, weight gradient).
// Called through kernels/conv.h (conv2d_fwd / conv2d_bwd_data / conv2d_bwd_filter).
#include "kernels/conv.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/cpu/blas.h"
#include "kernels/cpu/conv_direct.h"
#include "kernels/cpu/vec_math.h"

namespace yolo {
namespace {

// Note [CPU conv2d patch matrix]
// Rows are output positions (n, oh, ow) in NHWC order; columns are (kh, kw, c) for the channels c
// of one group, the order of a row of OHWI weights. Then, per group g:
//   forward          y[:, g]  = patch_g x w_g^T
//   backward-filter  dw_g    += dy[:, g]^T x patch_g
//   backward-data    dpatch_g = dy[:, g] x w_g, scattered back onto dx (col2im)
// The matrix covers a chunk of whole output lines (n, oh) of about kPatchBytesPerThread per OpenMP
// thread, so memory is bounded whatever the batch size and, more importantly, the chunk im2col
// writes is still in cache when the GEMM reads it: a whole-layer patch matrix (tens of MB) made
// the 3x3 convs of yolov5n at batch 8 memory-bound, 4x slower (80x80x32 -> 32: 20.5 ms with 64 MB
// chunks, 5.3 ms with 4 MB, 2 cores). Since the few-channel convs moved to the direct kernels
// (Note [CPU direct conv] in kernels/cpu/conv_direct.cpp), the patch path serves wide ones, whose
// long patch rows (k * k * c up to thousands) favour fewer, larger chunks: 4 MB per thread instead
// of 1 made yolov5n/yolov5s 3x3 convs of 128-256 channels 6-14% faster (2 cores, batch 4-8 at
// 320x320). im2col/col2im run in OpenMP loops over lines; the GEMMs go through cpu::gemm, which
// splits them over the same OpenMP team (Note [One CPU thread pool] in kernels/cpu/blas.cpp).
// col2im gathers per input line, so each dx row has one writer.
constexpr size_t kPatchBytesPerThread = size_t(1) << 22;
// Loops touching fewer elements than this run on the calling thread: waking the OpenMP team costs
// more than the work.
constexpr int64_t kParallelWork = int64_t(1) << 16;

template <typename T>
void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t m, int64_t n, int64_t k, const T* a,
          int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  cpu::gemm(ta == CblasTrans, tb == CblasTrans, m, n, k, T(1), a, lda, b, ldb, beta, c, ldc);
}
// y (n) = a^T (n, m) x v (m), a row-major (m, n): the (1, m) x (m, n) product, split over k.
template <typename T>
void gemv_t(int64_t m, int64_t n, const T* a, const T* v, T beta, T* y) {
  cpu::gemm(false, false, 1, n, m, T(1), v, m, a, n, beta, y, n);
}

using Geometry = cpu::ConvGeometry;

Geometry geometry(const Tensor& x, const Tensor& w, const Conv2dParams& p) {
  Geometry g{};
  g.n = x.dim(0), g.h = x.dim(1), g.w = x.dim(2), g.c = x.dim(3);
  g.o = w.dim(0), g.kh = w.dim(1), g.kw = w.dim(2), g.cg = w.dim(3);
  g.sh = p.stride_h, g.sw = p.stride_w, g.ph = p.pad_h, g.pw = p.pad_w;
  g.groups = p.groups, g.og = g.o / p.groups;
  g.oh = conv2d_out_size(g.h, g.kh, p.stride_h, p.pad_h);
  g.ow = conv2d_out_size(g.w, g.kw, p.stride_w, p.pad_w);
  return g;
}

// Output lines per patch chunk (Note [CPU conv2d patch matrix]).
template <typename T>
int64_t chunk_lines(const Geometry& g) {
  const int64_t line_bytes = g.ow * g.k() * int64_t(sizeof(T));
  const int64_t budget = int64_t(kPatchBytesPerThread) * std::max(1, omp_get_max_threads());
  return std::clamp<int64_t>(budget / line_bytes, 1, g.lines());
}

// patch (rows of lines [line0, line1), k()) <- x's patches for the channels of `group`.
template <typename T>
void im2col(const Geometry& g, const T* x, int64_t group, int64_t line0, int64_t line1, T* patch) {
  const int64_t kcols = g.k(), run = g.kw * g.cg;
#pragma omp parallel for schedule(static) if ((line1 - line0) * g.ow * kcols >= kParallelWork)
  for (int64_t line = line0; line < line1; ++line) {
    const int64_t n = line / g.oh, oh = line % g.oh;
    for (int64_t ow = 0; ow < g.ow; ++ow) {
      T* row = patch + ((line - line0) * g.ow + ow) * kcols;
      const int64_t iw0 = ow * g.sw - g.pw;
      for (int64_t kh = 0; kh < g.kh; ++kh) {
        const int64_t ih = oh * g.sh - g.ph + kh;
        T* dst = row + kh * run;
        if (ih < 0 || ih >= g.h) {
          std::fill(dst, dst + run, T(0));
          continue;
        }
        const T* src = x + (n * g.h + ih) * g.w * g.c + group * g.cg;
        if (g.groups == 1 && iw0 >= 0 && iw0 + g.kw <= g.w) {  // one contiguous run of kw pixels
          std::memcpy(dst, src + iw0 * g.c, size_t(run) * sizeof(T));
          continue;
        }
        for (int64_t kw = 0; kw < g.kw; ++kw) {
          const int64_t iw = iw0 + kw;
          if (iw < 0 || iw >= g.w)
            std::fill(dst + kw * g.cg, dst + (kw + 1) * g.cg, T(0));
          else
            std::copy_n(src + iw * g.c, g.cg, dst + kw * g.cg);
        }
      }
    }
  }
}

// dx[:, :, :, group] += col2im(dpatch) for the output lines [line0, line1); gathers per input line.
// The first chunk that reaches an image (the one holding its first output line) assigns that
// image's dx instead, so dx needs no separate zeroing pass.
template <typename T>
void col2im_add(const Geometry& g, const T* dpatch, int64_t group, int64_t line0, int64_t line1,
                T* dx) {
  const int64_t kcols = g.k();
  const int64_t n0 = line0 / g.oh, n1 = (line1 - 1) / g.oh + 1;
#pragma omp parallel for schedule(static) if ((n1 - n0) * g.h * g.w * g.cg * g.kh >= kParallelWork)
  for (int64_t in_line = n0 * g.h; in_line < n1 * g.h; ++in_line) {
    const int64_t n = in_line / g.h, ih = in_line % g.h;
    T* dx_line = dx + in_line * g.w * g.c + group * g.cg;
    if (n * g.oh >= line0)
      for (int64_t iw = 0; iw < g.w; ++iw) std::fill_n(dx_line + iw * g.c, g.cg, T(0));
    for (int64_t kh = 0; kh < g.kh; ++kh) {
      const int64_t t = ih + g.ph - kh;
      if (t < 0 || t % g.sh != 0) continue;
      const int64_t oh = t / g.sh, line = n * g.oh + oh;
      if (oh >= g.oh || line < line0 || line >= line1) continue;
      for (int64_t ow = 0; ow < g.ow; ++ow) {
        const T* src = dpatch + ((line - line0) * g.ow + ow) * kcols + kh * g.kw * g.cg;
        for (int64_t kw = 0; kw < g.kw; ++kw) {
          const int64_t iw = ow * g.sw - g.pw + kw;
          if (iw < 0 || iw >= g.w) continue;
          T* dst = dx_line + iw * g.c;
          const T* s = src + kw * g.cg;
          for (int64_t c = 0; c < g.cg; ++c) dst[c] += s[c];
        }
      }
    }
  }
}

// A host tensor of m ones: the left factor of the bias outer product and of the bias-gradient GEMV.
template <typename T>
Tensor ones_vector(Context& ctx, int64_t m) {
  Tensor t = ctx.empty({m}, DTypeOf<T>::value);
  std::fill(t.data<T>(), t.data<T>() + m, T(1));
  return t;
}

// wt (kh * kw, c) <- w (c, kh, kw, 1): depthwise weights with channels innermost.
template <typename T>
void transpose_depthwise(const Geometry& g, const T* w, T* wt) {
  const int64_t kk = g.kh * g.kw;
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t k = 0; k < kk; ++k) wt[k * g.c + c] = w[c * kk + k];
}

// ---- forward ----

template <typename T>
void depthwise_fwd(Context& ctx, const Geometry& g, const T* x, const T* w, const T* bias, T* y) {
  Tensor wt_t = ctx.empty({g.kh * g.kw, g.c}, DTypeOf<T>::value);
  T* wt = wt_t.data<T>();
  transpose_depthwise(g, w, wt);
#pragma omp parallel for schedule(static) if (g.lines() * g.ow * g.c * g.kh * g.kw >= kParallelWork)
  for (int64_t line = 0; line < g.lines(); ++line) {
    const int64_t n = line / g.oh, oh = line % g.oh;
    for (int64_t ow = 0; ow < g.ow; ++ow) {
      T* out = y + (line * g.ow + ow) * g.c;
      if (bias)
        std::copy_n(bias, g.c, out);
      else
        std::fill(out, out + g.c, T(0));
      for (int64_t kh = 0; kh < g.kh; ++kh) {
        const int64_t ih = oh * g.sh - g.ph + kh;
        if (ih < 0 || ih >= g.h) continue;
        for (int64_t kw = 0; kw < g.kw; ++kw) {
          const int64_t iw = ow * g.sw - g.pw + kw;
          if (iw < 0 || iw >= g.w) continue;
          const T* in = x + ((n * g.h + ih) * g.w + iw) * g.c;
          const T* wk = wt + (kh * g.kw + kw) * g.c;
          for (int64_t c = 0; c < g.c; ++c) out[c] += in[c] * wk[c];
        }
      }
    }
  }
}

// f32 runs on the direct kernels (kernels/cpu/conv_direct.h) where they apply.
template <typename T>
constexpr bool kDirect = std::is_same_v<T, float>;

// y (m, og) columns of one group <- act(patch (m, k) w_group^T + bias): the plain GEMM when there
// is neither bias nor activation, else the blocked GEMM with its epilogue (kernels/cpu/blas.h); as
// patch x wt with wt = w_group^T (k, og) when given (Note [CPU conv forward GEMM orientation]).
template <typename T>
void fwd_gemm(int64_t m, int64_t og, int64_t k, const T* patch, int64_t ldp, const T* w,
              const T* wt, T* y, int64_t ldy, const T* bias, bool silu) {
  const CBLAS_TRANSPOSE tb = wt ? CblasNoTrans : CblasTrans;
  const T* b = wt ? wt : w;
  const int64_t ldb = wt ? og : k;
  if (!bias && !silu) {
    gemm(CblasNoTrans, tb, m, og, k, patch, ldp, b, ldb, T(0), y, ldy);
  } else {
    cpu::gemm_bias_act(false, tb == CblasTrans, m, og, k, patch, ldp, b, ldb, y, ldy, bias, silu);
  }
}

// Note [CPU conv forward GEMM orientation]
// y = patch x w^T. OpenBLAS runs it best as is (A B^T), except with few output channels and a
// short patch row, where small blocks of A B with the weights transposed once (Note [Small GEMM
// blocks] in kernels/cpu/blas.cpp) avoid packing the whole patch matrix: yolov5n 1x1 convs at
// batch 8, 320x320, 2 cores: 32 -> 16 at 80x80 630 -> 567 us, 128 -> 64 at 20x20 250 -> 197 us,
// detect 64 -> 255 at 40x40 2.60 -> 2.40 ms. Blocks under 32 rows measured slower, and A B on a
// long patch row (im2col, k x k x c) far slower (3x3 128 -> 256 s2: 1.9 -> 2.9 ms).
constexpr int64_t kMinBlockRows = 32;

// wt (groups, k, og) <- w (groups, og, k) when the forward takes the A B form (Note [CPU conv
// forward GEMM orientation]); an empty tensor when it keeps A B^T.
template <typename T>
Tensor transpose_group_weights(Context& ctx, const Geometry& g, const T* w) {
  const int64_t kcols = g.k();
  if (cpu::small_gemm_rows(g.og, kcols) < kMinBlockRows) return Tensor();
  Tensor wt_t = ctx.empty({g.groups, kcols, g.og}, DTypeOf<T>::value);
  T* wt = wt_t.data<T>();
  for (int64_t grp = 0; grp < g.groups; ++grp)
    for (int64_t o = 0; o < g.og; ++o)
      for (int64_t t = 0; t < kcols; ++t)
        wt[(grp * kcols + t) * g.og + o] = w[(grp * g.og + o) * kcols + t];
  return wt_t;
}

template <typename T>
void fwd(Context& ctx, const Geometry& g, const T* x, const T* w, const T* bias, T* y, bool silu) {
  if (g.depthwise()) {
    depthwise_fwd(ctx, g, x, w, bias, y);
    if (silu) {
      const int64_t n = g.lines() * g.ow * g.c;
#pragma omp parallel for schedule(static) if (n >= kParallelWork)
      for (int64_t i = 0; i < n; ++i) y[i] = y[i] * sigmoid(y[i]);
    }
    return;
  }
  if constexpr (kDirect<T>)
    if (cpu::direct_conv_fwd(ctx, g, x, w, bias, y, silu)) return;
  const int64_t kcols = g.k();
  const Tensor wt_t = transpose_group_weights(ctx, g, w);
  const T* wt = wt_t.defined() ? wt_t.data<T>() : nullptr;
  auto group_wt = [&](int64_t grp) { return wt ? wt + grp * g.og * kcols : nullptr; };
  if (g.no_patch()) {  // the NHWC rows of x are the patch matrix
    const int64_t m = g.n * g.h * g.w;
    for (int64_t grp = 0; grp < g.groups; ++grp)
      fwd_gemm(m, g.og, kcols, x + grp * g.cg, g.c, w + grp * g.og * kcols, group_wt(grp),
               y + grp * g.og, g.o, bias ? bias + grp * g.og : nullptr, silu);
    return;
  }
  const int64_t step = chunk_lines<T>(g);
  Tensor patch_t = ctx.empty({step * g.ow, kcols}, DTypeOf<T>::value);
  T* patch = patch_t.data<T>();
  for (int64_t line0 = 0; line0 < g.lines(); line0 += step) {
    const int64_t line1 = std::min(g.lines(), line0 + step), rows = (line1 - line0) * g.ow;
    T* y_rows = y + line0 * g.ow * g.o;
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      im2col(g, x, grp, line0, line1, patch);
      fwd_gemm(rows, g.og, kcols, patch, kcols, w + grp * g.og * kcols, group_wt(grp),
               y_rows + grp * g.og, g.o, bias ? bias + grp * g.og : nullptr, silu);
    }
  }
}

// ---- backward-data ----

template <typename T>
void depthwise_bwd_data(Context& ctx, const Geometry& g, const T* dy, const T* w, T* dx) {
  Tensor wt_t = ctx.empty({g.kh * g.kw, g.c}, DTypeOf<T>::value);
  T* wt = wt_t.data<T>();
  transpose_depthwise(g, w, wt);
#pragma omp parallel for schedule(static) if (g.n * g.h * g.w * g.c * g.kh * g.kw >= kParallelWork)
  for (int64_t in_line = 0; in_line < g.n * g.h; ++in_line) {
    const int64_t n = in_line / g.h, ih = in_line % g.h;
    for (int64_t iw = 0; iw < g.w; ++iw) {
      T* out = dx + (in_line * g.w + iw) * g.c;
      std::fill(out, out + g.c, T(0));
      for (int64_t kh = 0; kh < g.kh; ++kh) {
        const int64_t th = ih + g.ph - kh;
        if (th < 0 || th % g.sh != 0 || th / g.sh >= g.oh) continue;
        for (int64_t kw = 0; kw < g.kw; ++kw) {
          const int64_t tw = iw + g.pw - kw;
          if (tw < 0 || tw % g.sw != 0 || tw / g.sw >= g.ow) continue;
          const T* d = dy + ((n * g.oh + th / g.sh) * g.ow + tw / g.sw) * g.c;
          const T* wk = wt + (kh * g.kw + kw) * g.c;
          for (int64_t c = 0; c < g.c; ++c) out[c] += d[c] * wk[c];
        }
      }
    }
  }
}

// Stride-1 backward-data as a forward conv (Note [CPU conv2d backward-data at stride 1]).
template <typename T>
void bwd_data_as_fwd(Context& ctx, const Geometry& g, const T* dy, const T* w, T* dx) {
  Geometry t = g;  // the conv that maps dy (n, oh, ow, o) to dx (n, h, w, c)
  t.h = g.oh, t.w = g.ow, t.c = g.o, t.o = g.c, t.cg = g.og, t.og = g.cg;
  t.oh = g.h, t.ow = g.w, t.ph = g.kh - 1 - g.ph, t.pw = g.kw - 1 - g.pw;
  Tensor wt_t = ctx.empty({g.c, g.kh, g.kw, g.og}, DTypeOf<T>::value);
  T* wt = wt_t.data<T>();  // wt[grp*cg + c, kh, kw, o] = w[grp*og + o, KH-1-kh, KW-1-kw, c]
  for (int64_t grp = 0; grp < g.groups; ++grp)
    for (int64_t c = 0; c < g.cg; ++c)
      for (int64_t kh = 0; kh < g.kh; ++kh)
        for (int64_t kw = 0; kw < g.kw; ++kw)
          for (int64_t o = 0; o < g.og; ++o)
            wt[(((grp * g.cg + c) * g.kh + kh) * g.kw + kw) * g.og + o] =
                w[(((grp * g.og + o) * g.kh + (g.kh - 1 - kh)) * g.kw + (g.kw - 1 - kw)) * g.cg +
                  c];
  fwd(ctx, t, dy, wt, static_cast<const T*>(nullptr), dx, false);
}

// Note [CPU conv2d backward-data at stride 1]
// With stride 1, dx is the forward conv of dy (zero-padded by k - 1 - pad) with the weights
// flipped in space and transposed in channels. That is one im2col copy and one GEMM with the
// forward's good shape, instead of a GEMM into a patch gradient plus a col2im scatter-add. Strided
// convs go by phases where the direct kernel applies (Note [CPU conv2d backward-data by phases],
// conv_direct.cpp); the rest (and pads >= k, never used) keep the col2im path.
template <typename T>
void bwd_data(Context& ctx, const Geometry& g, const T* dy, const T* w, T* dx) {
  if (g.depthwise()) return depthwise_bwd_data(ctx, g, dy, w, dx);
  if (!g.no_patch() && g.sh == 1 && g.sw == 1 && g.ph < g.kh && g.pw < g.kw)
    return bwd_data_as_fwd(ctx, g, dy, w, dx);
  if constexpr (kDirect<T>)
    if (!g.no_patch() && (g.sh > 1 || g.sw > 1) && cpu::direct_conv_bwd_data(ctx, g, dy, w, dx))
      return;
  const int64_t kcols = g.k();
  if (g.no_patch()) {  // dx rows = dy rows x w, per group
    const int64_t m = g.n * g.h * g.w;
    for (int64_t grp = 0; grp < g.groups; ++grp)
      gemm(CblasNoTrans, CblasNoTrans, m, kcols, g.og, dy + grp * g.og, g.o, w + grp * g.og * kcols,
           kcols, T(0), dx + grp * g.cg, g.c);
    return;
  }
  const int64_t step = chunk_lines<T>(g);
  Tensor dpatch_t = ctx.empty({step * g.ow, kcols}, DTypeOf<T>::value);
  T* dpatch = dpatch_t.data<T>();
  for (int64_t line0 = 0; line0 < g.lines(); line0 += step) {
    const int64_t line1 = std::min(g.lines(), line0 + step), rows = (line1 - line0) * g.ow;
    const T* dy_rows = dy + line0 * g.ow * g.o;
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      gemm(CblasNoTrans, CblasNoTrans, rows, kcols, g.og, dy_rows + grp * g.og, g.o,
           w + grp * g.og * kcols, kcols, T(0), dpatch, kcols);
      col2im_add(g, dpatch, grp, line0, line1, dx);
    }
  }
}

// ---- backward-filter ----

template <typename T>
void depthwise_bwd_filter(const Geometry& g, const T* x, const T* dy, T* dw, bool accumulate) {
  constexpr int64_t kChannelBlock = 16;
  const int64_t kk = g.kh * g.kw, blocks = (g.c + kChannelBlock - 1) / kChannelBlock;
#pragma omp parallel for schedule(static) if (g.n * g.oh * g.ow * g.c * kk >= kParallelWork)
  for (int64_t unit = 0; unit < kk * blocks; ++unit) {
    const int64_t k = unit / blocks, c0 = (unit % blocks) * kChannelBlock;
    const int64_t kh = k / g.kw, kw = k % g.kw, cn = std::min(kChannelBlock, g.c - c0);
    T acc[kChannelBlock] = {};
    for (int64_t n = 0; n < g.n; ++n)
      for (int64_t oh = 0; oh < g.oh; ++oh) {
        const int64_t ih = oh * g.sh - g.ph + kh;
        if (ih < 0 || ih >= g.h) continue;
        for (int64_t ow = 0; ow < g.ow; ++ow) {
          const int64_t iw = ow * g.sw - g.pw + kw;
          if (iw < 0 || iw >= g.w) continue;
          const T* d = dy + ((n * g.oh + oh) * g.ow + ow) * g.c + c0;
          const T* in = x + ((n * g.h + ih) * g.w + iw) * g.c + c0;
          for (int64_t c = 0; c < cn; ++c) acc[c] += d[c] * in[c];
        }
      }
    for (int64_t c = 0; c < cn; ++c) {
      T& out = dw[(c0 + c) * kk + k];
      out = accumulate ? out + acc[c] : acc[c];
    }
  }
}

template <typename T>
void bwd_filter(Context& ctx, const Geometry& g, const T* x, const T* dy, T* dw, T* dbias,
                bool accumulate) {
  const int64_t kcols = g.k();
  if (dbias) {  // dbias (o) = dy^T x ones
    const int64_t m = g.n * g.oh * g.ow;
    gemv_t(m, g.o, dy, ones_vector<T>(ctx, m).template data<T>(), accumulate ? T(1) : T(0), dbias);
  }
  if (g.depthwise()) return depthwise_bwd_filter(g, x, dy, dw, accumulate);
  if constexpr (kDirect<T>)
    if (cpu::direct_conv_bwd_filter(ctx, g, x, dy, dw, accumulate)) return;
  if (g.no_patch()) {  // dw_g = dy_g^T x x_g
    const int64_t m = g.n * g.h * g.w;
    for (int64_t grp = 0; grp < g.groups; ++grp)
      gemm(CblasTrans, CblasNoTrans, g.og, kcols, m, dy + grp * g.og, g.o, x + grp * g.cg, g.c,
           accumulate ? T(1) : T(0), dw + grp * g.og * kcols, kcols);
    return;
  }
  const int64_t step = chunk_lines<T>(g);
  Tensor patch_t = ctx.empty({step * g.ow, kcols}, DTypeOf<T>::value);
  T* patch = patch_t.data<T>();
  for (int64_t line0 = 0; line0 < g.lines(); line0 += step) {
    const int64_t line1 = std::min(g.lines(), line0 + step), rows = (line1 - line0) * g.ow;
    const T beta = (line0 == 0 && !accumulate) ? T(0) : T(1);
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      im2col(g, x, grp, line0, line1, patch);
      gemm(CblasTrans, CblasNoTrans, g.og, kcols, rows, dy + line0 * g.ow * g.o + grp * g.og, g.o,
           patch, kcols, beta, dw + grp * g.og * kcols, kcols);
    }
  }
}

template <typename T>
const T* data_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

}  // namespace

void conv2d_fwd_cpu(Context& ctx, const Tensor& x, const Tensor& w, const Tensor& bias,
                    const Tensor& y, const Conv2dParams& p) {
  conv2d_fwd_act_cpu(ctx, x, w, bias, y, p, Activation::none);
}

void conv2d_fwd_act_cpu(Context& ctx, const Tensor& x, const Tensor& w, const Tensor& bias,
                        const Tensor& y, const Conv2dParams& p, Activation act) {
  const Geometry g = geometry(x, w, p);
  const bool silu = act == Activation::silu;
  if (x.dtype() == DType::f32)
    fwd(ctx, g, x.data<float>(), w.data<float>(), data_or_null<float>(bias), y.data<float>(), silu);
  else
    fwd(ctx, g, x.data<double>(), w.data<double>(), data_or_null<double>(bias), y.data<double>(),
        silu);
}

void conv2d_bwd_data_cpu(Context& ctx, const Tensor& dy, const Tensor& w, const Tensor& dx,
                         const Conv2dParams& p) {
  const Geometry g = geometry(dx, w, p);
  if (dx.dtype() == DType::f32)
    bwd_data(ctx, g, dy.data<float>(), w.data<float>(), dx.data<float>());
  else
    bwd_data(ctx, g, dy.data<double>(), w.data<double>(), dx.data<double>());
}

void conv2d_bwd_filter_cpu(Context& ctx, const Tensor& x, const Tensor& dy, const Tensor& dw,
                           const Tensor& dbias, const Conv2dParams& p, bool accumulate) {
  const Geometry g = geometry(x, dw, p);
  if (x.dtype() == DType::f32)
    bwd_filter(ctx, g, x.data<float>(), dy.data<float>(), dw.data<float>(),
               dbias.defined() ? dbias.data<float>() : nullptr, accumulate);
  else
    bwd_filter(ctx, g, x.data<double>(), dy.data<double>(), dw.data<double>(),
               dbias.defined() ? dbias.data<double>() : nullptr, accumulate);
}

}  // namespace yolo
