// Tests of kernels/pool.h: max pool (k = 3, 5) and SPPF forward against direct f64 loops (ties,
// all-negative inputs so padding never wins), backward against finite differences and against the
// cascade of maxpool calls, CUDA against CPU (f32, f16, bf16), and argument errors.
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/dtype.h"
#include "kernels/pool.h"
#include "tests/harness.h"

using namespace yolo;

namespace {

constexpr test::Tol kPoolExact{1e-12, 0.0};     // max is exact: only a wrong element differs
constexpr test::Tol kPoolBwdF64{1e-14, 1e-14};   // sums of a few f64 values in another order
constexpr test::Tol kPoolGrad{1e-7, 1e-7};       // central differences of a piecewise-linear loss
constexpr test::Tol kPoolCuda{1e-6, 1e-6};       // same sums in the same order, f32
constexpr test::Tol kPoolCudaLow{1e-6, 1e-3};    // one final rounding to f16 / bf16 at most

const Shape kShapes[] = {{2, 7, 5, 3}, {1, 13, 13, 9}, {3, 20, 20, 16}};

struct Dims {
  int64_t N, H, W, C;
};
Dims dims(const Tensor& t) { return {t.dim(0), t.dim(1), t.dim(2), t.dim(3)}; }

// Direct loops: for each output, scan the clipped window in row-major order keeping the first
// strictly greater value; returns the argmax pixel index for every output element.
std::vector<int64_t> reference_argmax(const std::vector<double>& x, Dims d, int k) {
  const int64_t r = k / 2;
  std::vector<int64_t> arg(x.size());
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t h = 0; h < d.H; ++h)
      for (int64_t w = 0; w < d.W; ++w)
        for (int64_t c = 0; c < d.C; ++c) {
          double best = -INFINITY;
          int64_t at = -1;
          for (int64_t hh = h - r; hh <= h + r; ++hh)
            for (int64_t ww = w - r; ww <= w + r; ++ww) {
              if (hh < 0 || hh >= d.H || ww < 0 || ww >= d.W) continue;
              const double v = x[((n * d.H + hh) * d.W + ww) * d.C + c];
              if (at < 0 || v > best) {
                best = v;
                at = (n * d.H + hh) * d.W + ww;
              }
            }
          arg[((n * d.H + h) * d.W + w) * d.C + c] = at;
        }
  return arg;
}

std::vector<double> reference_pool(const std::vector<double>& x, Dims d, int k) {
  const std::vector<int64_t> arg = reference_argmax(x, d, k);
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[arg[i] * d.C + int64_t(i) % d.C];
  return y;
}

double identity(double v) { return v; }

// dx = addend + scatter of dy to the argmax, in row-major output order, rounding the result
// through `round` (identity for f32 / f64; f16 or bf16 rounding to mirror a low-precision kernel).
template <typename Round>
std::vector<double> reference_pool_bwd(const std::vector<double>& x, const std::vector<double>& dy,
                                       const std::vector<double>& addend, Dims d, int k,
                                       bool f32_math, Round round) {
  const std::vector<int64_t> arg = reference_argmax(x, d, k);
  std::vector<double> dx = addend;
  if (f32_math) {
    std::vector<float> acc(addend.begin(), addend.end());
    for (size_t i = 0; i < dy.size(); ++i) acc[arg[i] * d.C + int64_t(i) % d.C] += float(dy[i]);
    for (size_t i = 0; i < dx.size(); ++i) dx[i] = round(acc[i]);
  } else {
    for (size_t i = 0; i < dy.size(); ++i) dx[arg[i] * d.C + int64_t(i) % d.C] += dy[i];
  }
  return dx;
}

// Channels [s*C, (s+1)*C) of an (N, H, W, 4C) vector.
std::vector<double> block_of(const std::vector<double>& v, Dims d, int s) {
  std::vector<double> r(size_t(d.N * d.H * d.W * d.C));
  for (int64_t p = 0; p < d.N * d.H * d.W; ++p)
    for (int64_t c = 0; c < d.C; ++c) r[p * d.C + c] = v[p * 4 * d.C + s * d.C + c];
  return r;
}

std::vector<double> concat4(const std::vector<double>* parts, Dims d) {
  std::vector<double> r(size_t(d.N * d.H * d.W * 4 * d.C));
  for (int s = 0; s < 4; ++s)
    for (int64_t p = 0; p < d.N * d.H * d.W; ++p)
      for (int64_t c = 0; c < d.C; ++c) r[p * 4 * d.C + s * d.C + c] = parts[s][p * d.C + c];
  return r;
}

