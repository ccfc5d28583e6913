// Tests of the tape (autograd/): a composite YOLO-like chain against finite differences in f64,
// accumulation into parameters, fan-out, the no-grad scope, and release of saved tensors.
#include "autograd/ops.h"
#include "kernels/elementwise.h"
#include "kernels/linalg.h"
#include "tests/harness.h"

using namespace yolo;

namespace {

constexpr test::Tol kChainGrad{1e-7, 1e-5};  // f64 analytic vs central differences (h = 1e-6)

struct Chain {
  Tensor x, w, gamma, beta, r, running_mean, running_var;
};

Chain make_chain(uint64_t salt) {
  Chain c;
  c.x = test::random({2, 6, 5, 3}, DType::f64, test::seed(salt));
  c.w = test::random({4, 3, 3, 3}, DType::f64, test::seed(salt + 1), -0.5, 0.5);
  c.gamma = test::random({4}, DType::f64, test::seed(salt + 2), 0.5, 1.5);
  c.beta = test::random({4}, DType::f64, test::seed(salt + 3), -0.5, 0.5);
  c.r = test::random({2, 12, 10, 8}, DType::f64, test::seed(salt + 4));
  c.running_mean = Tensor::zeros_cpu({4}, DType::f64);
  c.running_var = Tensor::zeros_cpu({4}, DType::f64);
  return c;
}

// conv -> BN+SiLU -> add (residual with the conv output) -> concat -> upsample -> maxpool, then
// loss = sum(out * r).
Var run_chain(Tape& tape, const Chain& c, const Var& x, const Var& w, const Var& gamma,
              const Var& beta) {
  Conv2dParams p;
  p.pad_h = p.pad_w = 1;
  ag::BatchNormState bn{c.running_mean, c.running_var, 0.03, 1e-3, true};
  Var conv = ag::conv2d(tape, x, w, Var(), p);
  Var act = ag::batchnorm(tape, conv, gamma, beta, bn, Activation::silu);
  Var res = ag::add(tape, act, conv);
  Var cat = ag::concat(tape, {res, conv});
  Var up = ag::upsample2x(tape, cat);
  Var pooled = ag::maxpool(tape, up, 3);
  return ag::sum(tape, ag::mul(tape, pooled, Var::constant(c.r)));
}

}  // namespace

TEST_CASE("autograd composite chain matches finite differences", "[autograd]") {
  Context ctx;
  Chain c = make_chain(100);
  Tape tape(ctx);
  Tensor dw = Tensor::zeros_cpu(c.w.shape(), DType::f64);
  Tensor dgamma = Tensor::zeros_cpu({4}, DType::f64), dbeta = Tensor::zeros_cpu({4}, DType::f64);
  Var x = Var::leaf(c.x), w = Var::param(c.w, dw), gamma = Var::param(c.gamma, dgamma),
      beta = Var::param(c.beta, dbeta);
  Var loss = run_chain(tape, c, x, w, gamma, beta);
  REQUIRE(tape.size() > 0);
  tape.backward(loss);
  REQUIRE(tape.size() == 0);

  auto f = [&] {
    Tape t(ctx);
    NoGradGuard ng(t);
    return run_chain(t, c, Var::constant(c.x), Var::constant(c.w), Var::constant(c.gamma),
                     Var::constant(c.beta))
        .value()
        .data<double>()[0];
  };
  test::require_close(x.grad(), test::numeric_grad(c.x, f), kChainGrad, "d loss / d x");
  test::require_close(dw, test::numeric_grad(c.w, f), kChainGrad, "d loss / d conv weight");
  test::require_close(dgamma, test::numeric_grad(c.gamma, f), kChainGrad, "d loss / d bn gamma");
  test::require_close(dbeta, test::numeric_grad(c.beta, f), kChainGrad, "d loss / d bn beta");
}

TEST_CASE("autograd accumulates parameter gradients across backward calls", "[autograd]") {
  Context ctx;
  Chain c = make_chain(200);
  Tensor dw = Tensor::zeros_cpu(c.w.shape(), DType::f64);
  Tensor dg = Tensor::zeros_cpu({4}, DType::f64), db = Tensor::zeros_cpu({4}, DType::f64);
  Var w = Var::param(c.w, dw), gamma = Var::param(c.gamma, dg), beta = Var::param(c.beta, db);
  Tape tape(ctx);
  tape.backward(run_chain(tape, c, Var::constant(c.x), w, gamma, beta));
  const Tensor once = test::to_f64(dw);
  tape.backward(run_chain(tape, c, Var::constant(c.x), w, gamma, beta));
  Tensor twice_expected = Tensor::empty_cpu(once.shape(), DType::f64);
  scale(ctx, once, 2.0, twice_expected);
  test::require_close(dw, twice_expected, kChainGrad, "two backward passes add up");
}

