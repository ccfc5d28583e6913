// Tests of kernels/optim.h: SGD (momentum, nesterov, weight decay) and Adam/AdamW over several
// steps with parameter groups whose hyper-parameters change between steps, against f64 loops of
// the PyTorch formulas; EMA, the global gradient norm, clipping and AMP unscale against loops;
// CUDA against CPU; and argument errors.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/optim.h"
#include "tests/harness.h"

using namespace yolo;

namespace {

constexpr test::Tol kSgd{1e-6, 1e-5};
constexpr test::Tol kAdam{1e-6, 1e-5};
constexpr test::Tol kEma{1e-7, 1e-6};
constexpr test::Tol kNorm{1e-6, 1e-6};  // f64 accumulation; only the f32 result rounds
constexpr test::Tol kClip{1e-7, 1e-6};
constexpr test::Tol kUnscale{1e-12, 1e-7};
constexpr test::Tol kOptimCuda{1e-6, 1e-5};
constexpr test::Tol kNormCuda{1e-5, 1e-5};  // f32 tree over 1e6 squares

constexpr int64_t kP = 1237;
// Three groups; a gap [400, 403) that no segment covers; the second segment starts unaligned.
const std::vector<OptimSegment> kSegments = {{0, 400, 0}, {403, 901, 2}, {901, kP, 1}};

struct GroupHyper {
  double lr, wd, momentum, beta2, eps;
};

// The hyper-parameters of group g at step s (0-based): lr and momentum change every step, as
// YOLOv5's warmup does; group 1 has no weight decay.
GroupHyper group_hyper(int g, int s, bool adam) {
  const double lr[] = {0.01, 0.05, 0.002};
  const double wd[] = {5e-4, 0.0, 0.02};
  GroupHyper h;
  h.lr = lr[g] * (1.0 + 0.25 * s);
  h.wd = wd[g];
  h.momentum = adam ? 0.9 - 0.02 * s : 0.8 + 0.03 * s;
  h.beta2 = 0.999 - 0.001 * g;
  h.eps = g == 1 ? 1e-6 : 1e-8;
  return h;
}

// hyper (3, kHyperStride) f32 for step s; the step field is s + 1.
Tensor make_hyper(int s, bool adam) {
  std::vector<float> v(3 * kHyperStride, 0.0f);
  for (int g = 0; g < 3; ++g) {
    const GroupHyper h = group_hyper(g, s, adam);
    float* row = v.data() + g * kHyperStride;
    row[kHyperLr] = float(h.lr);
    row[kHyperWeightDecay] = float(h.wd);
    row[kHyperMomentum] = float(h.momentum);
    row[kHyperBeta2] = float(h.beta2);
    row[kHyperEps] = float(h.eps);
    row[kHyperStep] = float(s + 1);
  }
  return Tensor::from_vector({3, kHyperStride}, v);
}

// The row of `hyper` as the kernel sees it (f32 values widened to f64).
std::vector<double> row_of(const Tensor& hyper, int g) {
  const std::vector<double> v = hyper.to_double_vector();
  return std::vector<double>(v.begin() + g * kHyperStride, v.begin() + (g + 1) * kHyperStride);
}

// torch.optim.SGD(momentum, dampening=0, nesterov, weight_decay) for one step, in f64.
void naive_sgd(std::vector<double>& p, const std::vector<double>& g, std::vector<double>& buf,
               const Tensor& hyper, bool nesterov) {
  for (const OptimSegment& seg : kSegments) {
    const std::vector<double> h = row_of(hyper, seg.group);
    const double lr = h[kHyperLr], wd = h[kHyperWeightDecay], m = h[kHyperMomentum];
    for (int64_t i = seg.begin; i < seg.end; ++i) {
      const double d = g[size_t(i)] + wd * p[size_t(i)];
      buf[size_t(i)] = m * buf[size_t(i)] + d;
      p[size_t(i)] -= lr * (nesterov ? d + m * buf[size_t(i)] : buf[size_t(i)]);
    }
  }
}

// torch.optim.Adam / AdamW for one step, in f64: bias corrections from the step field.
void naive_adam(std::vector<double>& p, const std::vector<double>& g, std::vector<double>& m,
                std::vector<double>& v, const Tensor& hyper, bool decoupled) {
  for (const OptimSegment& seg : kSegments) {
    const std::vector<double> h = row_of(hyper, seg.group);
    const double lr = h[kHyperLr], wd = h[kHyperWeightDecay], b1 = h[kHyperMomentum];
    const double b2 = h[kHyperBeta2], eps = h[kHyperEps], t = h[kHyperStep];
    const double bc1 = 1.0 - std::pow(b1, t), bc2 = 1.0 - std::pow(b2, t);
    for (int64_t i = seg.begin; i < seg.end; ++i) {
      const size_t k = size_t(i);
      double gi = g[k];
      if (decoupled)
        p[k] *= 1.0 - lr * wd;
      else
        gi += wd * p[k];
      m[k] = b1 * m[k] + (1.0 - b1) * gi;
      v[k] = b2 * v[k] + (1.0 - b2) * gi * gi;
      p[k] -= (lr / bc1) * m[k] / (std::sqrt(v[k]) / std::sqrt(bc2) + eps);
    }
  }
}

// Exact equality, for results that involve one correctly rounded f32 operation on both sides.
void require_equal(const Tensor& got, const std::vector<double>& ref, const std::string& what) {
  const std::vector<double> g = got.to_double_vector();
  REQUIRE(g.size() == ref.size());
  for (size_t i = 0; i < g.size(); ++i) {
    INFO(what << ": index " << i << " [YOLO_TEST_SEED=" << test::base_seed() << "]");
    REQUIRE(g[i] == ref[i]);
  }
}

Tensor as_tensor(const std::vector<double>& v) {
  return Tensor::from_vector({int64_t(v.size())}, v);
}
Tensor scalar(float v) {
  return Tensor::from_vector({1}, std::vector<float>{v});
}

// Runs `steps` SGD or Adam steps on ctx (inputs copied there) and returns params and state.
struct OptimRun {
  Tensor params, state1, state2;
};
OptimRun run_optim(Context& ctx, bool adam, bool flag, int steps, uint64_t salt) {
  OptimRun r;
  r.params = ctx.to_device(test::random({kP}, DType::f32, test::seed(salt)));
  r.state1 = ctx.zeros({kP}, DType::f32);
  r.state2 = ctx.zeros({kP}, DType::f32);
  for (int s = 0; s < steps; ++s) {
    Tensor grads = ctx.to_device(test::random({kP}, DType::f32, test::seed(salt + 1 + s)));
    Tensor hyper = ctx.to_device(make_hyper(s, adam));
    if (adam)
      adam_step(ctx, r.params, grads, r.state1, r.state2, kSegments, hyper, flag);
    else
      sgd_step(ctx, r.params, grads, r.state1, kSegments, hyper, flag);
  }
  return r;
}

}  // namespace

