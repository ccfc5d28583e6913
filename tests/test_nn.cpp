// The nn layers (nn/layers.h, nn/basic.h) against the reference's definitions (models/common.py at
// ultralytics/yolov5@48a85314): each layer's forward against the same maths composed here from the
// kernels (kernels/*.h called directly), in train and eval mode; each layer's backward against
// central finite differences; module mechanics (train/eval, module counts, state_dict names, OIHW
// layout, strict loading) and the fused Conv. CPU only, small shapes. Run: yolo_tests "[nn]".
#include <algorithm>
#include <cmath>
#include <functional>
#include <set>

#include "kernels/activation.h"
#include "kernels/batchnorm.h"
#include "kernels/conv.h"
#include "kernels/elementwise.h"
#include "kernels/pool.h"
#include "kernels/resample.h"
#include "nn/layers.h"
#include "tests/harness.h"
#include "yolo/model.h"

using namespace yolo;

namespace {

// Layer forward vs the kernel composition: the same kernels on the same f32 data; the layers use the
// fused BN+SiLU kernel where the composition runs BN then silu_fwd, so only f32 rounding differs.
constexpr test::Tol kLayerForward{2e-5, 2e-5};
// Running statistics after one train-mode forward: the same batch statistics from inputs that
// differ by that rounding.
constexpr test::Tol kRunningStats{1e-6, 1e-5};
// Exact data movement (upsample, concat, pooling cascades, OIHW round trips).
constexpr test::Tol kExact{1e-30, 0.0};  // the harness needs a nonzero allowance
// Fused Conv (BN folded into f32 weights and a bias) against conv -> BN -> SiLU in eval mode: the
// folded weight carries one extra f32 rounding per element, outputs are O(1).
constexpr test::Tol kFusedConv{2e-5, 2e-5};
// Note [Finite differences in f32]. The parameter arena is f32 (ParamArena allocates f32 only and
// Conv2d runs in its weights' dtype), so the layers cannot run in f64; the check runs in f32 with
// a well-conditioned setup: batch 4, >= 8x8 positions (every BN channel sees >= 256 values), inputs
// U(-1, 1), conv weights U(-1, 1), loss L = sum(coef * out) accumulated in f64 over M <= ~2k outputs.
// Noise: each output carries f32 rounding of a few ulps (~1e-7 at |out| ~ 1), so L carries
// ~sqrt(M) * 1e-7 ~ 5e-6 and a central quotient with step h = 1e-2 ~ 5e-6 / 2e-2 ~ 3e-4 (measured:
// ~3e-3 at h = 1e-3, as predicted). Truncation: h^2/6 * L''' was measured at up to ~5% of small
// gradients at h = 1e-2 (BN couples every value of a channel), so the quotients at h and 2h are
// combined by Richardson extrapolation, (4 D(h) - D(2h)) / 3, which cancels the h^2 term and
// keeps ~1.3x the noise of D(h). atol 2e-3 leaves ~5x margin on that noise; rtol 2e-2 covers the
// O(h^4) remainder on the large weight gradients (sums over 256+ positions).
constexpr test::Tol kLayerGrad{2e-3, 2e-2};
constexpr double kFdStep = 1e-2;
// Finite differences per checked tensor: every element of small tensors, an evenly spread sample
// of larger ones (keeps the whole file's CPU run short).
constexpr int64_t kFdSamples = 32;

// --- a module on its own arenas --------------------------------------------------------------

struct Bench {
  Context& ctx;
  std::unique_ptr<nn::Module> m;
  ParamArena params, buffers;

  Bench(Context& c, std::unique_ptr<nn::Module> module, uint64_t salt) : ctx(c), m(std::move(module)) {
    m->declare(params, buffers, "");
    params.finalize(ctx);
    buffers.finalize(ctx);
    m->bind(params, buffers);
    m->init(ctx, test::seed(salt));
    // BN away from the identity, so a mix-up of gamma/beta/mean/var shows.
    uint64_t k = 0;
    m->visit([&](nn::Module& mod) {
      auto* bn = dynamic_cast<nn::BatchNorm2d*>(&mod);
      if (!bn) return;
      const Shape s = bn->weight().shape();
      ctx.copy(bn->weight(), test::random(s, DType::f32, test::seed(salt * 131 + ++k), 0.5, 1.5));
      ctx.copy(bn->bias(), test::random(s, DType::f32, test::seed(salt * 131 + ++k), -0.5, 0.5));
      ctx.copy(bn->running_mean(), test::random(s, DType::f32, test::seed(salt * 131 + ++k), -0.3, 0.3));
      ctx.copy(bn->running_var(), test::random(s, DType::f32, test::seed(salt * 131 + ++k), 0.5, 1.5));
    });
  }
  nn::Module& operator*() { return *m; }
  nn::Module* operator->() { return m.get(); }
  Tensor param(const std::string& name) const { return params.param(name); }

  // Module forward without recording (the layer's own code path).
  Tensor forward(const std::vector<Tensor>& xs) {
    Tape tape(ctx);
    NoGradGuard ng(tape);
    std::vector<Var> in;
    for (const Tensor& x : xs) in.push_back(Var::constant(x));
    return m->forward_many(tape, in).value();
  }
};

template <typename T, typename... Args>
std::unique_ptr<nn::Module> make(Args&&... args) {
  return std::make_unique<T>(std::forward<Args>(args)...);
}

Tensor clone(const Context& ctx, const Tensor& t) {
  Tensor out = ctx.empty(t.shape(), t.dtype());
  ctx.copy(out, t);
  return out;
}

// --- the reference's layers composed from the kernels ------------------------------------------

// Evaluates the reference definitions with the kernels, reading parameters from a Bench's arena by
// their state_dict names and running statistics from a snapshot of its buffer arena (updated in
// place in training mode, so it can be compared with the module's buffers afterwards).
struct Ref {
  Context& ctx;
  const Bench& b;
  bool training;
  Tensor stats;  // copy of b.buffers.flat_params()

