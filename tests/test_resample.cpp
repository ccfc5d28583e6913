// Tests of kernels/resample.h: nearest 2x upsample and channel concat / split against direct f64
// loops, their backward against finite differences, CUDA against CPU (f32, f16, bf16), and
// argument errors.
#include <cstring>

#include "core/dtype.h"
#include "kernels/resample.h"
#include "tests/harness.h"

using namespace yolo;

namespace {

constexpr test::Tol kResampleExact{1e-12, 0.0};  // pure copies: only a wrong element differs
constexpr test::Tol kResampleSum{1e-14, 1e-14};  // four-term sums in f64
constexpr test::Tol kResampleGrad{1e-7, 1e-7};
constexpr test::Tol kResampleCudaF32{1e-6, 1e-6};
constexpr test::Tol kResampleCudaLow{1e-6, 1e-3};  // one rounding of the 4-term sum to f16/bf16

const Shape kShapes[] = {{2, 7, 5, 3}, {1, 13, 13, 9}, {3, 20, 20, 16}};

std::vector<double> reference_upsample(const Tensor& x) {
  const int64_t N = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
  const std::vector<double> v = x.to_double_vector();
  std::vector<double> y(size_t(4 * x.numel()));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t h = 0; h < 2 * H; ++h)
      for (int64_t w = 0; w < 2 * W; ++w)
        for (int64_t c = 0; c < C; ++c)
          y[((n * 2 * H + h) * 2 * W + w) * C + c] = v[((n * H + h / 2) * W + w / 2) * C + c];
  return y;
}

std::vector<double> reference_upsample_bwd(const Tensor& dy, bool f32_math, DType round_to) {
  const int64_t N = dy.dim(0), H = dy.dim(1) / 2, W = dy.dim(2) / 2, C = dy.dim(3);
  const std::vector<double> v = dy.to_double_vector();
  std::vector<double> dx(size_t(N * H * W * C), 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t w = 0; w < W; ++w)
        for (int64_t c = 0; c < C; ++c) {
          auto at = [&](int64_t a, int64_t b) {
            return v[((n * 2 * H + 2 * h + a) * 2 * W + 2 * w + b) * C + c];
          };
          double s;
          if (f32_math) {
            float f = float(at(0, 0));
            f += float(at(0, 1));
            f += float(at(1, 0));
            f += float(at(1, 1));
            if (round_to == DType::f16) f = half_to_float(float_to_half(f));
            if (round_to == DType::bf16) f = bf16_to_float(float_to_bf16(f));
            s = f;
          } else {
            s = at(0, 0) + at(0, 1) + at(1, 0) + at(1, 1);
          }
          dx[((n * H + h) * W + w) * C + c] = s;
        }
  return dx;
}

std::vector<double> reference_concat(const std::vector<Tensor>& xs) {
  const int64_t P = xs[0].numel() / xs[0].dim(3);
  int64_t total = 0;
  for (const Tensor& x : xs) total += x.dim(3);
  std::vector<double> out(size_t(P * total));
  int64_t offset = 0;
  for (const Tensor& x : xs) {
    const std::vector<double> v = x.to_double_vector();
    const int64_t c = x.dim(3);
    for (int64_t p = 0; p < P; ++p)
      for (int64_t j = 0; j < c; ++j) out[p * total + offset + j] = v[p * c + j];
    offset += c;
  }
  return out;
}

Shape with_channels(const Shape& s, int64_t c) { return {s[0], s[1], s[2], c}; }
Tensor like(const Shape& s, const std::vector<double>& v) { return Tensor::from_vector(s, v); }

}  // namespace

TEST_CASE("upsample_nearest2x forward matches a direct loop", "[resample]") {
  Context ctx;
  uint64_t salt = 2000;
  for (const Shape& shape : kShapes) {
    for (DType dtype : {DType::f64, DType::f32}) {
      const Tensor x = test::random(shape, dtype, test::seed(++salt));
      const Shape s2{shape[0], 2 * shape[1], 2 * shape[2], shape[3]};
      const Tensor y = ctx.empty(s2, dtype);
      upsample_nearest2x_fwd(ctx, x, y);
      test::require_close(y, like(s2, reference_upsample(x)), kResampleExact,
                          "upsample fwd " + shape_str(shape));
      const Tensor dx = ctx.empty(shape, dtype);
      upsample_nearest2x_bwd(ctx, y, dx);
      test::require_close(dx, like(shape, reference_upsample_bwd(y, false, DType::f64)),
                          dtype == DType::f64 ? kResampleSum : kResampleCudaF32,
                          "upsample bwd loop " + shape_str(shape));
    }
  }
}