TEST_CASE("autograd sums the gradients of a value used twice", "[autograd]") {
  Context ctx;
  Tape tape(ctx);
  Tensor xv = test::random({3, 4}, DType::f64, test::seed(300));
  Var x = Var::leaf(xv);
  // loss = sum(x * x + 3 x) -> dx = 2x + 3
  Var loss = ag::sum(tape, ag::add(tape, ag::mul(tape, x, x), ag::scale(tape, x, 3.0)));
  tape.backward(loss);
  std::vector<double> expect;
  for (double v : xv.to_double_vector()) expect.push_back(2 * v + 3);
  test::require_close(x.grad(), Tensor::from_vector({3, 4}, expect), kChainGrad, "fan-out");
}

TEST_CASE("autograd no-grad scope records nothing and backward frees saved tensors", "[autograd]") {
  Context ctx;
  Tape tape(ctx);
  Tensor xv = test::random({2, 4, 4, 8}, DType::f32, test::seed(400));
  Var x = Var::leaf(xv);
  {
    NoGradGuard ng(tape);
    Var y = ag::silu(tape, x);
    REQUIRE_FALSE(y.requires_grad());
    REQUIRE(tape.size() == 0);
  }
  Var y = ag::sigmoid(tape, x);
  REQUIRE(tape.size() == 1);
  REQUIRE(y.value().storage().use_count() == 2);  // the Var and the node's saved output
  tape.backward(ag::sum(tape, y));
  REQUIRE(y.value().storage().use_count() == 1);  // the node and what it saved are gone
  REQUIRE_THROWS_WITH(tape.backward(y), Catch::Contains("gradient for a non-scalar root"));
}

TEST_CASE("sum and mean gradients match finite differences", "[autograd][linalg]") {
  Context ctx;
  Tensor xv = test::random({3, 5, 7}, DType::f64, test::seed(500));
  for (bool is_mean : {false, true}) {
    Tape tape(ctx);
    Var x = Var::leaf(xv);
    Tensor r = test::random({3, 5, 7}, DType::f64, test::seed(501));
    // loss = reduce(x * r), so d loss / dx = r (sum) or r / numel (mean).
    auto reduce = [&](Tape& t, const Var& v) {
      Var p = ag::mul(t, v, Var::constant(r));
      return is_mean ? ag::mean(t, p) : ag::sum(t, p);
    };
    tape.backward(reduce(tape, x));
    auto f = [&] {
      Tape t(ctx);
      return reduce(t, Var::constant(xv)).value().data<double>()[0];
    };
    test::require_close(x.grad(), test::numeric_grad(xv, f), kChainGrad,
                        is_mean ? "mean gradient" : "sum gradient");
  }
}

TEST_CASE("gemm gradients match finite differences", "[autograd][linalg]") {
  // For C = A B: dA = dC B^T and dB = A^T dC, both computed with gemm's transpose flags; checked
  // against central differences of L = sum(C * R).
  Context ctx;
  Tensor a = test::random({4, 6}, DType::f64, test::seed(600));
  Tensor b = test::random({6, 5}, DType::f64, test::seed(601));
  Tensor r = test::random({4, 5}, DType::f64, test::seed(602));
  auto loss = [&] {
    Tensor c = Tensor::empty_cpu({4, 5}, DType::f64);
    gemm(ctx, false, false, 1.0, a, b, 0.0, c);
    return test::dot(c, r);
  };
  Tensor da = Tensor::empty_cpu({4, 6}, DType::f64), db = Tensor::empty_cpu({6, 5}, DType::f64);
  gemm(ctx, false, true, 1.0, r, b, 0.0, da);
  gemm(ctx, true, false, 1.0, a, r, 0.0, db);
  test::require_close(da, test::numeric_grad(a, loss), kChainGrad, "gemm dA");
  test::require_close(db, test::numeric_grad(b, loss), kChainGrad, "gemm dB");
}