// The cascade's backward in the reference: g2 = dout[p2] + bwd(p2, dout[p3]), and so on.
template <typename Round>
std::vector<double> reference_sppf_bwd(const std::vector<double>& out,
                                       const std::vector<double>& dout, Dims d, int k,
                                       bool f32_math, Round round) {
  std::vector<double> g = block_of(dout, d, 3);
  for (int s = 2; s >= 0; --s) {
    if (s > 0) {  // intermediate gradients stay in f32 (f64 for the f64 reference)
      g = reference_pool_bwd(block_of(out, d, s), g, block_of(dout, d, s), d, k, f32_math, identity);
    } else {
      g = reference_pool_bwd(block_of(out, d, s), g, block_of(dout, d, s), d, k, f32_math, round);
    }
  }
  return g;
}

Tensor like(const Tensor& t, const std::vector<double>& v) { return Tensor::from_vector(t.shape(), v); }

double round_to(DType dtype, double v) {
  if (dtype == DType::f16) return half_to_float(float_to_half(float(v)));
  if (dtype == DType::bf16) return bf16_to_float(float_to_bf16(float(v)));
  return double(float(v));
}

}  // namespace

TEST_CASE("maxpool forward matches a direct loop", "[pool]") {
  Context ctx;
  uint64_t salt = 1000;
  for (const Shape& shape : kShapes) {
    for (int k : {3, 5, 1, 13}) {
      for (DType dtype : {DType::f64, DType::f32}) {
        // Uniform, all-negative (padding must never win), and few-valued (many ties).
        for (int kind = 0; kind < 3; ++kind) {
          Tensor x = test::random(shape, dtype, test::seed(++salt), kind == 1 ? -3.0 : -1.0,
                                  kind == 1 ? -1.0 : 1.0);
          if (kind == 2) {
            std::vector<double> v = x.to_double_vector();
            for (double& e : v) e = std::floor(e * 2.0);
            x = dtype == DType::f64 ? like(x, v) : test::to_f32(like(x, v));
          }
          const Tensor y = ctx.empty(shape, dtype);
          maxpool_fwd(ctx, x, y, k);
          test::require_close(y, like(x, reference_pool(x.to_double_vector(), dims(x), k)),
                              kPoolExact,
                              "maxpool fwd " + shape_str(shape) + " k=" + std::to_string(k));
        }
      }
    }
  }
}

TEST_CASE("maxpool backward routes to the first maximum and matches finite differences", "[pool]") {
  Context ctx;
  uint64_t salt = 1100;
  for (const Shape& shape : kShapes) {
    for (int k : {3, 5}) {
      // Ties: few distinct values; the gradient must go to the first maximum in row-major order.
      Tensor x = test::random(shape, DType::f64, test::seed(++salt));
      std::vector<double> v = x.to_double_vector();
      for (double& e : v) e = std::floor(e * 2.0);
      x = like(x, v);
      const Tensor dy = test::random(shape, DType::f64, test::seed(++salt));
      const Tensor dx = ctx.empty(shape, DType::f64);
      maxpool_bwd(ctx, x, dy, dx, k);
      const std::vector<double> zeros(size_t(x.numel()), 0.0);
      test::require_close(dx, like(x, reference_pool_bwd(v, dy.to_double_vector(), zeros, dims(x), k,
                                                         false, identity)),
                          kPoolBwdF64, "maxpool bwd ties " + shape_str(shape));
    }
  }
  for (int k : {3, 5}) {
    Tensor x = test::random({2, 7, 5, 3}, DType::f64, test::seed(++salt));
    const Tensor w = test::random({2, 7, 5, 3}, DType::f64, test::seed(++salt));
    const Tensor y = ctx.empty(x.shape(), DType::f64), dx = ctx.empty(x.shape(), DType::f64);
    auto loss = [&] {
      maxpool_fwd(ctx, x, y, k);
      return test::dot(y, w);
    };
    maxpool_bwd(ctx, x, w, dx, k);
    test::require_close(dx, test::numeric_grad(x, loss), kPoolGrad, "maxpool dx k=" + std::to_string(k));
  }
}

