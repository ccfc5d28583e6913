// Tests of kernels/activation.h: SiLU and sigmoid forward against direct f64 loops, their backward
// against central finite differences in f64, CUDA against CPU (f32, f16, bf16, vector and scalar
// paths), and argument errors.
#include <cmath>
#include <string>

#include "kernels/activation.h"
#include "tests/harness.h"

using namespace yolo;

namespace {

constexpr test::Tol kActivationF64{1e-14, 1e-13};
constexpr test::Tol kActivationF32{1e-6, 1e-6};  // a few f32 ulps of exp and the division
// Central differences with h = 1e-6 on a loss summing ~10^3 terms: rounding noise ~1e-8.
constexpr test::Tol kActivationGrad{1e-7, 1e-7};
constexpr test::Tol kActivationCudaF32{1e-6, 1e-6};
constexpr test::Tol kActivationCudaF16{1e-6, 1e-3};   // one f16 rounding of the output (2^-11)
constexpr test::Tol kActivationCudaBf16{1e-6, 8e-3};  // one bf16 rounding of the output (2^-8)

const Shape kShapes[] = {{2, 5, 7, 3}, {3, 4, 4, 16}, {1, 1, 1, 8}, {4, 13, 11, 24}};

enum class Act { silu, sigmoid };

const char* act_name(Act a) {
  return a == Act::silu ? "silu" : "sigmoid";
}

double ref_sigmoid(double v) {
  return 1.0 / (1.0 + std::exp(-v));
}

// Direct reference loops in f64 over the values of x.
Tensor ref_forward(Act a, const Tensor& x) {
  std::vector<double> v = x.to_double_vector();
  for (double& e : v) e = a == Act::silu ? e * ref_sigmoid(e) : ref_sigmoid(e);
  return Tensor::from_vector(x.shape(), v);
}

void forward(Act a, Context& ctx, const Tensor& x, const Tensor& y) {
  if (a == Act::silu)
    silu_fwd(ctx, x, y);
  else
    sigmoid_fwd(ctx, x, y);
}

// silu_bwd takes x, sigmoid_bwd the forward output y.
void backward(Act a, Context& ctx, const Tensor& x, const Tensor& y, const Tensor& dy,
              const Tensor& dx) {
  if (a == Act::silu)
    silu_bwd(ctx, x, dy, dx);
  else
    sigmoid_bwd(ctx, y, dy, dx);
}

}  // namespace

TEST_CASE("silu and sigmoid forward match a direct loop", "[activation]") {
  Context ctx;
  uint64_t salt = 100;
  for (Act a : {Act::silu, Act::sigmoid}) {
    for (const Shape& shape : kShapes) {
      for (DType d : {DType::f64, DType::f32}) {
        const Tensor x = test::random(shape, d, test::seed(salt++), -8.0, 8.0);
        const Tensor y = ctx.empty(shape, d);
        forward(a, ctx, x, y);
        const std::string what =
            std::string(act_name(a)) + " fwd " + dtype_name(d) + " " + shape_str(shape);
        const test::Tol tol = d == DType::f64 ? kActivationF64 : kActivationF32;
        test::require_close(y, ref_forward(a, x), tol, what);
        // In place: y aliases x.
        const Tensor ref = ref_forward(a, x);
        forward(a, ctx, x, x);
        test::require_close(x, ref, tol, what + " in place");
      }
    }
  }
}

TEST_CASE("silu and sigmoid gradients match finite differences", "[activation]") {
  Context ctx;
  uint64_t salt = 200;
  for (Act a : {Act::silu, Act::sigmoid}) {
    for (const Shape& shape : {Shape{2, 5, 7, 3}, Shape{3, 4, 4, 16}, Shape{1, 1, 1, 8}}) {
      const Tensor x = test::random(shape, DType::f64, test::seed(salt++), -6.0, 6.0);
      const Tensor r = test::random(shape, DType::f64, test::seed(salt++));
      const Tensor y = ctx.empty(shape, DType::f64);
      auto loss = [&]() {
        forward(a, ctx, x, y);
        return test::dot(y, r);
      };
      const Tensor numeric = test::numeric_grad(x, loss);
      forward(a, ctx, x, y);
      const Tensor dx = ctx.empty(shape, DType::f64);
      backward(a, ctx, x, y, r, dx);
      const std::string what = std::string(act_name(a)) + " grad " + shape_str(shape);
      test::require_close(dx, numeric, kActivationGrad, what);
      // dx may alias dy.
      const Tensor dy = test::random(shape, DType::f64, test::seed(salt++));
      backward(a, ctx, x, y, dy, dx);
      const Tensor expect = Tensor::from_vector(shape, dx.to_double_vector());
      backward(a, ctx, x, y, dy, dy);
      test::require_close(dy, expect, kActivationF64, what + " dx aliasing dy");
    }
  }
}

