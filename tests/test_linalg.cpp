// Tests of kernels/linalg.h: GEMM (every transpose combination, odd sizes, alpha/beta), sum_all,
// mean_all and sum_channels against f64 loops, BCE-with-logits against PyTorch's stable formula
// and its gradient against finite differences, CUDA against CPU, and argument errors.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/linalg.h"
#include "tests/harness.h"

using namespace yolo;

namespace {

constexpr test::Tol kGemmF64{1e-12, 1e-12};
constexpr test::Tol kGemmF32{2e-5, 1e-5};  // K <= 64 products of values in [-1, 1]
constexpr test::Tol kGemmCuda{2e-5, 1e-5};
constexpr test::Tol kGemmSplitF64{1e-10, 1e-12};  // k up to 60000 products, f64
constexpr test::Tol kSumF64{1e-9, 1e-12};
constexpr test::Tol kSumF32{1e-6, 1e-6};   // f64 accumulation; only the f32 result rounds
constexpr test::Tol kSumCuda{1e-3, 1e-5};  // f32 tree over up to 1e6 values in [-1, 1]
constexpr test::Tol kSumChannelsCuda{5e-4, 1e-5};  // f32 block tree vs f64 sums: 6e-5 worst of 30 seeds
constexpr test::Tol kBceF64{1e-12, 1e-12};
constexpr test::Tol kBceF32{1e-6, 1e-5};
constexpr test::Tol kBceGrad{1e-8, 1e-6};  // central differences, h = 1e-6, in f64
constexpr test::Tol kBceCuda{1e-6, 1e-5};
constexpr test::Tol kBceGradCuda{2e-6, 1e-5};  // O(1) gradients (dloss = 1.7 n): f32 cancellation

// Row-major op(A) op(B) in f64, then alpha * that + beta * C.
Tensor naive_gemm(bool ta, bool tb, double alpha, const Tensor& a, const Tensor& b, double beta,
                  const Tensor& c) {
  const std::vector<double> va = a.to_double_vector(), vb = b.to_double_vector();
  std::vector<double> vc = c.to_double_vector();
  const int64_t m = c.dim(0), n = c.dim(1), k = ta ? a.dim(0) : a.dim(1);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double s = 0.0;
      for (int64_t p = 0; p < k; ++p) {
        const double x = ta ? va[size_t(p * m + i)] : va[size_t(i * k + p)];
        const double y = tb ? vb[size_t(j * k + p)] : vb[size_t(p * n + j)];
        s += x * y;
      }
      vc[size_t(i * n + j)] = alpha * s + beta * vc[size_t(i * n + j)];
    }
  }
  return Tensor::from_vector(c.shape(), vc);
}

double naive_bce_term(double z, double t, double pw) {
  const double lw = 1.0 + (pw - 1.0) * t;
  return (1.0 - t) * z + lw * (std::max(-z, 0.0) + std::log1p(std::exp(-std::fabs(z))));
}

double naive_bce_mean(const Tensor& z, const Tensor& t, double pw) {
  const std::vector<double> vz = z.to_double_vector(), vt = t.to_double_vector();
  double s = 0.0;
  for (size_t i = 0; i < vz.size(); ++i) s += naive_bce_term(vz[i], vt[i], pw);
  return s / double(vz.size());
}

// Logits in [-6, 6] with a few planted at +-50; targets in [0, 1] (soft labels as in YOLOv5's
// objectness) with some exact 0 and 1.
void bce_inputs(const Shape& shape, DType dtype, uint64_t salt, Tensor* z, Tensor* t) {
  *z = test::random(shape, dtype, test::seed(salt), -6.0, 6.0);
  *t = test::random(shape, dtype, test::seed(salt + 1), 0.0, 1.0);
  const int64_t n = z->numel();
  auto set = [](const Tensor& x, int64_t i, double v) {
    if (x.dtype() == DType::f64)
      x.data<double>()[i] = v;
    else
      x.data<float>()[i] = float(v);
  };
  for (int64_t i = 0; i < n; i += 7) set(*z, i, (i / 7) % 2 == 0 ? 50.0 : -50.0);
  for (int64_t i = 3; i < n; i += 11) set(*t, i, (i / 11) % 2 == 0 ? 1.0 : 0.0);
}

Tensor scalar(DType dtype, double v) {
  return dtype == DType::f64 ? Tensor::from_vector({1}, std::vector<double>{v})
                             : Tensor::from_vector({1}, std::vector<float>{float(v)});
}