TEST_CASE("sppf forward equals the cascade of three maxpools and a concat", "[pool]") {
  Context ctx;
  uint64_t salt = 1200;
  for (const Shape& shape : kShapes) {
    for (int k : {5, 3}) {
      for (DType dtype : {DType::f64, DType::f32}) {
        const Tensor x = test::random(shape, dtype, test::seed(++salt), -2.0, -1.0);
        const Shape s4{shape[0], shape[1], shape[2], 4 * shape[3]};
        const Tensor out = ctx.empty(s4, dtype);
        sppf_fwd(ctx, x, out, k);
        // Three maxpool_fwd calls.
        const Tensor p1 = ctx.empty(shape, dtype), p2 = ctx.empty(shape, dtype),
                     p3 = ctx.empty(shape, dtype);
        maxpool_fwd(ctx, x, p1, k);
        maxpool_fwd(ctx, p1, p2, k);
        maxpool_fwd(ctx, p2, p3, k);
        const std::vector<double> parts[4] = {x.to_double_vector(), p1.to_double_vector(),
                                              p2.to_double_vector(), p3.to_double_vector()};
        test::require_close(out, like(out, concat4(parts, dims(x))), kPoolExact,
                            "sppf fwd vs maxpool cascade " + shape_str(shape));
        // And the direct loops.
        const std::vector<double> r1 = reference_pool(parts[0], dims(x), k);
        const std::vector<double> r2 = reference_pool(r1, dims(x), k);
        const std::vector<double> refs[4] = {parts[0], r1, r2, reference_pool(r2, dims(x), k)};
        test::require_close(out, like(out, concat4(refs, dims(x))), kPoolExact,
                            "sppf fwd vs direct loops " + shape_str(shape));
      }
    }
  }
}

TEST_CASE("sppf backward equals the maxpool_bwd cascade and matches finite differences", "[pool]") {
  Context ctx;
  uint64_t salt = 1300;
  for (const Shape& shape : kShapes) {
    for (int k : {5, 3}) {
      const Tensor x = test::random(shape, DType::f64, test::seed(++salt));
      const Shape s4{shape[0], shape[1], shape[2], 4 * shape[3]};
      const Tensor out = ctx.empty(s4, DType::f64);
      sppf_fwd(ctx, x, out, k);
      const Tensor dout = test::random(s4, DType::f64, test::seed(++salt));
      const Tensor dx = ctx.empty(shape, DType::f64);
      sppf_bwd(ctx, out, dout, dx, k);
      // The cascade through the public maxpool_bwd: g2 = dout[p2] + maxpool_bwd(p2, dout[p3]), ...
      const Dims d = dims(x);
      const std::vector<double> vo = out.to_double_vector(), vd = dout.to_double_vector();
      Tensor g = like(x, block_of(vd, d, 3));
      for (int s = 2; s >= 0; --s) {
        const Tensor routed = ctx.empty(shape, DType::f64);
        maxpool_bwd(ctx, like(x, block_of(vo, d, s)), g, routed, k);
        std::vector<double> sum = routed.to_double_vector();
        const std::vector<double> direct = block_of(vd, d, s);
        for (size_t i = 0; i < sum.size(); ++i) sum[i] += direct[i];
        g = like(x, sum);
      }
      test::require_close(dx, g, kPoolBwdF64, "sppf bwd vs maxpool_bwd cascade " + shape_str(shape));
      test::require_close(dx, like(x, reference_sppf_bwd(vo, vd, d, k, false, identity)),
                          kPoolBwdF64, "sppf bwd vs direct loops " + shape_str(shape));
    }
  }
  for (int k : {3, 5}) {
    Tensor x = test::random({1, 6, 7, 3}, DType::f64, test::seed(++salt));
    const Tensor w = test::random({1, 6, 7, 12}, DType::f64, test::seed(++salt));
    const Tensor out = ctx.empty({1, 6, 7, 12}, DType::f64), dx = ctx.empty(x.shape(), DType::f64);
    auto loss = [&] {
      sppf_fwd(ctx, x, out, k);
      return test::dot(out, w);
    };
    loss();
    sppf_bwd(ctx, out, w, dx, k);
    test::require_close(dx, test::numeric_grad(x, loss), kPoolGrad, "sppf dx k=" + std::to_string(k));
  }
}