TEST_CASE("upsample_nearest2x gradients match finite differences", "[resample]") {
  Context ctx;
  Tensor x = test::random({2, 7, 5, 3}, DType::f64, test::seed(2101));
  const Tensor w = test::random({2, 14, 10, 3}, DType::f64, test::seed(2102));
  const Tensor y = ctx.empty(w.shape(), DType::f64), dx = ctx.empty(x.shape(), DType::f64);
  auto loss = [&] {
    upsample_nearest2x_fwd(ctx, x, y);
    return test::dot(y, w);
  };
  upsample_nearest2x_bwd(ctx, w, dx);
  test::require_close(dx, test::numeric_grad(x, loss), kResampleGrad, "upsample dx");
}

TEST_CASE("concat_channels forward and split match a direct loop", "[resample]") {
  Context ctx;
  uint64_t salt = 2200;
  const std::vector<std::vector<int64_t>> channel_sets = {{3, 5}, {9, 1, 4}, {16, 16, 16, 16},
                                                          {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}};
  for (const Shape& shape : kShapes) {
    for (const auto& channels : channel_sets) {
      for (DType dtype : {DType::f64, DType::f32}) {
        std::vector<Tensor> xs;
        int64_t total = 0;
        for (int64_t c : channels) {
          xs.push_back(test::random(with_channels(shape, c), dtype, test::seed(++salt)));
          total += c;
        }
        const Tensor out = ctx.empty(with_channels(shape, total), dtype);
        concat_channels_fwd(ctx, xs, out);
        test::require_close(out, like(out.shape(), reference_concat(xs)), kResampleExact,
                            "concat fwd " + shape_str(out.shape()));
        std::vector<Tensor> dxs;
        for (int64_t c : channels) dxs.push_back(ctx.zeros(with_channels(shape, c), dtype));
        concat_channels_bwd(ctx, out, dxs);
        for (size_t i = 0; i < xs.size(); ++i)
          test::require_close(dxs[i], xs[i], kResampleExact, "concat split " + std::to_string(i));
        // One undefined entry is skipped; the others still land at their offsets.
        dxs[0] = Tensor();
        for (size_t i = 1; i < dxs.size(); ++i) ctx.zero_(dxs[i]);
        concat_channels_bwd(ctx, out, dxs);
        for (size_t i = 1; i < xs.size(); ++i)
          test::require_close(dxs[i], xs[i], kResampleExact, "split with dxs[0] undefined");
      }
    }
  }
}

TEST_CASE("concat_channels gradients match finite differences", "[resample]") {
  Context ctx;
  Tensor a = test::random({2, 7, 5, 3}, DType::f64, test::seed(2301));
  Tensor b = test::random({2, 7, 5, 4}, DType::f64, test::seed(2302));
  const Tensor w = test::random({2, 7, 5, 7}, DType::f64, test::seed(2303));
  const Tensor out = ctx.empty(w.shape(), DType::f64);
  auto loss = [&] {
    concat_channels_fwd(ctx, {a, b}, out);
    return test::dot(out, w);
  };
  const Tensor da = ctx.empty(a.shape(), DType::f64), db = ctx.empty(b.shape(), DType::f64);
  concat_channels_bwd(ctx, w, {da, db});
  test::require_close(da, test::numeric_grad(a, loss), kResampleGrad, "concat da");
  test::require_close(db, test::numeric_grad(b, loss), kResampleGrad, "concat db");
}

