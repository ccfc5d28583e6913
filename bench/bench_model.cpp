// Whole-model rows (yolo_bench --model CFG): the model from an ultralytics yaml at --batch / --img,
// timed as an eval forward without tape recording (unfused, and fused via Model::fused()) and as a
// training forward + backward. The training loss is a stand-in, not the YOLO loss: the sum over
// Detect levels of sum(level * fixed uniform(-1, 1) coefficients), as in the parity fixtures.
// tools/bench_reference_model.py times the reference model under the same row names.
#include "bench/bench_model.h"

#include <cmath>
#include <memory>
#include <sstream>

#include "autograd/ops.h"
#include "core/allocator.h"
#include "yolo/model.h"

namespace yolo::bench {
namespace {

// BN folded into f32 weights changes the summation; the decoded boxes are in pixels.
constexpr Tol kFusedVsUnfused{2e-3, 1e-3};
// dL/d(Detect bias) = the coefficients summed over batch and positions; only summation order differs.
constexpr Tol kDetectBiasGrad{1e-3, 1e-4};

constexpr uint64_t kModelSeed = 0, kInputSeed = 7000, kCoefSeed = 7100;

std::string stem(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  std::string s = slash == std::string::npos ? path : path.substr(slash + 1);
  const size_t dot = s.rfind(".yaml");
  if (dot != std::string::npos && dot + 5 == s.size()) s.resize(dot);
  return s;
}

// The stand-in loss: sum over levels of sum(level * coef[level]).
Var coef_loss(Tape& tape, const ModelOutput& out, const std::vector<Tensor>& coef) {
  Var loss;
  for (size_t l = 0; l < out.levels.size(); ++l) {
    Var term = ag::sum(tape, ag::mul(tape, out.levels[l], Var::constant(coef[l])));
    loss = l == 0 ? term : ag::add(tape, loss, term);
  }
  return loss;
}

Tensor eval_forward(Model& m, const Tensor& x) {
  Tape tape(m.ctx());
  NoGradGuard no_grad(tape);
  return m.forward(tape, Var::constant(x)).decoded;
}

// Finite flat gradient, and each Detect bias gradient equal to its coefficients summed over
// (n, y, x): the level is the Detect conv's output, so d(loss)/d(bias[c]) = sum coef[..., c].
std::string check_train_grads(Context& ctx, Model& m, const std::vector<Tensor>& coef) {
  const std::vector<float> flat = host_f32(ctx, m.params().flat_grads()).to_float_vector();
  for (size_t i = 0; i < flat.size(); ++i) {
    if (!std::isfinite(flat[i])) {
      std::ostringstream s;
      s << "flat gradient element " << i << " is " << flat[i];
      return s.str();
    }
  }
  const int detect_layer = static_cast<int>(m.layers().size()) - 1;
  for (size_t l = 0; l < coef.size(); ++l) {
    const Tensor c = host_f32(ctx, coef[l]);
    const int64_t channels = c.shape().back();
    const std::vector<float> cv = c.to_float_vector();
    std::vector<double> expect(size_t(channels), 0.0);
    for (size_t i = 0; i < cv.size(); ++i) expect[i % size_t(channels)] += cv[i];
    std::ostringstream name;
    name << "model." << detect_layer << ".m." << l << ".bias";
    const std::string bad = compare(ctx, m.params().grad(name.str()),
                                    Tensor::from_vector({channels}, expect), kDetectBiasGrad,
                                    "d(loss)/d(" + name.str() + ")");
    if (!bad.empty()) return bad;
  }
  return "";
}

}  // namespace

std::vector<RowSpec> model_rows(const Options& opt) {
  YOLO_CHECK(opt.img % 32 == 0 && opt.img >= 64,
             "--img " << opt.img << ": use a multiple of 32, at least 64");
  YOLO_CHECK(opt.batch >= 1, "--batch " << opt.batch << ": use at least 1");
  const ModelConfig cfg = load_model_config(opt.model_cfg);
  const std::string name = stem(opt.model_cfg);
  Context cpu(Device::cpu(), 1);
  const Model m(cfg, cpu, {0, 0, kModelSeed, false});
  // Model::gflops is thop's count (2 x MACs) for one image at img.
  const double fwd_flops = m.gflops(opt.img) * 1e9 * double(opt.batch);
  std::ostringstream shape;
  shape << opt.batch << "x" << opt.img << "x" << opt.img << "x" << cfg.ch;
  std::vector<RowSpec> rows;
  auto row = [&](const std::string& op, const std::string& what, double flops) {
    RowSpec r;
    r.name = op + "/" + name + "." + what;
    r.op = op;
    r.model = name;
    r.n = opt.batch;
    r.h = r.w = opt.img;
    r.c = cfg.ch;
    r.flops = flops;
    r.shape = shape.str();
    rows.push_back(r);
  };
  row("model_fwd", "eval", fwd_flops);
  row("model_fwd", "eval_fused", fwd_flops);
  row("model_fwd_bwd", "train", 3.0 * fwd_flops);  // backward taken as twice the forward
  return rows;
}

Result run_model_row(Context& ctx, const RowSpec& spec, const Options& opt, const Peaks& peaks) {
  Result res;
  res.spec = spec;
  res.device = ctx.device().is_cuda() ? "cuda" : "cpu";
  try {
    const ModelConfig cfg = load_model_config(opt.model_cfg);
    Model model(cfg, ctx, {0, 0, kModelSeed, false});
    const Tensor x = uniform(ctx, {spec.n, spec.h, spec.w, spec.c}, DType::f32, kInputSeed, 0.f, 1.f);
    std::function<void(int)> run;
    std::string bad;
    std::unique_ptr<Model> fused;
    std::vector<Tensor> coef;
    if (spec.op == "model_fwd") {
      model.eval();
      fused = model.fused();
      const Tensor a = eval_forward(model, x), b = eval_forward(*fused, x);
      bad = compare(ctx, b, a, kFusedVsUnfused, "fused vs unfused decoded boxes");
      Model* timed = spec.name.find("eval_fused") != std::string::npos ? fused.get() : &model;
      run = [timed, &x](int) { eval_forward(*timed, x); };
    } else if (spec.op == "model_fwd_bwd") {
      model.train();
      {
        Tape tape(ctx);
        NoGradGuard no_grad(tape);
        const ModelOutput probe = model.forward(tape, Var::constant(x));
        for (size_t l = 0; l < probe.levels.size(); ++l) {
          coef.push_back(uniform(ctx, probe.levels[l].shape(), DType::f32, kCoefSeed + l, -1.f, 1.f));
        }
      }
      auto step = [&ctx, &model, &x, &coef]() {
        Tape tape(ctx);
        const ModelOutput out = model.forward(tape, Var::constant(x));
        const Var loss = coef_loss(tape, out, coef);
        ctx.zero_(model.params().flat_grads());
        tape.backward(loss);
      };
      step();
      bad = check_train_grads(ctx, model, coef);
      run = [step](int) { step(); };
    } else {
      res.status = "FAIL: no model benchmark for op " + spec.op;
      return res;
    }
    if (!bad.empty()) {
      res.status = "FAIL: " + bad;
      return res;
    }
    res.validated = true;
    // Device memory: everything live while the timed calls run (model, input, gradients and each
    // call's activations), as torch.cuda.max_memory_allocated counts it in the reference script.
    auto* caching = ctx.device().is_cuda() ? dynamic_cast<CachingAllocator*>(ctx.allocator().get())
                                           : nullptr;
    if (caching) caching->reset_peak_stats();
    const Timing t = time_fn(ctx, run, opt.warmup, opt.repeats);
    res.median_us = t.median_us;
    res.min_us = t.min_us;
    if (caching) res.peak_mib = double(caching->stats().peak_allocated_bytes) / double(1 << 20);
    if (spec.flops > 0) {
      res.tflops = spec.flops / (t.median_us * 1e6);
      res.pct_peak = peaks.gemm_tflops_f32 > 0 ? 100.0 * res.tflops / peaks.gemm_tflops_f32 : 0;
    }
    res.status = "ok";
  } catch (const Error& e) {
    res.status = std::string("FAIL: ") + e.what();
  }
  return res;
}

}  // namespace yolo::bench