TEST_CASE("silu and sigmoid cuda match cpu", "[activation][cuda]") {
  auto cuda = test::cuda_or_skip();
  if (!cuda) return;
  Context cpu;
  uint64_t salt = 300;
  // {4, 13, 11, 24} and {1025} take the 16-byte path (with a tail for 1025 % 8); the row slice of
  // a (9, 7) tensor starts 28 bytes in, so it takes the scalar path.
  const Shape shapes[] = {{4, 13, 11, 24}, {2, 5, 7, 3}, {1025}, {9, 7}};
  for (Act a : {Act::silu, Act::sigmoid}) {
    for (DType d : {DType::f32, DType::f16, DType::bf16}) {
      const test::Tol tol = d == DType::f32   ? kActivationCudaF32
                            : d == DType::f16 ? kActivationCudaF16
                                              : kActivationCudaBf16;
      for (const Shape& shape : shapes) {
        const bool sliced = shape == Shape{9, 7};
        // Inputs rounded to d, so CPU and CUDA see the same values.
        const Tensor x_d = test::to_dtype(test::random(shape, DType::f32, test::seed(salt++), -8, 8), d);
        const Tensor dy_d = test::to_dtype(test::random(shape, DType::f32, test::seed(salt++)), d);
        const Tensor x32 = test::to_f32(x_d), dy32 = test::to_f32(dy_d);
        Tensor gx = cuda->to_device(x_d), gdy = cuda->to_device(dy_d);
        Tensor y = cpu.empty(shape, DType::f32), dx = cpu.empty(shape, DType::f32);
        Tensor gy = cuda->empty(shape, d), gdx = cuda->empty(shape, d);
        Tensor cx = x32, cdy = dy32;
        if (sliced) {
          gx = gx.slice(1, 9), gdy = gdy.slice(1, 9), gy = gy.slice(1, 9), gdx = gdx.slice(1, 9);
          cx = x32.slice(1, 9), cdy = dy32.slice(1, 9), y = y.slice(1, 9), dx = dx.slice(1, 9);
        }
        forward(a, cpu, cx, y);
        forward(a, *cuda, gx, gy);
        // Backward from the device's own forward output (sigmoid_bwd reads y), on both sides.
        const Tensor gy_host = test::to_f32(test::host(*cuda, gy));
        backward(a, cpu, cx, gy_host, cdy, dx);
        backward(a, *cuda, gx, gy, gdy, gdx);
        const std::string what =
            std::string(act_name(a)) + " cuda " + dtype_name(d) + " " + shape_str(gx.shape());
        test::require_close(test::host(*cuda, gy), y, tol, what + " fwd");
        test::require_close(test::host(*cuda, gdx), dx, tol, what + " bwd");
      }
    }
  }
}

TEST_CASE("silu and sigmoid reject mismatched arguments", "[activation]") {
  Context ctx;
  const Tensor x = Tensor::zeros_cpu({2, 3});
  const Tensor y = Tensor::zeros_cpu({3, 2});
  REQUIRE_THROWS_WITH(silu_fwd(ctx, x, y), Catch::Contains("silu_fwd") &&
                                               Catch::Contains("(2, 3)") &&
                                               Catch::Contains("(3, 2)"));
  REQUIRE_THROWS_WITH(sigmoid_bwd(ctx, x, x, y),
                      Catch::Contains("(2, 3)") && Catch::Contains("(3, 2)"));
  const Tensor d = Tensor::zeros_cpu({2, 3}, DType::f64);
  REQUIRE_THROWS_WITH(silu_bwd(ctx, x, d, x), Catch::Contains("f32 vs f64"));
  const Tensor i = Tensor::zeros_cpu({2, 3}, DType::i32);
  REQUIRE_THROWS_WITH(sigmoid_fwd(ctx, i, i), Catch::Contains("f32 or f64"));
}
