// Tests of kernels/conv.h: conv2d forward against a direct f64 loop, backward against central
// finite differences and direct loops, accumulation, argument errors naming the shapes, and CUDA
// (cuDNN, and cuBLAS for plain 1x1) against the CPU. Run: yolo_tests "[conv]".
#include <omp.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "kernels/conv.h"
#include "kernels/cpu/cpu_isa.h"
#include "tests/harness.h"

using namespace yolo;

namespace {

// GEMM-based f64 result vs the direct f64 loop: only summation order differs.
constexpr test::Tol kConvF64{1e-11, 1e-11};
// f32 GEMM vs the direct f64 loop; sums of up to 1600 products of values in [-1, 1].
constexpr test::Tol kConvF32{1e-4, 1e-4};
// f32 weight gradients summed over 65536 pixels (values in [-1, 1]: sums of order 100) vs the f64
// loop: the f32 accumulation error grows with the number and scale of the terms.
constexpr test::Tol kConvF32Long{1e-3, 1e-4};
// Analytic f64 gradients vs central differences (conv is linear: only rounding, h = 1e-6).
constexpr test::Tol kConvGrad{1e-7, 1e-6};
// cuDNN / cuBLAS f32 (FMA math, no TF32) vs OpenBLAS f32: summation order and algorithm
// (e.g. Winograd) differences only.
constexpr test::Tol kConvCudaF32{2e-4, 2e-4};
// f16 / bf16 inputs (representable exactly), f32 accumulation, output rounded to the dtype:
// about 2 ulps of the output (f16 ulp 2^-11, bf16 ulp 2^-8 relative) plus internal rounding.
constexpr test::Tol kConvCudaF16{1e-2, 4e-3};
constexpr test::Tol kConvCudaBF16{5e-2, 1.6e-2};

struct Case {
  int64_t n, h, w, c, o, k;
  int stride, pad, groups;
  bool bias;
};

std::string describe(const Case& c) {
  std::ostringstream s;
  s << "n" << c.n << " " << c.h << "x" << c.w << " c" << c.c << " o" << c.o << " k" << c.k << " s"
    << c.stride << " p" << c.pad << " g" << c.groups << (c.bias ? " bias" : "");
  return s.str();
}

Conv2dParams params_of(const Case& c) {
  Conv2dParams p;
  p.stride_h = p.stride_w = c.stride;
  p.pad_h = p.pad_w = c.pad;
  p.groups = c.groups;
  return p;
}

Shape x_shape(const Case& c) {
  return {c.n, c.h, c.w, c.c};
}
Shape w_shape(const Case& c) {
  return {c.o, c.k, c.k, c.c / c.groups};
}
Shape y_shape(const Case& c) {
  return {c.n, conv2d_out_size(c.h, c.k, c.stride, c.pad),
          conv2d_out_size(c.w, c.k, c.stride, c.pad), c.o};
}

// ---- direct-loop references (f64, host) ----

struct Dims {
  int64_t n, h, w, c, o, kh, kw, cg, og, oh, ow;
  int sh, sw, ph, pw;
};

Dims dims_of(const Shape& xs, const Shape& ws, const Conv2dParams& p) {
  Dims d{};
  d.n = xs[0], d.h = xs[1], d.w = xs[2], d.c = xs[3];
  d.o = ws[0], d.kh = ws[1], d.kw = ws[2], d.cg = ws[3], d.og = ws[0] / p.groups;
  d.sh = p.stride_h, d.sw = p.stride_w, d.ph = p.pad_h, d.pw = p.pad_w;
  d.oh = (d.h + 2 * d.ph - d.kh) / d.sh + 1;
  d.ow = (d.w + 2 * d.pw - d.kw) / d.sw + 1;
  return d;
}

// Calls f(n, oh, ow, o, ih, iw, ci, kh, kw, ki) for every valid (output, tap) pair, where ci is the
// input channel and ki the weight's last index.
template <typename F>
void for_each_tap(const Dims& d, F&& f) {
  for (int64_t n = 0; n < d.n; ++n)
    for (int64_t oh = 0; oh < d.oh; ++oh)
      for (int64_t ow = 0; ow < d.ow; ++ow)
        for (int64_t o = 0; o < d.o; ++o)
          for (int64_t kh = 0; kh < d.kh; ++kh)
            for (int64_t kw = 0; kw < d.kw; ++kw) {
              const int64_t ih = oh * d.sh - d.ph + kh, iw = ow * d.sw - d.pw + kw;
              if (ih < 0 || ih >= d.h || iw < 0 || iw >= d.w) continue;
              for (int64_t ki = 0; ki < d.cg; ++ki)
                f(n, oh, ow, o, ih, iw, (o / d.og) * d.cg + ki, kh, kw, ki);
            }
}

// y (N, OH, OW, O) f64 = conv(x (N, H, W, C), w (O, KH, KW, C / groups)) + bias (O) if defined.
Tensor naive_fwd(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dParams& p) {
  const Dims d = dims_of(x.shape(), w.shape(), p);
  const std::vector<double> xv = x.to_double_vector(), wv = w.to_double_vector();
  std::vector<double> y(size_t(d.n * d.oh * d.ow * d.o), 0.0);
  if (bias.defined()) {
    const std::vector<double> bv = bias.to_double_vector();
    for (size_t i = 0; i < y.size(); ++i) y[i] = bv[i % size_t(d.o)];
  }
  for_each_tap(d, [&](int64_t n, int64_t oh, int64_t ow, int64_t o, int64_t ih, int64_t iw,
                      int64_t ci, int64_t kh, int64_t kw, int64_t ki) {
    y[((n * d.oh + oh) * d.ow + ow) * d.o + o] +=
        xv[((n * d.h + ih) * d.w + iw) * d.c + ci] * wv[((o * d.kh + kh) * d.kw + kw) * d.cg + ki];
  });
  return Tensor::from_vector({d.n, d.oh, d.ow, d.o}, y);
}

// dx (x_shape) f64 = transpose of the conv applied to dy (N, OH, OW, O).
Tensor naive_bwd_data(const Tensor& dy, const Tensor& w, const Shape& xs, const Conv2dParams& p) {
  const Dims d = dims_of(xs, w.shape(), p);
  const std::vector<double> dyv = dy.to_double_vector(), wv = w.to_double_vector();
  std::vector<double> dx(size_t(shape_numel(xs)), 0.0);
  for_each_tap(d, [&](int64_t n, int64_t oh, int64_t ow, int64_t o, int64_t ih, int64_t iw,
                      int64_t ci, int64_t kh, int64_t kw, int64_t ki) {
    dx[((n * d.h + ih) * d.w + iw) * d.c + ci] += dyv[((n * d.oh + oh) * d.ow + ow) * d.o + o] *
                                                  wv[((o * d.kh + kh) * d.kw + kw) * d.cg + ki];
  });
  return Tensor::from_vector(xs, dx);
}

// dw (w_shape) f64 = sum over positions of dy x input patches.
Tensor naive_bwd_filter(const Tensor& x, const Tensor& dy, const Shape& ws, const Conv2dParams& p) {
  const Dims d = dims_of(x.shape(), ws, p);
  const std::vector<double> xv = x.to_double_vector(), dyv = dy.to_double_vector();
  std::vector<double> dw(size_t(shape_numel(ws)), 0.0);
  for_each_tap(d, [&](int64_t n, int64_t oh, int64_t ow, int64_t o, int64_t ih, int64_t iw,
                      int64_t ci, int64_t kh, int64_t kw, int64_t ki) {
    dw[((o * d.kh + kh) * d.kw + kw) * d.cg + ki] +=
        dyv[((n * d.oh + oh) * d.ow + ow) * d.o + o] * xv[((n * d.h + ih) * d.w + iw) * d.c + ci];
  });
  return Tensor::from_vector(ws, dw);
}

// dbias (O) f64 = dy (N, OH, OW, O) summed over N, OH, OW.
Tensor naive_bias_grad(const Tensor& dy) {
  const int64_t o = dy.dim(3);
  const std::vector<double> v = dy.to_double_vector();
  std::vector<double> db(size_t(o), 0.0);
  for (size_t i = 0; i < v.size(); ++i) db[i % size_t(o)] += v[i];
  return Tensor::from_vector({o}, db);
}

// Host output tensor filled with NaN, so a test fails if an op leaves any element unassigned.
Tensor nan_filled(const Shape& shape, DType dt) {
  Tensor t = Tensor::empty_cpu(shape, dt);
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (dt == DType::f32)
      t.data<float>()[i] = NAN;
    else
      t.data<double>()[i] = NAN;
  }
  return t;
}