  Ref(Context& c, const Bench& bench, bool train)
      : ctx(c), b(bench), training(train), stats(clone(c, bench.buffers.flat_params())) {}

  Tensor stat(const std::string& name) const {
    const ParamArena::Entry& e = b.buffers.entry(name);
    return stats.slice(e.offset, e.offset + e.numel).reshape(e.shape);
  }

  Tensor conv(const Tensor& x, const std::string& w_name, int s, int p, int g,
              const std::string& bias_name = "") const {
    Conv2dParams cp;
    cp.stride_h = cp.stride_w = s;
    cp.pad_h = cp.pad_w = p;
    cp.groups = g;
    const Tensor w = b.param(w_name);
    Tensor y = ctx.empty(conv2d_out_shape(x, w, cp), DType::f32);
    conv2d_fwd(ctx, x, w, bias_name.empty() ? Tensor() : b.param(bias_name), y, cp);
    return y;
  }
  // nn.BatchNorm2d under `prefix` ("cv1.bn."), no activation.
  Tensor bn(const Tensor& x, const std::string& prefix) const {
    Tensor y = ctx.empty(x.shape(), DType::f32);
    const Tensor gamma = b.param(prefix + "weight"), beta = b.param(prefix + "bias");
    const Tensor rm = stat(prefix + "running_mean"), rv = stat(prefix + "running_var");
    if (training) {
      const int64_t c = x.dim(-1);
      Tensor mean = ctx.empty({c}, DType::f32), invstd = ctx.empty({c}, DType::f32);
      batchnorm_fwd_train(ctx, x, gamma, beta, rm, rv, mean, invstd, y, nn::BatchNorm2d::kMomentum,
                          nn::BatchNorm2d::kEps, Activation::none);
    } else {
      batchnorm_fwd_eval(ctx, x, gamma, beta, rm, rv, y, nn::BatchNorm2d::kEps, Activation::none);
    }
    return y;
  }
  Tensor silu(const Tensor& x) const {
    Tensor y = ctx.empty(x.shape(), DType::f32);
    silu_fwd(ctx, x, y);
    return y;
  }
  Tensor add(const Tensor& a, const Tensor& c) const {
    Tensor y = ctx.empty(a.shape(), DType::f32);
    yolo::add(ctx, a, c, y);
    return y;
  }
  Tensor cat(const std::vector<Tensor>& xs) const {
    Shape s = xs[0].shape();
    s[3] = 0;
    for (const Tensor& x : xs) s[3] += x.dim(3);
    Tensor y = ctx.empty(s, DType::f32);
    concat_channels_fwd(ctx, xs, y);
    return y;
  }
  Tensor pool(const Tensor& x, int k) const {
    Tensor y = ctx.empty(x.shape(), DType::f32);
    maxpool_fwd(ctx, x, y, k);
    return y;
  }

  // Conv: act(bn(conv2d(x))) with padding autopad(k) = k // 2 unless given.
  Tensor conv_block(const std::string& prefix, const Tensor& x, int k, int s = 1, int p = -1,
                    int g = 1, bool act = true) const {
    Tensor y = bn(conv(x, prefix + "conv.weight", s, p >= 0 ? p : k / 2, g), prefix + "bn.");
    return act ? silu(y) : y;
  }
  // Bottleneck(c1, c2, shortcut, g, e): x + cv2(cv1(x)) when shortcut and c1 == c2.
  Tensor bottleneck(const std::string& prefix, const Tensor& x, bool add_x, int g = 1) const {
    Tensor y = conv_block(prefix + "cv2.", conv_block(prefix + "cv1.", x, 1), 3, 1, -1, g);
    return add_x ? add(x, y) : y;
  }
  // BottleneckCSP: cv4(act(bn(cat(cv3(m(cv1(x))), cv2(x))))), cv2/cv3 bias-free 1x1 Conv2d.
  Tensor bottleneck_csp(const Tensor& x, int n, bool shortcut) const {
    Tensor a = conv_block("cv1.", x, 1);
    for (int i = 0; i < n; ++i) a = bottleneck("m." + std::to_string(i) + ".", a, shortcut);
    const Tensor y1 = conv(a, "cv3.weight", 1, 0, 1);
    const Tensor y2 = conv(x, "cv2.weight", 1, 0, 1);
    return conv_block("cv4.", silu(bn(cat({y1, y2}), "bn.")), 1);
  }
  // C3: cv3(cat(m(cv1(x)), cv2(x))).
  Tensor c3(const Tensor& x, int n, bool shortcut) const {
    Tensor a = conv_block("cv1.", x, 1);
    for (int i = 0; i < n; ++i) a = bottleneck("m." + std::to_string(i) + ".", a, shortcut);
    return conv_block("cv3.", cat({a, conv_block("cv2.", x, 1)}), 1);
  }
  // SPP: cv2(cat([x] + [pool_k(x) for k])) with x = cv1(x).
  Tensor spp(const Tensor& x, const std::vector<int>& ks) const {
    const Tensor y = conv_block("cv1.", x, 1);
    std::vector<Tensor> parts = {y};
    for (int k : ks) parts.push_back(pool(y, k));
    return conv_block("cv2.", cat(parts), 1);
  }
  // SPPF: cv2(cat(x, y1, y2, m(y2))) with y1 = m(x), y2 = m(y1).
  Tensor sppf(const Tensor& x, int k) const {
    const Tensor y = conv_block("cv1.", x, 1);
    const Tensor p1 = pool(y, k), p2 = pool(p1, k), p3 = pool(p2, k);
    return conv_block("cv2.", cat({y, p1, p2, p3}), 1);
  }
};

// Focus's slicing written out from the reference: cat((x[..., ::2, ::2], x[..., 1::2, ::2],
// x[..., ::2, 1::2], x[..., 1::2, 1::2]), 1) on NCHW, i.e. block b takes (row, col) offsets
// (0, 0), (1, 0), (0, 1), (1, 1). x: (N, H, W, C) -> (N, H/2, W/2, 4C).
Tensor focus_slices(const Tensor& x) {
  const int64_t N = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
  const int dh[4] = {0, 1, 0, 1}, dw[4] = {0, 0, 1, 1};
  Tensor y = Tensor::empty_cpu({N, H / 2, W / 2, 4 * C});
  const float* px = x.data<float>();
  float* py = y.data<float>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < H / 2; ++i)
      for (int64_t j = 0; j < W / 2; ++j)
        for (int b = 0; b < 4; ++b)
          for (int64_t c = 0; c < C; ++c)
            py[((n * (H / 2) + i) * (W / 2) + j) * 4 * C + b * C + c] =
                px[((n * H + 2 * i + dh[b]) * W + 2 * j + dw[b]) * C + c];
  return y;
}