TEST_CASE("sgd_step matches the PyTorch formulas over several steps and groups", "[optim]") {
  Context ctx;
  for (bool nesterov : {false, true}) {
    const uint64_t salt = nesterov ? 1100 : 1000;
    Tensor params = test::random({kP}, DType::f32, test::seed(salt));
    Tensor buf = Tensor::zeros_cpu({kP});
    std::vector<double> p = params.to_double_vector(), b(size_t(kP), 0.0);
    const std::vector<double> p0 = p;
    for (int s = 0; s < 5; ++s) {
      Tensor grads = test::random({kP}, DType::f32, test::seed(salt + 1 + s));
      Tensor hyper = make_hyper(s, false);
      sgd_step(ctx, params, grads, buf, kSegments, hyper, nesterov);
      naive_sgd(p, grads.to_double_vector(), b, hyper, nesterov);
      const std::string what =
          std::string(nesterov ? "nesterov" : "sgd") + " step " + std::to_string(s);
      test::require_close(params, as_tensor(p), kSgd, what + " params");
      test::require_close(buf, as_tensor(b), kSgd, what + " momentum");
    }
    for (int64_t i = 400; i < 403; ++i) REQUIRE(params.data<float>()[i] == float(p0[size_t(i)]));
  }
}

TEST_CASE("adam_step matches torch Adam and AdamW over several steps and groups", "[optim]") {
  Context ctx;
  for (bool decoupled : {false, true}) {
    const uint64_t salt = decoupled ? 1300 : 1200;
    Tensor params = test::random({kP}, DType::f32, test::seed(salt));
    Tensor m = Tensor::zeros_cpu({kP}), v = Tensor::zeros_cpu({kP});
    std::vector<double> p = params.to_double_vector(), rm(size_t(kP), 0.0), rv(size_t(kP), 0.0);
    const std::vector<double> p0 = p;
    for (int s = 0; s < 5; ++s) {
      Tensor grads = test::random({kP}, DType::f32, test::seed(salt + 1 + s));
      Tensor hyper = make_hyper(s, true);
      adam_step(ctx, params, grads, m, v, kSegments, hyper, decoupled);
      naive_adam(p, grads.to_double_vector(), rm, rv, hyper, decoupled);
      const std::string what =
          std::string(decoupled ? "adamw" : "adam") + " step " + std::to_string(s);
      test::require_close(params, as_tensor(p), kAdam, what + " params");
      test::require_close(m, as_tensor(rm), kAdam, what + " exp_avg");
      test::require_close(v, as_tensor(rv), kAdam, what + " exp_avg_sq");
    }
    for (int64_t i = 400; i < 403; ++i) REQUIRE(params.data<float>()[i] == float(p0[size_t(i)]));
  }
}

