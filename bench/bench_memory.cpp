// Memory-bound rows (GB/s and % of the copy bandwidth; the target is >= 70%): BN+SiLU training
// forward and backward, nearest 2x upsample, channel concat, SPPF, single max pool, residual add
// and cast. Each is an OpDef (inputs, outputs, the op, the CPU reference) run by one generic runner
// that validates set 0 against the reference, then rotates input sets while timing.
#include <memory>

#include "bench/harness.h"
#include "kernels/activation.h"
#include "kernels/batchnorm.h"
#include "kernels/elementwise.h"
#include "kernels/pool.h"
#include "kernels/resample.h"

namespace yolo::bench {
namespace {

// Data movement is exact in every dtype; f16 arithmetic rows round inputs and outputs to f16 and
// are compared with an f32 reference on the same (rounded) inputs.
constexpr Tol kExact{0, 0};
constexpr Tol kAddF32{1e-6, 1e-6};
constexpr Tol kAddF16{1e-3, 1e-3};
constexpr Tol kBnF32{1e-4, 1e-4};
constexpr Tol kBnF16{1e-2, 1e-2};
// dgamma / dbeta are sums over N*H*W terms of size O(1): relative error of a long f32 sum.
constexpr Tol kBnParamGrad{1e-2, 1e-4};
constexpr double kBnMomentum = 0.03, kBnEps = 1e-3;

using Tensors = std::vector<Tensor>;

struct Input {
  Shape shape;
  DType dtype;
  float lo = -1.f, hi = 1.f;
};

struct OpDef {
  std::vector<Input> inputs;
  std::vector<std::pair<Shape, DType>> outputs;
  std::vector<Tol> tols;  // one per output
  std::vector<std::string> names;  // one per output
  // Optional: derives inputs on the device after the random fill (e.g. saved statistics).
  std::function<void(Context&, Tensors&)> prepare;
  std::function<void(Context&, const Tensors& in, const Tensors& out)> op;
  // The CPU reference: inputs as host f32 copies, returns the expected outputs.
  std::function<Tensors(Context& cpu, const Tensors& in)> reference;
};

Runner generic_runner(Context& ctx, OpDef def) {
  struct Set {
    Tensors in, out;
  };
  double bytes = 0;
  for (const Input& i : def.inputs) bytes += double(shape_numel(i.shape) * dtype_size(i.dtype));
  for (const auto& o : def.outputs) bytes += double(shape_numel(o.first) * dtype_size(o.second));
  auto d = std::make_shared<OpDef>(std::move(def));
  auto sets = std::make_shared<std::vector<Set>>();
  Runner r;
  r.sets = rotation_sets(ctx, bytes);
  for (int s = 0; s < r.sets; ++s) {
    Set st;
    for (size_t i = 0; i < d->inputs.size(); ++i) {
      const Input& in = d->inputs[i];
      st.in.push_back(uniform(ctx, in.shape, in.dtype, 1000 * (s + 1) + i, in.lo, in.hi));
    }
    if (d->prepare) d->prepare(ctx, st.in);
    for (const auto& o : d->outputs) st.out.push_back(ctx.empty(o.first, o.second));
    sets->push_back(std::move(st));
  }
  r.run = [&ctx, d, sets](int i) {
    const Set& st = (*sets)[size_t(i) % sets->size()];
    d->op(ctx, st.in, st.out);
  };
  r.validate = [&ctx, d, sets]() -> std::string {
    const Set& st = (*sets)[0];
    Tensors host_in;
    for (const Tensor& t : st.in) host_in.push_back(host_f32(ctx, t));
    Context cpu(Device::cpu());
    const Tensors ref = d->reference(cpu, host_in);
    d->op(ctx, st.in, st.out);
    for (size_t o = 0; o < st.out.size(); ++o) {
      std::string bad = compare(ctx, st.out[o], ref[o], d->tols[o], d->names[o]);
      if (!bad.empty()) return bad;
    }
    return "";
  };
  return r;
}

Shape nhwc(const RowSpec& s) { return {s.n, s.h, s.w, s.c}; }
Tensor host_empty(const Shape& shape) { return Tensor::empty_cpu(shape, DType::f32); }

OpDef bn_silu_fwd_def(const RowSpec& s) {
  OpDef d;
  const Shape x = nhwc(s), c{s.c};
  d.inputs = {{x, s.dtype, -2.f, 2.f}, {c, DType::f32, 0.5f, 1.5f}, {c, DType::f32, -0.5f, 0.5f},
              {c, DType::f32, -0.1f, 0.1f}, {c, DType::f32, 0.9f, 1.1f}};
  d.outputs = {{x, s.dtype}, {c, DType::f32}, {c, DType::f32}};
  const Tol t = s.dtype == DType::f32 ? kBnF32 : kBnF16;
  d.tols = {t, kBnF32, kBnF32};
  d.names = {"bn+silu fwd y", "save_mean", "save_invstd"};
  d.op = [](Context& ctx, const Tensors& in, const Tensors& out) {
    batchnorm_fwd_train(ctx, in[0], in[1], in[2], in[3], in[4], out[1], out[2], out[0], kBnMomentum,
                        kBnEps, Activation::silu);
  };
  // Reference: unfused CPU batch norm, then a separate SiLU.
  d.reference = [x, c](Context& cpu, const Tensors& in) {
    Tensors out = {host_empty(x), host_empty(c), host_empty(c)};
    batchnorm_fwd_train(cpu, in[0], in[1], in[2], in[3], in[4], out[1], out[2], out[0], kBnMomentum,
                        kBnEps, Activation::none);
    silu_fwd(cpu, out[0], out[0]);
    return out;
  };
  return d;
}

// Eval forward: y = silu(BN(x)) with the running statistics, one pass.
OpDef bn_silu_eval_def(const RowSpec& s) {
  OpDef d;
  const Shape x = nhwc(s), c{s.c};
  // x, gamma, beta, running_mean, running_var.
  d.inputs = {{x, s.dtype, -2.f, 2.f}, {c, DType::f32, 0.5f, 1.5f}, {c, DType::f32, -0.5f, 0.5f},
              {c, DType::f32, -0.1f, 0.1f}, {c, DType::f32, 0.5f, 1.5f}};
  d.outputs = {{x, s.dtype}};
  d.tols = {s.dtype == DType::f32 ? kBnF32 : kBnF16};
  d.names = {"bn+silu eval y"};
  d.op = [](Context& ctx, const Tensors& in, const Tensors& out) {
    batchnorm_fwd_eval(ctx, in[0], in[1], in[2], in[3], in[4], out[0], kBnEps, Activation::silu);
  };
  d.reference = [x](Context& cpu, const Tensors& in) {
    Tensors out = {host_empty(x)};
    batchnorm_fwd_eval(cpu, in[0], in[1], in[2], in[3], in[4], out[0], kBnEps, Activation::none);
    silu_fwd(cpu, out[0], out[0]);
    return out;
  };
  return d;
}

OpDef bn_silu_bwd_def(const RowSpec& s) {
  OpDef d;
  const Shape x = nhwc(s), c{s.c};
  // x, dy, gamma, beta, save_mean, save_invstd (the last two filled by prepare from a forward).
  d.inputs = {{x, s.dtype, -2.f, 2.f}, {x, s.dtype, -1.f, 1.f}, {c, DType::f32, 0.5f, 1.5f},
              {c, DType::f32, -0.5f, 0.5f}, {c, DType::f32, 0.f, 1.f}, {c, DType::f32, 0.f, 1.f}};
  d.outputs = {{x, s.dtype}, {c, DType::f32}, {c, DType::f32}};
  d.tols = {s.dtype == DType::f32 ? kBnF32 : kBnF16, kBnParamGrad, kBnParamGrad};
  d.names = {"bn+silu bwd dx", "dgamma", "dbeta"};
  d.prepare = [x, c](Context& ctx, Tensors& in) {
    Tensor rm = ctx.zeros(c, DType::f32), rv = ctx.zeros(c, DType::f32);
    Tensor y = ctx.empty(x, in[0].dtype());
    batchnorm_fwd_train(ctx, in[0], in[2], in[3], rm, rv, in[4], in[5], y, kBnMomentum, kBnEps,
                        Activation::silu);
  };
  d.op = [](Context& ctx, const Tensors& in, const Tensors& out) {
    batchnorm_bwd(ctx, in[0], in[1], in[2], in[3], in[4], in[5], out[0], out[1], out[2],
                  Activation::silu, false);
  };
  d.reference = [x, c](Context& cpu, const Tensors& in) {
    Tensors out = {host_empty(x), host_empty(c), host_empty(c)};
    batchnorm_bwd(cpu, in[0], in[1], in[2], in[3], in[4], in[5], out[0], out[1], out[2],
                  Activation::silu, false);
    return out;
  };
  return d;
}

OpDef upsample_def(const RowSpec& s, bool backward) {
  OpDef d;
  const Shape small = nhwc(s), big{s.n, 2 * s.h, 2 * s.w, s.c};
  const Shape in = backward ? big : small, out = backward ? small : big;
  d.inputs = {{in, s.dtype}};
  d.outputs = {{out, s.dtype}};
  d.tols = {backward ? (s.dtype == DType::f32 ? kAddF32 : kAddF16) : kExact};
  d.names = {backward ? "upsample bwd dx" : "upsample fwd y"};
  d.op = [backward](Context& ctx, const Tensors& i, const Tensors& o) {
    if (backward) upsample_nearest2x_bwd(ctx, i[0], o[0]);
    else upsample_nearest2x_fwd(ctx, i[0], o[0]);
  };
  d.reference = [backward, out](Context& cpu, const Tensors& i) {
    Tensors o = {host_empty(out)};
    if (backward) upsample_nearest2x_bwd(cpu, i[0], o[0]);
    else upsample_nearest2x_fwd(cpu, i[0], o[0]);
    return o;
  };
  return d;
}

OpDef concat_def(const RowSpec& s, bool backward) {
  OpDef d;
  const Shape whole = nhwc(s);
  std::vector<Shape> parts;
  for (int64_t pc : s.parts) parts.push_back({s.n, s.h, s.w, pc});
  if (backward) {
    d.inputs = {{whole, s.dtype}};
    for (const Shape& p : parts) d.outputs.push_back({p, s.dtype});
  } else {
    for (const Shape& p : parts) d.inputs.push_back({p, s.dtype});
    d.outputs = {{whole, s.dtype}};
  }
  d.tols.assign(d.outputs.size(), kExact);
  d.names.assign(d.outputs.size(), backward ? "concat bwd dx" : "concat fwd out");
  d.op = [backward](Context& ctx, const Tensors& i, const Tensors& o) {
    if (backward) concat_channels_bwd(ctx, i[0], o);
    else concat_channels_fwd(ctx, i, o[0]);
  };
  d.reference = [backward, parts, whole](Context& cpu, const Tensors& i) {
    Tensors o;
    if (backward) {
      for (const Shape& p : parts) o.push_back(host_empty(p));
      concat_channels_bwd(cpu, i[0], o);
    } else {
      o.push_back(host_empty(whole));
      concat_channels_fwd(cpu, i, o[0]);
    }
    return o;
  };
  return d;
}

OpDef sppf_def(const RowSpec& s, bool backward) {
  OpDef d;
  const Shape x = nhwc(s), cat{s.n, s.h, s.w, 4 * s.c};
  const int k = static_cast<int>(s.k);
  if (!backward) {
    d.inputs = {{x, s.dtype}};
    d.outputs = {{cat, s.dtype}};
    d.tols = {kExact};
    d.names = {"sppf fwd out"};
    d.op = [k](Context& ctx, const Tensors& i, const Tensors& o) { sppf_fwd(ctx, i[0], o[0], k); };
    // Reference: three single CPU max pools in cascade, then a channel concat.
    d.reference = [k, x, cat](Context& cpu, const Tensors& i) {
      Tensor p1 = host_empty(x), p2 = host_empty(x), p3 = host_empty(x);
      maxpool_fwd(cpu, i[0], p1, k);
      maxpool_fwd(cpu, p1, p2, k);
      maxpool_fwd(cpu, p2, p3, k);
      Tensors o = {host_empty(cat)};
      concat_channels_fwd(cpu, {i[0], p1, p2, p3}, o[0]);
      return o;
    };
    return d;
  }
  // out (from a forward of a random x, by prepare) and dout.
  d.inputs = {{cat, s.dtype}, {cat, s.dtype}};
  d.outputs = {{x, s.dtype}};
  d.tols = {s.dtype == DType::f32 ? kAddF32 : kAddF16};
  d.names = {"sppf bwd dx"};
  d.prepare = [k, x](Context& ctx, Tensors& in) {
    Tensor xin = uniform(ctx, x, in[0].dtype(), 77, -1.f, 1.f);
    sppf_fwd(ctx, xin, in[0], k);
  };
  d.op = [k](Context& ctx, const Tensors& i, const Tensors& o) { sppf_bwd(ctx, i[0], i[1], o[0], k); };
  d.reference = [k, x](Context& cpu, const Tensors& i) {
    Tensors o = {host_empty(x)};
    sppf_bwd(cpu, i[0], i[1], o[0], k);
    return o;
  };
  return d;
}

OpDef maxpool_def(const RowSpec& s, bool backward) {
  OpDef d;
  const Shape x = nhwc(s);
  const int k = static_cast<int>(s.k);
  d.inputs = backward ? std::vector<Input>{{x, s.dtype}, {x, s.dtype}} : std::vector<Input>{{x, s.dtype}};
  d.outputs = {{x, s.dtype}};
  d.tols = {backward ? (s.dtype == DType::f32 ? kAddF32 : kAddF16) : kExact};
  d.names = {backward ? "maxpool bwd dx" : "maxpool fwd y"};
  d.op = [k, backward](Context& ctx, const Tensors& i, const Tensors& o) {
    if (backward) maxpool_bwd(ctx, i[0], i[1], o[0], k);
    else maxpool_fwd(ctx, i[0], o[0], k);
  };
  d.reference = [k, backward, x](Context& cpu, const Tensors& i) {
    Tensors o = {host_empty(x)};
    if (backward) maxpool_bwd(cpu, i[0], i[1], o[0], k);
    else maxpool_fwd(cpu, i[0], o[0], k);
    return o;
  };
  return d;
}

OpDef add_def(const RowSpec& s) {
  OpDef d;
  const Shape x = nhwc(s);
  d.inputs = {{x, s.dtype}, {x, s.dtype}};
  d.outputs = {{x, s.dtype}};
  d.tols = {s.dtype == DType::f32 ? kAddF32 : kAddF16};
  d.names = {"add out"};
  d.op = [](Context& ctx, const Tensors& i, const Tensors& o) { add(ctx, i[0], i[1], o[0]); };
  d.reference = [x](Context& cpu, const Tensors& i) {
    Tensors o = {host_empty(x)};
    add(cpu, i[0], i[1], o[0]);
    return o;
  };
  return d;
}

OpDef cast_def(const RowSpec& s) {
  OpDef d;
  const Shape x = nhwc(s);
  const DType to = s.dtype == DType::f32 ? DType::f16 : DType::f32;
  d.inputs = {{x, s.dtype, -4.f, 4.f}};
  d.outputs = {{x, to}};
  d.tols = {kExact};
  d.names = {"cast out"};
  d.op = [](Context& ctx, const Tensors& i, const Tensors& o) { cast(ctx, i[0], o[0]); };
  d.reference = [x, to](Context& cpu, const Tensors& i) {
    Tensors o = {Tensor::empty_cpu(x, to)};
    cast(cpu, i[0], o[0]);
    return o;
  };
  return d;
}

}  // namespace

bool make_memory_runner(Context& ctx, const RowSpec& s, Runner& out) {
  OpDef d;
  if (s.op == "bn_silu_fwd") d = bn_silu_fwd_def(s);
  else if (s.op == "bn_silu_eval") d = bn_silu_eval_def(s);
  else if (s.op == "bn_silu_bwd") d = bn_silu_bwd_def(s);
  else if (s.op == "upsample_fwd") d = upsample_def(s, false);
  else if (s.op == "upsample_bwd") d = upsample_def(s, true);
  else if (s.op == "concat_fwd") d = concat_def(s, false);
  else if (s.op == "concat_bwd") d = concat_def(s, true);
  else if (s.op == "sppf_fwd") d = sppf_def(s, false);
  else if (s.op == "sppf_bwd") d = sppf_def(s, true);
  else if (s.op == "maxpool_fwd") d = maxpool_def(s, false);
  else if (s.op == "maxpool_bwd") d = maxpool_def(s, true);
  else if (s.op == "add") d = add_def(s);
  else if (s.op == "cast") d = cast_def(s);
  else return false;
  out = generic_runner(ctx, std::move(d));
  return true;
}

}  // namespace yolo::bench