// One layer case: how to build it, its inputs' shapes, and the reference composition.
struct LayerCase {
  std::string name;
  std::function<std::unique_ptr<nn::Module>()> build;
  std::vector<Shape> inputs;
  std::function<Tensor(const Ref&, const std::vector<Tensor>&)> ref;
  // Inputs for the gradient check when they differ from `inputs`. SPP and SPPF: max pooling is
  // piecewise linear and, at f32-sized steps, a step of a cv1 weight moves every pooled value of
  // its channel past dozens of window maxima (measured: quotients off by up to 2x at h = 1e-3), so
  // their wiring is checked at 1x1, where each pool is the identity and BN still sees 256 values
  // per channel; the pools' own routing is checked in f64 by tests/test_pool.cpp.
  std::vector<Shape> grad_inputs = {};
};

std::vector<LayerCase> layer_cases() {
  std::vector<LayerCase> v;
  v.push_back({"Conv k=1", [] { return make<nn::Conv>(5, 6, 1); }, {{4, 8, 8, 5}},
               [](const Ref& r, const std::vector<Tensor>& x) { return r.conv_block("", x[0], 1); }});
  v.push_back({"Conv k=3 autopad", [] { return make<nn::Conv>(5, 6, 3); }, {{4, 8, 9, 5}},
               [](const Ref& r, const std::vector<Tensor>& x) { return r.conv_block("", x[0], 3); }});
  v.push_back({"Conv k=6 s=2 p=2", [] { return make<nn::Conv>(3, 4, 6, 2, 2); }, {{4, 16, 16, 3}},
               [](const Ref& r, const std::vector<Tensor>& x) { return r.conv_block("", x[0], 6, 2, 2); }});
  v.push_back({"Conv k=3 s=2 groups=2 no act", [] { return make<nn::Conv>(4, 6, 3, 2, -1, 2, false); },
               {{4, 16, 15, 4}},
               [](const Ref& r, const std::vector<Tensor>& x) { return r.conv_block("", x[0], 3, 2, -1, 2, false); }});
  v.push_back({"DWConv groups=gcd(6, 9)", [] { return make<nn::DWConv>(6, 9, 3); }, {{4, 8, 8, 6}},
               [](const Ref& r, const std::vector<Tensor>& x) { return r.conv_block("", x[0], 3, 1, -1, 3); }});
  v.push_back({"Focus", [] { return make<nn::Focus>(3, 5, 3); }, {{4, 16, 16, 3}},
               [](const Ref& r, const std::vector<Tensor>& x) { return r.conv_block("conv.", focus_slices(x[0]), 3); }});
  v.push_back({"Bottleneck shortcut", [] { return make<nn::Bottleneck>(6, 6, true); }, {{4, 8, 8, 6}},
               [](const Ref& r, const std::vector<Tensor>& x) { return r.bottleneck("", x[0], true); }});
  v.push_back({"Bottleneck shortcut=False", [] { return make<nn::Bottleneck>(6, 6, false); }, {{4, 8, 8, 6}},
               [](const Ref& r, const std::vector<Tensor>& x) { return r.bottleneck("", x[0], false); }});
  v.push_back({"Bottleneck c1 != c2 (no shortcut)", [] { return make<nn::Bottleneck>(4, 6, true); },
               {{4, 8, 8, 4}},
               [](const Ref& r, const std::vector<Tensor>& x) { return r.bottleneck("", x[0], false); }});
  v.push_back({"BottleneckCSP n=2", [] { return make<nn::BottleneckCSP>(5, 8, 2); }, {{4, 8, 8, 5}},
               [](const Ref& r, const std::vector<Tensor>& x) { return r.bottleneck_csp(x[0], 2, true); }});
  v.push_back({"C3 n=2", [] { return make<nn::C3>(5, 8, 2); }, {{4, 8, 8, 5}},
               [](const Ref& r, const std::vector<Tensor>& x) { return r.c3(x[0], 2, true); }});
  v.push_back({"C3 n=1 shortcut=False", [] { return make<nn::C3>(6, 4, 1, false); }, {{4, 8, 8, 6}},
               [](const Ref& r, const std::vector<Tensor>& x) { return r.c3(x[0], 1, false); }});
  v.push_back({"SPP k=(5, 9, 13)", [] { return make<nn::SPP>(6, 5); }, {{4, 8, 8, 6}},
               [](const Ref& r, const std::vector<Tensor>& x) { return r.spp(x[0], {5, 9, 13}); }, {{256, 1, 1, 6}}});
  v.push_back({"SPPF k=5", [] { return make<nn::SPPF>(6, 5, 5); }, {{4, 8, 8, 6}},
               [](const Ref& r, const std::vector<Tensor>& x) { return r.sppf(x[0], 5); }, {{256, 1, 1, 6}}});
  v.push_back({"Upsample", [] { return make<nn::Upsample>(); }, {{4, 5, 6, 3}},
               [](const Ref& r, const std::vector<Tensor>& x) {
                 Tensor y = r.ctx.empty({4, 10, 12, 3}, DType::f32);
                 upsample_nearest2x_fwd(r.ctx, x[0], y);
                 return y;
               }});
  v.push_back({"Concat", [] { return make<nn::Concat>(); }, {{4, 8, 8, 3}, {4, 8, 8, 1}, {4, 8, 8, 5}},
               [](const Ref& r, const std::vector<Tensor>& x) { return r.cat(x); }});
  return v;
}

