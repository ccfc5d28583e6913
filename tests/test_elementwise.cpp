// Tests of kernels/elementwise.h: add, add_scaled, mul, scale against direct f64 loops, their
// backward formulas against finite differences, fill/copy/cast against naive loops and core/dtype.h
// bit for bit, CUDA against CPU (f32, f16, bf16; casts bit-exact), and argument errors.
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/elementwise.h"
#include "tests/harness.h"

using namespace yolo;

namespace {

constexpr test::Tol kElementwiseF64{1e-14, 1e-14};
constexpr test::Tol kElementwiseF32{1e-6, 1e-6};
constexpr test::Tol kElementwiseGrad{1e-7, 1e-7};
constexpr test::Tol kElementwiseCudaF32{1e-6, 1e-6};
// One 16-bit rounding step apart at most (add_scaled: an FMA on CUDA, two roundings on the CPU):
// 2^-10 (f16) or 2^-7 (bf16) relative, with 2x margin.
constexpr test::Tol kElementwiseCudaF16{1e-6, 2e-3};
constexpr test::Tol kElementwiseCudaBf16{1e-6, 1.6e-2};

const Shape kShapes[] = {{2, 7, 5, 3}, {1, 13, 13, 9}, {3, 20, 20, 16}, {1}, {5, 1, 1, 33}};

enum class BinaryOp { add, add_scaled, mul };
constexpr double kAlpha = -0.7;

// Direct reference loops in f64.
Tensor reference_binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  const std::vector<double> va = a.to_double_vector(), vb = b.to_double_vector();
  std::vector<double> r(va.size());
  for (size_t i = 0; i < va.size(); ++i) {
    if (op == BinaryOp::add) r[i] = va[i] + vb[i];
    else if (op == BinaryOp::add_scaled) r[i] = va[i] + kAlpha * vb[i];
    else r[i] = va[i] * vb[i];
  }
  return Tensor::from_vector(a.shape(), r);
}

void run_binary(BinaryOp op, Context& ctx, const Tensor& a, const Tensor& b, const Tensor& out) {
  if (op == BinaryOp::add) add(ctx, a, b, out);
  else if (op == BinaryOp::add_scaled) add_scaled(ctx, a, b, kAlpha, out);
  else mul(ctx, a, b, out);
}

const char* op_name(BinaryOp op) {
  return op == BinaryOp::add ? "add" : op == BinaryOp::add_scaled ? "add_scaled" : "mul";
}

uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// f32 values that exercise every rounding path: ties to even in f16 and bf16 (normal and
// subnormal), overflow to inf, signed zeros, infinities, NaNs with payloads, denormal floats.
std::vector<float> special_floats() {
  std::vector<float> v = {0.0f, -0.0f, 1.0f, -1.0f, 65504.0f, 65519.0f, 65520.0f, -65520.0f,
                          1e9f, -1e-9f, 5.960464477539063e-08f, 2.9802322387695312e-08f,
                          8.940696716308594e-08f, 6.103515625e-05f, 6.097555160522461e-05f,
                          1.0f + 1.0f / 2048, 1.0f + 3.0f / 2048, 1.0f + 1.0f / 256,
                          1.0f + 3.0f / 256, std::numeric_limits<float>::infinity(),
                          -std::numeric_limits<float>::infinity(),
                          std::numeric_limits<float>::quiet_NaN(), bits_float(0xffc12345u),
                          bits_float(0x7f800001u), bits_float(0x00000001u), bits_float(0x807fffffu),
                          bits_float(0x7f7fffffu), bits_float(0x3f808000u), bits_float(0x3f818000u),
                          bits_float(0x33000000u), bits_float(0x33800000u), bits_float(0x7f7f8000u)};
  // Exact f16 and bf16 midpoints around many exponents.
  for (int e = -30; e <= 20; ++e) {
    const float base = std::ldexp(1.0f, e);
    v.push_back(base * (1.0f + 1.0f / 2048));
    v.push_back(-base * (1.0f + 5.0f / 2048));
    v.push_back(base * (1.0f + 1.0f / 256));
    v.push_back(base * (1.0f + 3.0f / 256));
  }
  return v;
}

// special_floats() then pseudo-random bit patterns of every class.
Tensor cast_test_floats(uint64_t seed_value, int64_t random_count) {
  std::vector<float> v = special_floats();
  uint64_t s = seed_value | 1u;
  for (int64_t i = 0; i < random_count; ++i) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    v.push_back(bits_float(uint32_t(s >> 11)));
  }
  return Tensor::from_vector({int64_t(v.size())}, v);
}