Tensor clone(const Tensor& t) {
  Tensor c = Tensor::empty_cpu(t.shape(), t.dtype());
  std::memcpy(c.raw(), t.raw(), t.nbytes());
  return c;
}

// Forward and backward cases: odd sizes, k in {1, 3, 5, 6}, strides 1 and 2, paddings 0..3,
// plain, grouped and depthwise, with and without bias.
const std::vector<Case> kCases = {
    {2, 7, 9, 3, 8, 3, 1, 1, 1, true},   {1, 7, 9, 5, 4, 1, 1, 0, 1, false},
    {2, 8, 6, 4, 6, 1, 2, 0, 1, true},   {1, 11, 9, 3, 8, 6, 2, 2, 1, true},
    {2, 9, 7, 6, 5, 5, 1, 2, 1, false},  {1, 10, 10, 8, 8, 3, 2, 1, 8, true},
    {2, 7, 9, 8, 8, 5, 1, 2, 8, false},  {1, 9, 7, 6, 4, 3, 1, 0, 2, true},
    {1, 5, 6, 4, 4, 1, 1, 0, 4, false},  {2, 6, 5, 6, 9, 3, 2, 3, 3, true},
    {1, 7, 7, 4, 8, 3, 1, 1, 4, false},  {2, 5, 7, 6, 6, 1, 1, 0, 3, true},
    {1, 13, 11, 5, 7, 3, 2, 0, 1, true}, {1, 4, 4, 3, 5, 5, 1, 3, 1, false},
};

}  // namespace