struct GemmCase {
  int64_t m, n, k;
  double alpha, beta;
};
const GemmCase kGemmCases[] = {{7, 13, 5, 1.0, 0.0},
                               {1, 1, 1, 2.0, 0.5},
                               {33, 17, 64, -0.75, 1.0},
                               {5, 9, 1, 1.0, -2.0},
                               {16, 16, 16, 0.5, 0.25}};

}  // namespace

TEST_CASE("gemm forward matches a direct loop for every transpose combination", "[linalg]") {
  Context ctx;
  uint64_t salt = 100;
  for (DType dtype : {DType::f64, DType::f32}) {
    for (const GemmCase& gc : kGemmCases) {
      for (int combo = 0; combo < 4; ++combo) {
        const bool ta = combo & 1, tb = combo & 2;
        Tensor a =
            test::random(ta ? Shape{gc.k, gc.m} : Shape{gc.m, gc.k}, dtype, test::seed(++salt));
        Tensor b =
            test::random(tb ? Shape{gc.n, gc.k} : Shape{gc.k, gc.n}, dtype, test::seed(++salt));
        Tensor c = test::random({gc.m, gc.n}, dtype, test::seed(++salt));
        Tensor ref = naive_gemm(ta, tb, gc.alpha, a, b, gc.beta, c);
        gemm(ctx, ta, tb, gc.alpha, a, b, gc.beta, c);
        test::require_close(c, ref, dtype == DType::f64 ? kGemmF64 : kGemmF32,
                            "gemm " + std::string(dtype_name(dtype)) + " m" + std::to_string(gc.m) +
                                " n" + std::to_string(gc.n) + " k" + std::to_string(gc.k) + " ta" +
                                std::to_string(ta) + " tb" + std::to_string(tb));
      }
    }
  }
}

TEST_CASE("gemm with beta zero ignores NaN in c and with k zero scales c", "[linalg]") {
  Context ctx;
  Tensor a = test::random({3, 4}, DType::f32, test::seed(150));
  Tensor b = test::random({4, 5}, DType::f32, test::seed(151));
  Tensor c = Tensor::from_vector({3, 5}, std::vector<float>(15, NAN));
  Tensor zero = Tensor::zeros_cpu({3, 5});
  Tensor ref = naive_gemm(false, false, 1.0, a, b, 0.0, zero);
  gemm(ctx, false, false, 1.0, a, b, 0.0, c);
  test::require_close(c, ref, kGemmF32, "gemm beta 0 over NaN");
  Tensor a0 = Tensor::zeros_cpu({3, 0}), b0 = Tensor::zeros_cpu({0, 5});
  Tensor c2 = test::random({3, 5}, DType::f32, test::seed(152));
  std::vector<double> ref2 = c2.to_double_vector();
  for (double& x : ref2) x *= 0.5;
  gemm(ctx, false, false, 1.0, a0, b0, 0.5, c2);
  test::require_close(c2, Tensor::from_vector({3, 5}, ref2), kGemmF32, "gemm k 0");
}

TEST_CASE("gemm rejects mismatched inner dimensions naming both shapes", "[linalg]") {
  Context ctx;
  Tensor a = Tensor::zeros_cpu({7, 13}), b = Tensor::zeros_cpu({5, 9}),
         c = Tensor::zeros_cpu({7, 9});
  REQUIRE_THROWS_WITH(gemm(ctx, false, false, 1.0, a, b, 0.0, c),
                      Catch::Contains("(7, 13)") && Catch::Contains("(5, 9)"));
  Tensor b2 = Tensor::zeros_cpu({13, 9}), c2 = Tensor::zeros_cpu({9, 7});
  REQUIRE_THROWS_WITH(gemm(ctx, false, false, 1.0, a, b2, 0.0, c2),
                      Catch::Contains("(9, 7)") && Catch::Contains("(7, 9)"));
  Tensor b3 = Tensor::zeros_cpu({13, 9}, DType::f64);
  REQUIRE_THROWS_WITH(gemm(ctx, false, false, 1.0, a, b3, 0.0, c), Catch::Contains("f32 vs f64"));
}

