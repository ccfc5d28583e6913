// Tests of kernels/batchnorm.h: training forward (y, save_mean, save_invstd, running stats) and
// eval forward against direct f64 loops, backward against central finite differences in f64 (act
// none and SiLU), accumulate_params, CUDA against CPU (f32, f16, bf16; one and several row blocks;
// vector and scalar paths), and argument errors.
#include <cmath>
#include <string>
#include <vector>

#include "kernels/batchnorm.h"
#include "tests/harness.h"

using namespace yolo;

namespace {

constexpr double kEps = 1e-3;       // YOLOv5 BatchNorm2d eps
constexpr double kMomentum = 0.03;  // YOLOv5 BatchNorm2d momentum

constexpr test::Tol kBatchnormF64{1e-12, 1e-10};
constexpr test::Tol kBatchnormF32{1e-6, 1e-5};  // f32 rounding of outputs and running stats
// Central differences with h = 1e-6 on a loss summing ~10^3 terms: rounding noise ~1e-8.
constexpr test::Tol kBatchnormGrad{1e-7, 1e-6};
constexpr test::Tol kBatchnormGradF32{1e-5, 1e-4};   // CPU f32 backward vs the f64 one
constexpr test::Tol kBatchnormCudaF32{2e-5, 2e-5};   // f32 Welford statistics vs f64
constexpr test::Tol kBatchnormCudaSum{2e-4, 2e-4};   // per-channel f32 sums over up to ~10^4 rows
constexpr test::Tol kBatchnormCudaF16{1e-4, 1e-3};   // + one f16 rounding of the output (2^-11)
constexpr test::Tol kBatchnormCudaBf16{1e-4, 5e-3};  // + one bf16 rounding of the output (2^-8)

const Shape kShapes[] = {{2, 5, 7, 3}, {3, 4, 4, 16}, {1, 1, 2, 8}, {4, 13, 11, 24}};

const char* act_name(Activation a) {
  return a == Activation::silu ? "silu" : "none";
}

// Per-channel inputs: gamma, beta, running_mean, running_var.
struct Params {
  Tensor gamma, beta, running_mean, running_var;
};

Params random_params(int64_t c, DType d, uint64_t salt) {
  return {test::random({c}, d, test::seed(salt), 0.5, 1.5),
          test::random({c}, d, test::seed(salt + 1), -0.5, 0.5),
          test::random({c}, d, test::seed(salt + 2), -0.3, 0.3),
          test::random({c}, d, test::seed(salt + 3), 0.5, 1.5)};
}

double act_ref(double z, Activation a) {
  return a == Activation::silu ? z / (1.0 + std::exp(-z)) : z;
}

// Direct f64 reference of the training forward.
struct TrainRef {
  Tensor y, mean, invstd, running_mean, running_var;
};

TrainRef ref_train(const Tensor& xt, const Params& p, Activation act) {
  const int64_t c = xt.dim(-1), m = xt.numel() / c;
  const std::vector<double> x = xt.to_double_vector(), g = p.gamma.to_double_vector(),
                            b = p.beta.to_double_vector(), rm = p.running_mean.to_double_vector(),
                            rv = p.running_var.to_double_vector();
  std::vector<double> y(x.size()), mean(c, 0.0), invstd(c), new_rm(c), new_rv(c);
  for (int64_t j = 0; j < c; ++j) {
    for (int64_t r = 0; r < m; ++r) mean[j] += x[r * c + j];
    mean[j] /= double(m);
    double ss = 0.0;
    for (int64_t r = 0; r < m; ++r) ss += (x[r * c + j] - mean[j]) * (x[r * c + j] - mean[j]);
    invstd[j] = 1.0 / std::sqrt(ss / double(m) + kEps);
    new_rm[j] = (1.0 - kMomentum) * rm[j] + kMomentum * mean[j];
    new_rv[j] = (1.0 - kMomentum) * rv[j] + kMomentum * ss / double(m - 1);
    for (int64_t r = 0; r < m; ++r)
      y[r * c + j] = act_ref(g[j] * (x[r * c + j] - mean[j]) * invstd[j] + b[j], act);
  }
  return {Tensor::from_vector(xt.shape(), y), Tensor::from_vector({c}, mean),
          Tensor::from_vector({c}, invstd), Tensor::from_vector({c}, new_rm),
          Tensor::from_vector({c}, new_rv)};
}

Tensor ref_eval(const Tensor& xt, const Params& p, Activation act) {
  const int64_t c = xt.dim(-1);
  const std::vector<double> x = xt.to_double_vector(), g = p.gamma.to_double_vector(),
                            b = p.beta.to_double_vector(), rm = p.running_mean.to_double_vector(),
                            rv = p.running_var.to_double_vector();
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const size_t j = i % size_t(c);
    y[i] = act_ref(g[j] * (x[i] - rm[j]) / std::sqrt(rv[j] + kEps) + b[j], act);
  }
  return Tensor::from_vector(xt.shape(), y);
}