Tensor all_16bit_patterns(DType dtype) {
  Tensor t = Tensor::empty_cpu({65536}, dtype);
  uint16_t* p = static_cast<uint16_t*>(t.raw());
  for (uint32_t b = 0; b < 65536; ++b) p[b] = uint16_t(b);
  return t;
}

// A host f32 tensor rounded to `dtype` (f16/bf16) and back, so CPU f32 math sees the same inputs
// as the CUDA kernel in that dtype.
Tensor round_to(Context& cpu, const Tensor& f32, DType dtype) {
  Tensor lo = cpu.empty(f32.shape(), dtype);
  cast(cpu, f32, lo);
  return lo;
}

}  // namespace

TEST_CASE("add, add_scaled and mul forward match a direct loop", "[elementwise]") {
  Context ctx;
  uint64_t salt = 100;
  for (BinaryOp op : {BinaryOp::add, BinaryOp::add_scaled, BinaryOp::mul}) {
    for (const Shape& shape : kShapes) {
      for (DType dtype : {DType::f64, DType::f32}) {
        const Tensor a = test::random(shape, dtype, test::seed(++salt));
        const Tensor b = test::random(shape, dtype, test::seed(++salt));
        const Tensor out = ctx.empty(shape, dtype);
        run_binary(op, ctx, a, b, out);
        const std::string what = std::string(op_name(op)) + " " + shape_str(shape) + " " +
                                 dtype_name(dtype);
        test::require_close(out, reference_binary(op, a, b),
                            dtype == DType::f64 ? kElementwiseF64 : kElementwiseF32, what);
        // In place: out aliases a.
        const Tensor ref = reference_binary(op, a, b);
        run_binary(op, ctx, a, b, a);
        test::require_close(a, ref, dtype == DType::f64 ? kElementwiseF64 : kElementwiseF32,
                            what + " in place");
      }
    }
  }
}

TEST_CASE("scale forward matches a direct loop", "[elementwise]") {
  Context ctx;
  uint64_t salt = 200;
  for (const Shape& shape : kShapes) {
    for (DType dtype : {DType::f64, DType::f32}) {
      const Tensor x = test::random(shape, dtype, test::seed(++salt));
      const Tensor out = ctx.empty(shape, dtype);
      scale(ctx, x, 1.75, out);
      std::vector<double> r = x.to_double_vector();
      for (double& v : r) v *= 1.75;
      const Tensor ref = Tensor::from_vector(shape, r);
      const test::Tol tol = dtype == DType::f64 ? kElementwiseF64 : kElementwiseF32;
      test::require_close(out, ref, tol, "scale " + shape_str(shape));
      scale(ctx, x, 1.75, x);
      test::require_close(x, ref, tol, "scale in place " + shape_str(shape));
    }
  }
}

TEST_CASE("add, add_scaled, mul and scale gradients match finite differences", "[elementwise]") {
  // The backward formulas autograd uses: add: da = db = dy; add_scaled: da = dy, db = alpha dy;
  // mul: da = dy * b, db = dy * a; scale: dx = alpha dy. Loss = dot(out, w).
  Context ctx;
  const Shape shape{2, 7, 5, 3};
  Tensor a = test::random(shape, DType::f64, test::seed(301));
  Tensor b = test::random(shape, DType::f64, test::seed(302));
  const Tensor w = test::random(shape, DType::f64, test::seed(303));
  const Tensor out = ctx.empty(shape, DType::f64);
  const Tensor da = ctx.empty(shape, DType::f64), db = ctx.empty(shape, DType::f64);
  for (BinaryOp op : {BinaryOp::add, BinaryOp::add_scaled, BinaryOp::mul}) {
    auto loss = [&] {
      run_binary(op, ctx, a, b, out);
      return test::dot(out, w);
    };
    if (op == BinaryOp::add) {
      copy(ctx, w, da);
      copy(ctx, w, db);
    } else if (op == BinaryOp::add_scaled) {
      copy(ctx, w, da);
      scale(ctx, w, kAlpha, db);
    } else {
      mul(ctx, w, b, da);
      mul(ctx, w, a, db);
    }
    test::require_close(da, test::numeric_grad(a, loss), kElementwiseGrad,
                        std::string(op_name(op)) + " da");
    test::require_close(db, test::numeric_grad(b, loss), kElementwiseGrad,
                        std::string(op_name(op)) + " db");
  }
  auto scale_loss = [&] {
    scale(ctx, a, kAlpha, out);
    return test::dot(out, w);
  };
  const Tensor dx = ctx.empty(shape, DType::f64);
  scale(ctx, w, kAlpha, dx);
  test::require_close(dx, test::numeric_grad(a, scale_loss), kElementwiseGrad, "scale dx");
  // Gradient accumulation, the documented use of add_scaled: g += d.
  const Tensor g = test::random(shape, DType::f64, test::seed(304));
  const Tensor ref = reference_binary(BinaryOp::add, g, w);
  add_scaled(ctx, g, w, 1.0, g);
  test::require_close(g, ref, kElementwiseF64, "add_scaled accumulate");
}

