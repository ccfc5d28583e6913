// CPU max pool (stride 1, padding k/2, NHWC) and the SPPF cascade: the reference for
// kernels/cuda/pool.cu. Backward scatters each output's gradient to the window's maximum in
// row-major output order, so every dx element sums its contributions in the same order as the
// CUDA gather. Parallel over (image, channel block); each task owns its dx slice.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/pool.h"
#include "kernels/cpu/vec_math.h"  // YOLO_ISA_CLONES (Note [ISA clones])

namespace yolo {
namespace {

constexpr int64_t kChannelBlock = 64;


// Channels of one image: pixel p starts at base + p * ld; functions read channels [c0, c1) of it.
template <typename T>
struct Plane {
  T* base;
  int64_t ld;
  T* at(int64_t pixel) const { return base + pixel * ld; }
};

// Window rule shared by forward and backward (PyTorch's): start at -inf with the first in-image
// position, take a value when it is greater or NaN, scanning the window in row-major order.
// Note [Separable max]: the k x k window is scanned as a row pass (each row's maximum over its k
// columns, by the rule) and then a column pass over those row results (by the same rule). Both
// pick the same element as the row-major scan: with no NaN, the first maximum of the earliest
// row holding one; otherwise the last NaN of the last row holding one. Starting a pass from its
// first value instead of -inf picks the same element too. Loops run over contiguous channels.
template <typename T>
inline bool takes(T v, T best) {
  return (v > best) | (v != v);  // no short circuit, so loops stay branch-free
}

// Scratch for one task: row-pass values (and their columns, for backward) of an H x W plane of
// cn channels, and one output pixel's running values and positions.
template <typename T>
struct PoolScratch {
  std::vector<T> row_val, best;
  std::vector<int32_t> row_col, arg;
  PoolScratch(int64_t H, int64_t W, int64_t cn, bool with_args)
      : row_val(size_t(H * W * cn)), best(size_t(cn)),
        row_col(with_args ? size_t(H * W * cn) : 0), arg(with_args ? size_t(cn) : 0) {}
};

// Row pass on channels [c0, c1): row_val[(h * W + w) * cn + c - c0] = max over the window's columns
// of x at row h; with args, row_col holds the chosen column.
template <typename T, bool kArgs>
YOLO_ISA_CLONES void row_pass(Plane<const T> x, PoolScratch<T>& s, int64_t H, int64_t W, int64_t c0,
                              int64_t c1, int k) {
  const int64_t r = k / 2, cn = c1 - c0;
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t w = 0; w < W; ++w) {
      const int64_t ws = std::max<int64_t>(w - r, 0), we = std::min(w + r, W - 1);
      T* __restrict val = s.row_val.data() + (h * W + w) * cn;
      int32_t* __restrict col = kArgs ? s.row_col.data() + (h * W + w) * cn : nullptr;
      const T* __restrict first = x.at(h * W + ws) + c0;
#pragma omp simd
      for (int64_t c = 0; c < cn; ++c) val[c] = first[c];
      if constexpr (kArgs)
#pragma omp simd
        for (int64_t c = 0; c < cn; ++c) col[c] = int32_t(ws);
      for (int64_t ww = ws + 1; ww <= we; ++ww) {
        const T* __restrict px = x.at(h * W + ww) + c0;
        if constexpr (kArgs) {
          const int32_t wi = int32_t(ww);
#pragma omp simd
          for (int64_t c = 0; c < cn; ++c) {
            const T v = px[c], b = val[c];
            const int32_t take = -int32_t(takes(v, b));  // all ones or zero: a mask, not a branch
            col[c] = (wi & take) | (col[c] & ~take);
            val[c] = take ? v : b;
          }
        } else {
#pragma omp simd
          for (int64_t c = 0; c < cn; ++c) val[c] = takes(px[c], val[c]) ? px[c] : val[c];
        }
      }
    }
  }
}