TEST_CASE("conv2d forward matches a direct loop", "[conv]") {
  Context cpu;
  uint64_t salt = 100;
  for (const Case& c : kCases) {
    for (DType dt : {DType::f64, DType::f32}) {
      const Conv2dParams p = params_of(c);
      Tensor x = test::random(x_shape(c), dt, test::seed(++salt));
      Tensor w = test::random(w_shape(c), dt, test::seed(++salt));
      Tensor b = c.bias ? test::random({c.o}, dt, test::seed(++salt)) : Tensor();
      REQUIRE(conv2d_out_shape(x, w, p) == y_shape(c));
      Tensor y = nan_filled(y_shape(c), dt);
      conv2d_fwd(cpu, x, w, b, y, p);
      test::require_close(y, naive_fwd(x, w, b, p), dt == DType::f64 ? kConvF64 : kConvF32,
                          "conv2d fwd " + std::string(dtype_name(dt)) + " " + describe(c));
    }
  }
}

// conv2d_fwd_act: act(conv + bias) against the direct loop followed by a direct SiLU (f64 maths).
TEST_CASE("conv2d_fwd_act (fused conv + bias + SiLU) matches a direct loop", "[conv]") {
  Context cpu;
  uint64_t salt = 150;
  for (const Case& c : kCases) {
    for (DType dt : {DType::f64, DType::f32}) {
      for (Activation act : {Activation::silu, Activation::none}) {
        const Conv2dParams p = params_of(c);
        Tensor x = test::random(x_shape(c), dt, test::seed(++salt));
        Tensor w = test::random(w_shape(c), dt, test::seed(++salt));
        Tensor b = c.bias ? test::random({c.o}, dt, test::seed(++salt)) : Tensor();
        Tensor y = nan_filled(y_shape(c), dt);
        conv2d_fwd_act(cpu, x, w, b, y, p, act);
        Tensor ref = test::to_f64(naive_fwd(x, w, b, p));
        if (act == Activation::silu) {
          double* r = ref.data<double>();
          for (int64_t i = 0; i < ref.numel(); ++i) r[i] = r[i] / (1.0 + std::exp(-r[i]));
        }
        test::require_close(test::to_f64(y), ref, dt == DType::f64 ? kConvF64 : kConvF32,
                            std::string("conv2d_fwd_act ") +
                                (act == Activation::silu ? "silu " : "") + dtype_name(dt) + " " +
                                describe(c));
      }
    }
  }
}

// The YOLOv5 stem geometry (c = 3, k = 6, stride 2, pad 2) with every model width's o, which the
// CPU runs through its direct kernel on AVX-512 / AVX2 CPUs (on AVX-512, o = 8 and 24 end in a
// half-masked vector); odd image sizes give uneven edges and interiors, batch 2 crosses images.
TEST_CASE("conv2d forward and conv2d_fwd_act on stem geometries match a direct loop", "[conv]") {
  Context cpu;
  uint64_t salt = 500;
  for (int64_t o : {16, 32, 48, 64, 80, 8, 24}) {
    for (const auto& [h, w] : {std::pair<int64_t, int64_t>{37, 29}, {64, 48}, {5, 3}}) {
      for (bool bias : {true, false}) {
        const Case c{2, h, w, 3, o, 6, 2, 2, 1, bias};
        const Conv2dParams p = params_of(c);
        for (DType dt : {DType::f64, DType::f32}) {
          Tensor x = test::random(x_shape(c), dt, test::seed(++salt));
          Tensor wt = test::random(w_shape(c), dt, test::seed(++salt));
          Tensor b = c.bias ? test::random({c.o}, dt, test::seed(++salt)) : Tensor();
          const Tensor ref = test::to_f64(naive_fwd(x, wt, b, p));
          Tensor silu_ref = clone(ref);
          double* r = silu_ref.data<double>();
          for (int64_t i = 0; i < silu_ref.numel(); ++i) r[i] = r[i] / (1.0 + std::exp(-r[i]));
          const test::Tol tol = dt == DType::f64 ? kConvF64 : kConvF32;
          const std::string what = std::string(dtype_name(dt)) + " " + describe(c);
          Tensor y = nan_filled(y_shape(c), dt);
          conv2d_fwd(cpu, x, wt, b, y, p);
          test::require_close(test::to_f64(y), ref, tol, "conv2d stem fwd " + what);
          y = nan_filled(y_shape(c), dt);
          conv2d_fwd_act(cpu, x, wt, b, y, p, Activation::silu);
          test::require_close(test::to_f64(y), silu_ref, tol, "conv2d_fwd_act stem silu " + what);
        }
      }
    }
  }
}

