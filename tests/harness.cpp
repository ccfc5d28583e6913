// Test harness implementation (see tests/harness.h).
#include "tests/harness.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>

#include "core/philox.h"

namespace yolo::test {

uint64_t base_seed() {
  static const uint64_t s = []() -> uint64_t {
    if (const char* env = std::getenv("YOLO_TEST_SEED")) return std::strtoull(env, nullptr, 10);
    std::random_device rd;
    return (uint64_t(rd()) << 32) ^ rd();
  }();
  return s;
}

uint64_t seed(uint64_t salt) {
  const Philox4 r = philox4x32_10(Philox4{{uint32_t(salt), uint32_t(salt >> 32), 0x5eedu, 0u}},
                                  PhiloxKey{{uint32_t(base_seed()), uint32_t(base_seed() >> 32)}});
  return (uint64_t(r.v[0]) << 32) | r.v[1];
}

Tensor random(const Shape& shape, DType dtype, uint64_t s, double lo, double hi) {
  YOLO_CHECK(dtype == DType::f32 || dtype == DType::f64, "test::random supports f32 and f64");
  Tensor t = Tensor::empty_cpu(shape, dtype);
  const int64_t n = t.numel();
  for (int64_t b = 0; b * 4 < n; ++b) {
    const Philox4 r = philox_block(s, 0, uint64_t(b));
    for (int j = 0; j < 4 && b * 4 + j < n; ++j) {
      // 53-bit-ish uniform from two words keeps f64 inputs dense.
      const double u =
          (double(r.v[j] >> 5) * 67108864.0 + double(r.v[(j + 1) & 3] >> 6)) / 9007199254740992.0;
      const double v = lo + (hi - lo) * u;
      if (dtype == DType::f32)
        t.data<float>()[b * 4 + j] = float(v);
      else
        t.data<double>()[b * 4 + j] = v;
    }
  }
  return t;
}

Tensor to_f64(const Tensor& t) {
  const std::vector<double> v = t.to_double_vector();
  return Tensor::from_vector(t.shape(), v);
}

Tensor to_f32(const Tensor& t) {
  const std::vector<float> v = t.to_float_vector();
  return Tensor::from_vector(t.shape(), v);
}

Tensor to_dtype(const Tensor& t, DType dtype) {
  if (dtype == DType::f64) return to_f64(t);
  if (dtype == DType::f32) return to_f32(t);
  YOLO_CHECK(dtype == DType::f16 || dtype == DType::bf16, "test::to_dtype: unsupported dtype");
  const std::vector<float> v = t.to_float_vector();
  Tensor out = Tensor::empty_cpu(t.shape(), dtype);
  for (size_t i = 0; i < v.size(); ++i) {
    if (dtype == DType::f16)
      out.data<Half>()[i] = float_to_half(v[i]);
    else
      out.data<BFloat16>()[i] = float_to_bf16(v[i]);
  }
  return out;
}

Tensor round_through(const Tensor& t, DType dtype) {
  return to_f32(to_dtype(t, dtype));
}

Tensor host(const Context& ctx, const Tensor& t) {
  if (t.device().is_cpu()) return t;
  return ctx.to_host(t);
}

CloseReport compare(const Tensor& got, const Tensor& ref, Tol tol) {
  CloseReport r;
  std::ostringstream msg;
  if (got.shape() != ref.shape()) {
    r.ok = false;
    msg << "shape " << shape_str(got.shape()) << " vs reference " << shape_str(ref.shape());
    r.message = msg.str();
    return r;
  }
  const std::vector<double> g = got.to_double_vector();
  const std::vector<double> e = ref.to_double_vector();
  double worst_ratio = -1.0;
  int64_t worst = -1;
  int64_t bad = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    const double allowed = tol.atol + tol.rtol * std::fabs(e[i]);
    const double err = std::fabs(g[i] - e[i]);
    // err == 0 passes even with a zero allowance (an exact tolerance {0, 0}).
    double ratio = !(std::isfinite(g[i]) && std::isfinite(e[i])) ? INFINITY
                   : err == 0.0                                  ? 0.0
                                                                 : err / allowed;
    if (std::isnan(ratio)) ratio = INFINITY;
    if (ratio > 1.0) ++bad;
    if (ratio > worst_ratio) {
      worst_ratio = ratio;
      worst = int64_t(i);
    }
  }
  r.ok = bad == 0;
  msg.precision(9);
  if (worst >= 0) {
    msg << (r.ok ? "ok" : "MISMATCH") << ": " << bad << " of " << g.size()
        << " elements outside tolerance; worst at flat index " << worst << ": got " << g[worst]
        << ", reference " << e[worst] << ", used " << worst_ratio * 100.0
        << "% of allowed error (atol " << tol.atol << ", rtol " << tol.rtol << ")";
  } else {
    msg << "empty tensors";
  }
  msg << " [YOLO_TEST_SEED=" << base_seed() << "]";
  r.message = msg.str();
  return r;
}

void require_close(const Tensor& got, const Tensor& ref, Tol tol, const std::string& what) {
  const CloseReport r = compare(got, ref, tol);
  INFO(what << ": " << r.message);
  REQUIRE(r.ok);
}

Tensor numeric_grad(const Tensor& x, const std::function<double()>& f, double h) {
  YOLO_CHECK(x.dtype() == DType::f64 && x.device().is_cpu(),
             "numeric_grad needs a host f64 tensor");
  Tensor g = Tensor::empty_cpu(x.shape(), DType::f64);
  double* px = x.data<double>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double keep = px[i];
    px[i] = keep + h;
    const double fp = f();
    px[i] = keep - h;
    const double fm = f();
    px[i] = keep;
    g.data<double>()[i] = (fp - fm) / (2.0 * h);
  }
  return g;
}

double dot(const Tensor& a, const Tensor& b) {
  const std::vector<double> va = a.to_double_vector(), vb = b.to_double_vector();
  YOLO_CHECK(va.size() == vb.size(), "dot: sizes differ");
  double s = 0;
  for (size_t i = 0; i < va.size(); ++i) s += va[i] * vb[i];
  return s;
}

std::unique_ptr<Context> cuda_or_skip() {
  if (cuda_device_count() == 0) {
    // On a machine that has a GPU (tools/gpu_check.sh sets YOLO_REQUIRE_CUDA=1), a skip would read
    // as a pass: fail instead.
    const char* required = std::getenv("YOLO_REQUIRE_CUDA");
    if (required && std::string(required) == "1")
      FAIL("YOLO_REQUIRE_CUDA=1 but no usable CUDA device: " << cuda_unavailable_reason());
    WARN("skipped: " << cuda_unavailable_reason());
    return nullptr;
  }
  return std::make_unique<Context>(Device::cuda(0));
}

}  // namespace yolo::test
