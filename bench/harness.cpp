// Benchmark harness implementation (bench/harness.h): comparison against the CPU reference, random
// inputs, buffer rotation, timing, the measured peaks, and the table / JSON-lines output.
#include "bench/harness.h"

#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "bench/cuda_baseline.h"
#include "kernels/elementwise.h"
#include "kernels/random.h"

namespace yolo::bench {

Tensor host_f32(Context& ctx, const Tensor& t) {
  Tensor h = t.device().is_cpu() ? t : ctx.to_host(t);
  if (h.dtype() == DType::f32) return h;
  Context cpu(Device::cpu());
  Tensor out = Tensor::empty_cpu(h.shape(), DType::f32);
  cast(cpu, h, out);
  return out;
}

std::string compare(Context& ctx, const Tensor& got, const Tensor& ref, Tol tol,
                    const std::string& what) {
  if (got.numel() != ref.numel()) {
    return what + ": " + got.str() + " vs reference " + ref.str() + " differ in size";
  }
  const Tensor g = host_f32(ctx, got), r = host_f32(ctx, ref);
  const float* gp = g.data<float>();
  const float* rp = r.data<float>();
  double worst = -1.0;
  int64_t worst_i = 0;
  for (int64_t i = 0; i < g.numel(); ++i) {
    const double d = std::fabs(double(gp[i]) - double(rp[i]));
    const double allowed = tol.atol + tol.rtol * std::fabs(double(rp[i]));
    const double used = !std::isfinite(gp[i]) ? INFINITY : d == 0 ? 0.0 : d / allowed;
    if (used > worst) {
      worst = used;
      worst_i = i;
    }
  }
  if (worst <= 1.0) return "";
  std::ostringstream s;
  s << what << ": worst element " << worst_i << " got " << gp[worst_i] << " ref " << rp[worst_i]
    << " (" << worst << "x the allowed error, atol " << tol.atol << " rtol " << tol.rtol << ")";
  return s.str();
}

Tensor uniform(Context& ctx, const Shape& shape, DType dtype, uint64_t seed, float lo, float hi) {
  Tensor f = ctx.empty(shape, DType::f32);
  fill_uniform(ctx, f, seed, 0, lo, hi);
  if (dtype == DType::f32) return f;
  Tensor out = ctx.empty(shape, dtype);
  cast(ctx, f, out);
  return out;
}

int rotation_sets(Context& ctx, double bytes_per_set) {
  const double l2 = ctx.device().is_cuda() ? double(cuda_l2_bytes(ctx)) : 32.0 * (1 << 20);
  if (bytes_per_set <= 0 || bytes_per_set >= 3 * l2) return 1;
  return static_cast<int>(std::min(16.0, std::max(2.0, std::ceil(3 * l2 / bytes_per_set))));
}

Timing time_fn(Context& ctx, const std::function<void(int)>& fn, int warmup, int repeats) {
  std::vector<double> us;
  if (ctx.device().is_cuda()) {
    us = cuda_time_us(ctx, fn, warmup, repeats);
  } else {
    for (int i = 0; i < warmup; ++i) fn(i);
    for (int r = 0; r < repeats; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      fn(warmup + r);
      const auto t1 = std::chrono::steady_clock::now();
      us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    }
  }
  std::sort(us.begin(), us.end());
  Timing t;
  t.median_us = us.size() % 2 ? us[us.size() / 2] : 0.5 * (us[us.size() / 2 - 1] + us[us.size() / 2]);
  t.min_us = us.front();
  return t;
}

namespace {

double cpu_copy_peak_gbps() {
  const size_t bytes = size_t(256) << 20;
  std::vector<char> a(bytes, 1), b(bytes, 0);
  const int64_t chunks = 64;
  const size_t chunk = bytes / chunks;
  std::vector<double> us;
  for (int r = 0; r < 8; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < chunks; ++i) std::memcpy(b.data() + i * chunk, a.data() + i * chunk, chunk);
    const auto t1 = std::chrono::steady_clock::now();
    if (r > 0) us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  std::sort(us.begin(), us.end());
  return 2.0 * double(bytes) / (us.front() * 1e3);
}

double cpu_sgemm_peak_tflops() {
  const int n = 2048;
  std::vector<float> a(size_t(n) * n, 0.5f), b(size_t(n) * n, 0.25f), c(size_t(n) * n, 0.f);
  std::vector<double> us;
  for (int r = 0; r < 4; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.f, a.data(), n, b.data(), n,
                0.f, c.data(), n);
    const auto t1 = std::chrono::steady_clock::now();
    if (r > 0) us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  std::sort(us.begin(), us.end());
  return 2.0 * double(n) * n * n / (us.front() * 1e6);
}

std::string json_escape(const std::string& s) {
  std::string o;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') {
      o += '\\';
      o += ch;
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", ch);
      o += buf;
    } else {
      o += ch;
    }
  }
  return o;
}

template <typename T>
std::string json_list(const std::vector<T>& v) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < v.size(); ++i) s << (i ? "," : "") << v[i];
  s << "]";
  return s.str();
}

