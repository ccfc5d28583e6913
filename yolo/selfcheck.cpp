// `yolo selfcheck` implementation: each check runs on the CPU, and on CUDA when usable, with the
// same random inputs, and compares the results element by element.
#include "yolo/selfcheck.h"

#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/context.h"
#include "kernels/random.h"

namespace yolo {

const char* version_string() { return YOLO_VERSION; }

namespace {

struct Check {
  const char* name;
  // Runs the op on ctx with inputs drawn from seed; returns the outputs as host f32 tensors.
  std::function<std::vector<Tensor>(Context& ctx, uint64_t seed)> run;
  double atol, rtol;
};

Tensor random_on(Context& ctx, const Shape& s, uint64_t seed, uint64_t offset) {
  Tensor t = ctx.empty(s, DType::f32);
  fill_uniform(ctx, t, seed, offset, -1.0f, 1.0f);
  return t;
}

std::vector<Check> checks() {
  std::vector<Check> c;
  c.push_back({"philox uniform fill",
               [](Context& ctx, uint64_t seed) {
                 return std::vector<Tensor>{ctx.to_host(random_on(ctx, {4097}, seed, 0))};
               },
               0.0, 0.0});
  return c;
}

// Largest violation of |a - b| <= atol + rtol |b| as a fraction of the allowance (> 1 fails).
double worst_ratio(const Tensor& a, const Tensor& b, double atol, double rtol) {
  const std::vector<float> va = a.to_float_vector(), vb = b.to_float_vector();
  if (va.size() != vb.size()) return INFINITY;
  double worst = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    const double err = std::fabs(double(va[i]) - double(vb[i]));
    const double allowed = atol + rtol * std::fabs(double(vb[i]));
    if (!std::isfinite(va[i])) return INFINITY;
    const double r = allowed > 0 ? err / allowed : (err == 0 ? 0 : INFINITY);
    if (r > worst) worst = r;
  }
  return worst;
}

}  // namespace

bool run_selfcheck(std::FILE* out) {
  Context cpu;
  std::unique_ptr<Context> cuda;
  const int n = cuda_device_count();
  if (n > 0) {
    cuda = std::make_unique<Context>(Device::cuda(0));
    std::fprintf(out, "selfcheck: cpu and cuda:0\n");
  } else {
    std::fprintf(out, "selfcheck: cpu only (%s)\n", cuda_unavailable_reason().c_str());
  }
  bool all_ok = true;
  const uint64_t seed = 20260101;
  for (const Check& check : checks()) {
    const std::vector<Tensor> ref = check.run(cpu, seed);
    bool finite = true;
    for (const Tensor& t : ref)
      for (float v : t.to_float_vector()) finite = finite && std::isfinite(v);
    std::string status = finite ? "ok" : "FAIL (non-finite cpu output)";
    all_ok = all_ok && finite;
    if (cuda) {
      const std::vector<Tensor> got = check.run(*cuda, seed);
      double worst = 0;
      for (size_t i = 0; i < ref.size(); ++i)
        worst = std::max(worst, worst_ratio(got[i], ref[i], check.atol, check.rtol));
      const bool ok = worst <= 1.0;
      all_ok = all_ok && ok;
      char buf[96];
      std::snprintf(buf, sizeof buf, "%s (cuda vs cpu: %.1f%% of tolerance)", ok ? "ok" : "FAIL",
                    worst * 100.0);
      status = buf;
    }
    std::fprintf(out, "  %-32s %s\n", check.name, status.c_str());
  }
  std::fprintf(out, "selfcheck: %s\n", all_ok ? "all passed" : "FAILED");
  return all_ok;
}

}  // namespace yolo