TEST_CASE("sum_all and mean_all forward match an f64 loop", "[linalg]") {
  Context ctx;
  uint64_t salt = 200;
  for (DType dtype : {DType::f64, DType::f32}) {
    for (int64_t n : {int64_t(1), int64_t(7), int64_t(4097), int64_t(1000003)}) {
      Tensor x = test::random({n}, dtype, test::seed(++salt));
      const std::vector<double> v = x.to_double_vector();
      double s = 0.0;
      for (double e : v) s += e;
      const test::Tol tol = dtype == DType::f64 ? kSumF64 : kSumF32;
      Tensor out = Tensor::zeros_cpu({1}, dtype);
      sum_all(ctx, x, out);
      test::require_close(out, scalar(DType::f64, s), tol, "sum_all n=" + std::to_string(n));
      mean_all(ctx, x.reshape({1, n, 1}), out);
      test::require_close(out, scalar(DType::f64, s / double(n)), tol,
                          "mean_all n=" + std::to_string(n));
    }
  }
}

TEST_CASE("sum_channels forward matches an f64 loop, assigned and accumulated", "[linalg]") {
  Context ctx;
  uint64_t salt = 300;
  const Shape shapes[] = {{1, 1}, {7, 5}, {2, 9, 11, 13}, {3, 40, 40, 3}, {200003, 2}};
  for (DType dtype : {DType::f64, DType::f32}) {
    for (const Shape& shape : shapes) {
      Tensor x = test::random(shape, dtype, test::seed(++salt));
      const int64_t c = shape.back(), m = x.numel() / c;
      const std::vector<double> v = x.to_double_vector();
      Tensor init = test::random({c}, dtype, test::seed(++salt));
      std::vector<double> sums(size_t(c), 0.0), acc = init.to_double_vector();
      for (int64_t r = 0; r < m; ++r)
        for (int64_t j = 0; j < c; ++j) sums[size_t(j)] += v[size_t(r * c + j)];
      for (int64_t j = 0; j < c; ++j) acc[size_t(j)] += sums[size_t(j)];
      const test::Tol tol = dtype == DType::f64 ? kSumF64 : kSumF32;
      Tensor out = test::random({c}, dtype, test::seed(++salt));
      sum_channels(ctx, x, out, false);
      test::require_close(out, Tensor::from_vector({c}, sums), tol,
                          "sum_channels " + shape_str(shape));
      sum_channels(ctx, x, init, true);
      test::require_close(init, Tensor::from_vector({c}, acc), tol,
                          "sum_channels accumulate " + shape_str(shape));
    }
  }
}

TEST_CASE("sum_channels and sum_all reject mismatched shapes naming both", "[linalg]") {
  Context ctx;
  Tensor x = Tensor::zeros_cpu({4, 6, 6, 8}), out = Tensor::zeros_cpu({7});
  REQUIRE_THROWS_WITH(sum_channels(ctx, x, out, false),
                      Catch::Contains("(4, 6, 6, 8)") && Catch::Contains("(7)"));
  REQUIRE_THROWS_WITH(sum_all(ctx, x, out), Catch::Contains("(7)"));
}

TEST_CASE("bce_with_logits forward matches the stable formula incl. large logits", "[linalg]") {
  Context ctx;
  uint64_t salt = 400;
  const Shape shapes[] = {{1}, {7, 3}, {2, 5, 5, 85}, {100003}};
  for (DType dtype : {DType::f64, DType::f32}) {
    for (const Shape& shape : shapes) {
      for (double pw : {1.0, 0.7, 2.5}) {
        Tensor z, t;
        bce_inputs(shape, dtype, salt += 2, &z, &t);
        Tensor out = Tensor::zeros_cpu({1}, dtype);
        bce_with_logits_fwd(ctx, z, t, pw, out);
        test::require_close(out, scalar(DType::f64, naive_bce_mean(z, t, pw)),
                            dtype == DType::f64 ? kBceF64 : kBceF32,
                            "bce fwd " + shape_str(shape) + " pos_weight " + std::to_string(pw));
      }
    }
  }
  // Saturated logits: the loss of z = +-50 is exact, never inf or NaN.
  Tensor z = Tensor::from_vector({4}, std::vector<double>{50.0, -50.0, 50.0, -50.0});
  Tensor t = Tensor::from_vector({4}, std::vector<double>{0.0, 1.0, 1.0, 0.0});
  Tensor out = Tensor::zeros_cpu({1}, DType::f64);
  bce_with_logits_fwd(ctx, z, t, 3.0, out);
  test::require_close(out, scalar(DType::f64, (50.0 + 3.0 * 50.0) / 4.0), kBceF64,
                      "bce fwd saturated");
}