// y = maxpool_k(x) on channels [c0, c1) of an H x W image (Note [Separable max]).
template <typename T>
YOLO_ISA_CLONES void pool_plane(Plane<const T> x, Plane<T> y, int64_t H, int64_t W, int64_t c0,
                                int64_t c1, int k, PoolScratch<T>& s) {
  const int64_t r = k / 2, cn = c1 - c0;
  row_pass<T, false>(x, s, H, W, c0, c1, k);
  for (int64_t h = 0; h < H; ++h) {
    const int64_t hs = std::max<int64_t>(h - r, 0), he = std::min(h + r, H - 1);
    for (int64_t w = 0; w < W; ++w) {
      T* __restrict best = s.best.data();
      const T* __restrict first = s.row_val.data() + (hs * W + w) * cn;
#pragma omp simd
      for (int64_t c = 0; c < cn; ++c) best[c] = first[c];
      for (int64_t hh = hs + 1; hh <= he; ++hh) {
        const T* __restrict v = s.row_val.data() + (hh * W + w) * cn;
#pragma omp simd
        for (int64_t c = 0; c < cn; ++c) best[c] = takes(v[c], best[c]) ? v[c] : best[c];
      }
      T* __restrict py = y.at(h * W + w) + c0;
#pragma omp simd
      for (int64_t c = 0; c < cn; ++c) py[c] = best[c];
    }
  }
}

// dx += maxpool_k backward (argmax recomputed from x, Note [Separable max]) on channels [c0, c1)
// of one image, adding in row-major output order.
template <typename T>
YOLO_ISA_CLONES void pool_bwd_plane(Plane<const T> x, Plane<const T> dy, Plane<T> dx, int64_t H,
                                    int64_t W, int64_t c0, int64_t c1, int k, PoolScratch<T>& s) {
  const int64_t r = k / 2, cn = c1 - c0;
  row_pass<T, true>(x, s, H, W, c0, c1, k);
  for (int64_t h = 0; h < H; ++h) {
    const int64_t hs = std::max<int64_t>(h - r, 0), he = std::min(h + r, H - 1);
    for (int64_t w = 0; w < W; ++w) {
      T* __restrict best = s.best.data();
      int32_t* __restrict arg = s.arg.data();
      const T* __restrict first = s.row_val.data() + (hs * W + w) * cn;
      const int32_t* __restrict first_col = s.row_col.data() + (hs * W + w) * cn;
      const int32_t first_row = int32_t(hs * W);
#pragma omp simd
      for (int64_t c = 0; c < cn; ++c) {
        best[c] = first[c];
        arg[c] = first_row + first_col[c];
      }
      for (int64_t hh = hs + 1; hh <= he; ++hh) {
        const T* __restrict v = s.row_val.data() + (hh * W + w) * cn;
        const int32_t* __restrict col = s.row_col.data() + (hh * W + w) * cn;
        const int32_t row = int32_t(hh * W);
#pragma omp simd
        for (int64_t c = 0; c < cn; ++c) {
          const T vc = v[c], b = best[c];
          const int32_t take = -int32_t(takes(vc, b));
          arg[c] = ((row + col[c]) & take) | (arg[c] & ~take);
          best[c] = take ? vc : b;
        }
      }
      const T* pdy = dy.at(h * W + w);
      for (int64_t c = 0; c < cn; ++c) dx.at(arg[c])[c0 + c] += pdy[c0 + c];
    }
  }
}

// dst[:, c0:c1] = src[:, c0:c1] over H*W pixels.
template <typename T>
void copy_plane(Plane<const T> src, Plane<T> dst, int64_t pixels, int64_t c0, int64_t c1) {
  for (int64_t p = 0; p < pixels; ++p)
    for (int64_t c = c0; c < c1; ++c) dst.at(p)[c] = src.at(p)[c];
}

// Runs body(n, c0, c1) in parallel over images and channel blocks.
template <typename Body>
void for_image_blocks(int64_t N, int64_t C, Body body) {
  const int64_t blocks = (C + kChannelBlock - 1) / kChannelBlock;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t b = 0; b < blocks; ++b)
      body(n, b * kChannelBlock, std::min(C, (b + 1) * kChannelBlock));
}

template <typename T>
void maxpool_fwd_typed(const Tensor& x, const Tensor& y, int k) {
  const int64_t N = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
  const T* px = x.data<T>();
  T* py = y.data<T>();
  for_image_blocks(N, C, [&](int64_t n, int64_t c0, int64_t c1) {
    PoolScratch<T> s(H, W, c1 - c0, false);
    pool_plane<T>({px + n * H * W * C, C}, {py + n * H * W * C, C}, H, W, c0, c1, k, s);
  });
}