std::vector<Tensor> random_inputs(const std::vector<Shape>& shapes, uint64_t salt) {
  std::vector<Tensor> xs;
  for (size_t i = 0; i < shapes.size(); ++i) {
    xs.push_back(test::random(shapes[i], DType::f32, test::seed(salt + 7919 * i)));
  }
  return xs;
}

std::vector<int64_t> counters_of(nn::Module& m) {
  std::vector<int64_t> out;
  m.visit([&](nn::Module& mod) {
    for (const auto& c : mod.counters()) out.push_back(c.value);
  });
  return out;
}

// Indices to difference in a tensor of n elements: all, or kFdSamples spread evenly.
std::vector<int64_t> fd_indices(int64_t n) {
  std::vector<int64_t> idx;
  if (n <= kFdSamples) {
    for (int64_t i = 0; i < n; ++i) idx.push_back(i);
  } else {
    for (int64_t i = 0; i < kFdSamples; ++i) idx.push_back(i * n / kFdSamples + (i * 7) % (n / kFdSamples));
  }
  return idx;
}

// Gradients of L = sum(coef * layer(xs)) (training mode) with respect to every input and every
// parameter, from the tape, against Richardson-extrapolated central differences of L
// (Note [Finite differences in f32]).
void check_layer_grads(Context& ctx, const LayerCase& lc, uint64_t salt) {
  Bench b(ctx, lc.build(), salt);
  // Conv weights U(-1, 1) instead of U(+-1/sqrt(fan_in)): BN makes the output invariant to a
  // row's scale, so this changes no output's size, but the step h becomes small against each
  // weight row's norm and the truncation error of the quotient shrinks with it.
  for (const ParamArena::Entry& e : b.params.entries()) {
    if (e.shape.size() == 4) ctx.copy(b.param(e.name), test::random(e.shape, DType::f32, test::seed(salt + 3 + e.offset)));
  }
  b->train();
  std::vector<Tensor> xs = random_inputs(lc.grad_inputs.empty() ? lc.inputs : lc.grad_inputs, salt + 1);
  std::vector<Var> leaves;
  for (const Tensor& x : xs) leaves.push_back(Var::leaf(x));
  ctx.zero_(b.params.flat_grads());
  Tape tape(ctx);
  const Var out = b->forward_many(tape, leaves);
  const Tensor coef = test::random(out.shape(), DType::f32, test::seed(salt + 2));
  tape.backward(out, coef);

  auto loss = [&] { return test::dot(b.forward(xs), coef); };
  auto check = [&](const std::string& what, float* value, const float* analytic, int64_t n) {
    std::vector<double> got, fd;
    for (int64_t i : fd_indices(n)) {
      const float keep = value[i];
      // Central quotient with step s, using the steps the f32 values actually took.
      auto central = [&](double s) {
        const float up = float(double(keep) + s), down = float(double(keep) - s);
        value[i] = up;
        const double lp = loss();
        value[i] = down;
        const double lm = loss();
        value[i] = keep;
        return (lp - lm) / (double(up) - double(down));
      };
      const double d1 = central(kFdStep), d2 = central(2 * kFdStep);
      const double richardson = (4.0 * d1 - d2) / 3.0;
      got.push_back(analytic[i]);
      fd.push_back(richardson);
    }
    const int64_t k = int64_t(got.size());
    test::require_close(Tensor::from_vector({k}, got), Tensor::from_vector({k}, fd), kLayerGrad,
                        lc.name + ": d" + what + " vs finite differences");
  };
  for (size_t i = 0; i < xs.size(); ++i) {
    check("input" + std::to_string(i), xs[i].data<float>(), leaves[i].grad().data<float>(),
          xs[i].numel());
  }
  for (const ParamArena::Entry& e : b.params.entries()) {
    check(e.name, b.params.flat_params().data<float>() + e.offset,
          b.params.flat_grads().data<float>() + e.offset, e.numel);
  }
}