TEST_CASE("fill and copy match a naive loop", "[elementwise]") {
  Context ctx;
  for (const Shape& shape : kShapes) {
    for (DType dtype : {DType::f32, DType::f64, DType::f16, DType::bf16}) {
      const Tensor t = ctx.empty(shape, dtype);
      fill(ctx, t, -2.3);
      const std::vector<double> got = t.to_double_vector();
      double expect = -2.3;
      if (dtype == DType::f32) expect = double(float(-2.3));
      if (dtype == DType::f16) expect = half_to_float(float_to_half(float(-2.3)));
      if (dtype == DType::bf16) expect = bf16_to_float(float_to_bf16(float(-2.3)));
      for (double v : got) REQUIRE(v == expect);
    }
    const Tensor src = test::random(shape, DType::f32, test::seed(401));
    const Tensor dst = ctx.zeros(shape, DType::f32);
    copy(ctx, src, dst);
    const std::vector<float> s = src.to_float_vector(), d = dst.to_float_vector();
    for (size_t i = 0; i < s.size(); ++i) REQUIRE(float_bits(s[i]) == float_bits(d[i]));
  }
}

TEST_CASE("cast matches core/dtype.h conversions bit for bit", "[elementwise]") {
  Context ctx;
  const Tensor src = cast_test_floats(test::seed(501), 100000);
  const int64_t n = src.numel();
  const float* ps = src.data<float>();
  const Tensor h = ctx.empty({n}, DType::f16), bf = ctx.empty({n}, DType::bf16);
  const Tensor d = ctx.empty({n}, DType::f64);
  cast(ctx, src, h);
  cast(ctx, src, bf);
  cast(ctx, src, d);
  for (int64_t i = 0; i < n; ++i) {
    INFO("element " << i << " bits 0x" << std::hex << float_bits(ps[i]));
    REQUIRE(h.data<Half>()[i].bits == float_to_half(ps[i]).bits);
    REQUIRE(bf.data<BFloat16>()[i].bits == float_to_bf16(ps[i]).bits);
    const double dv = d.data<double>()[i];
    REQUIRE((std::isnan(ps[i]) ? std::isnan(dv) : dv == double(ps[i])));
  }
  // Ties round to even; overflow goes to inf; NaN stays NaN.
  REQUIRE(h.data<Half>()[15].bits == 0x3c00);
  REQUIRE(h.data<Half>()[16].bits == 0x3c02);
  REQUIRE(h.data<Half>()[6].bits == 0x7c00);
  REQUIRE(bf.data<BFloat16>()[17].bits == 0x3f80);
  REQUIRE(bf.data<BFloat16>()[18].bits == 0x3f82);
  REQUIRE(std::isnan(half_to_float(h.data<Half>()[21])));
  // Widening: every f16 and bf16 pattern to f32 and across.
  for (DType from : {DType::f16, DType::bf16}) {
    const Tensor all = all_16bit_patterns(from);
    const Tensor f = ctx.empty({65536}, DType::f32);
    const Tensor other = ctx.empty({65536}, from == DType::f16 ? DType::bf16 : DType::f16);
    cast(ctx, all, f);
    cast(ctx, all, other);
    const uint16_t* pa = static_cast<const uint16_t*>(all.raw());
    const uint16_t* po = static_cast<const uint16_t*>(other.raw());
    for (uint32_t b = 0; b < 65536; ++b) {
      const float wide = from == DType::f16 ? half_to_float(Half{pa[b]}) : bf16_to_float(BFloat16{pa[b]});
      REQUIRE(float_bits(f.data<float>()[b]) == float_bits(wide));
      const uint16_t narrow = from == DType::f16 ? float_to_bf16(wide).bits : float_to_half(wide).bits;
      REQUIRE(po[b] == narrow);
    }
  }
  // f64 -> f32 rounds to nearest.
  const Tensor x64 = test::random({1000}, DType::f64, test::seed(502), -1e5, 1e5);
  const Tensor x32 = ctx.empty({1000}, DType::f32);
  cast(ctx, x64, x32);
  for (int64_t i = 0; i < 1000; ++i) REQUIRE(x32.data<float>()[i] == float(x64.data<double>()[i]));
}