// PyTorch's scan with NaN: take v when v > best or v is NaN, so the last NaN of the window wins.
// Returns the chosen pixel index of every output element.
std::vector<int64_t> reference_argmax_nan(const std::vector<double>& x, Dims d, int k) {
  const int64_t r = k / 2;
  std::vector<int64_t> arg(x.size());
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t h = 0; h < d.H; ++h)
      for (int64_t w = 0; w < d.W; ++w)
        for (int64_t c = 0; c < d.C; ++c) {
          double best = -INFINITY;
          int64_t at = -1;
          for (int64_t hh = std::max<int64_t>(h - r, 0); hh <= std::min(h + r, d.H - 1); ++hh)
            for (int64_t ww = std::max<int64_t>(w - r, 0); ww <= std::min(w + r, d.W - 1); ++ww) {
              const int64_t p = (n * d.H + hh) * d.W + ww;
              const double v = x[p * d.C + c];
              if (at < 0 || v > best || std::isnan(v)) {
                best = v;
                at = p;
              }
            }
          arg[((n * d.H + h) * d.W + w) * d.C + c] = at;
        }
  return arg;
}

TEST_CASE("maxpool picks the row-major scan's element with NaN, signed-zero ties and many channels",
          "[pool]") {
  Context ctx;
  uint64_t salt = 1500;
  for (const Shape& shape : {Shape{1, 9, 11, 70}, Shape{2, 6, 5, 131}}) {
    for (int k : {3, 5}) {
      for (DType dtype : {DType::f32, DType::f64}) {
        // Values in {-1, -0, +0, 1, NaN}: many ties, zeros of both signs, scattered NaNs.
        Tensor x = test::random(shape, DType::f64, test::seed(++salt));
        std::vector<double> v = x.to_double_vector();
        for (double& e : v) {
          const int q = int(std::floor((e + 1.0) * 10.0));  // 0 .. 19
          e = q == 0 ? NAN : q < 5 ? -1.0 : q < 10 ? -0.0 : q < 15 ? 0.0 : 1.0;
        }
        x = dtype == DType::f64 ? like(x, v) : test::to_f32(like(x, v));
        const Dims d = dims(x);
        const std::vector<int64_t> arg = reference_argmax_nan(v, d, k);
        const Tensor y = ctx.empty(shape, dtype);
        maxpool_fwd(ctx, x, y, k);
        const std::vector<double> got = y.to_double_vector();
        int64_t wrong = 0;
        for (size_t i = 0; i < got.size(); ++i) {
          const double want = v[arg[i] * d.C + int64_t(i) % d.C];
          const bool same = std::isnan(want)
                                ? std::isnan(got[i])
                                : got[i] == want && std::signbit(got[i]) == std::signbit(want);
          wrong += same ? 0 : 1;
        }
        const std::string what = "maxpool " + std::string(dtype_name(dtype)) + " " +
                                 shape_str(shape) + " k=" + std::to_string(k);
        INFO(what << " forward");
        REQUIRE(wrong == 0);
        // Backward routes dy by the same choice; dy is small integers so f32 sums are exact.
        std::vector<double> g =
            test::random(shape, DType::f64, test::seed(++salt)).to_double_vector();
        for (double& e : g) e = std::floor(e * 8.0);
        const Tensor dy = dtype == DType::f64 ? like(x, g) : test::to_f32(like(x, g));
        const Tensor dx = ctx.empty(shape, dtype);
        maxpool_bwd(ctx, x, dy, dx, k);
        std::vector<double> want(g.size(), 0.0);
        for (size_t i = 0; i < g.size(); ++i) want[arg[i] * d.C + int64_t(i) % d.C] += g[i];
        test::require_close(dx, like(x, want), kPoolExact, what + " backward");
      }
    }
  }
}