std::string num(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace

Peaks measure_peaks(Context& ctx) {
  Peaks p;
  if (ctx.device().is_cuda()) {
    p.copy_gbps = cuda_copy_peak_gbps(ctx, size_t(1) << 30, 20);
    p.gemm_tflops_f32 = cuda_gemm_peak_tflops(ctx, DType::f32, 4096, 10);
    p.gemm_tflops_f16 = cuda_gemm_peak_tflops(ctx, DType::f16, 8192, 10);
  } else {
    p.copy_gbps = cpu_copy_peak_gbps();
    p.gemm_tflops_f32 = cpu_sgemm_peak_tflops();
  }
  return p;
}

Result run_row(Context& ctx, const RowSpec& spec, const Options& opt, const Peaks& peaks) {
  Result res;
  res.spec = spec;
  res.device = ctx.device().is_cuda() ? "cuda" : "cpu";
  try {
    Runner runner;
    if (!make_conv_runner(ctx, spec, runner) && !make_memory_runner(ctx, spec, runner) &&
        !make_optim_runner(ctx, spec, runner)) {
      res.status = "FAIL: no benchmark for op " + spec.op;
      return res;
    }
    const std::string bad = runner.validate();
    if (!bad.empty()) {
      res.status = "FAIL: " + bad;
      return res;
    }
    res.validated = true;
    // Warm up on every rotation set at least once, so first-touch page faults of freshly allocated
    // outputs are not timed.
    const Timing t = time_fn(ctx, runner.run, std::max(opt.warmup, runner.sets), opt.repeats);
    res.median_us = t.median_us;
    res.min_us = t.min_us;
    if (spec.bytes > 0) {
      res.gbps = spec.bytes / (t.median_us * 1e3);
      res.pct_peak = peaks.copy_gbps > 0 ? 100.0 * res.gbps / peaks.copy_gbps : 0;
    }
    if (spec.flops > 0) {
      res.tflops = spec.flops / (t.median_us * 1e6);
      const double peak = spec.dtype == DType::f16 ? peaks.gemm_tflops_f16 : peaks.gemm_tflops_f32;
      res.pct_peak = peak > 0 ? 100.0 * res.tflops / peak : 0;
    }
    res.status = "ok";
  } catch (const Error& e) {
    res.status = std::string("FAIL: ") + e.what();
  }
  return res;
}

std::string spec_json(const RowSpec& s) {
  std::ostringstream o;
  o << "{\"name\":\"" << json_escape(s.name) << "\",\"op\":\"" << s.op << "\",\"model\":\""
    << s.model << "\",\"dtype\":\"" << dtype_name(s.dtype) << "\",\"shape\":\""
    << json_escape(s.shape) << "\",\"n\":" << s.n << ",\"h\":" << s.h << ",\"w\":" << s.w
    << ",\"c\":" << s.c << ",\"out_c\":" << s.out_c << ",\"k\":" << s.k << ",\"stride\":"
    << s.stride << ",\"pad\":" << s.pad << ",\"bias\":" << (s.bias ? "true" : "false")
    << ",\"parts\":" << json_list(s.parts) << ",\"sizes\":" << json_list(s.sizes)
    << ",\"groups\":" << json_list(s.groups) << ",\"bytes\":" << num(s.bytes)
    << ",\"flops\":" << num(s.flops) << "}";
  return o.str();
}

std::string result_json(const Result& r) {
  std::ostringstream o;
  o << "{\"name\":\"" << json_escape(r.spec.name) << "\",\"device\":\"" << r.device
    << "\",\"dtype\":\"" << dtype_name(r.spec.dtype) << "\",\"shape\":\""
    << json_escape(r.spec.shape) << "\",\"median_us\":" << num(r.median_us)
    << ",\"min_us\":" << num(r.min_us) << ",\"gbps\":" << num(r.gbps)
    << ",\"tflops\":" << num(r.tflops) << ",\"pct_peak\":" << num(r.pct_peak)
    << ",\"peak_mib\":" << num(r.peak_mib)
    << ",\"validated\":" << (r.validated ? "true" : "false") << ",\"status\":\""
    << json_escape(r.status) << "\"}";
  return o.str();
}

void print_header(const Peaks& peaks, const Options& opt, const std::string& device_text) {
  std::printf("yolo_bench on %s: batch %d, image %d, %d repeats (median), %d warm-up\n",
              device_text.c_str(), opt.batch, opt.img, opt.repeats, opt.warmup);
  std::printf("measured peaks: copy %.1f GB/s (read + write)", peaks.copy_gbps);
  if (opt.device.is_cuda()) {
    std::printf(", cuBLAS GEMM f32 %.1f TFLOP/s, f16 %.1f TFLOP/s\n", peaks.gemm_tflops_f32,
                peaks.gemm_tflops_f16);
  } else {
    std::printf(", cblas_sgemm 2048^3 %.1f GFLOP/s\n", peaks.gemm_tflops_f32 * 1e3);
  }
  std::printf("%-44s %-4s %-32s %11s %11s %9s %8s %6s  %s\n", "name", "type", "shape",
              "median_us", "min_us", "GB/s", "TFLOP/s", "%peak", "status");
}

void print_result(const Result& r) {
  const bool ok = r.status == "ok";
  std::printf("%-44s %-4s %-32s %11.1f %11.1f %9.1f %8.3f %6.1f  %s\n", r.spec.name.c_str(),
              dtype_name(r.spec.dtype), r.spec.shape.c_str(), r.median_us, r.min_us, r.gbps,
              r.tflops, r.pct_peak, ok ? "ok" : r.status.c_str());
  std::fflush(stdout);
}

}  // namespace yolo::bench