// The CPU's direct kernels (Note [CPU direct conv], Note [CPU conv2d backward-data by phases],
// Note [CPU direct conv weight gradient] in kernels/cpu/conv_direct.cpp) under every ISA cap:
// AVX-512, AVX2 and the baseline (im2col + GEMM everywhere). The cases cover k 1/2/3/4/5/6,
// strides 1 and 2, a pad (k 3, p 2, s 2) whose phases fall back to the patch path, a 1x1 stride-2
// conv whose odd phases get no tap, images smaller than the kernel, pads of k or more (output
// pixels no tap reaches), channel counts that are not a multiple of the vector width (the last
// vector's lanes masked: o 21, 40, 85, and the 1x1 conv with o 85 that takes the direct kernel for
// it; c 19 for the phases), the stem and other stride-2 even kernels over few channels (the weight
// gradient's space-to-depth layout), the channel limits and uneven edges.
TEST_CASE("conv2d direct CPU kernels match direct loops under every ISA", "[conv]") {
  Context cpu;
  const std::vector<Case> cases = {
      {2, 11, 13, 16, 16, 3, 1, 1, 1, true}, {2, 12, 9, 32, 48, 3, 2, 1, 1, true},
      {1, 9, 10, 16, 32, 3, 2, 2, 1, false}, {2, 7, 8, 8, 16, 5, 1, 2, 1, true},
      {1, 13, 11, 24, 16, 6, 2, 2, 1, true}, {1, 5, 4, 16, 16, 3, 2, 1, 1, false},
      {2, 3, 3, 16, 32, 3, 1, 1, 1, true},   {1, 6, 7, 64, 64, 3, 2, 1, 1, true},
      {1, 4, 5, 16, 8, 1, 2, 0, 1, false},   {1, 7, 6, 16, 16, 2, 2, 0, 1, true},
      {1, 5, 6, 128, 16, 3, 1, 1, 1, false}, {2, 9, 17, 8, 24, 3, 1, 1, 1, true},
      {1, 5, 6, 16, 16, 3, 1, 3, 1, true},   {1, 4, 4, 16, 16, 1, 2, 1, 1, true},
      {2, 9, 11, 16, 21, 3, 1, 1, 1, true},  {1, 10, 9, 19, 40, 3, 2, 1, 1, true},
      {1, 7, 8, 24, 85, 3, 1, 1, 1, true},   {2, 5, 6, 32, 85, 1, 1, 0, 1, true},
      {2, 37, 29, 3, 16, 6, 2, 2, 1, true},  {1, 9, 8, 4, 16, 2, 2, 0, 1, false},
      {1, 10, 11, 2, 8, 4, 2, 1, 1, true},
  };
  const std::pair<cpu::Isa, const char*> caps[] = {
      {cpu::Isa::avx512, "avx512"}, {cpu::Isa::avx2, "avx2"}, {cpu::Isa::baseline, "baseline"}};
  uint64_t salt = 700;
  for (const auto& [cap, cap_name] : caps) {
    const cpu::Isa previous = cpu::set_isa_cap(cap);
    for (const Case& c : cases) {
      const Conv2dParams p = params_of(c);
      const std::string what = std::string(cap_name) + " " + describe(c);
      Tensor x = test::random(x_shape(c), DType::f32, test::seed(++salt));
      Tensor w = test::random(w_shape(c), DType::f32, test::seed(++salt));
      Tensor b = c.bias ? test::random({c.o}, DType::f32, test::seed(++salt)) : Tensor();
      Tensor y = nan_filled(y_shape(c), DType::f32);
      conv2d_fwd_act(cpu, x, w, b, y, p, Activation::silu);
      Tensor ref = test::to_f64(naive_fwd(x, w, b, p));
      double* r = ref.data<double>();
      for (int64_t i = 0; i < ref.numel(); ++i) r[i] = r[i] / (1.0 + std::exp(-r[i]));
      test::require_close(test::to_f64(y), ref, kConvF32, "direct fwd silu " + what);
      Tensor dy = test::random(y_shape(c), DType::f32, test::seed(++salt));
      Tensor dx = nan_filled(x_shape(c), DType::f32);
      conv2d_bwd_data(cpu, dy, w, dx, p);
      test::require_close(dx, naive_bwd_data(dy, w, x_shape(c), p), kConvF32, "direct dx " + what);
      Tensor dw = nan_filled(w_shape(c), DType::f32);
      conv2d_bwd_filter(cpu, x, dy, dw, Tensor(), p, false);
      const Tensor dw_ref = naive_bwd_filter(x, dy, w_shape(c), p);
      test::require_close(dw, dw_ref, kConvF32, "direct dw " + what);
      // Accumulating adds onto what dw holds.
      Tensor dw0 = test::random(w_shape(c), DType::f32, test::seed(++salt));
      Tensor acc = clone(dw0);
      conv2d_bwd_filter(cpu, x, dy, acc, Tensor(), p, true);
      Tensor acc_ref = test::to_f64(dw0);
      const std::vector<double> add = dw_ref.to_double_vector();
      for (int64_t i = 0; i < acc_ref.numel(); ++i) acc_ref.data<double>()[i] += add[size_t(i)];
      test::require_close(test::to_f64(acc), acc_ref, kConvF32, "direct dw accumulate " + what);
    }
    cpu::set_isa_cap(previous);
  }
}