TEST_CASE("upsample and concat reject mismatched shapes naming both", "[resample]") {
  Context ctx;
  const Tensor x = ctx.zeros({2, 8, 8, 3}, DType::f32);
  REQUIRE_THROWS_WITH(upsample_nearest2x_fwd(ctx, x, ctx.zeros({2, 16, 15, 3}, DType::f32)),
                      Catch::Contains("(2, 16, 15, 3)") && Catch::Contains("(2, 16, 16, 3)"));
  REQUIRE_THROWS_WITH(upsample_nearest2x_bwd(ctx, ctx.zeros({2, 16, 16, 4}, DType::f32), x),
                      Catch::Contains("(2, 16, 16, 4)") && Catch::Contains("(2, 16, 16, 3)"));
  const Tensor y = ctx.zeros({2, 8, 7, 5}, DType::f32);
  REQUIRE_THROWS_WITH(concat_channels_fwd(ctx, {x, y}, ctx.zeros({2, 8, 8, 8}, DType::f32)),
                      Catch::Contains("(2, 8, 7, 5)") && Catch::Contains("(2, 8, 8, 8)"));
  REQUIRE_THROWS_WITH(concat_channels_fwd(ctx, {x, x}, ctx.zeros({2, 8, 8, 7}, DType::f32)),
                      Catch::Contains("sum to 6") && Catch::Contains("(2, 8, 8, 7)"));
  REQUIRE_THROWS_WITH(concat_channels_bwd(ctx, ctx.zeros({2, 8, 8, 9}, DType::f32), {x, Tensor(), Tensor()}),
                      Catch::Contains("undefined"));
  REQUIRE_THROWS_WITH(concat_channels_fwd(ctx, {x, ctx.zeros({2, 8, 8, 3}, DType::f64)},
                                          ctx.zeros({2, 8, 8, 6}, DType::f32)),
                      Catch::Contains("f32 vs f64"));
}

TEST_CASE("upsample and concat cuda match cpu", "[resample][cuda]") {
  auto cuda = test::cuda_or_skip();
  if (!cuda) return;
  Context cpu;
  uint64_t salt = 2400;
  const Shape shapes[] = {{2, 7, 5, 3}, {1, 13, 13, 9}, {3, 20, 20, 16}, {4, 40, 40, 64}};
  for (const Shape& shape : shapes) {
    for (DType dtype : {DType::f32, DType::f16, DType::bf16}) {
      const std::string what = std::string(dtype_name(dtype)) + " " + shape_str(shape);
      const Tensor x32 = test::round_through(test::random(shape, DType::f32, test::seed(++salt)), dtype);
      const Shape s2{shape[0], 2 * shape[1], 2 * shape[2], shape[3]};
      const Tensor dy32 = test::round_through(test::random(s2, DType::f32, test::seed(++salt)), dtype);
      const Tensor y = cuda->empty(s2, dtype);
      upsample_nearest2x_fwd(*cuda, cuda->to_device(test::to_dtype(x32, dtype)), y);
      test::require_close(test::host(*cuda, y), like(s2, reference_upsample(x32)), kResampleExact,
                          "upsample fwd cuda " + what);
      const Tensor dx = cuda->empty(shape, dtype);
      upsample_nearest2x_bwd(*cuda, cuda->to_device(test::to_dtype(dy32, dtype)), dx);
      test::require_close(test::host(*cuda, dx), like(shape, reference_upsample_bwd(dy32, true, dtype)),
                          dtype == DType::f32 ? kResampleCudaF32 : kResampleCudaLow,
                          "upsample bwd cuda " + what);
      // Concat: vectorised (multiples of 8 channels) and scalar (odd) channel sets, and more
      // parts than one launch's table holds.
      const std::vector<std::vector<int64_t>> channel_sets = {
          {shape[3], shape[3]}, {8, 16, 8}, {3, 5, 1}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}};
      for (const auto& channels : channel_sets) {
        std::vector<Tensor> xs32, xs;
        int64_t total = 0;
        for (int64_t c : channels) {
          xs32.push_back(test::round_through(test::random(with_channels(shape, c), DType::f32, test::seed(++salt)), dtype));
          xs.push_back(cuda->to_device(test::to_dtype(xs32.back(), dtype)));
          total += c;
        }
        const Tensor out = cuda->empty(with_channels(shape, total), dtype);
        concat_channels_fwd(*cuda, xs, out);
        const Tensor ref = like(out.shape(), reference_concat(xs32));
        test::require_close(test::host(*cuda, out), ref, kResampleExact, "concat fwd cuda " + what);
        std::vector<Tensor> dxs;
        for (int64_t c : channels) dxs.push_back(cuda->zeros(with_channels(shape, c), dtype));
        dxs[1] = Tensor();
        concat_channels_bwd(*cuda, out, dxs);
        for (size_t i = 0; i < dxs.size(); ++i)
          if (dxs[i].defined())
            test::require_close(test::host(*cuda, dxs[i]), xs32[i], kResampleExact,
                                "concat split cuda " + what + " part " + std::to_string(i));
      }
    }
  }
}
