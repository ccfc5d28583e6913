// CPU GEMM (OpenBLAS), reductions and BCE-with-logits: the reference the CUDA kernels must match.
// f32 and f64. Reductions accumulate in f64 over fixed-size chunks summed in order, so the result
// does not depend on the number of threads.
#include "kernels/linalg.h"


#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "kernels/cpu/blas.h"

namespace yolo {
namespace {

constexpr int64_t kChunk = 4096;  // elements per partial sum of a full reduction

// Sum over i in [0, n) of term(i), in f64, deterministic for any thread count.
template <typename Term>
double chunked_sum(int64_t n, const Term& term) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(size_t(chunks), 0.0);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t end = std::min(n, (c + 1) * kChunk);
    double s = 0.0;
    for (int64_t i = c * kChunk; i < end; ++i) s += term(i);
    partial[size_t(c)] = s;
  }
  double total = 0.0;
  for (double s : partial) total += s;
  return total;
}

template <typename T>
void gemm_impl(bool trans_a, bool trans_b, double alpha, const Tensor& a, const Tensor& b,
               double beta, const Tensor& c) {
  const int64_t m = c.dim(0), n = c.dim(1);
  const int64_t k = trans_a ? a.dim(0) : a.dim(1);
  T* pc = c.data<T>();
  if (m == 0 || n == 0) return;
  if (k == 0) {  // C = beta * C; beta == 0 assigns zero without reading C, as BLAS does
    for (int64_t i = 0; i < m * n; ++i) pc[i] = beta == 0.0 ? T(0) : T(beta) * pc[i];
    return;
  }
  cpu::gemm(trans_a, trans_b, m, n, k, T(alpha), a.data<T>(), a.dim(1), b.data<T>(), b.dim(1),
            T(beta), pc, n);
}

template <typename T>
void sum_all_impl(const Tensor& x, const Tensor& out, bool mean) {
  const T* px = x.data<T>();
  const int64_t n = x.numel();
  const double s = chunked_sum(n, [px](int64_t i) { return double(px[i]); });
  out.data<T>()[0] = T(mean ? s / double(n) : s);
}

template <typename T>
void sum_channels_impl(const Tensor& x, const Tensor& out, bool accumulate) {
  const int64_t c = x.dim(-1);
  const int64_t m = c == 0 ? 0 : x.numel() / c;
  const T* px = x.data<T>();
  T* po = out.data<T>();
  // At most 64 row blocks, fixed by m alone, summed in order: deterministic for any thread count.
  const int64_t rows_per_block = std::max<int64_t>(64, (m + 63) / 64);
  const int64_t blocks = (m + rows_per_block - 1) / rows_per_block;
  std::vector<double> partial(size_t(blocks * c), 0.0);
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    double* acc = partial.data() + blk * c;
    const int64_t end = std::min(m, (blk + 1) * rows_per_block);
    for (int64_t r = blk * rows_per_block; r < end; ++r) {
      const T* row = px + r * c;
      for (int64_t j = 0; j < c; ++j) acc[j] += double(row[j]);
    }
  }
  for (int64_t j = 0; j < c; ++j) {
    double s = 0.0;
    for (int64_t blk = 0; blk < blocks; ++blk) s += partial[size_t(blk * c + j)];
    po[j] = accumulate ? T(double(po[j]) + s) : T(s);
  }
}

// Per-element loss (1 - t) * z + lw * softplus(-z), lw = 1 + (pos_weight - 1) * t; softplus(-z)
// = max(-z, 0) + log1p(exp(-|z|)) never overflows (PyTorch's binary_cross_entropy_with_logits).
template <typename T>
T bce_term(T z, T t, T pos_weight) {
  const T lw = T(1) + (pos_weight - T(1)) * t;
  const T softplus_neg = std::max(-z, T(0)) + std::log1p(std::exp(-std::fabs(z)));
  return (T(1) - t) * z + lw * softplus_neg;
}

template <typename T>
T stable_sigmoid(T z) {
  if (z >= T(0)) return T(1) / (T(1) + std::exp(-z));
  const T e = std::exp(z);
  return e / (T(1) + e);
}

template <typename T>
void bce_fwd_impl(const Tensor& logits, const Tensor& targets, double pos_weight,
                  const Tensor& out) {
  const T* z = logits.data<T>();
  const T* t = targets.data<T>();
  const T pw = T(pos_weight);
  const int64_t n = logits.numel();
  const double s = chunked_sum(n, [=](int64_t i) { return double(bce_term(z[i], t[i], pw)); });
  out.data<T>()[0] = T(s / double(n));
}

// d(mean loss)/dz_i = (lw * sigmoid(z) - pos_weight * t) / n.
template <typename T>
void bce_bwd_impl(const Tensor& logits, const Tensor& targets, double pos_weight,
                  const Tensor& dloss, const Tensor& dlogits) {
  const T* z = logits.data<T>();
  const T* t = targets.data<T>();
  T* dz = dlogits.data<T>();
  const T pw = T(pos_weight);
  const int64_t n = logits.numel();
  const T scale = T(dloss.data<T>()[0] / T(n));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const T lw = T(1) + (pw - T(1)) * t[i];
    dz[i] = (lw * stable_sigmoid(z[i]) - pw * t[i]) * scale;
  }
}

}  // namespace

void gemm_cpu(Context&, bool trans_a, bool trans_b, double alpha, const Tensor& a, const Tensor& b,
              double beta, const Tensor& c) {
  if (c.dtype() == DType::f64)
    gemm_impl<double>(trans_a, trans_b, alpha, a, b, beta, c);
  else
    gemm_impl<float>(trans_a, trans_b, alpha, a, b, beta, c);
}

void sum_all_cpu(Context&, const Tensor& x, const Tensor& out) {
  if (x.dtype() == DType::f64)
    sum_all_impl<double>(x, out, false);
  else
    sum_all_impl<float>(x, out, false);
}

void mean_all_cpu(Context&, const Tensor& x, const Tensor& out) {
  if (x.dtype() == DType::f64)
    sum_all_impl<double>(x, out, true);
  else
    sum_all_impl<float>(x, out, true);
}

void sum_channels_cpu(Context&, const Tensor& x, const Tensor& out, bool accumulate) {
  if (x.dtype() == DType::f64)
    sum_channels_impl<double>(x, out, accumulate);
  else
    sum_channels_impl<float>(x, out, accumulate);
}

void bce_with_logits_fwd_cpu(Context&, const Tensor& logits, const Tensor& targets,
                             double pos_weight, const Tensor& out) {
  if (logits.dtype() == DType::f64)
    bce_fwd_impl<double>(logits, targets, pos_weight, out);
  else
    bce_fwd_impl<float>(logits, targets, pos_weight, out);
}

void bce_with_logits_bwd_cpu(Context&, const Tensor& logits, const Tensor& targets,
                             double pos_weight, const Tensor& dloss, const Tensor& dlogits) {
  if (logits.dtype() == DType::f64) {
    bce_bwd_impl<double>(logits, targets, pos_weight, dloss, dlogits);
  } else {
    bce_bwd_impl<float>(logits, targets, pos_weight, dloss, dlogits);
  }
}

}  // namespace yolo