// Outputs of one training forward + backward on ctx; running stats start from copies of p's.
struct Run {
  Tensor y, save_mean, save_invstd, running_mean, running_var, dx, dgamma, dbeta;
};

Run run_train(Context& ctx, const Tensor& x, const Params& p, const Tensor& dy, Activation act,
              DType param_dtype) {
  const int64_t c = x.dim(-1);
  Run r;
  r.y = ctx.empty(x.shape(), x.dtype());
  r.save_mean = ctx.empty({c}, param_dtype);
  r.save_invstd = ctx.empty({c}, param_dtype);
  r.running_mean = ctx.to_device(p.running_mean);
  r.running_var = ctx.to_device(p.running_var);
  const Tensor gamma = ctx.to_device(p.gamma), beta = ctx.to_device(p.beta);
  batchnorm_fwd_train(ctx, x, gamma, beta, r.running_mean, r.running_var, r.save_mean,
                      r.save_invstd, r.y, kMomentum, kEps, act);
  r.dx = ctx.empty(x.shape(), x.dtype());
  r.dgamma = ctx.empty({c}, param_dtype);
  r.dbeta = ctx.empty({c}, param_dtype);
  batchnorm_bwd(ctx, x, dy, gamma, beta, r.save_mean, r.save_invstd, r.dx, r.dgamma, r.dbeta, act,
                false);
  return r;
}

}  // namespace

TEST_CASE("batchnorm training forward matches a direct loop", "[batchnorm]") {
  Context ctx;
  uint64_t salt = 100;
  for (Activation act : {Activation::none, Activation::silu}) {
    for (const Shape& shape : kShapes) {
      for (DType d : {DType::f64, DType::f32}) {
        const int64_t c = shape.back();
        // Offset inputs (mean ~1) exercise the variance's cancellation.
        const Tensor x = test::random(shape, d, test::seed(salt++), -1.0, 3.0);
        const Params p = random_params(c, d, test::seed(salt++));
        const Tensor dy = ctx.zeros(shape, d);
        const Run r = run_train(ctx, x, p, dy, act, d);
        const TrainRef ref = ref_train(x, p, act);
        const test::Tol tol = d == DType::f64 ? kBatchnormF64 : kBatchnormF32;
        const std::string what = std::string("batchnorm train ") + act_name(act) + " " +
                                 dtype_name(d) + " " + shape_str(shape);
        test::require_close(r.y, ref.y, tol, what + " y");
        test::require_close(r.save_mean, ref.mean, tol, what + " save_mean");
        test::require_close(r.save_invstd, ref.invstd, tol, what + " save_invstd");
        test::require_close(r.running_mean, ref.running_mean, tol, what + " running_mean");
        test::require_close(r.running_var, ref.running_var, tol, what + " running_var");
      }
    }
  }
}