TEST_CASE("ema_update matches a direct loop", "[optim]") {
  Context ctx;
  for (int64_t n : {int64_t(1), int64_t(7), int64_t(10007)}) {
    Tensor ema = test::random({n}, DType::f32, test::seed(1400 + n));
    std::vector<double> ref = ema.to_double_vector();
    const float decays[] = {0.9f, 0.9999f, 0.5f};
    for (int s = 0; s < 3; ++s) {
      Tensor src = test::random({n}, DType::f32, test::seed(1500 + n + s));
      const float d = decays[s];
      ema_update(ctx, ema, src, scalar(d));
      const std::vector<double> vs = src.to_double_vector();
      for (size_t i = 0; i < ref.size(); ++i)
        ref[i] = double(d) * ref[i] + (1.0 - double(d)) * vs[i];
      test::require_close(ema, as_tensor(ref), kEma, "ema n=" + std::to_string(n));
    }
  }
}

TEST_CASE("global_grad_norm matches an f64 loop", "[optim]") {
  Context ctx;
  for (int64_t n : {int64_t(1), int64_t(9), int64_t(4097), int64_t(1000003)}) {
    Tensor g = test::random({n}, DType::f32, test::seed(1600 + n));
    double s = 0.0;
    for (double x : g.to_double_vector()) s += x * x;
    Tensor out = Tensor::zeros_cpu({1});
    global_grad_norm(ctx, g, out);
    test::require_close(out, as_tensor({std::sqrt(s)}), kNorm, "norm n=" + std::to_string(n));
  }
}

TEST_CASE("clip_grad_norm scales above max_norm and leaves gradients below it", "[optim]") {
  Context ctx;
  Tensor g = test::random({3001}, DType::f32, test::seed(1700), -3.0, 3.0);
  Tensor norm = Tensor::zeros_cpu({1});
  global_grad_norm(ctx, g, norm);
  const double nv = norm.data<float>()[0];
  // max_norm above the norm: coefficient clamps to 1, gradients unchanged bit for bit.
  Tensor below = test::to_f32(g);
  clip_grad_norm(ctx, below, norm, 4.0 * nv);
  for (int64_t i = 0; i < g.numel(); ++i) REQUIRE(below.data<float>()[i] == g.data<float>()[i]);
  // max_norm under the norm: scaled by max_norm / (norm + 1e-6).
  for (double max_norm : {10.0, 0.25 * nv}) {
    Tensor clipped = test::to_f32(g);
    clip_grad_norm(ctx, clipped, norm, max_norm);
    const double coef = std::min(1.0, max_norm / (nv + 1e-6));
    std::vector<double> ref = g.to_double_vector();
    for (double& x : ref) x *= coef;
    test::require_close(clipped, as_tensor(ref), kClip,
                        "clip max_norm " + std::to_string(max_norm));
    Tensor after = Tensor::zeros_cpu({1});
    global_grad_norm(ctx, clipped, after);
    REQUIRE(std::fabs(after.data<float>()[0] - max_norm) < 1e-4 * max_norm);
  }
}