TEST_CASE("cast f32 -> f16 matches core/dtype.h at every rounding boundary", "[elementwise]") {
  // Every finite half value, the midpoint to the next one (65520 past the largest), the floats
  // either side of that midpoint, and all of them negated: subnormals, the normal/subnormal
  // edge, ties to even and the overflow edge, as the branch-free vector path sees them.
  Context ctx;
  std::vector<float> v;
  for (uint32_t b = 0; b < 0x7c00u; ++b) {
    const float lo = half_to_float(Half{uint16_t(b)});
    const float hi = b + 1 < 0x7c00u ? half_to_float(Half{uint16_t(b + 1)}) : 65536.0f;
    const float mid = float((double(lo) + double(hi)) / 2.0);
    for (float e : {lo, mid, std::nextafter(mid, 0.0f), std::nextafter(mid, INFINITY)}) {
      v.push_back(e);
      v.push_back(-e);
    }
  }
  const int64_t n = int64_t(v.size());
  const Tensor src = Tensor::from_vector({n}, v);
  const Tensor h = ctx.empty({n}, DType::f16);
  cast(ctx, src, h);
  int64_t wrong = 0, first = -1;
  for (int64_t i = 0; i < n; ++i) {
    if (h.data<Half>()[i].bits != float_to_half(v[size_t(i)]).bits) {
      if (first < 0) first = i;
      ++wrong;
    }
  }
  INFO("first mismatch at element " << first);
  REQUIRE(wrong == 0);
}

TEST_CASE("elementwise ops reject mismatched shapes and dtypes naming both", "[elementwise]") {
  Context ctx;
  const Tensor a = ctx.zeros({2, 8, 8, 3}, DType::f32);
  const Tensor b = ctx.zeros({2, 8, 8, 4}, DType::f32);
  const Tensor c = ctx.zeros({2, 8, 8, 3}, DType::f64);
  REQUIRE_THROWS_WITH(add(ctx, a, b, a),
                      Catch::Contains("add") && Catch::Contains("(2, 8, 8, 3)") &&
                          Catch::Contains("(2, 8, 8, 4)"));
  REQUIRE_THROWS_WITH(mul(ctx, a, a, b), Catch::Contains("(2, 8, 8, 3)") &&
                                             Catch::Contains("(2, 8, 8, 4)"));
  REQUIRE_THROWS_WITH(scale(ctx, a, 2.0, b), Catch::Contains("(2, 8, 8, 4)"));
  REQUIRE_THROWS_WITH(copy(ctx, a, b), Catch::Contains("(2, 8, 8, 3)") &&
                                           Catch::Contains("(2, 8, 8, 4)"));
  REQUIRE_THROWS_WITH(cast(ctx, a, b.reshape({2, 8, 32})),
                      Catch::Contains("(2, 8, 8, 3)") && Catch::Contains("(2, 8, 32)"));
  REQUIRE_THROWS_WITH(add_scaled(ctx, a, c, 1.0, a), Catch::Contains("f32 vs f64"));
  const Tensor i = ctx.zeros({2, 8, 8, 3}, DType::i32);
  REQUIRE_THROWS_WITH(add(ctx, i, i, i), Catch::Contains("i32"));
  REQUIRE_THROWS_WITH(cast(ctx, c, ctx.empty({2, 8, 8, 3}, DType::f16)),
                      Catch::Contains("f64 -> f16"));
}