TEST_CASE("batchnorm eval forward matches a direct loop", "[batchnorm]") {
  Context ctx;
  uint64_t salt = 200;
  for (Activation act : {Activation::none, Activation::silu}) {
    for (const Shape& shape : {Shape{2, 5, 7, 3}, Shape{1, 1, 1, 8}, Shape{4, 13, 11, 24}}) {
      for (DType d : {DType::f64, DType::f32}) {
        const Tensor x = test::random(shape, d, test::seed(salt++), -2.0, 2.0);
        const Params p = random_params(shape.back(), d, test::seed(salt++));
        const Tensor y = ctx.empty(shape, d);
        batchnorm_fwd_eval(ctx, x, p.gamma, p.beta, p.running_mean, p.running_var, y, kEps, act);
        const Tensor ref = ref_eval(x, p, act);
        const test::Tol tol = d == DType::f64 ? kBatchnormF64 : kBatchnormF32;
        const std::string what = std::string("batchnorm eval ") + act_name(act) + " " +
                                 dtype_name(d) + " " + shape_str(shape);
        test::require_close(y, ref, tol, what);
        batchnorm_fwd_eval(ctx, x, p.gamma, p.beta, p.running_mean, p.running_var, x, kEps, act);
        test::require_close(x, ref, tol, what + " in place");
      }
    }
  }
}

TEST_CASE("batchnorm gradients match finite differences", "[batchnorm]") {
  Context ctx;
  uint64_t salt = 300;
  for (Activation act : {Activation::none, Activation::silu}) {
    for (const Shape& shape : {Shape{2, 5, 7, 3}, Shape{3, 4, 4, 16}, Shape{1, 1, 2, 8}}) {
      const int64_t c = shape.back();
      const Tensor x = test::random(shape, DType::f64, test::seed(salt++), -1.0, 2.0);
      const Params p = random_params(c, DType::f64, test::seed(salt++));
      const Tensor r = test::random(shape, DType::f64, test::seed(salt++));
      // loss = dot(y, r); running statistics do not affect y, so scratch copies absorb updates.
      const Tensor y = ctx.empty(shape, DType::f64);
      const Tensor rm = ctx.empty({c}, DType::f64), rv = ctx.empty({c}, DType::f64);
      const Tensor sm = ctx.empty({c}, DType::f64), si = ctx.empty({c}, DType::f64);
      auto loss = [&]() {
        batchnorm_fwd_train(ctx, x, p.gamma, p.beta, rm, rv, sm, si, y, kMomentum, kEps, act);
        return test::dot(y, r);
      };
      const Run run = run_train(ctx, x, p, r, act, DType::f64);
      const std::string what =
          std::string("batchnorm grad ") + act_name(act) + " " + shape_str(shape);
      test::require_close(run.dx, test::numeric_grad(x, loss), kBatchnormGrad, what + " dx");
      test::require_close(run.dgamma, test::numeric_grad(p.gamma, loss), kBatchnormGrad,
                          what + " dgamma");
      test::require_close(run.dbeta, test::numeric_grad(p.beta, loss), kBatchnormGrad,
                          what + " dbeta");

      // The f32 kernels agree with the f64 ones on the same (f32-representable) values.
      const Tensor x32 = test::to_f32(x), r32 = test::to_f32(r);
      const Params p32{test::to_f32(p.gamma), test::to_f32(p.beta), test::to_f32(p.running_mean),
                       test::to_f32(p.running_var)};
      const Params p64{test::to_f64(p32.gamma), test::to_f64(p32.beta),
                       test::to_f64(p32.running_mean), test::to_f64(p32.running_var)};
      const Run f32 = run_train(ctx, x32, p32, r32, act, DType::f32);
      const Run f64 = run_train(ctx, test::to_f64(x32), p64, test::to_f64(r32), act, DType::f64);
      test::require_close(f32.dx, f64.dx, kBatchnormGradF32, what + " f32 dx");
      test::require_close(f32.dgamma, f64.dgamma, kBatchnormGradF32, what + " f32 dgamma");
      test::require_close(f32.dbeta, f64.dbeta, kBatchnormGradF32, what + " f32 dbeta");
    }
  }
}

