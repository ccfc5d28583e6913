// `yolo selfcheck` implementation: each check runs on the CPU, and on CUDA when usable, with the
// same random inputs, and compares the results element by element.
#include "yolo/selfcheck.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/context.h"
#include "kernels/activation.h"
#include "kernels/batchnorm.h"
#include "kernels/conv.h"
#include "kernels/elementwise.h"
#include "kernels/linalg.h"
#include "kernels/optim.h"
#include "kernels/pool.h"
#include "kernels/random.h"
#include "kernels/resample.h"

namespace yolo {

const char* version_string() {
  return YOLO_VERSION;
}

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

using Outputs = std::vector<Tensor>;

Outputs host_all(Context& ctx, const Outputs& ts) {
  Outputs out;
  for (const Tensor& t : ts) out.push_back(ctx.to_host(t));
  return out;
}

Outputs run_conv(Context& ctx, uint64_t seed, int k, int stride, int pad) {
  Conv2dParams p;
  p.stride_h = p.stride_w = stride;
  p.pad_h = p.pad_w = pad;
  Tensor x = random_on(ctx, {2, 13, 11, 8}, seed, 0), w = random_on(ctx, {16, k, k, 8}, seed, 1000);
  Tensor b = random_on(ctx, {16}, seed, 5000);
  Tensor y = ctx.empty(conv2d_out_shape(x, w, p), DType::f32);
  conv2d_fwd(ctx, x, w, b, y, p);
  Tensor dy = random_on(ctx, y.shape(), seed, 6000);
  Tensor dx = ctx.empty(x.shape(), DType::f32), dw = ctx.empty(w.shape(), DType::f32);
  Tensor db = ctx.empty({16}, DType::f32);
  conv2d_bwd_data(ctx, dy, w, dx, p);
  conv2d_bwd_filter(ctx, x, dy, dw, db, p, false);
  return host_all(ctx, {y, dx, dw, db});
}

std::vector<Check> checks() {
  std::vector<Check> c;
  c.push_back({"philox uniform fill",
               [](Context& ctx, uint64_t seed) {
                 return Outputs{ctx.to_host(random_on(ctx, {4097}, seed, 0))};
               },
               0.0, 0.0});
  c.push_back({"conv2d 1x1 fwd/bwd",
               [](Context& ctx, uint64_t s) { return run_conv(ctx, s, 1, 1, 0); }, 1e-4, 1e-4});
  c.push_back({"conv2d 3x3 s2 fwd/bwd",
               [](Context& ctx, uint64_t s) { return run_conv(ctx, s, 3, 2, 1); }, 1e-4, 1e-4});
  c.push_back({"conv2d 6x6 s2 p2 fwd/bwd",
               [](Context& ctx, uint64_t s) { return run_conv(ctx, s, 6, 2, 2); }, 1e-4, 1e-4});
  c.push_back(
      {"batchnorm+silu train fwd/bwd",
       [](Context& ctx, uint64_t s) {
         Tensor x = random_on(ctx, {4, 9, 7, 24}, s, 0), dy = random_on(ctx, x.shape(), s, 9000);
         Tensor g = random_on(ctx, {24}, s, 20000), b = random_on(ctx, {24}, s, 21000);
         Tensor rm = ctx.zeros({24}, DType::f32), rv = ctx.zeros({24}, DType::f32);
         Tensor mean = ctx.empty({24}, DType::f32), invstd = ctx.empty({24}, DType::f32);
         Tensor y = ctx.empty(x.shape(), DType::f32), dx = ctx.empty(x.shape(), DType::f32);
         Tensor dg = ctx.empty({24}, DType::f32), db = ctx.empty({24}, DType::f32);
         batchnorm_fwd_train(ctx, x, g, b, rm, rv, mean, invstd, y, 0.03, 1e-3, Activation::silu);
         batchnorm_bwd(ctx, x, dy, g, b, mean, invstd, dx, dg, db, Activation::silu, false);
         return host_all(ctx, {y, rm, rv, dx, dg, db});
       },
       1e-4, 1e-4});
  c.push_back({"silu / sigmoid fwd/bwd",
               [](Context& ctx, uint64_t s) {
                 Tensor x = random_on(ctx, {1000}, s, 0), dy = random_on(ctx, {1000}, s, 500);
                 Tensor y = ctx.empty({1000}, DType::f32), dx = ctx.empty({1000}, DType::f32);
                 Tensor z = ctx.empty({1000}, DType::f32), dz = ctx.empty({1000}, DType::f32);
                 silu_fwd(ctx, x, y);
                 silu_bwd(ctx, x, dy, dx);
                 sigmoid_fwd(ctx, x, z);
                 sigmoid_bwd(ctx, z, dy, dz);
                 return host_all(ctx, {y, dx, z, dz});
               },
               1e-6, 1e-5});
  c.push_back({"add / mul / cast f16",
               [](Context& ctx, uint64_t s) {
                 Tensor a = random_on(ctx, {777}, s, 0), b = random_on(ctx, {777}, s, 300);
                 Tensor sum = ctx.empty({777}, DType::f32), prod = ctx.empty({777}, DType::f32);
                 Tensor h = ctx.empty({777}, DType::f16), back = ctx.empty({777}, DType::f32);
                 add(ctx, a, b, sum);
                 mul(ctx, a, b, prod);
                 cast(ctx, sum, h);
                 cast(ctx, h, back);
                 return host_all(ctx, {sum, prod, back});
               },
               0.0, 1e-6});
  c.push_back(
      {"maxpool / sppf fwd/bwd",
       [](Context& ctx, uint64_t s) {
         Tensor x = random_on(ctx, {2, 10, 9, 8}, s, 0);
         Tensor y = ctx.empty(x.shape(), DType::f32), dx = ctx.empty(x.shape(), DType::f32);
         maxpool_fwd(ctx, x, y, 5);
         maxpool_bwd(ctx, x, y, dx, 5);
         Tensor out = ctx.empty({2, 10, 9, 32}, DType::f32), dsx = ctx.empty(x.shape(), DType::f32);
         sppf_fwd(ctx, x, out, 5);
         sppf_bwd(ctx, out, out, dsx, 5);
         return host_all(ctx, {y, dx, out, dsx});
       },
       1e-6, 1e-6});
  c.push_back(
      {"upsample / concat fwd/bwd",
       [](Context& ctx, uint64_t s) {
         Tensor x = random_on(ctx, {2, 5, 7, 8}, s, 0), z = random_on(ctx, {2, 10, 14, 4}, s, 900);
         Tensor up = ctx.empty({2, 10, 14, 8}, DType::f32), dx = ctx.empty(x.shape(), DType::f32);
         upsample_nearest2x_fwd(ctx, x, up);
         upsample_nearest2x_bwd(ctx, up, dx);
         Tensor cat = ctx.empty({2, 10, 14, 12}, DType::f32);
         concat_channels_fwd(ctx, {up, z}, cat);
         Tensor d1 = ctx.empty(up.shape(), DType::f32), d2 = ctx.empty(z.shape(), DType::f32);
         concat_channels_bwd(ctx, cat, {d1, d2});
         return host_all(ctx, {up, dx, cat, d1, d2});
       },
       1e-6, 1e-6});
  c.push_back({"gemm / sum / bce-with-logits",
               [](Context& ctx, uint64_t s) {
                 Tensor a = random_on(ctx, {37, 19}, s, 0), b = random_on(ctx, {23, 19}, s, 1000);
                 Tensor m = ctx.empty({37, 23}, DType::f32);
                 gemm(ctx, false, true, 1.0, a, b, 0.0, m);
                 Tensor total = ctx.empty({1}, DType::f32);
                 sum_all(ctx, m, total);
                 Tensor t = random_on(ctx, {37, 23}, s, 3000), loss = ctx.empty({1}, DType::f32);
                 bce_with_logits_fwd(ctx, m, t, 1.0, loss);
                 Tensor dl = ctx.empty(m.shape(), DType::f32);
                 bce_with_logits_bwd(ctx, m, t, 1.0, loss, dl);
                 return host_all(ctx, {m, total, loss, dl});
               },
               1e-4, 1e-4});
  c.push_back({"sgd / adamw steps",
               [](Context& ctx, uint64_t s) {
                 Tensor p = random_on(ctx, {5000}, s, 0), g = random_on(ctx, {5000}, s, 2000);
                 Tensor q = random_on(ctx, {5000}, s, 0);
                 Tensor buf = ctx.zeros({5000}, DType::f32), m = ctx.zeros({5000}, DType::f32);
                 Tensor v = ctx.zeros({5000}, DType::f32);
                 std::vector<float> hv(2 * kHyperStride, 0.0f);
                 for (int r = 0; r < 2; ++r) {
                   hv[r * kHyperStride + kHyperLr] = 0.01f * float(r + 1);
                   hv[r * kHyperStride + kHyperWeightDecay] = 5e-4f * float(r);
                   hv[r * kHyperStride + kHyperMomentum] = 0.937f;
                   hv[r * kHyperStride + kHyperBeta2] = 0.999f;
                   hv[r * kHyperStride + kHyperEps] = 1e-8f;
                   hv[r * kHyperStride + kHyperStep] = 1.0f;
                 }
                 Tensor hyper = ctx.to_device(Tensor::from_vector({2, kHyperStride}, hv));
                 const std::vector<OptimSegment> segs{{0, 3000, 0}, {3000, 5000, 1}};
                 sgd_step(ctx, p, g, buf, segs, hyper, true);
                 adam_step(ctx, q, g, m, v, segs, hyper, true);
                 return host_all(ctx, {p, buf, q, m, v});
               },
               1e-6, 1e-5});
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
