// CPU batch norm (+ optional SiLU) over the channel axis of NHWC activations: the reference for
// kernels/cuda/batchnorm_*.cu. x viewed as (M, C) row-major; statistics and all maths in f64.
// T is float (f32 x and f32 per-channel tensors) or double (f64 x and f64 per-channel tensors).
// Column sums run over fixed blocks of kRowBlock rows in parallel and are then added block by
// block in order, so results do not depend on the number of threads.
#include "kernels/batchnorm.h"

#include <cmath>
#include <cstdint>
#include <vector>

namespace yolo {
namespace {

constexpr int64_t kRowBlock = 128;

double sigmoid(double v) {
  return 1.0 / (1.0 + std::exp(-v));
}

double activate(double z, Activation act) {
  return act == Activation::silu ? z * sigmoid(z) : z;
}

// d act(z) / dz times dy.
double activate_grad(double z, double dy, Activation act) {
  if (act != Activation::silu) return dy;
  const double s = sigmoid(z);
  return dy * s * (1.0 + z * (1.0 - s));
}

// Per-column sums of `k` quantities over the rows of an (M, C) matrix: add_row(r, acc) adds row
// r's contributions into acc[j * C + c] (j < k). Returns k * C sums.
template <typename F>
std::vector<double> column_sums(int64_t m, int64_t c, int k, F add_row) {
  const int64_t blocks = (m + kRowBlock - 1) / kRowBlock;
  std::vector<double> partial(size_t(blocks * k * c), 0.0);
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    double* acc = partial.data() + b * k * c;
    const int64_t end = b * kRowBlock + kRowBlock < m ? b * kRowBlock + kRowBlock : m;
    for (int64_t r = b * kRowBlock; r < end; ++r) add_row(r, acc);
  }
  std::vector<double> total(size_t(k * c), 0.0);
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t j = 0; j < k * c; ++j) total[j] += partial[b * k * c + j];
  return total;
}

// y[r, c] = act(gamma[c] * (x[r, c] - mean[c]) * invstd[c] + beta[c]).
template <typename T>
void apply(const T* x, T* y, int64_t m, int64_t c, const T* gamma, const T* beta,
           const std::vector<double>& mean, const std::vector<double>& invstd, Activation act) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t j = 0; j < c; ++j) {
      const double z =
          double(gamma[j]) * (double(x[r * c + j]) - mean[j]) * invstd[j] + double(beta[j]);
      y[r * c + j] = T(activate(z, act));
    }
  }
}

template <typename T>
void fwd_train(const Tensor& xt, const Tensor& gamma, const Tensor& beta,
               const Tensor& running_mean, const Tensor& running_var, const Tensor& save_mean,
               const Tensor& save_invstd, const Tensor& yt, double momentum, double eps,
               Activation act) {
  const int64_t c = xt.dim(-1), m = xt.numel() / c;
  const T* x = xt.data<T>();
  // Two passes: the mean, then the sum of squared deviations (exact even when |mean| >> std).
  std::vector<double> mean = column_sums(m, c, 1, [&](int64_t r, double* acc) {
    for (int64_t j = 0; j < c; ++j) acc[j] += double(x[r * c + j]);
  });
  for (double& v : mean) v /= double(m);
  const std::vector<double> sq = column_sums(m, c, 1, [&](int64_t r, double* acc) {
    for (int64_t j = 0; j < c; ++j) {
      const double d = double(x[r * c + j]) - mean[j];
      acc[j] += d * d;
    }
  });
  std::vector<double> invstd(static_cast<size_t>(c));
  T* rm = running_mean.data<T>();
  T* rv = running_var.data<T>();
  for (int64_t j = 0; j < c; ++j) {
    const double var = sq[j] / double(m);  // biased: used to normalise
    invstd[j] = 1.0 / std::sqrt(var + eps);
    save_mean.data<T>()[j] = T(mean[j]);
    save_invstd.data<T>()[j] = T(invstd[j]);
    const double unbiased = sq[j] / double(m - 1);
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

template <typename T>
void bwd(const Tensor& xt, const Tensor& dyt, const Tensor& gamma_t, const Tensor& beta_t,
         const Tensor& save_mean, const Tensor& save_invstd, const Tensor& dxt,
         const Tensor& dgamma_t, const Tensor& dbeta_t, Activation act, bool accumulate_params) {
  const int64_t c = xt.dim(-1), m = xt.numel() / c;
  const T* x = xt.data<T>();
  const T* dy = dyt.data<T>();
  T* dx = dxt.data<T>();
  const size_t n = static_cast<size_t>(c);
  std::vector<double> mean(n), invstd(n), gamma(n), beta(n);
  for (int64_t j = 0; j < c; ++j) {
    mean[j] = double(save_mean.data<T>()[j]);
    invstd[j] = double(save_invstd.data<T>()[j]);
    gamma[j] = double(gamma_t.data<T>()[j]);
    beta[j] = double(beta_t.data<T>()[j]);
  }
  // dz at (r, j), with the pre-activation z recomputed from x for SiLU.
  auto dz_at = [&](int64_t i, int64_t j, double xhat) {
    return activate_grad(gamma[j] * xhat + beta[j], double(dy[i]), act);
  };
  // sums[j] = sum_r dz = dbeta; sums[c + j] = sum_r dz * x_hat = dgamma.
  const std::vector<double> sums = column_sums(m, c, 2, [&](int64_t r, double* acc) {
    for (int64_t j = 0; j < c; ++j) {
      const int64_t i = r * c + j;
      const double xhat = (double(x[i]) - mean[j]) * invstd[j];
      const double dz = dz_at(i, j, xhat);
      acc[j] += dz;
      acc[c + j] += dz * xhat;
    }
  });
  T* dgamma = dgamma_t.data<T>();
  T* dbeta = dbeta_t.data<T>();
  for (int64_t j = 0; j < c; ++j) {
    dbeta[j] = T(accumulate_params ? double(dbeta[j]) + sums[j] : sums[j]);
    dgamma[j] = T(accumulate_params ? double(dgamma[j]) + sums[c + j] : sums[c + j]);
  }
  // dx = gamma * invstd / M * (M * dz - dbeta - x_hat * dgamma).
  const double inv_m = 1.0 / double(m);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t j = 0; j < c; ++j) {
      const int64_t i = r * c + j;
      const double xhat = (double(x[i]) - mean[j]) * invstd[j];
      const double dz = dz_at(i, j, xhat);
      dx[i] = T(gamma[j] * invstd[j] * (dz - inv_m * sums[j] - xhat * inv_m * sums[c + j]));
    }
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