TEST_CASE("batchnorm backward with accumulate_params adds into dgamma and dbeta", "[batchnorm]") {
  Context ctx;
  const Shape shape{3, 4, 4, 16};
  const int64_t c = shape.back();
  for (Activation act : {Activation::none, Activation::silu}) {
    const Tensor x = test::random(shape, DType::f64, test::seed(400));
    const Tensor dy = test::random(shape, DType::f64, test::seed(401));
    const Params p = random_params(c, DType::f64, test::seed(402));
    const Run run = run_train(ctx, x, p, dy, act, DType::f64);
    const Tensor dgamma = test::random({c}, DType::f64, test::seed(403));
    const Tensor dbeta = test::random({c}, DType::f64, test::seed(404));
    std::vector<double> want_g = dgamma.to_double_vector(), want_b = dbeta.to_double_vector();
    for (int64_t j = 0; j < c; ++j) {
      want_g[j] += run.dgamma.data<double>()[j];
      want_b[j] += run.dbeta.data<double>()[j];
    }
    const Tensor dx = ctx.empty(shape, DType::f64);
    batchnorm_bwd(ctx, x, dy, p.gamma, p.beta, run.save_mean, run.save_invstd, dx, dgamma, dbeta,
                  act, true);
    const std::string what = std::string("batchnorm accumulate ") + act_name(act);
    test::require_close(dgamma, Tensor::from_vector({c}, want_g), kBatchnormF64, what + " dgamma");
    test::require_close(dbeta, Tensor::from_vector({c}, want_b), kBatchnormF64, what + " dbeta");
    test::require_close(dx, run.dx, kBatchnormF64, what + " dx");
  }
}

TEST_CASE("batchnorm cuda matches cpu", "[batchnorm][cuda]") {
  auto cuda = test::cuda_or_skip();
  if (!cuda) return;
  Context cpu;
  uint64_t salt = 500;
  // One and several row blocks; C % 8 == 0 (16-byte path for every dtype), C % 4 == 0 only
  // (f32 vectorised, f16 scalar), odd C (scalar); a large C (several channel blocks).
  const Shape shapes[] = {{2, 5, 7, 3},     {4, 13, 11, 24}, {8, 40, 40, 20},
                          {16, 20, 20, 64}, {2, 9, 9, 264},  {1, 1, 2, 8}};
  for (DType d : {DType::f32, DType::f16, DType::bf16}) {
    const test::Tol tol = d == DType::f32   ? kBatchnormCudaF32
                          : d == DType::f16 ? kBatchnormCudaF16
                                            : kBatchnormCudaBf16;
    for (Activation act : {Activation::none, Activation::silu}) {
      for (const Shape& shape : shapes) {
        const int64_t c = shape.back();
        // Inputs rounded to d, so CPU (f32) and CUDA see the same values.
        const Tensor x_d = test::to_dtype(test::random(shape, DType::f32, test::seed(salt++), -1, 3), d);
        const Tensor dy_d = test::to_dtype(test::random(shape, DType::f32, test::seed(salt++)), d);
        const Params p = random_params(c, DType::f32, test::seed(salt++));
        const Run ref = run_train(cpu, test::to_f32(x_d), p, test::to_f32(dy_d), act, DType::f32);
        const Run got =
            run_train(*cuda, cuda->to_device(x_d), p, cuda->to_device(dy_d), act, DType::f32);
        const std::string what = std::string("batchnorm cuda ") + dtype_name(d) + " " +
                                 act_name(act) + " " + shape_str(shape);
        auto host = [&](const Tensor& t) { return test::host(*cuda, t); };
        test::require_close(host(got.y), ref.y, tol, what + " y");
        test::require_close(host(got.save_mean), ref.save_mean, kBatchnormCudaF32, what + " mean");
        test::require_close(host(got.save_invstd), ref.save_invstd, kBatchnormCudaF32,
                            what + " invstd");
        test::require_close(host(got.running_mean), ref.running_mean, kBatchnormCudaF32,
                            what + " running_mean");
        test::require_close(host(got.running_var), ref.running_var, kBatchnormCudaF32,
                            what + " running_var");
        test::require_close(host(got.dx), ref.dx, tol, what + " dx");
        test::require_close(host(got.dgamma), ref.dgamma, kBatchnormCudaSum, what + " dgamma");
        test::require_close(host(got.dbeta), ref.dbeta, kBatchnormCudaSum, what + " dbeta");

        // Accumulating parameter gradients adds this batch's sums.
        const Tensor gamma = cuda->to_device(p.gamma), beta = cuda->to_device(p.beta);
        const Tensor gdx = cuda->empty(shape, d);
        batchnorm_bwd(*cuda, cuda->to_device(x_d), cuda->to_device(dy_d), gamma, beta,
                      got.save_mean, got.save_invstd, gdx, got.dgamma, got.dbeta, act, true);
        std::vector<double> twice = ref.dgamma.to_double_vector();
        for (double& v : twice) v *= 2.0;
        test::require_close(host(got.dgamma), Tensor::from_vector({c}, twice), kBatchnormCudaSum,
                            what + " accumulated dgamma");

        // Eval with the updated running statistics, in place.
        const Tensor gx = cuda->to_device(x_d);
        const Tensor cx = test::to_f32(x_d);
        batchnorm_fwd_eval(*cuda, gx, gamma, beta, got.running_mean, got.running_var, gx, kEps,
                           act);
        batchnorm_fwd_eval(cpu, cx, p.gamma, p.beta, ref.running_mean, ref.running_var, cx, kEps,
                           act);
        test::require_close(host(gx), cx, tol, what + " eval");
      }
    }
  }
}