// Note [CPU direct conv weight gradient] (kernels/cpu/conv_direct.cpp): every dw element sums the
// same chunks in the same order whatever the number of threads, so 1, 2 and 3 threads give the same
// bits.
TEST_CASE("conv2d direct weight gradient does not depend on the number of threads", "[conv]") {
  Context cpu;
  // The last two are large enough to sum in several chunk groups (12 and 4) with partial
  // gradients: the 3x3 16 -> 16 layout, and the stem through its space-to-depth layout.
  const std::vector<Case> cases = {{2, 37, 29, 3, 16, 6, 2, 2, 1, false},
                                   {2, 23, 19, 16, 32, 3, 1, 1, 1, false},
                                   {1, 30, 30, 32, 64, 3, 2, 1, 1, false},
                                   {4, 128, 128, 16, 16, 3, 1, 1, 1, false},
                                   {4, 160, 160, 3, 16, 6, 2, 2, 1, false}};
  if (cpu::isa() == cpu::Isa::baseline) {
    WARN("skipped: this CPU has neither AVX2+FMA nor AVX-512, so no direct weight gradient");
    return;
  }
  const int threads = omp_get_max_threads();
  uint64_t salt = 800;
  for (cpu::Isa cap : {cpu::Isa::avx512, cpu::Isa::avx2}) {
    const cpu::Isa previous = cpu::set_isa_cap(cap);
    for (const Case& c : cases) {
      const Conv2dParams p = params_of(c);
      Tensor x = test::random(x_shape(c), DType::f32, test::seed(++salt));
      Tensor dy = test::random(y_shape(c), DType::f32, test::seed(++salt));
      std::vector<Tensor> dws;
      for (int t : {1, 2, 3}) {
        omp_set_num_threads(t);
        dws.push_back(nan_filled(w_shape(c), DType::f32));
        conv2d_bwd_filter(cpu, x, dy, dws.back(), Tensor(), p, false);
      }
      omp_set_num_threads(threads);
      for (size_t i = 1; i < dws.size(); ++i)
        REQUIRE(std::memcmp(dws[i].raw(), dws[0].raw(), dws[0].nbytes()) == 0);
      if (c.n == 4)  // the grouped sums are right, too
        test::require_close(dws[0], naive_bwd_filter(x, dy, w_shape(c), p), kConvF32Long,
                            "grouped direct dw " + describe(c));
    }
    cpu::set_isa_cap(previous);
  }
}

TEST_CASE("conv2d backward matches direct loops", "[conv]") {
  Context cpu;
  uint64_t salt = 200;
  for (const Case& c : kCases) {
    for (DType dt : {DType::f64, DType::f32}) {
      const Conv2dParams p = params_of(c);
      const std::string what = std::string(dtype_name(dt)) + " " + describe(c);
      const test::Tol tol = dt == DType::f64 ? kConvF64 : kConvF32;
      Tensor x = test::random(x_shape(c), dt, test::seed(++salt));
      Tensor w = test::random(w_shape(c), dt, test::seed(++salt));
      Tensor dy = test::random(y_shape(c), dt, test::seed(++salt));
      Tensor dx = nan_filled(x_shape(c), dt);
      conv2d_bwd_data(cpu, dy, w, dx, p);
      test::require_close(dx, naive_bwd_data(dy, w, x_shape(c), p), tol, "conv2d dx " + what);
      Tensor dw = nan_filled(w_shape(c), dt);
      Tensor db = c.bias ? nan_filled({c.o}, dt) : Tensor();
      conv2d_bwd_filter(cpu, x, dy, dw, db, p, false);
      test::require_close(dw, naive_bwd_filter(x, dy, w_shape(c), p), tol, "conv2d dw " + what);
      if (c.bias) test::require_close(db, naive_bias_grad(dy), tol, "conv2d dbias " + what);
    }
  }
}

TEST_CASE("conv2d splits large inputs into several patch chunks", "[conv]") {
  // Patch chunks (kPatchBytesPerThread per thread) with edges inside an image: 5x5 s1 over 64
  // channels (1600 patch columns, 192 lines of 64 pixels) and 6x6 s2 over 64 channels (2304
  // columns, 130 lines of 65 pixels; backward-data through col2im), several chunks each. f32 on
  // AVX2 / AVX-512 CPUs takes the direct kernels, so f32 also runs with the ISA capped to the
  // baseline, where it takes the patch path.
  Context cpu;
  const std::vector<Case> cases = {{3, 64, 64, 64, 16, 5, 1, 2, 1, true},
                                   {2, 130, 130, 64, 8, 6, 2, 2, 1, true}};
  const std::pair<DType, cpu::Isa> runs[] = {{DType::f32, cpu::Isa::avx512},
                                             {DType::f32, cpu::Isa::baseline},
                                             {DType::f64, cpu::Isa::avx512}};
  uint64_t salt = 300;
  for (const Case& c : cases) {
    const Conv2dParams p = params_of(c);
    for (const auto& [dt, cap] : runs) {
      const cpu::Isa previous = cpu::set_isa_cap(cap);
      const test::Tol tol = dt == DType::f64 ? kConvF64 : kConvF32;
      const std::string what = std::string(dtype_name(dt)) +
                               (cap == cpu::Isa::baseline ? " baseline " : " ") + describe(c);
      Tensor x = test::random(x_shape(c), dt, test::seed(++salt));
      Tensor w = test::random(w_shape(c), dt, test::seed(++salt), -0.1, 0.1);
      Tensor b = test::random({c.o}, dt, test::seed(++salt));
      Tensor y = nan_filled(y_shape(c), dt);
      conv2d_fwd(cpu, x, w, b, y, p);
      test::require_close(y, naive_fwd(x, w, b, p), tol, "conv2d chunked fwd " + what);
      Tensor dy = test::random(y_shape(c), dt, test::seed(++salt), -0.1, 0.1);
      Tensor dx = nan_filled(x_shape(c), dt);
      conv2d_bwd_data(cpu, dy, w, dx, p);
      test::require_close(dx, naive_bwd_data(dy, w, x_shape(c), p), tol,
                          "conv2d chunked dx " + what);
      Tensor dw = nan_filled(w_shape(c), dt);
      conv2d_bwd_filter(cpu, x, dy, dw, Tensor(), p, false);
      test::require_close(dw, naive_bwd_filter(x, dy, w_shape(c), p), tol,
                          "conv2d chunked dw " + what);
      cpu::set_isa_cap(previous);
    }
  }
}