TEST_CASE("bce_with_logits gradients match finite differences", "[linalg]") {
  Context ctx;
  uint64_t salt = 500;
  const Shape shapes[] = {{1}, {3, 7}, {2, 3, 3, 5}};
  for (const Shape& shape : shapes) {
    for (double pw : {1.0, 0.3, 4.0}) {
      Tensor z, t;
      bce_inputs(shape, DType::f64, salt += 2, &z, &t);
      Tensor w = test::random({1}, DType::f64, test::seed(++salt), 0.5, 2.0);
      Tensor out = Tensor::zeros_cpu({1}, DType::f64);
      auto loss = [&]() {
        bce_with_logits_fwd(ctx, z, t, pw, out);
        return test::dot(out, w);
      };
      Tensor numeric = test::numeric_grad(z, loss);
      Tensor dz = Tensor::zeros_cpu(shape, DType::f64);
      bce_with_logits_bwd(ctx, z, t, pw, w, dz);
      test::require_close(dz, numeric, kBceGrad,
                          "bce bwd " + shape_str(shape) + " pos_weight " + std::to_string(pw));
    }
  }
}

TEST_CASE("bce_with_logits rejects mismatched logits and targets naming both shapes", "[linalg]") {
  Context ctx;
  Tensor z = Tensor::zeros_cpu({2, 85}), t = Tensor::zeros_cpu({2, 80}),
         out = Tensor::zeros_cpu({1});
  REQUIRE_THROWS_WITH(bce_with_logits_fwd(ctx, z, t, 1.0, out),
                      Catch::Contains("(2, 85)") && Catch::Contains("(2, 80)"));
  Tensor dz = Tensor::zeros_cpu({2, 84});
  REQUIRE_THROWS_WITH(bce_with_logits_bwd(ctx, z, z, 1.0, out, dz),
                      Catch::Contains("(2, 85)") && Catch::Contains("(2, 84)"));
}

TEST_CASE("gemm cuda matches cpu", "[linalg][cuda]") {
  auto cuda = test::cuda_or_skip();
  if (!cuda) return;
  Context cpu;
  uint64_t salt = 600;
  for (const GemmCase& gc : kGemmCases) {
    for (int combo = 0; combo < 4; ++combo) {
      const bool ta = combo & 1, tb = combo & 2;
      Tensor a =
          test::random(ta ? Shape{gc.k, gc.m} : Shape{gc.m, gc.k}, DType::f32, test::seed(++salt));
      Tensor b =
          test::random(tb ? Shape{gc.n, gc.k} : Shape{gc.k, gc.n}, DType::f32, test::seed(++salt));
      Tensor c = test::random({gc.m, gc.n}, DType::f32, test::seed(++salt));
      Tensor dc = cuda->to_device(c);
      gemm(*cuda, ta, tb, gc.alpha, cuda->to_device(a), cuda->to_device(b), gc.beta, dc);
      gemm(cpu, ta, tb, gc.alpha, a, b, gc.beta, c);
      test::require_close(cuda->to_host(dc), c, kGemmCuda,
                          "gemm cuda m" + std::to_string(gc.m) + " n" + std::to_string(gc.n) +
                              " k" + std::to_string(gc.k) + " ta" + std::to_string(ta) + " tb" +
                              std::to_string(tb));
    }
  }
}

TEST_CASE("sum_all and mean_all cuda match cpu", "[linalg][cuda]") {
  auto cuda = test::cuda_or_skip();
  if (!cuda) return;
  Context cpu;
  uint64_t salt = 700;
  for (int64_t n : {int64_t(1), int64_t(7), int64_t(4099), int64_t(1000003)}) {
    Tensor x = test::random({n}, DType::f32, test::seed(++salt));
    Tensor dx = cuda->to_device(x);
    Tensor ref = Tensor::zeros_cpu({1}), dout = cuda->zeros({1}, DType::f32);
    sum_all(cpu, x, ref);
    sum_all(*cuda, dx, dout);
    test::require_close(cuda->to_host(dout), ref, kSumCuda, "sum_all cuda n=" + std::to_string(n));
    mean_all(cpu, x, ref);
    mean_all(*cuda, dx, dout);
    test::require_close(cuda->to_host(dout), ref, kSumCuda, "mean_all cuda n=" + std::to_string(n));
    // A view starting one element in takes the scalar path; the result is still right.
    if (n > 1) {
      sum_all(cpu, x.slice(1, n), ref);
      sum_all(*cuda, dx.slice(1, n), dout);
      test::require_close(cuda->to_host(dout), ref, kSumCuda, "sum_all cuda unaligned");
    }
  }
}

