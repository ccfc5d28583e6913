// CPU optimizer kernels over the flat arena buffers: the reference for kernels/cuda/optim.cu.
// Each op is one pass; per-group hyper-parameters are read from the rows of `hyper`, in the
// operation order of torch.optim.SGD / Adam / AdamW (single-tensor implementation), in f32.
#include "kernels/optim.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace yolo {
namespace {

constexpr int64_t kChunk = 4096;  // elements per partial sum of the gradient norm

const float* hyper_row(const Tensor& hyper, int group) {
  return hyper.data<float>() + int64_t(group) * kHyperStride;
}

}  // namespace

void sgd_step_cpu(Context&, const Tensor& params, const Tensor& grads, const Tensor& momentum_buf,
                  const std::vector<OptimSegment>& segments, const Tensor& hyper, bool nesterov) {
  float* p = params.data<float>();
  const float* g = grads.data<float>();
  float* buf = momentum_buf.data<float>();
  for (const OptimSegment& seg : segments) {
    const float* row = hyper_row(hyper, seg.group);
    const float lr = row[kHyperLr], wd = row[kHyperWeightDecay], m = row[kHyperMomentum];
#pragma omp parallel for schedule(static)
    for (int64_t i = seg.begin; i < seg.end; ++i) {
      const float d = g[i] + wd * p[i];
      const float b = buf[i] * m + d;
      buf[i] = b;
      p[i] += -lr * (nesterov ? d + m * b : b);
    }
  }
}

void adam_step_cpu(Context&, const Tensor& params, const Tensor& grads, const Tensor& exp_avg,
                   const Tensor& exp_avg_sq, const std::vector<OptimSegment>& segments,
                   const Tensor& hyper, bool decoupled) {
  float* p = params.data<float>();
  const float* g = grads.data<float>();
  float* m = exp_avg.data<float>();
  float* v = exp_avg_sq.data<float>();
  for (const OptimSegment& seg : segments) {
    const float* row = hyper_row(hyper, seg.group);
    const double lr = row[kHyperLr], wd = row[kHyperWeightDecay];
    const double beta1 = row[kHyperMomentum], beta2 = row[kHyperBeta2];
    const double step = row[kHyperStep];
    const float eps = row[kHyperEps];
    const float step_size = float(lr / (1.0 - std::pow(beta1, step)));
    const float bc2_sqrt = float(std::sqrt(1.0 - std::pow(beta2, step)));
    const float decay_factor = float(1.0 - lr * wd);  // AdamW
    const float wd_f = float(wd), one_minus_b1 = float(1.0 - beta1);
    const float b2 = float(beta2), one_minus_b2 = float(1.0 - beta2);
#pragma omp parallel for schedule(static)
    for (int64_t i = seg.begin; i < seg.end; ++i) {
      float gi = g[i];
      if (decoupled)
        p[i] *= decay_factor;
      else
        gi += wd_f * p[i];
      m[i] += one_minus_b1 * (gi - m[i]);
      v[i] = v[i] * b2 + one_minus_b2 * gi * gi;
      const float denom = std::sqrt(v[i]) / bc2_sqrt + eps;
      p[i] += -step_size * m[i] / denom;
    }
  }
}

void ema_update_cpu(Context&, const Tensor& ema, const Tensor& src, const Tensor& decay) {
  float* e = ema.data<float>();
  const float* s = src.data<float>();
  const float d = decay.data<float>()[0];
  const float one_minus_d = 1.0f - d;
  const int64_t n = ema.numel();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) e[i] = e[i] * d + one_minus_d * s[i];
}

void global_grad_norm_cpu(Context&, const Tensor& grads, const Tensor& out) {
  const float* g = grads.data<float>();
  const int64_t n = grads.numel();
  // f64 partial sums over fixed chunks, added in order: the same result for any thread count.
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(size_t(chunks), 0.0);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t end = std::min(n, (c + 1) * kChunk);
    double s = 0.0;
    for (int64_t i = c * kChunk; i < end; ++i) s += double(g[i]) * double(g[i]);
    partial[size_t(c)] = s;
  }
  double total = 0.0;
  for (double s : partial) total += s;
  out.data<float>()[0] = float(std::sqrt(total));
}

void clip_grad_norm_cpu(Context&, const Tensor& grads, const Tensor& norm, double max_norm) {
  float* g = grads.data<float>();
  const float coef = std::min(float(max_norm) / (norm.data<float>()[0] + 1e-6f), 1.0f);
  const int64_t n = grads.numel();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) g[i] *= coef;
}

void unscale_check_cpu(Context&, const Tensor& grads, const Tensor& inv_scale,
                       const Tensor& found_inf) {
  float* g = grads.data<float>();
  const float inv = inv_scale.data<float>()[0];
  const int64_t n = grads.numel();
  int found = 0;
#pragma omp parallel for schedule(static) reduction(| : found)
  for (int64_t i = 0; i < n; ++i) {
    g[i] *= inv;
    found |= std::isfinite(g[i]) ? 0 : 1;
  }
  if (found) found_inf.data<float>()[0] = 1.0f;
}

}  // namespace yolo