// --- state_dict helpers -------------------------------------------------------------------------

std::vector<std::string> conv_block_keys(const std::string& prefix) {
  return {prefix + "conv.weight",     prefix + "bn.weight",          prefix + "bn.bias",
          prefix + "bn.running_mean", prefix + "bn.running_var",     prefix + "bn.num_batches_tracked"};
}

std::set<std::string> keys_of(const std::vector<std::vector<std::string>>& groups) {
  std::set<std::string> out;
  for (const auto& g : groups) out.insert(g.begin(), g.end());
  return out;
}

std::set<std::string> names_of(const std::map<std::string, Tensor>& sd) {
  std::set<std::string> out;
  for (const auto& kv : sd) out.insert(kv.first);
  return out;
}

}  // namespace

TEST_CASE("nn layers forward match the kernel composition of the reference in train and eval mode",
          "[nn]") {
  Context ctx(Device::cpu());
  uint64_t salt = 100;
  for (const LayerCase& lc : layer_cases()) {
    for (bool train : {true, false}) {
      const std::string what = lc.name + (train ? " (train)" : " (eval)");
      INFO(what);
      salt += 10;
      Bench b(ctx, lc.build(), salt);
      b->train(train);
      const std::vector<Tensor> xs = random_inputs(lc.inputs, salt + 1);
      const Ref ref(ctx, b, train);
      const std::vector<int64_t> counters_before = counters_of(*b);
      const Tensor stats_before = clone(ctx, b.buffers.flat_params());
      const Tensor got = b.forward(xs);
      const Tensor want = lc.ref(ref, xs);
      test::require_close(got, want, kLayerForward, what + ": output");
      // Training mode moves the running statistics like the composition did; eval leaves them.
      test::require_close(b.buffers.flat_params(), ref.stats, kRunningStats, what + ": running stats");
      if (!train) test::require_close(b.buffers.flat_params(), stats_before, kExact, what + ": eval stats");
      const std::vector<int64_t> counters_after = counters_of(*b);
      REQUIRE(counters_after.size() == counters_before.size());
      for (size_t i = 0; i < counters_after.size(); ++i) {
        CHECK(counters_after[i] == counters_before[i] + (train ? 1 : 0));
      }
    }
  }
}

TEST_CASE("nn Upsample and Concat forward match direct loops", "[nn]") {
  Context ctx(Device::cpu());
  Bench up(ctx, make<nn::Upsample>(), 1);
  const Tensor x = test::random({2, 3, 5, 4}, DType::f32, test::seed(2));
  const Tensor y = up.forward({x});
  REQUIRE(y.shape() == Shape{2, 6, 10, 4});
  Tensor want = Tensor::empty_cpu({2, 6, 10, 4});
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t h = 0; h < 6; ++h)
      for (int64_t w = 0; w < 10; ++w)
        for (int64_t c = 0; c < 4; ++c)
          want.data<float>()[((n * 6 + h) * 10 + w) * 4 + c] = x.data<float>()[((n * 3 + h / 2) * 5 + w / 2) * 4 + c];
  test::require_close(y, want, kExact, "Upsample");

  Bench cat(ctx, make<nn::Concat>(), 3);
  const Tensor a = test::random({2, 3, 4, 2}, DType::f32, test::seed(4));
  const Tensor c = test::random({2, 3, 4, 3}, DType::f32, test::seed(5));
  const Tensor z = cat.forward({a, c});
  REQUIRE(z.shape() == Shape{2, 3, 4, 5});
  Tensor cat_want = Tensor::empty_cpu({2, 3, 4, 5});
  for (int64_t p = 0; p < 2 * 3 * 4; ++p)
    for (int64_t ch = 0; ch < 5; ++ch)
      cat_want.data<float>()[p * 5 + ch] = ch < 2 ? a.data<float>()[p * 2 + ch] : c.data<float>()[p * 3 + ch - 2];
  test::require_close(z, cat_want, kExact, "Concat");
}

TEST_CASE("nn SPPF equals SPP(5, 9, 13) with the same weights", "[nn]") {
  Context ctx(Device::cpu());
  for (bool train : {true, false}) {
    INFO((train ? "train" : "eval"));
    Bench sppf(ctx, make<nn::SPPF>(6, 5, 5), 11);
    Bench spp(ctx, make<nn::SPP>(6, 5), 12);
    nn::load_state_dict(*spp, ctx, nn::state_dict(*sppf, ctx), true);
    sppf->train(train);
    spp->train(train);
    const Tensor x = test::random({4, 9, 8, 6}, DType::f32, test::seed(13));
    test::require_close(sppf.forward({x}), spp.forward({x}), kExact, "SPPF vs SPP");
  }
}

TEST_CASE("nn layers gradients match finite differences", "[nn]") {
  Context ctx(Device::cpu());
  uint64_t salt = 500;
  for (const LayerCase& lc : layer_cases()) {
    salt += 10;
    check_layer_grads(ctx, lc, salt);
  }
}

