// Detect decode (kernels/detect.h) and Focus's space-to-depth (kernels/reorg.h): forward against
// naive loops, space-to-depth's gradient against finite differences, CUDA against the CPU.
#include <cmath>

#include "autograd/reorg.h"
#include "kernels/detect.h"
#include "kernels/elementwise.h"
#include "kernels/reorg.h"
#include "tests/harness.h"

using namespace yolo;

namespace {

constexpr test::Tol kDecodeF64{1e-12, 1e-12};
constexpr test::Tol kDecodeCudaF32{1e-4, 1e-5};  // expf vs std::exp; boxes in pixels
constexpr test::Tol kDecodeCudaF16{1e-4, 1e-5};   // same f16 input on both sides, f32 math
constexpr test::Tol kDecodeCudaBf16{1e-4, 1e-5};  // same bf16 input on both sides, f32 math
constexpr test::Tol kReorgExact{1e-30, 0};       // a permutation
constexpr test::Tol kReorgGrad{1e-7, 1e-6};

// The reference's steps in f64: sigmoid, (2 s + grid) * stride, (2 s)^2 * anchor * stride.
Tensor naive_decode(const Tensor& x, const std::vector<double>& anchors, double stride, int64_t no) {
  const int64_t N = x.dim(0), ny = x.dim(1), nx = x.dim(2), na = x.dim(3) / no;
  Tensor out = Tensor::empty_cpu({N, na * ny * nx, no}, DType::f64);
  const std::vector<double> v = x.to_double_vector();
  double* o = out.data<double>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t a = 0; a < na; ++a)
      for (int64_t y = 0; y < ny; ++y)
        for (int64_t i = 0; i < nx; ++i)
          for (int64_t k = 0; k < no; ++k) {
            const double s = 1.0 / (1.0 + std::exp(-v[size_t(((n * ny + y) * nx + i) * na * no + a * no + k)]));
            double r = s;
            if (k == 0) r = (2 * s + (double(i) - 0.5)) * stride;
            if (k == 1) r = (2 * s + (double(y) - 0.5)) * stride;
            if (k == 2 || k == 3) r = (2 * s) * (2 * s) * anchors[size_t(2 * a + k - 2)] * stride;
            o[((n * na + a) * ny + y) * nx * no + i * no + k] = r;
          }
  return out;
}

}  // namespace

TEST_CASE("detect_decode forward matches a direct loop", "[detect]") {
  Context ctx;
  struct Case { int64_t n, ny, nx, na, no; double stride; };
  for (const Case c : {Case{1, 4, 4, 3, 8, 8.0}, Case{2, 3, 5, 3, 85, 16.0}, Case{1, 1, 7, 2, 6, 32.0}}) {
    Tensor x = test::random({c.n, c.ny, c.nx, c.na * c.no}, DType::f64, test::seed(c.ny * 10 + c.nx), -4, 4);
    std::vector<double> anchors;
    for (int64_t j = 0; j < 2 * c.na; ++j) anchors.push_back(0.5 + 1.25 * double(j));
    const int64_t rows = c.na * c.ny * c.nx;
    Tensor out = Tensor::zeros_cpu({c.n, rows + 5, c.no}, DType::f64);  // rows 5.. belong to this level
    detect_decode(ctx, x, Tensor::from_vector({c.na, 2}, anchors), c.stride, out, 5);
    Tensor ref = naive_decode(x, anchors, c.stride, c.no);
    Tensor got = Tensor::empty_cpu({c.n, rows, c.no}, DType::f64);
    for (int64_t n = 0; n < c.n; ++n)
      for (int64_t r = 0; r < rows * c.no; ++r)
        got.data<double>()[n * rows * c.no + r] = out.data<double>()[(n * (rows + 5) + 5) * c.no + r];
    test::require_close(got, ref, kDecodeF64, "detect_decode f64");
  }
}