TEST_CASE("unscale_check scales and flags inf or NaN without clearing the flag", "[optim]") {
  Context ctx;
  Tensor g = test::random({2053}, DType::f32, test::seed(1800), -1e4, 1e4);
  const std::vector<double> v = g.to_double_vector();
  Tensor found = Tensor::zeros_cpu({1});
  // A power-of-two scale is exact; no flag.
  Tensor a = test::to_f32(g);
  unscale_check(ctx, a, scalar(1.0f / 65536.0f), found);
  std::vector<double> ref = v;
  for (double& x : ref) x /= 65536.0;
  require_equal(a, ref, "unscale 2^-16");
  REQUIRE(found.data<float>()[0] == 0.0f);
  Tensor b = test::to_f32(g);
  unscale_check(ctx, b, scalar(0.37f), found);
  ref = v;
  for (double& x : ref) x *= double(0.37f);
  test::require_close(b, as_tensor(ref), kUnscale, "unscale 0.37");
  REQUIRE(found.data<float>()[0] == 0.0f);
  // A planted inf, a planted NaN, or an overflow of the product sets the flag.
  const float planted[] = {std::numeric_limits<float>::infinity(),
                           -std::numeric_limits<float>::infinity(),
                           std::numeric_limits<float>::quiet_NaN(), 3e38f};
  for (float bad : planted) {
    Tensor c = test::to_f32(g);
    c.data<float>()[1031] = bad;
    found.data<float>()[0] = 0.0f;
    unscale_check(ctx, c, scalar(bad == 3e38f ? 4.0f : 0.5f), found);
    REQUIRE(found.data<float>()[0] == 1.0f);
  }
  // Clean gradients never clear a flag that is already set.
  Tensor d = test::to_f32(g);
  unscale_check(ctx, d, scalar(0.5f), found);
  REQUIRE(found.data<float>()[0] == 1.0f);
}

TEST_CASE("optimizer ops reject mismatched buffers and bad segment tables", "[optim]") {
  Context ctx;
  Tensor p = Tensor::zeros_cpu({kP}), g = Tensor::zeros_cpu({kP - 1}), b = Tensor::zeros_cpu({kP});
  Tensor hyper = make_hyper(0, false);
  REQUIRE_THROWS_WITH(sgd_step(ctx, p, g, b, kSegments, hyper, false),
                      Catch::Contains("(1237)") && Catch::Contains("(1236)"));
  REQUIRE_THROWS_WITH(adam_step(ctx, p, p, b, g, kSegments, hyper, true),
                      Catch::Contains("(1237)") && Catch::Contains("(1236)"));
  REQUIRE_THROWS_WITH(ema_update(ctx, p, g, scalar(0.9f)),
                      Catch::Contains("(1237)") && Catch::Contains("(1236)"));
  const std::vector<OptimSegment> past_end = {{0, kP + 1, 0}};
  REQUIRE_THROWS_WITH(sgd_step(ctx, p, p, b, past_end, hyper, false), Catch::Contains("(1237)"));
  const std::vector<OptimSegment> bad_group = {{0, 10, 3}};
  REQUIRE_THROWS_WITH(sgd_step(ctx, p, p, b, bad_group, hyper, false),
                      Catch::Contains("group 3") && Catch::Contains("(3, 8)"));
  const std::vector<OptimSegment> too_many(kMaxOptimSegments + 1, OptimSegment{0, 0, 0});
  REQUIRE_THROWS_WITH(sgd_step(ctx, p, p, b, too_many, hyper, false), Catch::Contains("at most"));
  REQUIRE_THROWS_WITH(sgd_step(ctx, p, p, b, kSegments, Tensor::zeros_cpu({3, 6}), false),
                      Catch::Contains("(3, 6)"));
  REQUIRE_THROWS_WITH(global_grad_norm(ctx, p, Tensor::zeros_cpu({2})), Catch::Contains("(2)"));
}

TEST_CASE("sgd_step cuda matches cpu", "[optim][cuda]") {
  auto cuda = test::cuda_or_skip();
  if (!cuda) return;
  Context cpu;
  for (bool nesterov : {false, true}) {
    const OptimRun got = run_optim(*cuda, false, nesterov, 4, 2000 + nesterov * 10);
    const OptimRun ref = run_optim(cpu, false, nesterov, 4, 2000 + nesterov * 10);
    test::require_close(cuda->to_host(got.params), ref.params, kOptimCuda, "sgd cuda params");
    test::require_close(cuda->to_host(got.state1), ref.state1, kOptimCuda, "sgd cuda momentum");
  }
  // Views one element in: every base pointer misaligned, so the scalar path runs.
  Tensor p = test::random({kP + 1}, DType::f32, test::seed(2100));
  Tensor g = test::random({kP + 1}, DType::f32, test::seed(2101));
  Tensor dp = cuda->to_device(p), dg = cuda->to_device(g), db = cuda->zeros({kP + 1}, DType::f32);
  Tensor b = Tensor::zeros_cpu({kP + 1});
  sgd_step(cpu, p.slice(1, kP + 1), g.slice(1, kP + 1), b.slice(1, kP + 1), kSegments,
           make_hyper(2, false), true);
  sgd_step(*cuda, dp.slice(1, kP + 1), dg.slice(1, kP + 1), db.slice(1, kP + 1), kSegments,
           cuda->to_device(make_hyper(2, false)), true);
  test::require_close(cuda->to_host(dp), p, kOptimCuda, "sgd cuda unaligned");
}