TEST_CASE("nn train and eval reach every child module", "[nn]") {
  Context ctx(Device::cpu());
  for (auto build : std::vector<std::function<std::unique_ptr<nn::Module>()>>{
           [] { return make<nn::C3>(4, 6, 2); }, [] { return make<nn::BottleneckCSP>(4, 6, 2); },
           [] { return make<nn::SPP>(4, 4); }, [] { return make<nn::Focus>(3, 4, 3); }}) {
    Bench b(ctx, build(), 21);
    INFO(b->type_name());
    int64_t visited = 0;
    auto all_in_mode = [&](bool mode) {
      visited = 0;
      bool ok = true;
      b->visit([&](nn::Module& m) {
        ++visited;
        ok = ok && m.training() == mode;
      });
      return ok;
    };
    CHECK(all_in_mode(true));
    b->eval();
    CHECK(all_in_mode(false));
    CHECK(visited == b->count_modules());
    b->train();
    CHECK(all_in_mode(true));
    b->train(false);
    CHECK(all_in_mode(false));
  }
}

TEST_CASE("nn module counts equal len(list(module.modules())) of the reference", "[nn]") {
  // From the reference classes: Conv = Conv + Conv2d + BatchNorm2d + SiLU (or Identity);
  // Bottleneck = 1 + 2 Conv; C3(n) = 1 + 3 Conv + Sequential + n Bottleneck; BottleneckCSP(n) =
  // 1 + 2 Conv + 2 Conv2d + BatchNorm2d + SiLU + Sequential + n Bottleneck; SPP = 1 + 2 Conv +
  // ModuleList + 3 MaxPool2d; SPPF = 1 + 2 Conv + MaxPool2d.
  CHECK(nn::Conv(4, 6, 3).count_modules() == 4);
  CHECK(nn::Conv(4, 6, 1, 1, -1, 1, false).count_modules() == 4);
  CHECK(nn::DWConv(4, 8, 3).count_modules() == 4);
  CHECK(nn::Focus(3, 4, 3).count_modules() == 5);
  CHECK(nn::Bottleneck(4, 4).count_modules() == 9);
  CHECK(nn::BottleneckCSP(4, 6, 1).count_modules() == 23);
  CHECK(nn::BottleneckCSP(4, 6, 2).count_modules() == 32);
  CHECK(nn::C3(4, 6, 1).count_modules() == 23);
  CHECK(nn::C3(4, 6, 3).count_modules() == 41);
  CHECK(nn::SPP(4, 4).count_modules() == 13);
  CHECK(nn::SPPF(4, 4).count_modules() == 10);
  CHECK(nn::Upsample().count_modules() == 1);
  CHECK(nn::Concat().count_modules() == 1);
  nn::Conv fused(4, 6, 3);
  fused.fuse();
  CHECK(fused.count_modules() == 3);  // Conv, Conv2d (with bias), SiLU
}

TEST_CASE("nn state_dict names follow the reference for each layer type", "[nn]") {
  Context ctx(Device::cpu());
  auto names = [&](std::unique_ptr<nn::Module> m) {
    Bench b(ctx, std::move(m), 31);
    return names_of(nn::state_dict(*b, ctx));
  };
  CHECK(names(make<nn::Conv>(4, 6, 3)) == keys_of({conv_block_keys("")}));
  CHECK(names(make<nn::DWConv>(4, 6, 3)) == keys_of({conv_block_keys("")}));
  CHECK(names(make<nn::Focus>(3, 4, 3)) == keys_of({conv_block_keys("conv.")}));
  CHECK(names(make<nn::Bottleneck>(4, 4)) == keys_of({conv_block_keys("cv1."), conv_block_keys("cv2.")}));
  CHECK(names(make<nn::C3>(4, 6, 2)) ==
        keys_of({conv_block_keys("cv1."), conv_block_keys("cv2."), conv_block_keys("cv3."),
                 conv_block_keys("m.0.cv1."), conv_block_keys("m.0.cv2."), conv_block_keys("m.1.cv1."),
                 conv_block_keys("m.1.cv2.")}));
  CHECK(names(make<nn::BottleneckCSP>(4, 6, 1)) ==
        keys_of({conv_block_keys("cv1."), {"cv2.weight", "cv3.weight"}, conv_block_keys("cv4."),
                 {"bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"},
                 conv_block_keys("m.0.cv1."), conv_block_keys("m.0.cv2.")}));
  CHECK(names(make<nn::SPP>(4, 4)) == keys_of({conv_block_keys("cv1."), conv_block_keys("cv2.")}));
  CHECK(names(make<nn::SPPF>(4, 4)) == keys_of({conv_block_keys("cv1."), conv_block_keys("cv2.")}));
  CHECK(names(make<nn::Upsample>()).empty());
  CHECK(names(make<nn::Concat>()).empty());

  Bench c3(ctx, make<nn::C3>(4, 6, 1), 32);
  const auto sd = nn::state_dict(*c3, ctx);
  CHECK(sd.at("cv1.conv.weight").shape() == Shape{3, 4, 1, 1});
  CHECK(sd.at("m.0.cv2.conv.weight").shape() == Shape{3, 3, 3, 3});
  CHECK(sd.at("cv3.conv.weight").shape() == Shape{6, 6, 1, 1});
  CHECK(sd.at("cv3.bn.running_var").shape() == Shape{6});
  CHECK(sd.at("cv3.bn.num_batches_tracked").shape() == Shape{});
  CHECK(sd.at("cv3.bn.num_batches_tracked").dtype() == DType::i64);
  Bench csp(ctx, make<nn::BottleneckCSP>(4, 6, 1), 33);
  const auto sd_csp = nn::state_dict(*csp, ctx);
  CHECK(sd_csp.at("cv2.weight").shape() == Shape{3, 4, 1, 1});
  CHECK(sd_csp.at("bn.weight").shape() == Shape{6});
  CHECK(sd_csp.at("cv4.conv.weight").shape() == Shape{6, 6, 1, 1});
}