TEST_CASE("detect_decode rejects mismatched shapes naming both", "[detect]") {
  Context ctx;
  Tensor x = Tensor::zeros_cpu({1, 4, 4, 24});
  Tensor anchors = Tensor::zeros_cpu({3, 2});
  REQUIRE_THROWS_WITH(detect_decode(ctx, x, anchors, 8.0, Tensor::zeros_cpu({1, 48, 9}), 0),
                      Catch::Contains("(1, 4, 4, 24)") && Catch::Contains("(1, 48, 9)"));
  REQUIRE_THROWS_WITH(detect_decode(ctx, x, anchors, 8.0, Tensor::zeros_cpu({1, 40, 8}), 0),
                      Catch::Contains("do not exist"));
}

TEST_CASE("detect_decode cuda matches cpu", "[detect][cuda]") {
  auto cuda = test::cuda_or_skip();
  if (!cuda) return;
  Context cpu;
  Tensor x = test::random({2, 5, 6, 3 * 85}, DType::f32, test::seed(3), -5, 5);
  Tensor anchors = test::random({3, 2}, DType::f32, test::seed(4), 0.5, 8.0);
  Tensor ref = Tensor::zeros_cpu({2, 90, 85});
  detect_decode(cpu, x, anchors, 16.0, ref, 0);
  Tensor out = cuda->zeros({2, 90, 85}, DType::f32);
  detect_decode(*cuda, cuda->to_device(x), cuda->to_device(anchors), 16.0, out, 0);
  test::require_close(test::host(*cuda, out), ref, kDecodeCudaF32, "detect_decode cuda f32");
  // f16 input: the CPU decodes the same rounded values in f32.
  Tensor xh = cuda->empty(x.shape(), DType::f16);
  cast(*cuda, cuda->to_device(x), xh);
  Tensor xr = cuda->empty(x.shape(), DType::f32);
  cast(*cuda, xh, xr);
  detect_decode(cpu, test::host(*cuda, xr), anchors, 16.0, ref, 0);
  detect_decode(*cuda, xh, cuda->to_device(anchors), 16.0, out, 0);
  test::require_close(test::host(*cuda, out), ref, kDecodeCudaF16, "detect_decode cuda f16");
  // bf16 input written at row 20 of a larger output (a level after the first): rows outside
  // [20, 110) stay as they were.
  Tensor xb = cuda->empty(x.shape(), DType::bf16);
  cast(*cuda, cuda->to_device(x), xb);
  cast(*cuda, xb, xr);
  Tensor ref_big = Tensor::zeros_cpu({2, 120, 85});
  detect_decode(cpu, test::host(*cuda, xr), anchors, 16.0, ref_big, 20);
  Tensor big = cuda->zeros({2, 120, 85}, DType::f32);
  detect_decode(*cuda, xb, cuda->to_device(anchors), 16.0, big, 20);
  test::require_close(test::host(*cuda, big), ref_big, kDecodeCudaBf16, "detect_decode cuda bf16 at row 20");
}