TEST_CASE("adam_step cuda matches cpu", "[optim][cuda]") {
  auto cuda = test::cuda_or_skip();
  if (!cuda) return;
  Context cpu;
  for (bool decoupled : {false, true}) {
    const OptimRun got = run_optim(*cuda, true, decoupled, 4, 2200 + decoupled * 10);
    const OptimRun ref = run_optim(cpu, true, decoupled, 4, 2200 + decoupled * 10);
    test::require_close(cuda->to_host(got.params), ref.params, kOptimCuda, "adam cuda params");
    test::require_close(cuda->to_host(got.state1), ref.state1, kOptimCuda, "adam cuda exp_avg");
    test::require_close(cuda->to_host(got.state2), ref.state2, kOptimCuda, "adam cuda exp_avg_sq");
  }
}

TEST_CASE("ema_update cuda matches cpu", "[optim][cuda]") {
  auto cuda = test::cuda_or_skip();
  if (!cuda) return;
  Context cpu;
  for (int64_t n : {int64_t(1), int64_t(7), int64_t(100003)}) {
    Tensor ema = test::random({n}, DType::f32, test::seed(2300 + n));
    Tensor src = test::random({n}, DType::f32, test::seed(2400 + n));
    Tensor dema = cuda->to_device(ema);
    ema_update(cpu, ema, src, scalar(0.9f));
    ema_update(*cuda, dema, cuda->to_device(src), cuda->to_device(scalar(0.9f)));
    test::require_close(cuda->to_host(dema), ema, kOptimCuda, "ema cuda n=" + std::to_string(n));
  }
}

TEST_CASE("global_grad_norm and clip_grad_norm cuda match cpu", "[optim][cuda]") {
  auto cuda = test::cuda_or_skip();
  if (!cuda) return;
  Context cpu;
  for (int64_t n : {int64_t(1), int64_t(9), int64_t(4099), int64_t(1000003)}) {
    Tensor g = test::random({n}, DType::f32, test::seed(2500 + n));
    Tensor dg = cuda->to_device(g);
    Tensor norm = Tensor::zeros_cpu({1}), dnorm = cuda->zeros({1}, DType::f32);
    global_grad_norm(cpu, g, norm);
    global_grad_norm(*cuda, dg, dnorm);
    test::require_close(cuda->to_host(dnorm), norm, kNormCuda, "norm cuda n=" + std::to_string(n));
    const double max_norm = 0.5 * norm.data<float>()[0];
    clip_grad_norm(cpu, g, norm, max_norm);
    clip_grad_norm(*cuda, dg, cuda->to_device(norm), max_norm);
    test::require_close(cuda->to_host(dg), g, kOptimCuda, "clip cuda n=" + std::to_string(n));
  }
}

TEST_CASE("unscale_check cuda matches cpu", "[optim][cuda]") {
  auto cuda = test::cuda_or_skip();
  if (!cuda) return;
  Context cpu;
  for (int64_t planted : {int64_t(-1), int64_t(0), int64_t(4097), int64_t(100002)}) {
    Tensor g = test::random({100003}, DType::f32, test::seed(2600 + planted), -1e4, 1e4);
    if (planted >= 0) g.data<float>()[planted] = std::numeric_limits<float>::quiet_NaN();
    Tensor dg = cuda->to_device(g);
    Tensor found = Tensor::zeros_cpu({1}), dfound = cuda->zeros({1}, DType::f32);
    unscale_check(cpu, g, scalar(0.37f), found);
    unscale_check(*cuda, dg, cuda->to_device(scalar(0.37f)), dfound);
    REQUIRE(cuda->to_host(dfound).data<float>()[0] == found.data<float>()[0]);
    REQUIRE(found.data<float>()[0] == (planted >= 0 ? 1.0f : 0.0f));
    if (planted < 0) require_equal(cuda->to_host(dg), g.to_double_vector(), "unscale cuda");
  }
}
