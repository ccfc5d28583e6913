// Conv2d, BatchNorm2d, Upsample, Concat and Sequential: forwards through autograd/ops.h, shape and
// operation-count rules (thop's), and the reference's default initialisation.
#include "nn/basic.h"

#include <cmath>

#include "kernels/elementwise.h"
#include "kernels/random.h"

namespace yolo::nn {

Conv2d::Conv2d(int64_t c1, int64_t c2, int k, int s, int p, int g, bool bias)
    : c1_(c1), c2_(c2), k_(k) {
  YOLO_CHECK(c1 > 0 && c2 > 0 && k > 0 && s > 0 && p >= 0 && g > 0,
             "Conv2d(" << c1 << ", " << c2 << ", k=" << k << ", s=" << s << ", p=" << p
                       << ", g=" << g << "): every size must be positive");
  YOLO_CHECK(c1 % g == 0 && c2 % g == 0, "Conv2d: groups " << g << " must divide both channel counts "
                                                           << c1 << " and " << c2);
  p_.stride_h = p_.stride_w = s;
  p_.pad_h = p_.pad_w = p;
  p_.groups = g;
  weight_ = declare_param("weight", {c2, k, k, c1 / g}, kGroupWeight, true);
  if (bias) add_bias();
}

void Conv2d::add_bias() {
  if (bias_ < 0) bias_ = declare_param("bias", {c2_}, kGroupBias);
}

void Conv2d::set_compute_copy(const Tensor& flat, const ParamArena& layout) {
  auto view = [&](const ParamSlot& s) {
    const ParamArena::Entry& e = layout.entry(s.full_name);
    return flat.slice(e.offset, e.offset + e.numel).reshape(e.shape);
  };
  weight_copy_ = view(params()[weight_]);
  bias_copy_ = bias_ >= 0 ? view(params()[bias_]) : Tensor();
}

Var Conv2d::forward(Tape& tape, const Var& x) { return forward_act(tape, x, Activation::none); }

Var Conv2d::forward_act(Tape& tape, const Var& x, Activation act) {
  const ParamSlot& w = params()[weight_];
  if (x.value().dtype() == w.value.dtype()) {
    const Var b = bias_ >= 0 ? param_var(bias_) : Var();
    return act == Activation::none ? ag::conv2d(tape, x, param_var(weight_), b, p_)
                                   : ag::conv2d_act(tape, x, param_var(weight_), b, p_, act);
  }
  YOLO_CHECK(weight_copy_.defined() && weight_copy_.dtype() == x.value().dtype(),
             "Conv2d " << w.full_name << ": input is " << dtype_name(x.value().dtype())
                       << " but the weights are " << dtype_name(w.value.dtype())
                       << "; make a compute copy first (Model::set_compute_dtype)");
  const Var b = bias_ >= 0 ? Var::constant(bias_copy_) : Var();
  return act == Activation::none
             ? ag::conv2d(tape, x, Var::constant(weight_copy_), b, p_)
             : ag::conv2d_act(tape, x, Var::constant(weight_copy_), b, p_, act);
}

Shape Conv2d::infer(const std::vector<Shape>& in, double* ops) const {
  const Shape& x = in.at(0);
  YOLO_CHECK(x.size() == 4 && x[3] == c1_, "Conv2d(" << c1_ << ", " << c2_ << "): input "
                                                     << shape_str(x) << " has the wrong channels");
  const int64_t oh = conv2d_out_size(x[1], k_, p_.stride_h, p_.pad_h);
  const int64_t ow = conv2d_out_size(x[2], k_, p_.stride_w, p_.pad_w);
  const Shape out = {x[0], oh, ow, c2_};
  *ops += double(shape_numel(out)) * double(c1_ / p_.groups) * double(k_) * double(k_);
  return out;
}

void Conv2d::reset_parameters(Context& ctx, uint64_t seed) {
  // kaiming_uniform_(a=sqrt(5)) gives U(-1/sqrt(fan_in), 1/sqrt(fan_in)); the bias the same.
  const float bound = float(1.0 / std::sqrt(double((c1_ / p_.groups) * k_ * k_)));
  for (const ParamSlot& s : params()) {
    fill_uniform(ctx, s.value, seed, uint64_t(s.offset / 4), -bound, bound);
  }
}

BatchNorm2d::BatchNorm2d(int64_t c) : c_(c) {
  declare_param("weight", {c}, kGroupBnWeight);
  declare_param("bias", {c}, kGroupBias);
  declare_buffer("running_mean", {c});
  declare_buffer("running_var", {c});
  declare_counter("num_batches_tracked", 0);
}

Var BatchNorm2d::forward_act(Tape& tape, const Var& x, Activation act) {
  ag::BatchNormState state;
  state.running_mean = running_mean();
  state.running_var = running_var();
  state.momentum = kMomentum;
  state.eps = kEps;
  state.training = training();
  if (training()) counters()[0].value += 1;
  return ag::batchnorm(tape, x, param_var(0), param_var(1), state, act);
}

Shape BatchNorm2d::infer(const std::vector<Shape>& in, double* ops) const {
  *ops += 4.0 * double(shape_numel(in.at(0)));  // thop: 2 per element, doubled for the affine
  return in.at(0);
}

void BatchNorm2d::reset_parameters(Context& ctx, uint64_t seed) {
  fill(ctx, weight(), 1.0);
  fill(ctx, bias(), 0.0);
  fill(ctx, running_mean(), 0.0);
  fill(ctx, running_var(), 0.9);
  counters()[0].value = 1;
}

Shape Upsample::infer(const std::vector<Shape>& in, double* ops) const {
  const Shape& x = in.at(0);
  const Shape out = {x[0], 2 * x[1], 2 * x[2], x[3]};
  *ops += double(shape_numel(out));
  return out;
}

Shape Concat::infer(const std::vector<Shape>& in, double* ops) const {
  YOLO_CHECK(!in.empty(), "Concat needs at least one input");
  Shape out = in[0];
  out[3] = 0;
  for (const Shape& s : in) {
    YOLO_CHECK(s.size() == 4 && s[0] == in[0][0] && s[1] == in[0][1] && s[2] == in[0][2],
               "Concat: inputs disagree in (N, H, W): " << shape_str(in[0]) << " vs " << shape_str(s));
    out[3] += s[3];
  }
  return out;
}

Var Sequential::forward(Tape& tape, const Var& x) {
  Var y = x;
  for (const auto& c : children()) y = c.second->forward(tape, y);
  return y;
}

Shape Sequential::infer(const std::vector<Shape>& in, double* ops) const {
  Shape s = in.at(0);
  for (const auto& c : children()) s = c.second->infer({s}, ops);
  return s;
}

}  // namespace yolo::nn