TEST_CASE("sum_channels cuda matches cpu", "[linalg][cuda]") {
  auto cuda = test::cuda_or_skip();
  if (!cuda) return;
  Context cpu;
  uint64_t salt = 800;
  const Shape shapes[] = {{1, 1}, {7, 5}, {2, 9, 11, 13}, {16, 80, 80, 3}, {20011, 255}};
  for (const Shape& shape : shapes) {
    Tensor x = test::random(shape, DType::f32, test::seed(++salt));
    const int64_t c = shape.back();
    Tensor init = test::random({c}, DType::f32, test::seed(++salt));
    Tensor ref = Tensor::zeros_cpu({c});
    Tensor dout = cuda->to_device(init);
    sum_channels(cpu, x, ref, false);
    sum_channels(*cuda, cuda->to_device(x), dout, false);
    test::require_close(cuda->to_host(dout), ref, kSumChannelsCuda,
                        "sum_channels cuda " + shape_str(shape));
    Tensor dacc = cuda->to_device(init);
    sum_channels(cpu, x, init, true);
    sum_channels(*cuda, cuda->to_device(x), dacc, true);
    test::require_close(cuda->to_host(dacc), init, kSumChannelsCuda,
                        "sum_channels cuda accumulate " + shape_str(shape));
  }
}

TEST_CASE("bce_with_logits cuda matches cpu forward and backward", "[linalg][cuda]") {
  auto cuda = test::cuda_or_skip();
  if (!cuda) return;
  Context cpu;
  uint64_t salt = 900;
  const Shape shapes[] = {{1}, {7, 3}, {2, 5, 5, 85}, {1000003}};
  for (const Shape& shape : shapes) {
    for (double pw : {1.0, 2.5}) {
      Tensor z, t;
      bce_inputs(shape, DType::f32, salt += 2, &z, &t);
      Tensor dz = cuda->to_device(z), dt = cuda->to_device(t);
      Tensor ref = Tensor::zeros_cpu({1}), dout = cuda->zeros({1}, DType::f32);
      bce_with_logits_fwd(cpu, z, t, pw, ref);
      bce_with_logits_fwd(*cuda, dz, dt, pw, dout);
      test::require_close(cuda->to_host(dout), ref, kBceCuda, "bce fwd cuda " + shape_str(shape));
      Tensor dloss = scalar(DType::f32, 1.7 * double(z.numel()));
      Tensor grad_ref = Tensor::zeros_cpu(shape), dgrad = cuda->zeros(shape, DType::f32);
      bce_with_logits_bwd(cpu, z, t, pw, dloss, grad_ref);
      bce_with_logits_bwd(*cuda, dz, dt, pw, cuda->to_device(dloss), dgrad);
      test::require_close(cuda->to_host(dgrad), grad_ref, kBceGradCuda,
                          "bce bwd cuda " + shape_str(shape));
    }
  }
}

TEST_CASE("gemm splits rows, columns and long reductions across threads like one call",
          "[linalg]") {
  // Shapes chosen so cpu::gemm takes each of its paths (rows of C, columns of C, slices of k with
  // per-thread partial sums) whenever more than one OpenMP thread is available.
  Context ctx;
  const struct {
    int64_t m, n, k;
  } shapes[] = {{513, 7, 129}, {3, 601, 211}, {4, 9, 60000}};
  uint64_t salt = 900;
  for (const auto& sh : shapes) {
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      Tensor a = test::random(ta ? Shape{sh.k, sh.m} : Shape{sh.m, sh.k}, DType::f64, test::seed(++salt));
      Tensor b = test::random(tb ? Shape{sh.n, sh.k} : Shape{sh.k, sh.n}, DType::f64, test::seed(++salt));
      Tensor c = test::random({sh.m, sh.n}, DType::f64, test::seed(++salt));
      const Tensor ref = naive_gemm(ta, tb, 0.5, a, b, 2.0, c);
      gemm(ctx, ta, tb, 0.5, a, b, 2.0, c);
      test::require_close(c, ref, kGemmSplitF64,
                          "gemm " + std::to_string(sh.m) + "x" + std::to_string(sh.n) + "x" +
                              std::to_string(sh.k) + " ta=" + std::to_string(ta) +
                              " tb=" + std::to_string(tb));
    }
  }
}