template <typename T>
void maxpool_bwd_typed(const Tensor& x, const Tensor& dy, const Tensor& dx, int k) {
  const int64_t N = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
  const T* px = x.data<T>();
  const T* pdy = dy.data<T>();
  T* pdx = dx.data<T>();
  for_image_blocks(N, C, [&](int64_t n, int64_t c0, int64_t c1) {
    const int64_t off = n * H * W * C;
    for (int64_t p = 0; p < H * W; ++p)
      for (int64_t c = c0; c < c1; ++c) pdx[off + p * C + c] = T(0);
    PoolScratch<T> s(H, W, c1 - c0, true);
    pool_bwd_plane<T>({px + off, C}, {pdy + off, C}, {pdx + off, C}, H, W, c0, c1, k, s);
  });
}

// out = [x, p1, p2, p3], computed as the literal cascade p1 = pool(x), p2 = pool(p1), p3 = pool(p2).
template <typename T>
void sppf_fwd_typed(const Tensor& x, const Tensor& out, int k) {
  const int64_t N = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
  const T* px = x.data<T>();
  T* po = out.data<T>();
  for_image_blocks(N, C, [&](int64_t n, int64_t c0, int64_t c1) {
    T* o = po + n * H * W * 4 * C;
    PoolScratch<T> s(H, W, c1 - c0, false);
    copy_plane<T>({px + n * H * W * C, C}, {o, 4 * C}, H * W, c0, c1);
    for (int i = 0; i < 3; ++i)
      pool_plane<T>({o + i * C, 4 * C}, {o + (i + 1) * C, 4 * C}, H, W, c0, c1, k, s);
  });
}

// The cascade's backward: g3 = dout[p3]; g2 = dout[p2] + pool_bwd(p2, g3);
// g1 = dout[p1] + pool_bwd(p1, g2); dx = dout[x] + pool_bwd(x, g1). g2 and g1 hold only this
// task's channels [c0, c1), so their planes are shifted by -c0 through `Plane::base`.
template <typename T>
void sppf_bwd_typed(const Tensor& out, const Tensor& dout, const Tensor& dx, int k) {
  const int64_t N = out.dim(0), H = out.dim(1), W = out.dim(2), C = out.dim(3) / 4;
  const T* po = out.data<T>();
  const T* pdo = dout.data<T>();
  T* pdx = dx.data<T>();
  for_image_blocks(N, C, [&](int64_t n, int64_t c0, int64_t c1) {
    const int64_t cn = c1 - c0;
    const T* o = po + n * H * W * 4 * C + c0;
    const T* d = pdo + n * H * W * 4 * C + c0;
    std::vector<T> g2(size_t(H * W * cn)), g1(size_t(H * W * cn));
    const Plane<T> p2{g2.data(), cn}, p1{g1.data(), cn};
    PoolScratch<T> s(H, W, cn, true);
    copy_plane<T>({d + 2 * C, 4 * C}, p2, H * W, 0, cn);
    pool_bwd_plane<T>({o + 2 * C, 4 * C}, {d + 3 * C, 4 * C}, p2, H, W, 0, cn, k, s);
    copy_plane<T>({d + C, 4 * C}, p1, H * W, 0, cn);
    pool_bwd_plane<T>({o + C, 4 * C}, {g2.data(), cn}, p1, H, W, 0, cn, k, s);
    const Plane<T> p0{pdx + n * H * W * C + c0, C};
    copy_plane<T>({d, 4 * C}, p0, H * W, 0, cn);
    pool_bwd_plane<T>({o, 4 * C}, {g1.data(), cn}, p0, H, W, 0, cn, k, s);
  });
}

}  // namespace

void maxpool_fwd_cpu(Context&, const Tensor& x, const Tensor& y, int k) {
  if (x.dtype() == DType::f32) maxpool_fwd_typed<float>(x, y, k);
  else maxpool_fwd_typed<double>(x, y, k);
}

void maxpool_bwd_cpu(Context&, const Tensor& x, const Tensor& dy, const Tensor& dx, int k) {
  if (x.dtype() == DType::f32) maxpool_bwd_typed<float>(x, dy, dx, k);
  else maxpool_bwd_typed<double>(x, dy, dx, k);
}

void sppf_fwd_cpu(Context&, const Tensor& x, const Tensor& out, int k) {
  if (x.dtype() == DType::f32) sppf_fwd_typed<float>(x, out, k);
  else sppf_fwd_typed<double>(x, out, k);
}

void sppf_bwd_cpu(Context&, const Tensor& out, const Tensor& dout, const Tensor& dx, int k) {
  if (out.dtype() == DType::f32) sppf_bwd_typed<float>(out, dout, dx, k);
  else sppf_bwd_typed<double>(out, dout, dx, k);
}

}  // namespace yolo