TEST_CASE("conv2d gradients match finite differences", "[conv]") {
  Context cpu;
  const std::vector<Case> tiny = {
      {2, 5, 4, 3, 4, 3, 2, 1, 1, true}, {1, 5, 5, 3, 3, 3, 1, 1, 3, true},
      {1, 4, 3, 4, 2, 1, 1, 0, 1, true}, {1, 8, 7, 2, 3, 6, 2, 2, 1, false},
      {1, 5, 6, 4, 6, 3, 1, 1, 2, true}, {1, 6, 5, 2, 2, 5, 2, 2, 2, true},
  };
  uint64_t salt = 400;
  for (const Case& c : tiny) {
    const Conv2dParams p = params_of(c);
    Tensor x = test::random(x_shape(c), DType::f64, test::seed(++salt));
    Tensor w = test::random(w_shape(c), DType::f64, test::seed(++salt));
    Tensor b = c.bias ? test::random({c.o}, DType::f64, test::seed(++salt)) : Tensor();
    Tensor r = test::random(y_shape(c), DType::f64, test::seed(++salt));
    Tensor y = Tensor::empty_cpu(y_shape(c), DType::f64);
    auto loss = [&] {
      conv2d_fwd(cpu, x, w, b, y, p);
      return test::dot(y, r);
    };
    Tensor dx = Tensor::empty_cpu(x_shape(c), DType::f64);
    conv2d_bwd_data(cpu, r, w, dx, p);
    Tensor dw = Tensor::empty_cpu(w_shape(c), DType::f64);
    Tensor db = c.bias ? Tensor::empty_cpu({c.o}, DType::f64) : Tensor();
    conv2d_bwd_filter(cpu, x, r, dw, db, p, false);
    test::require_close(dx, test::numeric_grad(x, loss), kConvGrad, "conv2d dx " + describe(c));
    test::require_close(dw, test::numeric_grad(w, loss), kConvGrad, "conv2d dw " + describe(c));
    if (c.bias)
      test::require_close(db, test::numeric_grad(b, loss), kConvGrad, "conv2d db " + describe(c));
  }
}

TEST_CASE("conv2d bwd_filter accumulate adds to existing dw and dbias", "[conv]") {
  Context cpu;
  const std::vector<Case> cases = {{2, 6, 5, 4, 6, 1, 1, 0, 1, true},
                                   {2, 7, 6, 3, 5, 3, 2, 1, 1, true},
                                   {1, 6, 7, 4, 4, 3, 1, 1, 4, true}};
  uint64_t salt = 500;
  for (const Case& c : cases) {
    const Conv2dParams p = params_of(c);
    Tensor x = test::random(x_shape(c), DType::f64, test::seed(++salt));
    Tensor dy = test::random(y_shape(c), DType::f64, test::seed(++salt));
    Tensor dw0 = test::random(w_shape(c), DType::f64, test::seed(++salt));
    Tensor db0 = test::random({c.o}, DType::f64, test::seed(++salt));
    Tensor dw = clone(dw0), db = clone(db0);
    conv2d_bwd_filter(cpu, x, dy, dw, db, p, true);
    std::vector<double> want_w = dw0.to_double_vector(), want_b = db0.to_double_vector();
    const std::vector<double> gw = naive_bwd_filter(x, dy, w_shape(c), p).to_double_vector();
    const std::vector<double> gb = naive_bias_grad(dy).to_double_vector();
    for (size_t i = 0; i < want_w.size(); ++i) want_w[i] += gw[i];
    for (size_t i = 0; i < want_b.size(); ++i) want_b[i] += gb[i];
    test::require_close(dw, Tensor::from_vector(w_shape(c), want_w), kConvF64,
                        "conv2d accumulated dw " + describe(c));
    test::require_close(db, Tensor::from_vector({c.o}, want_b), kConvF64,
                        "conv2d accumulated dbias " + describe(c));
  }
}

