// Optimizer rows: SGD (nesterov, YOLOv5's settings) over a flat buffer of yolov5s's 7,235,389
// parameters in 3 groups, as our one-launch multi-segment sgd_step and as one sgd_step per
// parameter tensor (the for-loop optimizer). Both are validated against a naive loop first.
#include <memory>

#include "bench/harness.h"
#include "kernels/optim.h"

namespace yolo::bench {
namespace {

constexpr Tol kSgd{1e-6, 1e-5};
constexpr float kLr = 0.01f, kMomentum = 0.937f;
constexpr float kWeightDecay[3] = {5e-4f, 0.f, 0.f};  // conv weights, BN weights, biases
constexpr bool kNesterov = true;

// torch.optim.SGD step on host f32 buffers, element by element.
void sgd_naive(std::vector<float>& p, const std::vector<float>& g, std::vector<float>& buf,
               const std::vector<OptimSegment>& segs) {
  for (const OptimSegment& s : segs) {
    for (int64_t i = s.begin; i < s.end; ++i) {
      const float gi = g[i] + kWeightDecay[s.group] * p[i];
      buf[i] = kMomentum * buf[i] + gi;
      p[i] -= kLr * (kNesterov ? gi + kMomentum * buf[i] : buf[i]);
    }
  }
}

}  // namespace

bool make_optim_runner(Context& ctx, const RowSpec& s, Runner& out) {
  const bool per_tensor = s.op == "sgd_step_per_tensor";
  if (!per_tensor && s.op != "sgd_step") return false;
  const int64_t total = s.n;
  // Tensors are ordered by group, so each group is one contiguous segment.
  auto segments = std::make_shared<std::vector<OptimSegment>>();
  auto tensors = std::make_shared<std::vector<OptimSegment>>();
  int64_t at = 0;
  for (size_t i = 0; i < s.sizes.size(); ++i) {
    tensors->push_back({at, at + s.sizes[i], s.groups[i]});
    if (segments->empty() || segments->back().group != s.groups[i]) {
      segments->push_back({at, at + s.sizes[i], s.groups[i]});
    } else {
      segments->back().end = at + s.sizes[i];
    }
    at += s.sizes[i];
  }
  YOLO_CHECK(at == total, "sgd row: tensor sizes sum to " << at << ", expected " << total);

  std::vector<float> hyper_host(3 * kHyperStride, 0.f);
  for (int g = 0; g < 3; ++g) {
    hyper_host[g * kHyperStride + kHyperLr] = kLr;
    hyper_host[g * kHyperStride + kHyperWeightDecay] = kWeightDecay[g];
    hyper_host[g * kHyperStride + kHyperMomentum] = kMomentum;
  }
  Tensor hyper = ctx.to_device(Tensor::from_vector({3, kHyperStride}, hyper_host));

  struct Set {
    Tensor p, g, buf;
  };
  auto sets = std::make_shared<std::vector<Set>>();
  out.sets = rotation_sets(ctx, 3.0 * double(total) * 4.0);
  for (int i = 0; i < out.sets; ++i) {
    sets->push_back({uniform(ctx, {total}, DType::f32, 2000 + i, -1.f, 1.f),
                     uniform(ctx, {total}, DType::f32, 3000 + i, -1.f, 1.f),
                     uniform(ctx, {total}, DType::f32, 4000 + i, -0.1f, 0.1f)});
  }
  auto step = [&ctx, segments, tensors, hyper, per_tensor](const Set& st) {
    if (!per_tensor) {
      sgd_step(ctx, st.p, st.g, st.buf, *segments, hyper, kNesterov);
      return;
    }
    for (const OptimSegment& t : *tensors) {
      sgd_step(ctx, st.p.slice(t.begin, t.end), st.g.slice(t.begin, t.end),
               st.buf.slice(t.begin, t.end), {{0, t.end - t.begin, t.group}}, hyper, kNesterov);
    }
  };
  out.run = [sets, step](int i) { step((*sets)[size_t(i) % sets->size()]); };
  out.validate = [&ctx, sets, segments, step]() -> std::string {
    const Set& st = (*sets)[0];
    std::vector<float> p = host_f32(ctx, st.p).to_float_vector();
    std::vector<float> b = host_f32(ctx, st.buf).to_float_vector();
    const std::vector<float> g = host_f32(ctx, st.g).to_float_vector();
    sgd_naive(p, g, b, *segments);
    step(st);
    const int64_t n = static_cast<int64_t>(p.size());
    std::string bad = compare(ctx, st.p, Tensor::from_vector({n}, p), kSgd, "sgd params");
    if (bad.empty()) bad = compare(ctx, st.buf, Tensor::from_vector({n}, b), kSgd, "sgd momentum");
    return bad;
  };
  return true;
}

}  // namespace yolo::bench
