// The tape: in grad mode each differentiable op (autograd/ops.h) records a node holding its
// backward function and the tensors it saved; Tape::backward() replays the nodes in reverse,
// accumulating into each variable's gradient (for parameters: their view of the arena's flat
// gradient).
//   Tape tape(ctx);
//   Var y = ag::conv2d(tape, x, w, {}, p);  ...  tape.backward(loss);
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/context.h"
#include "core/tensor.h"

namespace yolo {

// A value in the graph: a tensor plus, when it requires a gradient, the gradient tensor.
class Var {
 public:
  Var() = default;
  // A value no gradient flows to (inputs, targets).
  static Var constant(const Tensor& value);
  // A leaf whose gradient is allocated on first use (assigned, then accumulated).
  static Var leaf(const Tensor& value);
  // A parameter: its gradient is `grad` (an arena view), always accumulated into (zero it between
  // steps with the arena).
  static Var param(const Tensor& value, const Tensor& grad);

  bool defined() const { return impl_ != nullptr; }
  const Tensor& value() const { return impl_->value; }
  const Tensor& grad() const { return *impl_->grad; }
  bool requires_grad() const { return impl_ && impl_->requires_grad; }
  const Shape& shape() const { return impl_->value.shape(); }

 private:
  friend class Tape;
  struct Impl {
    Tensor value;
    // Shared with the producer's tape node, which must see the gradient even after every Var
    // handle to this value is gone (a consumer's backward releases its inputs once it ran).
    std::shared_ptr<Tensor> grad = std::make_shared<Tensor>();
    bool requires_grad = false;
    bool keep_grad = false;  // leaves and parameters keep their gradient after backward()
  };
  std::shared_ptr<Impl> impl_;
};

class Tape {
 public:
  explicit Tape(Context& ctx) : ctx_(ctx) {}
  Context& ctx() const { return ctx_; }
  bool grad_enabled() const { return grad_enabled_; }

  // True when an op on these inputs must record a node.
  bool needs_grad(std::initializer_list<const Var*> inputs) const;

  // Output of an op: a Var that requires a gradient iff `record` is true.
  Var make_output(const Tensor& value, bool record) const;
  // Records the backward of the op that produced `output`. `backward` receives the gradient of
  // `output` and pushes gradients to its inputs with the helpers below. It runs at most once and
  // is destroyed right after, releasing what it saved.
  void record(const Var& output, std::function<void(const Tensor& dout)> backward);

  // Gradient plumbing for backward functions.
  // Where to write a gradient of v by assignment: v's gradient tensor if v has none yet (it
  // becomes it), else a scratch tensor that accumulate_into() then adds.
  Tensor grad_target(const Var& v) const;
  // Adds `g` (from grad_target) into v's gradient unless g already is v's gradient.
  void accumulate_into(const Var& v, const Tensor& g) const;
  // For kernels that can add in place (conv2d_bwd_filter, batchnorm_bwd): returns v's gradient
  // tensor (allocating it if needed) and sets *accumulate to whether it already held a value.
  Tensor grad_inplace(const Var& v, bool* accumulate) const;

  // Seeds d(root) = 1 (root must hold one element) or `droot`, then runs every recorded node in
  // reverse. Intermediate gradients are freed as soon as their producer has used them. The tape
  // is empty afterwards.
  void backward(const Var& root, const Tensor& droot = Tensor());
  // Drops every recorded node without running it (e.g. after an eval forward in grad mode).
  void clear();
  size_t size() const { return nodes_.size(); }

 private:
  friend class NoGradGuard;
  struct Node {
    // The output's gradient cell only (not its value, which stays alive just as long as some
    // consumer saved it).
    std::shared_ptr<Tensor> output_grad;
    bool keep_grad = false;
    std::function<void(const Tensor&)> backward;
  };
  Context& ctx_;
  bool grad_enabled_ = true;
  std::vector<Node> nodes_;
};

// Disables recording on a tape for its lifetime (nested guards restore the previous state).
class NoGradGuard {
 public:
  explicit NoGradGuard(Tape& tape) : tape_(tape), previous_(tape.grad_enabled_) {
    tape.grad_enabled_ = false;
  }
  ~NoGradGuard() { tape_.grad_enabled_ = previous_; }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  Tape& tape_;
  bool previous_;
};

}  // namespace yolo