TEST_CASE("conv2d argument errors name the shapes", "[conv]") {
  Context cpu;
  Conv2dParams p;
  p.pad_h = p.pad_w = 1;
  Tensor x = Tensor::zeros_cpu({2, 8, 8, 3});
  Tensor w = Tensor::zeros_cpu({16, 3, 3, 4});
  Tensor y = Tensor::zeros_cpu({2, 8, 8, 16});
  REQUIRE_THROWS_WITH(conv2d_fwd(cpu, x, w, Tensor(), y, p),
                      Catch::Contains("(2, 8, 8, 3)") && Catch::Contains("(16, 3, 3, 4)"));
  REQUIRE_THROWS_WITH(conv2d_out_shape(x, w, p),
                      Catch::Contains("(2, 8, 8, 3)") && Catch::Contains("(16, 3, 3, 4)"));
  Tensor w3 = Tensor::zeros_cpu({16, 3, 3, 3});
  REQUIRE(conv2d_out_shape(x, w3, p) == Shape{2, 8, 8, 16});
  Tensor y_bad = Tensor::zeros_cpu({2, 4, 4, 16});
  REQUIRE_THROWS_WITH(conv2d_fwd(cpu, x, w3, Tensor(), y_bad, p),
                      Catch::Contains("(2, 4, 4, 16)") && Catch::Contains("(2, 8, 8, 16)"));
  REQUIRE_THROWS_WITH(conv2d_bwd_data(cpu, y_bad, w3, x, p),
                      Catch::Contains("(2, 4, 4, 16)") && Catch::Contains("(2, 8, 8, 16)"));
  REQUIRE_THROWS_WITH(conv2d_bwd_filter(cpu, x, y_bad, w3, Tensor(), p, false),
                      Catch::Contains("(2, 4, 4, 16)") && Catch::Contains("(2, 8, 8, 16)"));
  Tensor bias_bad = Tensor::zeros_cpu({8});
  REQUIRE_THROWS_WITH(conv2d_fwd(cpu, x, w3, bias_bad, y, p),
                      Catch::Contains("(8)") && Catch::Contains("(16, 3, 3, 3)"));
  Tensor w64 = Tensor::zeros_cpu({16, 3, 3, 3}, DType::f64);
  REQUIRE_THROWS_WITH(conv2d_fwd(cpu, x, w64, Tensor(), y, p), Catch::Contains("f32 vs f64"));
  Conv2dParams grouped = p;
  grouped.groups = 3;
  Tensor w_g = Tensor::zeros_cpu({16, 3, 3, 1});
  REQUIRE_THROWS_WITH(conv2d_out_shape(x, w_g, grouped), Catch::Contains("not divisible"));
  Tensor w_big = Tensor::zeros_cpu({4, 11, 11, 3});
  REQUIRE_THROWS_WITH(conv2d_out_shape(x, w_big, p), Catch::Contains("does not fit"));
}