TEST_CASE("maxpool and sppf reject bad shapes naming both", "[pool]") {
  Context ctx;
  const Tensor x = ctx.zeros({2, 8, 8, 3}, DType::f32);
  const Tensor y = ctx.zeros({2, 8, 8, 4}, DType::f32);
  REQUIRE_THROWS_WITH(maxpool_fwd(ctx, x, y, 5),
                      Catch::Contains("(2, 8, 8, 3)") && Catch::Contains("(2, 8, 8, 4)"));
  REQUIRE_THROWS_WITH(maxpool_bwd(ctx, x, y, ctx.zeros({2, 8, 8, 3}, DType::f32), 5),
                      Catch::Contains("(2, 8, 8, 3)") && Catch::Contains("(2, 8, 8, 4)"));
  REQUIRE_THROWS_WITH(sppf_fwd(ctx, x, y, 5),
                      Catch::Contains("(2, 8, 8, 4)") && Catch::Contains("(2, 8, 8, 12)"));
  REQUIRE_THROWS_WITH(sppf_bwd(ctx, ctx.zeros({2, 8, 8, 12}, DType::f32),
                               ctx.zeros({2, 8, 8, 12}, DType::f32), y, 5),
                      Catch::Contains("(2, 8, 8, 4)") && Catch::Contains("(2, 8, 8, 3)"));
  REQUIRE_THROWS_WITH(maxpool_fwd(ctx, x, ctx.zeros({2, 8, 8, 3}, DType::f32), 4),
                      Catch::Contains("odd"));
  REQUIRE_THROWS_WITH(maxpool_fwd(ctx, x, ctx.zeros({2, 8, 8, 3}, DType::f64), 3),
                      Catch::Contains("f32 vs f64"));
}

TEST_CASE("maxpool and sppf cuda match cpu", "[pool][cuda]") {
  auto cuda = test::cuda_or_skip();
  if (!cuda) return;
  uint64_t salt = 1400;
  const Shape shapes[] = {{2, 7, 5, 3}, {1, 13, 13, 9}, {3, 20, 20, 16}, {2, 20, 20, 64},
                          {1, 40, 24, 24}};
  for (const Shape& shape : shapes) {
    const Shape s4{shape[0], shape[1], shape[2], 4 * shape[3]};
    for (int k : {5, 3}) {
      for (DType dtype : {DType::f32, DType::f16, DType::bf16}) {
        const test::Tol tol = dtype == DType::f32 ? kPoolCuda : kPoolCudaLow;
        const std::string what = std::string(dtype_name(dtype)) + " " + shape_str(shape) +
                                 " k=" + std::to_string(k);
        auto round = [dtype](double v) { return round_to(dtype, v); };
        // Inputs with ties (few values) half the time.
        Tensor x32 = test::round_through(test::random(shape, DType::f32, test::seed(++salt)), dtype);
        if (salt % 2 == 0) {
          std::vector<double> v = x32.to_double_vector();
          for (double& e : v) e = std::floor(e * 3.0);
          x32 = test::to_f32(like(x32, v));
        }
        const Tensor dy32 = test::round_through(test::random(shape, DType::f32, test::seed(++salt)), dtype);
        const Tensor dout32 = test::round_through(test::random(s4, DType::f32, test::seed(++salt)), dtype);
        const Tensor x = cuda->to_device(test::to_dtype(x32, dtype));
        const Tensor dy = cuda->to_device(test::to_dtype(dy32, dtype));
        const Tensor dout = cuda->to_device(test::to_dtype(dout32, dtype));
        const Dims d = dims(x32);
        const std::vector<double> vx = x32.to_double_vector();

        const Tensor y = cuda->empty(shape, dtype);
        maxpool_fwd(*cuda, x, y, k);
        test::require_close(test::host(*cuda, y), like(x32, reference_pool(vx, d, k)), kPoolExact,
                            "maxpool fwd cuda " + what);

        const Tensor dx = cuda->empty(shape, dtype);
        maxpool_bwd(*cuda, x, dy, dx, k);
        const std::vector<double> zeros(size_t(x32.numel()), 0.0);
        test::require_close(
            test::host(*cuda, dx),
            like(x32, reference_pool_bwd(vx, dy32.to_double_vector(), zeros, d, k, true, round)),
            tol, "maxpool bwd cuda " + what);

        const Tensor out = cuda->empty(s4, dtype);
        sppf_fwd(*cuda, x, out, k);
        const std::vector<double> r1 = reference_pool(vx, d, k), r2 = reference_pool(r1, d, k);
        const std::vector<double> parts[4] = {vx, r1, r2, reference_pool(r2, d, k)};
        const std::vector<double> ref_out = concat4(parts, d);
        test::require_close(test::host(*cuda, out), like(dout32, ref_out), kPoolExact,
                            "sppf fwd cuda " + what);

        sppf_bwd(*cuda, out, dout, dx, k);
        test::require_close(
            test::host(*cuda, dx),
            like(x32, reference_sppf_bwd(ref_out, dout32.to_double_vector(), d, k, true, round)),
            tol, "sppf bwd cuda " + what);
      }
    }
  }
}
