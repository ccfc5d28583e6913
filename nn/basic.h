// The PyTorch building blocks the YOLOv5 layers are made of, one Module each so the tree (names,
// module counts, parameter counts) matches the reference: Conv2d, BatchNorm2d, SiLU, Identity,
// MaxPool2d, Upsample, Concat, Sequential, ModuleList. Activations are NHWC.
#pragma once

#include "autograd/ops.h"
#include "nn/module.h"

namespace yolo::nn {

// nn.Conv2d(c1, c2, k, s, p, groups=g, bias=bias). weight: (c2, k, k, c1 / g) OHWI; bias: (c2).
class Conv2d : public Module {
 public:
  Conv2d(int64_t c1, int64_t c2, int k, int s, int p, int g, bool bias);
  std::string type_name() const override { return "torch.nn.modules.conv.Conv2d"; }
  // x: (N, H, W, c1) -> (N, OH, OW, c2). An x of another dtype than the f32 parameters uses the
  // compute copy set by set_compute_copy (no gradient flows to it).
  Var forward(Tape& tape, const Var& x) override;
  // act(forward(x)) through conv2d_act (one fused kernel in inference).
  Var forward_act(Tape& tape, const Var& x, Activation act);
  Shape infer(const std::vector<Shape>& in, double* ops) const override;
  // Adds the bias parameter (fusing). Only before declare().
  void add_bias();
  // Views of this conv's weight/bias inside `flat`, a copy of the parameter arena `layout` in
  // another dtype (f16 / bf16 forwards).
  void set_compute_copy(const Tensor& flat, const ParamArena& layout);
  bool has_bias() const { return bias_ >= 0; }
  int64_t c1() const { return c1_; }
  int64_t c2() const { return c2_; }
  const Conv2dParams& conv_params() const { return p_; }
  const Tensor& weight() const { return params()[weight_].value; }
  const Tensor& bias() const { return params()[bias_].value; }

 protected:
  void reset_parameters(Context& ctx, uint64_t seed) override;

 private:
  int64_t c1_, c2_;
  int k_;
  Conv2dParams p_;
  int weight_ = -1, bias_ = -1;
  Tensor weight_copy_, bias_copy_;
};

// nn.BatchNorm2d(c) with YOLOv5's eps 1e-3 and momentum 0.03. weight, bias, running_mean,
// running_var: (c); num_batches_tracked: a host counter.
class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t c);
  std::string type_name() const override { return "torch.nn.modules.batchnorm.BatchNorm2d"; }
  Var forward(Tape& tape, const Var& x) override { return forward_act(tape, x, Activation::none); }
  // act(bn(x)) in one kernel; x: (N, H, W, c). In training mode updates the running statistics
  // and counts the batch.
  Var forward_act(Tape& tape, const Var& x, Activation act);
  Shape infer(const std::vector<Shape>& in, double* ops) const override;
  static constexpr double kEps = 1e-3;
  static constexpr double kMomentum = 0.03;
  const Tensor& weight() const { return params()[0].value; }
  const Tensor& bias() const { return params()[1].value; }
  const Tensor& running_mean() const { return buffers()[0].value; }
  const Tensor& running_var() const { return buffers()[1].value; }

 protected:
  // weight 1, bias 0, and the stride probe's side effect: running_mean 0, running_var 0.9,
  // num_batches_tracked 1 (facts §1.6).
  void reset_parameters(Context& ctx, uint64_t seed) override;

 private:
  int64_t c_;
};

class SiLU : public Module {
 public:
  std::string type_name() const override { return "torch.nn.modules.activation.SiLU"; }
  Var forward(Tape& tape, const Var& x) override { return ag::silu(tape, x); }
  Shape infer(const std::vector<Shape>& in, double* ops) const override { return in.at(0); }
};

class Identity : public Module {
 public:
  std::string type_name() const override { return "torch.nn.modules.linear.Identity"; }
  Var forward(Tape& tape, const Var& x) override { return x; }
  Shape infer(const std::vector<Shape>& in, double* ops) const override { return in.at(0); }
};

// nn.MaxPool2d(k, stride=1, padding=k // 2).
class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(int k) : k_(k) {}
  std::string type_name() const override { return "torch.nn.modules.pooling.MaxPool2d"; }
  Var forward(Tape& tape, const Var& x) override { return ag::maxpool(tape, x, k_); }
  Shape infer(const std::vector<Shape>& in, double* ops) const override { return in.at(0); }
  int k() const { return k_; }

 private:
  int k_;
};

// nn.Upsample(None, 2, 'nearest').
class Upsample : public Module {
 public:
  std::string type_name() const override { return "torch.nn.modules.upsampling.Upsample"; }
  Var forward(Tape& tape, const Var& x) override { return ag::upsample2x(tape, x); }
  Shape infer(const std::vector<Shape>& in, double* ops) const override;
};

// Concat(1): channel concat of NHWC inputs.
class Concat : public Module {
 public:
  std::string type_name() const override { return "models.common.Concat"; }
  Var forward_many(Tape& tape, const std::vector<Var>& xs) override { return ag::concat(tape, xs); }
  Shape infer(const std::vector<Shape>& in, double* ops) const override;
};

// nn.Sequential: children "0", "1", ... run in order.
class Sequential : public Module {
 public:
  std::string type_name() const override { return "torch.nn.modules.container.Sequential"; }
  void append(std::unique_ptr<Module> m) { add_child(std::to_string(children().size()), std::move(m)); }
  Var forward(Tape& tape, const Var& x) override;
  Shape infer(const std::vector<Shape>& in, double* ops) const override;
};

// nn.ModuleList: children "0", "1", ... (no forward of its own).
class ModuleList : public Module {
 public:
  std::string type_name() const override { return "torch.nn.modules.container.ModuleList"; }
  void append(std::unique_ptr<Module> m) { add_child(std::to_string(children().size()), std::move(m)); }
};

}  // namespace yolo::nn
