// Convolution rows: conv forward, backward-data and backward-filter (TFLOP/s), our training-mode
// Conv block (conv2d_fwd + batchnorm_fwd_train fused with SiLU), and the cuDNN baseline for that
// block (conv2d_fwd + cudnnBatchNormalizationForwardTraining + a separate silu_fwd). Every row is
// checked against the CPU reference ops on the same inputs before it is timed.
#include <cmath>

#include "bench/cuda_baseline.h"
#include "bench/harness.h"
#include "kernels/activation.h"
#include "kernels/batchnorm.h"
#include "kernels/conv.h"
#include "kernels/elementwise.h"

namespace yolo::bench {
namespace {

// Outputs are O(1) by construction (weights scaled by 1/sqrt(fan-in), dy for the filter gradient
// by 1/sqrt(reduction length)), so one absolute + relative pair per precision fits every shape.
// f32 allows TF32 tensor-core math (cuDNN's default on sm_80+); f16 rounds inputs and outputs.
constexpr Tol kConvF32{5e-3, 5e-3};
constexpr Tol kConvF16{3e-2, 3e-2};
constexpr Tol kBnSiluF32{5e-3, 5e-3};
constexpr Tol kBnSiluF16{3e-2, 3e-2};
constexpr double kBnMomentum = 0.03, kBnEps = 1e-3;  // YOLOv5's BatchNorm2d settings

Tol conv_tol(DType t) { return t == DType::f32 ? kConvF32 : kConvF16; }
Tol bn_tol(DType t) { return t == DType::f32 ? kBnSiluF32 : kBnSiluF16; }

Conv2dParams conv_params(const RowSpec& s) {
  Conv2dParams p;
  p.stride_h = p.stride_w = static_cast<int>(s.stride);
  p.pad_h = p.pad_w = static_cast<int>(s.pad);
  return p;
}

Shape out_shape(const RowSpec& s) {
  const int64_t oh = conv2d_out_size(s.h, s.k, int(s.stride), int(s.pad));
  const int64_t ow = conv2d_out_size(s.w, s.k, int(s.stride), int(s.pad));
  return {s.n, oh, ow, s.out_c};
}

double nbytes(const Shape& shape, DType t) { return double(shape_numel(shape)) * double(dtype_size(t)); }

// Host copy in f32 (the CPU reference computes in f32 on the device inputs, rounded or not).
Tensor h32(Context& ctx, const Tensor& t) {
  if (!t.defined()) return t;
  return host_f32(ctx, t);
}

// BN parameters and statistics, (C) f32 each.
struct BnState {
  Tensor gamma, beta, running_mean, running_var, save_mean, save_invstd;
};

BnState make_bn(Context& ctx, int64_t c, uint64_t seed) {
  BnState b;
  b.gamma = uniform(ctx, {c}, DType::f32, seed, 0.5f, 1.5f);
  b.beta = uniform(ctx, {c}, DType::f32, seed + 1, -0.5f, 0.5f);
  b.running_mean = ctx.zeros({c}, DType::f32);
  b.running_var = ctx.empty({c}, DType::f32);
  fill(ctx, b.running_var, 1.0);
  b.save_mean = ctx.empty({c}, DType::f32);
  b.save_invstd = ctx.empty({c}, DType::f32);
  return b;
}

BnState bn_to_host(Context& ctx, const BnState& b) {
  BnState h;
  h.gamma = ctx.to_host(b.gamma);
  h.beta = ctx.to_host(b.beta);
  h.running_mean = Tensor::zeros_cpu(b.gamma.shape());
  h.running_var = Tensor::empty_cpu(b.gamma.shape());
  Context cpu(Device::cpu());
  fill(cpu, h.running_var, 1.0);
  h.save_mean = Tensor::empty_cpu(b.gamma.shape());
  h.save_invstd = Tensor::empty_cpu(b.gamma.shape());
  return h;
}

Runner conv_fwd_runner(Context& ctx, const RowSpec& s) {
  const DType dt = s.dtype;
  const Shape xs{s.n, s.h, s.w, s.c}, ws{s.out_c, s.k, s.k, s.c}, ys = out_shape(s);
  const float a = 1.f / std::sqrt(float(s.k * s.k * s.c));
  struct Set {
    Tensor x, w, b, y;
  };
  auto sets = std::make_shared<std::vector<Set>>();
  Runner r;
  r.sets = rotation_sets(ctx, nbytes(xs, dt) + nbytes(ws, dt) + nbytes(ys, dt));
  for (int i = 0; i < r.sets; ++i) {
    Set st;
    st.x = uniform(ctx, xs, dt, 100 + i, -1.f, 1.f);
    st.w = uniform(ctx, ws, dt, 200 + i, -a, a);
    if (s.bias) st.b = uniform(ctx, {s.out_c}, dt, 300 + i, -0.5f, 0.5f);
    st.y = ctx.empty(ys, dt);
    sets->push_back(st);
  }
  const Conv2dParams p = conv_params(s);
  r.run = [&ctx, sets, p](int i) {
    const Set& st = (*sets)[size_t(i) % sets->size()];
    conv2d_fwd(ctx, st.x, st.w, st.b, st.y, p);
  };
  r.validate = [&ctx, sets, p, s, ys]() {
    const Set& st = (*sets)[0];
    conv2d_fwd(ctx, st.x, st.w, st.b, st.y, p);
    Context cpu(Device::cpu());
    Tensor ref = Tensor::empty_cpu(ys);
    conv2d_fwd(cpu, h32(ctx, st.x), h32(ctx, st.w), h32(ctx, st.b), ref, p);
    return compare(ctx, st.y, ref, conv_tol(s.dtype), "conv2d_fwd");
  };
  return r;
}

Runner conv_bwd_data_runner(Context& ctx, const RowSpec& s) {
  const DType dt = s.dtype;
  const Shape xs{s.n, s.h, s.w, s.c}, ws{s.out_c, s.k, s.k, s.c}, ys = out_shape(s);
  const float a = 1.f / std::sqrt(float(s.k * s.k * s.out_c));
  struct Set {
    Tensor dy, w, dx;
  };
  auto sets = std::make_shared<std::vector<Set>>();
  Runner r;
  r.sets = rotation_sets(ctx, nbytes(xs, dt) + nbytes(ws, dt) + nbytes(ys, dt));
  for (int i = 0; i < r.sets; ++i) {
    Set st;
    st.dy = uniform(ctx, ys, dt, 400 + i, -1.f, 1.f);
    st.w = uniform(ctx, ws, dt, 500 + i, -a, a);
    st.dx = ctx.empty(xs, dt);
    sets->push_back(st);
  }
  const Conv2dParams p = conv_params(s);
  r.run = [&ctx, sets, p](int i) {
    const Set& st = (*sets)[size_t(i) % sets->size()];
    conv2d_bwd_data(ctx, st.dy, st.w, st.dx, p);
  };
  r.validate = [&ctx, sets, p, s, xs]() {
    const Set& st = (*sets)[0];
    conv2d_bwd_data(ctx, st.dy, st.w, st.dx, p);
    Context cpu(Device::cpu());
    Tensor ref = Tensor::empty_cpu(xs);
    conv2d_bwd_data(cpu, h32(ctx, st.dy), h32(ctx, st.w), ref, p);
    return compare(ctx, st.dx, ref, conv_tol(s.dtype), "conv2d_bwd_data");
  };
  return r;
}

Runner conv_bwd_filter_runner(Context& ctx, const RowSpec& s) {
  const DType dt = s.dtype;
  const Shape xs{s.n, s.h, s.w, s.c}, ws{s.out_c, s.k, s.k, s.c}, ys = out_shape(s);
  const float a = 1.f / std::sqrt(float(ys[0] * ys[1] * ys[2]));
  struct Set {
    Tensor x, dy, dw, db;
  };
  auto sets = std::make_shared<std::vector<Set>>();
  Runner r;
  r.sets = rotation_sets(ctx, nbytes(xs, dt) + nbytes(ws, dt) + nbytes(ys, dt));
  for (int i = 0; i < r.sets; ++i) {
    Set st;
    st.x = uniform(ctx, xs, dt, 600 + i, -1.f, 1.f);
    st.dy = uniform(ctx, ys, dt, 700 + i, -a, a);
    st.dw = ctx.empty(ws, dt);
    if (s.bias) st.db = ctx.empty({s.out_c}, dt);
    sets->push_back(st);
  }
  const Conv2dParams p = conv_params(s);
  r.run = [&ctx, sets, p](int i) {
    const Set& st = (*sets)[size_t(i) % sets->size()];
    conv2d_bwd_filter(ctx, st.x, st.dy, st.dw, st.db, p, false);
  };
  r.validate = [&ctx, sets, p, s, ws]() {
    const Set& st = (*sets)[0];
    conv2d_bwd_filter(ctx, st.x, st.dy, st.dw, st.db, p, false);
    Context cpu(Device::cpu());
    Tensor ref = Tensor::empty_cpu(ws);
    Tensor dbref = s.bias ? Tensor::empty_cpu({s.out_c}) : Tensor();
    conv2d_bwd_filter(cpu, h32(ctx, st.x), h32(ctx, st.dy), ref, dbref, p, false);
    std::string bad = compare(ctx, st.dw, ref, conv_tol(s.dtype), "conv2d_bwd_filter dw");
    if (bad.empty() && s.bias) bad = compare(ctx, st.db, dbref, conv_tol(s.dtype), "dbias");
    return bad;
  };
  return r;
}

// The training-mode Conv block: y = conv(x, w); z = silu(bn_train(y)). `cudnn_baseline` swaps our
// fused BN+SiLU for cuDNN's batch norm followed by a separate silu_fwd.
Runner conv_bn_silu_runner(Context& ctx, const RowSpec& s, bool cudnn_baseline) {
  const DType dt = s.dtype;
  const Shape xs{s.n, s.h, s.w, s.c}, ws{s.out_c, s.k, s.k, s.c}, ys = out_shape(s);
  const float a = 1.f / std::sqrt(float(s.k * s.k * s.c));
  struct Set {
    Tensor x, w, y, z;
    BnState bn;
  };
  auto sets = std::make_shared<std::vector<Set>>();
  Runner r;
  r.sets = rotation_sets(ctx, nbytes(xs, dt) + nbytes(ws, dt) + 2 * nbytes(ys, dt));
  for (int i = 0; i < r.sets; ++i) {
    Set st;
    st.x = uniform(ctx, xs, dt, 800 + i, -1.f, 1.f);
    st.w = uniform(ctx, ws, dt, 900 + i, -a, a);
    st.y = ctx.empty(ys, dt);
    st.z = ctx.empty(ys, dt);
    st.bn = make_bn(ctx, s.out_c, 1000 + 2 * i);
    sets->push_back(st);
  }
  const Conv2dParams p = conv_params(s);
  auto step = [&ctx, p, cudnn_baseline](const Set& st) {
    conv2d_fwd(ctx, st.x, st.w, Tensor(), st.y, p);
    const BnState& b = st.bn;
    if (cudnn_baseline) {
      cudnn_batchnorm_fwd_train(ctx, st.y, b.gamma, b.beta, b.running_mean, b.running_var,
                                b.save_mean, b.save_invstd, st.z, kBnMomentum, kBnEps);
      silu_fwd(ctx, st.z, st.z);
    } else {
      batchnorm_fwd_train(ctx, st.y, b.gamma, b.beta, b.running_mean, b.running_var, b.save_mean,
                          b.save_invstd, st.z, kBnMomentum, kBnEps, Activation::silu);
    }
  };
  r.run = [sets, step](int i) { step((*sets)[size_t(i) % sets->size()]); };
  r.validate = [&ctx, sets, p, s, ys, step]() {
    const Set& st = (*sets)[0];
    step(st);
    Context cpu(Device::cpu());
    Tensor y = Tensor::empty_cpu(ys), z = Tensor::empty_cpu(ys);
    conv2d_fwd(cpu, h32(ctx, st.x), h32(ctx, st.w), Tensor(), y, p);
    BnState hb = bn_to_host(ctx, st.bn);
    batchnorm_fwd_train(cpu, y, hb.gamma, hb.beta, hb.running_mean, hb.running_var, hb.save_mean,
                        hb.save_invstd, z, kBnMomentum, kBnEps, Activation::silu);
    std::string bad = compare(ctx, st.z, z, bn_tol(s.dtype), "conv+bn+silu output");
    if (bad.empty()) bad = compare(ctx, st.bn.save_mean, hb.save_mean, bn_tol(s.dtype), "save_mean");
    return bad;
  };
  return r;
}

}  // namespace

bool make_conv_runner(Context& ctx, const RowSpec& spec, Runner& out) {
  if (spec.op == "conv_fwd") out = conv_fwd_runner(ctx, spec);
  else if (spec.op == "conv_bwd_data") out = conv_bwd_data_runner(ctx, spec);
  else if (spec.op == "conv_bwd_filter") out = conv_bwd_filter_runner(ctx, spec);
  else if (spec.op == "conv_bn_silu_fwd") out = conv_bn_silu_runner(ctx, spec, false);
  else if (spec.op == "conv_bn_silu_fwd_cudnn") out = conv_bn_silu_runner(ctx, spec, true);
  else return false;
  return true;
}

}  // namespace yolo::bench
