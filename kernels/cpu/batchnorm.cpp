// CPU batch norm (+ optional SiLU) over the channel axis of NHWC activations: the reference for
// kernels/cuda/batchnorm_*.cu. x viewed as (M, C) row-major; inner loops run over the contiguous
// channels so the compiler vectorises them. T is float (f32 x and per-channel tensors) or double.
// Statistics and parameter-gradient sums are f64 for both; the element maths is in T (Note [BN
// precision]). Sums run over fixed blocks of kRowBlock rows in parallel and are merged block by
// block in order, so results do not depend on the number of threads.
#include "kernels/batchnorm.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/cpu/vec_math.h"

namespace yolo {
namespace {

// Note [BN precision]
// Statistics: each block of rows accumulates sums of d = x - K and d^2 in f64, with K the block's
// first row. K is one of the block's values, so (mean_b - K)^2 <= n_b * var_b and the shifted sum
// of squares loses at most log2(n_b) bits to cancellation (no catastrophic case, unlike plain
// sum/sum-of-squares); blocks are merged with Chan's pairwise update. f32 element maths:
// z = (x - mean_hi) * scale + shift, with mean_hi = f32(mean), scale = f32(gamma * invstd) and
// shift = f32(beta - (mean - mean_hi) * scale): x - mean_hi is exact near the mean (Sterbenz), so
// z's error stays a few ulps of |z - beta| + |beta| even when invstd is large (few rows, tiny
// variance), where x * scale - mean * scale would cancel catastrophically. Sigmoid goes through
// exp_f32 (Cephes expf, about 1 ulp), so y is within a few f32 ulps of the f64 result; f64 uses
// the same formulas with std::exp.

constexpr int64_t kRowBlock = 128;
constexpr int64_t kParallelMin = 1 << 15;  // elements; below this one thread is faster

// Row range [begin, end) of block b.
inline int64_t block_end(int64_t b, int64_t m) {
  return b * kRowBlock + kRowBlock < m ? b * kRowBlock + kRowBlock : m;
}

// One block of n rows of x (n, C): its per-channel mean and sum of squared deviations.
template <typename T>
YOLO_ISA_CLONES void block_moments(const T* __restrict x, int64_t n, int64_t c,
                                   double* __restrict mean, double* __restrict m2) {
  for (int64_t j = 0; j < c; ++j) mean[j] = m2[j] = 0.0;
  for (int64_t r = 1; r < n; ++r) {
    const T* __restrict xr = x + r * c;
    for (int64_t j = 0; j < c; ++j) {
      const double d = double(xr[j]) - double(x[j]);  // shifted by the first row
      mean[j] += d;
      m2[j] += d * d;
    }
  }
  for (int64_t j = 0; j < c; ++j) {
    const double shift = mean[j] / double(n);
    m2[j] -= mean[j] * shift;
    mean[j] = double(x[j]) + shift;
  }
}

// Per-channel mean and biased variance of x (M, C) in f64 (Note [BN precision]).
template <typename T>
void moments(const T* x, int64_t m, int64_t c, std::vector<double>& mean,
             std::vector<double>& var) {
  const int64_t blocks = (m + kRowBlock - 1) / kRowBlock;
  // Per block: mean_b (c values) then M2_b (c values).
  std::vector<double> partial(size_t(blocks * 2 * c));
#pragma omp parallel for schedule(static) if (m * c >= kParallelMin)
  for (int64_t b = 0; b < blocks; ++b) {
    double* s1 = partial.data() + b * 2 * c;
    block_moments(x + b * kRowBlock * c, block_end(b, m) - b * kRowBlock, c, s1, s1 + c);
  }
  mean.assign(size_t(c), 0.0);
  std::vector<double> m2(size_t(c), 0.0);
  double count = 0.0;
  for (int64_t b = 0; b < blocks; ++b) {
    const double* mb = partial.data() + b * 2 * c;
    const double* m2b = mb + c;
    const double nb = double(block_end(b, m) - b * kRowBlock), n = count + nb;
    for (int64_t j = 0; j < c; ++j) {
      const double delta = mb[j] - mean[j];
      mean[j] += delta * (nb / n);
      m2[j] += m2b[j] + delta * delta * (count * nb / n);
    }
    count = n;
  }
  var.resize(size_t(c));
  for (int64_t j = 0; j < c; ++j) var[j] = m2[j] / double(m);
}

// n rows: y[r, j] = act((x[r, j] - mean_hi[j]) * scale[j] + shift[j]). y may be x.
template <typename T>
YOLO_ISA_CLONES void apply_rows(const T* x, T* y, int64_t n, int64_t c, const T* __restrict mean_hi,
                                const T* __restrict scale, const T* __restrict shift, bool silu) {
  for (int64_t r = 0; r < n; ++r) {
    const T* xr = x + r * c;
    T* yr = y + r * c;
    if (silu) {
#pragma omp simd
      for (int64_t j = 0; j < c; ++j) {
        const T z = (xr[j] - mean_hi[j]) * scale[j] + shift[j];
        yr[j] = z * sigmoid(z);
      }
    } else {
#pragma omp simd
      for (int64_t j = 0; j < c; ++j) yr[j] = (xr[j] - mean_hi[j]) * scale[j] + shift[j];
    }
  }
}

// y[r, j] = act((x[r, j] - mean_hi[j]) * scale[j] + shift[j]) (Note [BN precision]).
template <typename T>
void apply(const T* x, T* y, int64_t m, int64_t c, const T* gamma, const T* beta,
           const std::vector<double>& mean, const std::vector<double>& invstd, Activation act) {
  std::vector<T> hi_v(static_cast<size_t>(c)), scale_v(static_cast<size_t>(c)),
      shift_v(static_cast<size_t>(c));
  for (int64_t j = 0; j < c; ++j) {
    const double s = double(gamma[j]) * invstd[j];
    hi_v[j] = T(mean[j]);
    scale_v[j] = T(s);
    shift_v[j] = T(double(beta[j]) - (mean[j] - double(hi_v[j])) * s);
  }
  const T* __restrict mean_hi = hi_v.data();
  const T* __restrict scale = scale_v.data();
  const T* __restrict shift = shift_v.data();
  const bool silu = act == Activation::silu;
  const int64_t blocks = (m + kRowBlock - 1) / kRowBlock;
#pragma omp parallel for schedule(static) if (m * c >= kParallelMin)
  for (int64_t b = 0; b < blocks; ++b)
    apply_rows(x + b * kRowBlock * c, y + b * kRowBlock * c, block_end(b, m) - b * kRowBlock, c,
               mean_hi, scale, shift, silu);
}

template <typename T>
void fwd_train(const Tensor& xt, const Tensor& gamma, const Tensor& beta,
               const Tensor& running_mean, const Tensor& running_var, const Tensor& save_mean,
               const Tensor& save_invstd, const Tensor& yt, double momentum, double eps,
               Activation act) {
  const int64_t c = xt.dim(-1), m = xt.numel() / c;
  const T* x = xt.data<T>();
  std::vector<double> mean, var;
  moments(x, m, c, mean, var);
  std::vector<double> invstd(static_cast<size_t>(c));
  T* rm = running_mean.data<T>();
  T* rv = running_var.data<T>();
  for (int64_t j = 0; j < c; ++j) {
    invstd[j] = 1.0 / std::sqrt(var[j] + eps);  // biased variance normalises
    save_mean.data<T>()[j] = T(mean[j]);
    save_invstd.data<T>()[j] = T(invstd[j]);
    const double unbiased = var[j] * double(m) / double(m - 1);
    rm[j] = T((1.0 - momentum) * double(rm[j]) + momentum * mean[j]);
    rv[j] = T((1.0 - momentum) * double(rv[j]) + momentum * unbiased);
  }
  apply(x, yt.data<T>(), m, c, gamma.data<T>(), beta.data<T>(), mean, invstd, act);
}

template <typename T>
void fwd_eval(const Tensor& xt, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
              const Tensor& running_var, const Tensor& yt, double eps, Activation act) {
  const int64_t c = xt.dim(-1), m = xt.numel() / c;
  std::vector<double> mean(static_cast<size_t>(c)), invstd(static_cast<size_t>(c));
  for (int64_t j = 0; j < c; ++j) {
    mean[j] = double(running_mean.data<T>()[j]);
    invstd[j] = 1.0 / std::sqrt(double(running_var.data<T>()[j]) + eps);
  }
  apply(xt.data<T>(), yt.data<T>(), m, c, gamma.data<T>(), beta.data<T>(), mean, invstd, act);
}

// Per-channel inputs of the backward, (C) each.
template <typename T>
struct Channels {
  const T* mean;
  const T* invstd;
  const T* gamma;
  const T* beta;
};

// Note [BN backward passes]
// The first pass makes the per-channel sums (dbeta = sum dz, dgamma = sum dz * x_hat, with dz =
// dy * SiLU'(z)) and, with SiLU, parks dz in dx; the second computes dx = gamma * invstd * (dz -
// dbeta / M - x_hat * dgamma / M) reading dz back. Recomputing dz instead saves one pass over
// memory but costs a second sigmoid per element, which measured slower (yolov5n 8x160x160x16:
// 4.3 -> 5.1 ms). When dx is x's memory (in place) dz is recomputed. Sums are f64 per block of
// kRowBlock rows (Note [BN precision]); inside a block, groups of kSumRows rows are first summed
// in T, which keeps the f32 -> f64 conversions off the per-element path (a group of 8 f32 terms is
// exact to a few ulps of its magnitude).
constexpr int64_t kSumRows = 8;

// dz and x_hat of one element (Note [BN backward passes]).
template <typename T, bool kSilu>
[[gnu::always_inline]] inline void dz_xhat(T x, T dy, T mean, T invstd, T gamma, T beta, T& dz,
                                           T& h) {
  h = (x - mean) * invstd;
  dz = dy;
  if constexpr (kSilu) {
    const T z = gamma * h + beta;
    const T s = sigmoid(z);
    dz = dy * s * (T(1) + z * (T(1) - s));
  }
}

// n rows: sb[j] = sum dz, sg[j] = sum dz * x_hat (f64), with gb / gg (c each) as T scratch; dz
// also stored in park (n, c) when kPark.
template <typename T, bool kSilu, bool kPark>
[[gnu::always_inline]] inline void sum_rows(const T* x, const T* dy, T* park, int64_t n, int64_t c,
                                            const Channels<T>& ch, double* __restrict sb,
                                            double* __restrict sg, T* __restrict gb,
                                            T* __restrict gg) {
  const T* __restrict mean = ch.mean;
  const T* __restrict invstd = ch.invstd;
  const T* __restrict gamma = ch.gamma;
  const T* __restrict beta = ch.beta;
  for (int64_t j = 0; j < c; ++j) sb[j] = sg[j] = 0.0;
  for (int64_t r0 = 0; r0 < n; r0 += kSumRows) {
    const int64_t r1 = std::min(n, r0 + kSumRows);
    for (int64_t j = 0; j < c; ++j) gb[j] = gg[j] = T(0);
    for (int64_t r = r0; r < r1; ++r) {
      const T* __restrict xr = x + r * c;
      const T* __restrict dyr = dy + r * c;
      T* __restrict pr = kPark ? park + r * c : nullptr;
#pragma omp simd
      for (int64_t j = 0; j < c; ++j) {
        T d, h;
        dz_xhat<T, kSilu>(xr[j], dyr[j], mean[j], invstd[j], gamma[j], beta[j], d, h);
        if constexpr (kPark) pr[j] = d;
        gb[j] += d;
        gg[j] += d * h;
      }
    }
#pragma omp simd
    for (int64_t j = 0; j < c; ++j) {
      sb[j] += double(gb[j]);
      sg[j] += double(gg[j]);
    }
  }
}

template <typename T>
YOLO_ISA_CLONES void bwd_sum_rows(const T* x, const T* dy, T* park, int64_t n, int64_t c,
                                  const Channels<T>& ch, bool silu, double* sb, double* sg, T* gb,
                                  T* gg) {
  if (!silu)
    sum_rows<T, false, false>(x, dy, nullptr, n, c, ch, sb, sg, gb, gg);
  else if (park)
    sum_rows<T, true, true>(x, dy, park, n, c, ch, sb, sg, gb, gg);
  else
    sum_rows<T, true, false>(x, dy, nullptr, n, c, ch, sb, sg, gb, gg);
}

// n rows: dx = k * (dz - a - x_hat * b), dz recomputed from x and dy, or read from dx when kParked.
// dx may be x's or dy's memory (element for element).
template <typename T, bool kSilu, bool kParked>
[[gnu::always_inline]] inline void dx_rows_impl(const T* x, const T* dy, T* dx, int64_t n,
                                                int64_t c, const Channels<T>& ch,
                                                const T* __restrict kk, const T* __restrict ka,
                                                const T* __restrict kb) {
  const T* __restrict mean = ch.mean;
  const T* __restrict invstd = ch.invstd;
  const T* __restrict gamma = ch.gamma;
  const T* __restrict beta = ch.beta;
  for (int64_t r = 0; r < n; ++r) {
    const T* xr = x + r * c;
    const T* dyr = dy + r * c;
    T* dxr = dx + r * c;
#pragma omp simd
    for (int64_t j = 0; j < c; ++j) {
      T d, h;
      if constexpr (kParked) {
        h = (xr[j] - mean[j]) * invstd[j];
        d = dxr[j];
      } else {
        dz_xhat<T, kSilu>(xr[j], dyr[j], mean[j], invstd[j], gamma[j], beta[j], d, h);
      }
      dxr[j] = kk[j] * (d - ka[j] - h * kb[j]);
    }
  }
}

template <typename T>
YOLO_ISA_CLONES void dx_rows(const T* x, const T* dy, T* dx, int64_t n, int64_t c,
                             const Channels<T>& ch, const T* kk, const T* ka, const T* kb,
                             bool silu, bool parked) {
  if (parked)
    dx_rows_impl<T, true, true>(x, dy, dx, n, c, ch, kk, ka, kb);
  else if (silu)
    dx_rows_impl<T, true, false>(x, dy, dx, n, c, ch, kk, ka, kb);
  else
    dx_rows_impl<T, false, false>(x, dy, dx, n, c, ch, kk, ka, kb);
}

template <typename T>
void bwd(const Tensor& xt, const Tensor& dyt, const Tensor& gamma_t, const Tensor& beta_t,
         const Tensor& save_mean, const Tensor& save_invstd, const Tensor& dxt,
         const Tensor& dgamma_t, const Tensor& dbeta_t, Activation act, bool accumulate_params) {
  const int64_t c = xt.dim(-1), m = xt.numel() / c;
  const T* x = xt.data<T>();
  const T* dy = dyt.data<T>();
  T* dx = dxt.data<T>();
  const T* gamma = gamma_t.data<T>();
  const bool silu = act == Activation::silu;
  const bool park = silu && dxt.raw() != xt.raw();  // Note [BN backward passes]
  const int64_t blocks = (m + kRowBlock - 1) / kRowBlock;
  // Per block: sum dz (= dbeta) then sum dz * x_hat (= dgamma), c values each.
  std::vector<double> partial(size_t(blocks * 2 * c));
  const bool parallel = m * c >= kParallelMin;
  const Channels<T> ch{save_mean.data<T>(), save_invstd.data<T>(), gamma, beta_t.data<T>()};
#pragma omp parallel if (parallel)
  {
    std::vector<T> scratch(size_t(2 * c));
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t r0 = b * kRowBlock;
      double* sb = partial.data() + b * 2 * c;
      bwd_sum_rows(x + r0 * c, dy + r0 * c, park ? dx + r0 * c : nullptr, block_end(b, m) - r0, c,
                   ch, silu, sb, sb + c, scratch.data(), scratch.data() + c);
    }
  }
  std::vector<double> sums(size_t(2 * c), 0.0);
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t j = 0; j < 2 * c; ++j) sums[j] += partial[b * 2 * c + j];
  T* dgamma = dgamma_t.data<T>();
  T* dbeta = dbeta_t.data<T>();
  // dx = gamma * invstd * (dz - dbeta / M - x_hat * dgamma / M).
  std::vector<T> k_v(static_cast<size_t>(c)), a_v(static_cast<size_t>(c)),
      b_v(static_cast<size_t>(c));
  const double inv_m = 1.0 / double(m);
  for (int64_t j = 0; j < c; ++j) {
    dbeta[j] = T(accumulate_params ? double(dbeta[j]) + sums[j] : sums[j]);
    dgamma[j] = T(accumulate_params ? double(dgamma[j]) + sums[c + j] : sums[c + j]);
    k_v[j] = T(double(gamma[j]) * double(ch.invstd[j]));
    a_v[j] = T(sums[j] * inv_m);
    b_v[j] = T(sums[c + j] * inv_m);
  }
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t r0 = b * kRowBlock;
    dx_rows(x + r0 * c, dy + r0 * c, dx + r0 * c, block_end(b, m) - r0, c, ch, k_v.data(),
            a_v.data(), b_v.data(), silu, park);
  }
}

}  // namespace