TEST_CASE("nn state_dict speaks OIHW and round-trips exactly through load_state_dict", "[nn]") {
  Context ctx(Device::cpu());
  // A grouped Conv2d: OHWI (6, 3, 3, 2) inside, OIHW (6, 2, 3, 3) outside.
  Bench a(ctx, make<nn::Conv>(4, 6, 3, 1, -1, 2), 41);
  const Tensor w = a.param("conv.weight");
  REQUIRE(w.shape() == Shape{6, 3, 3, 2});
  auto pattern = [](int64_t o, int64_t i, int64_t kh, int64_t kw) { return float(o * 1000 + i * 100 + kh * 10 + kw); };
  for (int64_t o = 0; o < 6; ++o)
    for (int64_t kh = 0; kh < 3; ++kh)
      for (int64_t kw = 0; kw < 3; ++kw)
        for (int64_t i = 0; i < 2; ++i) w.data<float>()[((o * 3 + kh) * 3 + kw) * 2 + i] = pattern(o, i, kh, kw);
  const auto sd = nn::state_dict(*a, ctx);
  const Tensor& oihw = sd.at("conv.weight");
  REQUIRE(oihw.shape() == Shape{6, 2, 3, 3});
  for (int64_t o = 0; o < 6; ++o)
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t kh = 0; kh < 3; ++kh)
        for (int64_t kw = 0; kw < 3; ++kw) {
          INFO("o " << o << " i " << i << " kh " << kh << " kw " << kw);
          CHECK(oihw.data<float>()[((o * 2 + i) * 3 + kh) * 3 + kw] == pattern(o, i, kh, kw));
        }
  Bench b(ctx, make<nn::Conv>(4, 6, 3, 1, -1, 2), 42);
  nn::load_state_dict(*b, ctx, sd, true);
  test::require_close(b.param("conv.weight"), w, kExact, "OIHW -> OHWI load");

  // Every entry of a whole layer survives state_dict -> load_state_dict -> state_dict bit for bit.
  Bench c(ctx, make<nn::BottleneckCSP>(5, 8, 2), 43);
  c->train();
  c.forward({test::random({2, 4, 4, 5}, DType::f32, test::seed(44))});  // counters move to 2
  const auto sd_c = nn::state_dict(*c, ctx);
  Bench d(ctx, make<nn::BottleneckCSP>(5, 8, 2), 45);
  const nn::StateDictReport r = nn::load_state_dict(*d, ctx, sd_c, true);
  CHECK(r.ok());
  const auto sd_d = nn::state_dict(*d, ctx);
  REQUIRE(names_of(sd_d) == names_of(sd_c));
  for (const auto& [name, t] : sd_c) {
    INFO(name);
    REQUIRE(sd_d.at(name).shape() == t.shape());
    REQUIRE(sd_d.at(name).dtype() == t.dtype());
    if (t.dtype() == DType::i64) {
      CHECK(sd_d.at(name).data<int64_t>()[0] == t.data<int64_t>()[0]);
      CHECK(t.data<int64_t>()[0] == 2);
    } else {
      test::require_close(sd_d.at(name), t, kExact, name);
    }
  }
}

TEST_CASE("nn load_state_dict strict lists every problem in one error; non-strict skips them", "[nn]") {
  Context ctx(Device::cpu());
  Bench src(ctx, make<nn::C3>(4, 6, 1), 51);
  auto sd = nn::state_dict(*src, ctx);
  sd.erase("cv1.conv.weight");
  sd.erase("m.0.cv2.bn.running_var");
  sd["cv9.weight"] = Tensor::zeros_cpu({2});
  sd["cv3.bn.bias"] = Tensor::zeros_cpu({7});
  sd["m.0.cv1.conv.weight"] = Tensor::zeros_cpu({3, 3, 3, 3});

  Bench dst(ctx, make<nn::C3>(4, 6, 1), 52);
  const auto before = nn::state_dict(*dst, ctx);
  try {
    nn::load_state_dict(*dst, ctx, sd, true, "a hint");
    FAIL("strict load of a mismatching state_dict did not throw");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK_THAT(msg, Catch::Contains("2 shape mismatches ("));
    CHECK_THAT(msg, Catch::Contains("cv3.bn.bias: checkpoint (7) vs model (6)"));
    CHECK_THAT(msg, Catch::Contains("m.0.cv1.conv.weight: checkpoint (3, 3, 3, 3) vs model (3, 3, 1, 1)"));
    CHECK_THAT(msg, Catch::Contains("2 missing names (cv1.conv.weight, m.0.cv2.bn.running_var)"));
    CHECK_THAT(msg, Catch::Contains("1 unexpected name (cv9.weight)"));
    CHECK_THAT(msg, Catch::Contains("a hint"));
  }
  // A failed strict load changes nothing.
  const auto after_strict = nn::state_dict(*dst, ctx);
  for (const auto& [name, t] : before) {
    INFO(name);
    if (t.dtype() != DType::i64) test::require_close(after_strict.at(name), t, kExact, name);
  }

  const nn::StateDictReport r = nn::load_state_dict(*dst, ctx, sd, false);
  CHECK(r.missing == std::vector<std::string>{"cv1.conv.weight", "m.0.cv2.bn.running_var"});
  CHECK(r.unexpected == std::vector<std::string>{"cv9.weight"});
  REQUIRE(r.mismatched.size() == 2);
  std::set<std::string> mismatched;
  for (const auto& m : r.mismatched) mismatched.insert(m.name);
  CHECK(mismatched == std::set<std::string>{"cv3.bn.bias", "m.0.cv1.conv.weight"});
  const auto after = nn::state_dict(*dst, ctx);
  const std::set<std::string> skipped = {"cv1.conv.weight", "m.0.cv2.bn.running_var", "cv3.bn.bias",
                                         "m.0.cv1.conv.weight"};
  for (const auto& [name, t] : after) {
    INFO(name);
    if (t.dtype() == DType::i64) continue;
    test::require_close(t, skipped.count(name) ? before.at(name) : sd.at(name), kExact, name);
  }
}