TEST_CASE("elementwise ops cuda match cpu", "[elementwise][cuda]") {
  auto cuda = test::cuda_or_skip();
  if (!cuda) return;
  Context cpu;
  uint64_t salt = 600;
  // Odd sizes and a view at an odd offset exercise the scalar path and the tail.
  const Shape shapes[] = {{3, 20, 20, 16}, {2, 7, 5, 3}, {1, 1, 1, 1}, {4, 33, 17, 7}};
  for (const Shape& shape : shapes) {
    for (DType dtype : {DType::f32, DType::f16, DType::bf16}) {
      const test::Tol tol = dtype == DType::f32   ? kElementwiseCudaF32
                            : dtype == DType::f16 ? kElementwiseCudaF16
                                                  : kElementwiseCudaBf16;
      // CPU reference: f32 math on inputs rounded to dtype, result rounded to dtype.
      const Tensor a32 = test::random(shape, DType::f32, test::seed(++salt), -4, 4);
      const Tensor b32 = test::random(shape, DType::f32, test::seed(++salt), -4, 4);
      const Tensor a_lo = round_to(cpu, a32, dtype), b_lo = round_to(cpu, b32, dtype);
      const Tensor a_ref = cpu.empty(shape, DType::f32), b_ref = cpu.empty(shape, DType::f32);
      cast(cpu, a_lo, a_ref);
      cast(cpu, b_lo, b_ref);
      const Tensor a_dev = cuda->to_device(a_lo), b_dev = cuda->to_device(b_lo);
      const Tensor out_dev = cuda->empty(shape, dtype);
      const Tensor out_ref = cpu.empty(shape, DType::f32), out_ref_lo = cpu.empty(shape, dtype);
      const std::string what = shape_str(shape) + " " + dtype_name(dtype);
      for (BinaryOp op : {BinaryOp::add, BinaryOp::add_scaled, BinaryOp::mul}) {
        run_binary(op, *cuda, a_dev, b_dev, out_dev);
        run_binary(op, cpu, a_ref, b_ref, out_ref);
        cast(cpu, out_ref, out_ref_lo);
        test::require_close(cuda->to_host(out_dev), out_ref_lo, tol,
                            std::string(op_name(op)) + " cuda " + what);
      }
      scale(*cuda, a_dev, kAlpha, out_dev);
      scale(cpu, a_ref, kAlpha, out_ref);
      cast(cpu, out_ref, out_ref_lo);
      test::require_close(cuda->to_host(out_dev), out_ref_lo, tol, "scale cuda " + what);
      // In place on an unaligned view (element offset 1): scalar path.
      const int64_t n = a_dev.numel();
      if (n > 2) {
        const Tensor flat = a_dev.reshape({n, 1});
        const Tensor va = flat.slice(1, n), vb = b_dev.reshape({n, 1}).slice(1, n);
        add(*cuda, va, vb, va);
        const Tensor ref_a = a_ref.reshape({n, 1}).slice(1, n);
        add(cpu, ref_a, b_ref.reshape({n, 1}).slice(1, n), ref_a);
        cast(cpu, a_ref, out_ref_lo);
        test::require_close(cuda->to_host(a_dev), out_ref_lo, tol, "add in place, view " + what);
      }
      fill(*cuda, out_dev, 0.1);
      fill(cpu, out_ref_lo, 0.1);
      const Tensor got = cuda->to_host(out_dev);
      REQUIRE(std::memcmp(got.raw(), out_ref_lo.raw(), got.nbytes()) == 0);
      copy(*cuda, a_dev, out_dev);
      REQUIRE(std::memcmp(cuda->to_host(out_dev).raw(), cuda->to_host(a_dev).raw(), got.nbytes()) == 0);
    }
  }
}

TEST_CASE("cast cuda matches cpu bit for bit", "[elementwise][cuda]") {
  auto cuda = test::cuda_or_skip();
  if (!cuda) return;
  Context cpu;
  const Tensor src = cast_test_floats(test::seed(701), 1 << 20);
  const Tensor src_dev = cuda->to_device(src);
  const int64_t n = src.numel();
  for (DType to : {DType::f16, DType::bf16}) {
    const Tensor ref = cpu.empty({n}, to);
    const Tensor dev = cuda->empty({n}, to);
    cast(cpu, src, ref);
    cast(*cuda, src_dev, dev);
    const Tensor got = cuda->to_host(dev);
    const uint16_t* pg = static_cast<const uint16_t*>(got.raw());
    const uint16_t* pr = static_cast<const uint16_t*>(ref.raw());
    int64_t bad = 0, first_bad = -1;
    for (int64_t i = 0; i < n; ++i)
      if (pg[i] != pr[i] && bad++ == 0) first_bad = i;
    INFO("f32 -> " << dtype_name(to) << ": " << bad << " differ; first at " << first_bad);
    REQUIRE(bad == 0);
  }
  for (DType from : {DType::f16, DType::bf16}) {
    const Tensor all = all_16bit_patterns(from);
    const Tensor all_dev = cuda->to_device(all);
    for (DType to : {DType::f32, from == DType::f16 ? DType::bf16 : DType::f16}) {
      const Tensor ref = cpu.empty({65536}, to), dev = cuda->empty({65536}, to);
      cast(cpu, all, ref);
      cast(*cuda, all_dev, dev);
      INFO(dtype_name(from) << " -> " << dtype_name(to));
      REQUIRE(std::memcmp(cuda->to_host(dev).raw(), ref.raw(), ref.nbytes()) == 0);
    }
  }
}