void batchnorm_fwd_train_cpu(Context&, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                             const Tensor& running_mean, const Tensor& running_var,
                             const Tensor& save_mean, const Tensor& save_invstd, const Tensor& y,
                             double momentum, double eps, Activation act) {
  if (x.dtype() == DType::f64)
    fwd_train<double>(x, gamma, beta, running_mean, running_var, save_mean, save_invstd, y,
                      momentum, eps, act);
  else
    fwd_train<float>(x, gamma, beta, running_mean, running_var, save_mean, save_invstd, y, momentum,
                     eps, act);
}

void batchnorm_fwd_eval_cpu(Context&, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                            const Tensor& running_mean, const Tensor& running_var, const Tensor& y,
                            double eps, Activation act) {
  if (x.dtype() == DType::f64)
    fwd_eval<double>(x, gamma, beta, running_mean, running_var, y, eps, act);
  else
    fwd_eval<float>(x, gamma, beta, running_mean, running_var, y, eps, act);
}

void batchnorm_bwd_cpu(Context&, const Tensor& x, const Tensor& dy, const Tensor& gamma,
                       const Tensor& beta, const Tensor& save_mean, const Tensor& save_invstd,
                       const Tensor& dx, const Tensor& dgamma, const Tensor& dbeta, Activation act,
                       bool accumulate_params) {
  if (x.dtype() == DType::f64)
    bwd<double>(x, dy, gamma, beta, save_mean, save_invstd, dx, dgamma, dbeta, act,
                accumulate_params);
  else
    bwd<float>(x, dy, gamma, beta, save_mean, save_invstd, dx, dgamma, dbeta, act,
               accumulate_params);
}

}  // namespace yolo