TEST_CASE("space_to_depth forward matches a direct loop", "[detect][reorg]") {
  Context ctx;
  for (const Shape& s : {Shape{1, 4, 6, 3}, Shape{2, 8, 2, 5}, Shape{1, 2, 2, 1}}) {
    Tensor x = test::random(s, DType::f64, test::seed(s[1] * 7 + s[3]));
    Tensor y = Tensor::empty_cpu({s[0], s[1] / 2, s[2] / 2, 4 * s[3]}, DType::f64);
    space_to_depth_fwd(ctx, x, y);
    Tensor ref = Tensor::empty_cpu(y.shape(), DType::f64);
    const int dh[4] = {0, 1, 0, 1}, dw[4] = {0, 0, 1, 1};  // x[::2, ::2], x[1::2, ::2], x[::2, 1::2], x[1::2, 1::2]
    for (int64_t n = 0; n < s[0]; ++n)
      for (int64_t i = 0; i < s[1] / 2; ++i)
        for (int64_t j = 0; j < s[2] / 2; ++j)
          for (int b = 0; b < 4; ++b)
            for (int64_t c = 0; c < s[3]; ++c)
              ref.data<double>()[((n * (s[1] / 2) + i) * (s[2] / 2) + j) * 4 * s[3] + b * s[3] + c] =
                  x.data<double>()[((n * s[1] + 2 * i + dh[b]) * s[2] + 2 * j + dw[b]) * s[3] + c];
    test::require_close(y, ref, kReorgExact, "space_to_depth " + shape_str(s));
  }
  REQUIRE_THROWS_WITH(space_to_depth_fwd(ctx, Tensor::zeros_cpu({1, 3, 4, 2}), Tensor::zeros_cpu({1, 1, 2, 8})),
                      Catch::Contains("(1, 3, 4, 2)"));
}

TEST_CASE("space_to_depth gradients match finite differences", "[detect][reorg]") {
  Context ctx;
  Tensor x = test::random({2, 4, 6, 3}, DType::f64, test::seed(9));
  Tensor w = test::random({2, 2, 3, 12}, DType::f64, test::seed(10));
  auto loss = [&] {
    Tape tape(ctx);
    NoGradGuard ng(tape);
    return test::dot(ag::space_to_depth(tape, Var::constant(x)).value(), w);
  };
  Tape tape(ctx);
  Var xv = Var::leaf(x);
  Var y = ag::space_to_depth(tape, xv);
  tape.backward(y, w);
  test::require_close(xv.grad(), test::numeric_grad(x, loss), kReorgGrad, "space_to_depth dx");
}

TEST_CASE("space_to_depth cuda matches cpu", "[detect][reorg][cuda]") {
  auto cuda = test::cuda_or_skip();
  if (!cuda) return;
  Context cpu;
  for (const Shape& s : {Shape{2, 8, 6, 3}, Shape{1, 4, 4, 16}}) {
    Tensor x = test::random(s, DType::f32, test::seed(s[3]));
    const Shape ys = {s[0], s[1] / 2, s[2] / 2, 4 * s[3]};
    Tensor ref = Tensor::empty_cpu(ys), dx_ref = Tensor::empty_cpu(s);
    space_to_depth_fwd(cpu, x, ref);
    space_to_depth_bwd(cpu, ref, dx_ref);
    Tensor y = cuda->empty(ys, DType::f32), dx = cuda->empty(s, DType::f32);
    space_to_depth_fwd(*cuda, cuda->to_device(x), y);
    space_to_depth_bwd(*cuda, y, dx);
    test::require_close(test::host(*cuda, y), ref, kReorgExact, "space_to_depth cuda fwd");
    test::require_close(test::host(*cuda, dx), dx_ref, kReorgExact, "space_to_depth cuda bwd");
    // 16-bit storage: a permutation of the rounded values, so the f32 results of the rounded input.
    for (DType dt : {DType::f16, DType::bf16}) {
      const Tensor xr = test::to_f32(test::to_dtype(x, dt));
      space_to_depth_fwd(cpu, xr, ref);
      space_to_depth_bwd(cpu, ref, dx_ref);
      Tensor yh = cuda->empty(ys, dt), dxh = cuda->empty(s, dt);
      space_to_depth_fwd(*cuda, cuda->to_device(test::to_dtype(x, dt)), yh);
      space_to_depth_bwd(*cuda, yh, dxh);
      const std::string what = std::string(" ") + dtype_name(dt);
      test::require_close(test::to_f32(test::host(*cuda, yh)), ref, kReorgExact, "space_to_depth cuda fwd" + what);
      test::require_close(test::to_f32(test::host(*cuda, dxh)), dx_ref, kReorgExact, "space_to_depth cuda bwd" + what);
    }
  }
}