TEST_CASE("batchnorm rejects mismatched arguments", "[batchnorm]") {
  Context ctx;
  const Shape shape{2, 5, 7, 3};
  const Tensor x = Tensor::zeros_cpu(shape), y = Tensor::zeros_cpu(shape);
  const Tensor c3 = Tensor::zeros_cpu({3}), c4 = Tensor::zeros_cpu({4});
  REQUIRE_THROWS_WITH(
      batchnorm_fwd_train(ctx, x, c4, c3, c3, c3, c3, c3, y, kMomentum, kEps, Activation::silu),
      Catch::Contains("gamma") && Catch::Contains("(4)") && Catch::Contains("(2, 5, 7, 3)"));
  REQUIRE_THROWS_WITH(
      batchnorm_fwd_eval(ctx, x, c3, c3, c3, c4, y, kEps, Activation::none),
      Catch::Contains("running_var") && Catch::Contains("(4)") && Catch::Contains("(2, 5, 7, 3)"));
  const Tensor dy = Tensor::zeros_cpu({2, 5, 7, 4});
  REQUIRE_THROWS_WITH(batchnorm_bwd(ctx, x, dy, c3, c3, c3, c3, y, c3, c3, Activation::none, false),
                      Catch::Contains("(2, 5, 7, 3)") && Catch::Contains("(2, 5, 7, 4)"));
  // Per-channel tensors follow x's dtype on the CPU: f64 x needs f64 gamma.
  const Tensor x64 = Tensor::zeros_cpu(shape, DType::f64);
  REQUIRE_THROWS_WITH(batchnorm_fwd_eval(ctx, x64, c3, c3, c3, c3, x64, kEps, Activation::none),
                      Catch::Contains("gamma") && Catch::Contains("f32") && Catch::Contains("f64"));
  // One value per channel has no batch variance (PyTorch refuses it too).
  const Tensor one = Tensor::zeros_cpu({1, 1, 1, 3});
  REQUIRE_THROWS_WITH(
      batchnorm_fwd_train(ctx, one, c3, c3, c3, c3, c3, c3, Tensor::zeros_cpu({1, 1, 1, 3}),
                          kMomentum, kEps, Activation::none),
      Catch::Contains("more than one value per channel") && Catch::Contains("(1, 1, 1, 3)"));
  REQUIRE_THROWS_WITH(
      batchnorm_fwd_train(ctx, x, c3, c3, c3, c3, c3, c3, x, kMomentum, kEps, Activation::none),
      Catch::Contains("alias"));
}