namespace {

struct CudaDtype {
  DType dtype;
  test::Tol tol;
};

// Runs fwd (with bias), bwd_data and bwd_filter (assign, then accumulate) on CUDA in `dt` and on
// the CPU in f32 from the same dt-representable inputs, and compares.
void check_cuda_against_cpu(Context& cuda, const Case& c, CudaDtype cd, uint64_t salt) {
  Context cpu;
  const Conv2dParams p = params_of(c);
  const std::string what = std::string(dtype_name(cd.dtype)) + " " + describe(c);
  auto input = [&](const Shape& s, double scale) {
    Tensor t = test::random(s, DType::f32, test::seed(++salt), -scale, scale);
    return test::to_f32(test::to_dtype(t, cd.dtype));
  };
  auto dev = [&](const Tensor& host_f32) {
    return cuda.to_device(test::to_dtype(host_f32, cd.dtype));
  };
  Tensor x = input(x_shape(c), 1.0), w = input(w_shape(c), 0.5), dy = input(y_shape(c), 1.0);
  Tensor b = c.bias ? input({c.o}, 1.0) : Tensor();
  Tensor dw0 = input(w_shape(c), 1.0), db0 = input({c.o}, 1.0);

  Tensor y_ref = Tensor::empty_cpu(y_shape(c));
  conv2d_fwd(cpu, x, w, b, y_ref, p);
  Tensor y = dev(nan_filled(y_shape(c), DType::f32));
  conv2d_fwd(cuda, dev(x), dev(w), c.bias ? dev(b) : Tensor(), y, p);
  test::require_close(test::host(cuda, y), y_ref, cd.tol, "conv2d cuda fwd " + what);

  Tensor dx_ref = Tensor::empty_cpu(x_shape(c));
  conv2d_bwd_data(cpu, dy, w, dx_ref, p);
  Tensor dx = dev(nan_filled(x_shape(c), DType::f32));
  conv2d_bwd_data(cuda, dev(dy), dev(w), dx, p);
  test::require_close(test::host(cuda, dx), dx_ref, cd.tol, "conv2d cuda dx " + what);

  for (bool accumulate : {false, true}) {
    Tensor dw_ref = clone(dw0), db_ref = clone(db0);
    conv2d_bwd_filter(cpu, x, dy, dw_ref, db_ref, p, accumulate);
    Tensor dw = dev(dw0), db = dev(db0);
    conv2d_bwd_filter(cuda, dev(x), dev(dy), dw, db, p, accumulate);
    const std::string how = accumulate ? " accumulate " : " ";
    test::require_close(test::host(cuda, dw), dw_ref, cd.tol, "conv2d cuda dw" + how + what);
    test::require_close(test::host(cuda, db), db_ref, cd.tol, "conv2d cuda dbias" + how + what);
  }
}

// Plain 1x1 (the cuBLAS path), strided/padded/grouped ones (cuDNN), the 6x6 s2 p2 stem, odd sizes.
const std::vector<Case> kCudaCases = {
    {2, 9, 7, 16, 24, 1, 1, 0, 1, true},     {3, 10, 10, 32, 8, 1, 1, 0, 1, false},
    {2, 8, 6, 16, 16, 1, 2, 0, 1, true},     {2, 7, 9, 16, 32, 3, 1, 1, 1, true},
    {2, 13, 11, 16, 32, 3, 2, 1, 1, false},  {2, 21, 19, 3, 16, 6, 2, 2, 1, true},
    {2, 9, 11, 8, 16, 5, 1, 2, 1, true},     {2, 11, 9, 32, 32, 3, 1, 1, 32, true},
    {2, 12, 10, 16, 16, 5, 2, 2, 16, false}, {2, 9, 9, 16, 24, 3, 1, 1, 2, true},
    {2, 5, 6, 32, 85, 1, 1, 0, 1, true},  // Detect-like: o not a multiple of 8, with bias
};

// Sets an environment variable for a scope and puts back what it was on the way out, failed checks
// included.
struct ScopedEnv {
  ScopedEnv(const char* name, const char* value) : name(name) {
    if (const char* old = std::getenv(name)) previous = old;
    ::setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (previous) {
      ::setenv(name, previous->c_str(), 1);
    } else {
      ::unsetenv(name);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
  const char* name;
  std::optional<std::string> previous;
};

}  // namespace

TEST_CASE("conv2d cuda matches cpu in f32", "[conv][cuda]") {
  auto cuda = test::cuda_or_skip();
  if (!cuda) return;
  uint64_t salt = 600;
  for (const Case& c : kCudaCases) {
    check_cuda_against_cpu(*cuda, c, {DType::f32, kConvCudaF32}, salt);
    salt += 16;
  }
}

TEST_CASE("conv2d cuda matches cpu in f16 and bf16", "[conv][cuda]") {
  auto cuda = test::cuda_or_skip();
  if (!cuda) return;
  uint64_t salt = 800;
  for (const Case& c : kCudaCases) {
    check_cuda_against_cpu(*cuda, c, {DType::f16, kConvCudaF16}, salt);
    check_cuda_against_cpu(*cuda, c, {DType::bf16, kConvCudaBF16}, salt + 8);
    salt += 16;
  }
}

// Note [Conv autotune] in kernels/cuda/conv_plan.cu: the first call of each direction times cuDNN's
// algorithms on scratch outputs. A fresh context whose first calls are a forward with bias (y
// already holds the bias) and an accumulating weight gradient must keep both; with
// YOLO_CONV_AUTOTUNE=0 the heuristic choice must give the same results.
TEST_CASE("conv2d cuda autotune keeps bias and accumulated gradients; off gives the same",
          "[conv][cuda]") {
  if (!test::cuda_or_skip()) return;
  for (const char* autotune : {"1", "0"}) {
    const ScopedEnv env("YOLO_CONV_AUTOTUNE", autotune);
    uint64_t salt = 900;
    for (const Case& c : kCudaCases) {
      if (!c.bias) continue;
      Context cuda(Device::cuda(0));  // fresh plans: these calls are each shape's first
      Context cpu;
      const Conv2dParams p = params_of(c);
      const std::string what = std::string("autotune=") + autotune + " " + describe(c);
      Tensor x = test::random(x_shape(c), DType::f32, test::seed(++salt));
      Tensor w = test::random(w_shape(c), DType::f32, test::seed(++salt), -0.5, 0.5);
      Tensor b = test::random({c.o}, DType::f32, test::seed(++salt));
      Tensor dy = test::random(y_shape(c), DType::f32, test::seed(++salt));
      Tensor dw0 = test::random(w_shape(c), DType::f32, test::seed(++salt));
      Tensor db0 = test::random({c.o}, DType::f32, test::seed(++salt));
      Tensor y_ref = Tensor::empty_cpu(y_shape(c));
      conv2d_fwd(cpu, x, w, b, y_ref, p);
      Tensor y = cuda.empty(y_shape(c), DType::f32);
      conv2d_fwd(cuda, cuda.to_device(x), cuda.to_device(w), cuda.to_device(b), y, p);
      test::require_close(test::host(cuda, y), y_ref, kConvCudaF32, "conv2d cuda fwd " + what);
      Tensor dw_ref = clone(dw0), db_ref = clone(db0);
      conv2d_bwd_filter(cpu, x, dy, dw_ref, db_ref, p, true);
      Tensor dw = cuda.to_device(dw0), db = cuda.to_device(db0);
      conv2d_bwd_filter(cuda, cuda.to_device(x), cuda.to_device(dy), dw, db, p, true);
      test::require_close(test::host(cuda, dw), dw_ref, kConvCudaF32,
                          "conv2d cuda accumulated dw " + what);
      test::require_close(test::host(cuda, db), db_ref, kConvCudaF32,
                          "conv2d cuda accumulated dbias " + what);
    }
  }
}