TEST_CASE("nn fused Conv equals act(BN(conv(x))) in eval mode and has a bias instead of BN", "[nn]") {
  Context ctx(Device::cpu());
  for (bool act : {true, false}) {
    INFO("act " << act);
    Bench a(ctx, make<nn::Conv>(5, 6, 3, 2, -1, 1, act), 61);
    a->eval();
    auto fused_module = std::make_unique<nn::Conv>(5, 6, 3, 2, -1, 1, act);
    fused_module->fuse();
    Bench f(ctx, std::move(fused_module), 62);
    f->eval();
    CHECK(names_of(nn::state_dict(*f, ctx)) == std::set<std::string>{"conv.weight", "conv.bias"});
    std::vector<std::string> children;
    for (const auto& c : f->children()) children.push_back(c.first);
    CHECK(children == std::vector<std::string>{"conv", "act"});

    // fuse_conv_and_bn: w' = w * gamma / sqrt(var + eps), b' = beta - gamma * mean / sqrt(var + eps).
    const auto sd = nn::state_dict(*a, ctx);
    const Tensor& w = sd.at("conv.weight");
    const int64_t O = w.dim(0), per = w.numel() / O;
    Tensor wf = Tensor::empty_cpu(w.shape()), bf = Tensor::empty_cpu({O});
    for (int64_t o = 0; o < O; ++o) {
      const double gamma = sd.at("bn.weight").data<float>()[o], beta = sd.at("bn.bias").data<float>()[o];
      const double mean = sd.at("bn.running_mean").data<float>()[o];
      const double sd_o = std::sqrt(double(sd.at("bn.running_var").data<float>()[o]) + nn::BatchNorm2d::kEps);
      for (int64_t j = 0; j < per; ++j) wf.data<float>()[o * per + j] = float(w.data<float>()[o * per + j] * gamma / sd_o);
      bf.data<float>()[o] = float(beta - gamma * mean / sd_o);
    }
    nn::load_state_dict(*f, ctx, {{"conv.weight", wf}, {"conv.bias", bf}}, true);

    const Tensor x = test::random({3, 9, 8, 5}, DType::f32, test::seed(63));
    const Ref ref(ctx, a, false);
    test::require_close(f.forward({x}), ref.conv_block("", x, 3, 2, -1, 1, act), kFusedConv,
                        "fused Conv vs conv -> BN -> act");
    test::require_close(f.forward({x}), a.forward({x}), kFusedConv, "fused Conv vs Conv (eval)");
  }
}

TEST_CASE("nn Model::fused folds BN into a one-Conv model like fuse_conv_and_bn", "[nn]") {
  Context ctx(Device::cpu());
  const ModelConfig cfg = parse_model_config(
      "nc: 3\ndepth_multiple: 1.0\nwidth_multiple: 1.0\nanchors: 1\n"
      "backbone:\n  [[-1, 1, Conv, [8, 3, 2]]]\nhead:\n  []\n",
      "one-conv.yaml");
  Model m(cfg, ctx, {0, 0, 71, false});
  // Perturb BN so the fold is not the identity.
  auto sd = m.state_dict();
  sd["model.0.bn.weight"] = test::random({8}, DType::f32, test::seed(72), 0.5, 1.5);
  sd["model.0.bn.bias"] = test::random({8}, DType::f32, test::seed(73), -0.5, 0.5);
  sd["model.0.bn.running_mean"] = test::random({8}, DType::f32, test::seed(74), -0.3, 0.3);
  sd["model.0.bn.running_var"] = test::random({8}, DType::f32, test::seed(75), 0.5, 1.5);
  m.load_state_dict(sd, true);
  m.eval();
  const auto f = m.fused();
  const auto fsd = f->state_dict();
  CHECK(fsd.count("model.0.conv.bias") == 1);
  for (const auto& kv : fsd) CHECK(kv.first.find(".bn.") == std::string::npos);
  CHECK(f->num_modules() == m.num_modules() - 1);

  const Tensor x = test::random({2, 8, 8, 3}, DType::f32, test::seed(76));
  Tape tape(ctx);
  NoGradGuard ng(tape);
  const Tensor y = m.forward(tape, Var::constant(x)).levels.at(0).value();
  const Tensor yf = f->forward(tape, Var::constant(x)).levels.at(0).value();
  test::require_close(yf, y, kFusedConv, "Model::fused one Conv");
}
