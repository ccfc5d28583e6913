// Tape implementation: recording, gradient plumbing and the reverse replay.
#include "autograd/tape.h"

#include "kernels/elementwise.h"

namespace yolo {

Var Var::constant(const Tensor& value) {
  Var v;
  v.impl_ = std::make_shared<Impl>();
  v.impl_->value = value;
  return v;
}

Var Var::leaf(const Tensor& value) {
  Var v = constant(value);
  v.impl_->requires_grad = true;
  v.impl_->keep_grad = true;
  return v;
}

Var Var::param(const Tensor& value, const Tensor& grad) {
  check_same_shape("Var::param", "value", value, "grad", grad);
  Var v = leaf(value);
  *v.impl_->grad = grad;
  return v;
}

bool Tape::needs_grad(std::initializer_list<const Var*> inputs) const {
  if (!grad_enabled_) return false;
  for (const Var* v : inputs)
    if (v && v->requires_grad()) return true;
  return false;
}

Var Tape::make_output(const Tensor& value, bool record) const {
  Var v = Var::constant(value);
  v.impl_->requires_grad = record;
  return v;
}

void Tape::record(const Var& output, std::function<void(const Tensor&)> backward) {
  YOLO_ASSERT(output.requires_grad());
  nodes_.push_back(Node{output.impl_->grad, output.impl_->keep_grad, std::move(backward)});
}

Tensor Tape::grad_target(const Var& v) const {
  YOLO_ASSERT(v.requires_grad());
  Tensor& grad = *v.impl_->grad;
  if (!grad.defined()) {
    grad = ctx_.empty(v.value().shape(), v.value().dtype());
    return grad;
  }
  return ctx_.empty(v.value().shape(), v.value().dtype());
}

void Tape::accumulate_into(const Var& v, const Tensor& g) const {
  const Tensor& dst = *v.impl_->grad;
  if (g.storage() == dst.storage() && g.raw() == dst.raw()) return;
  add(ctx_, dst, g, dst);
}

Tensor Tape::grad_inplace(const Var& v, bool* accumulate) const {
  YOLO_ASSERT(v.requires_grad());
  Tensor& grad = *v.impl_->grad;
  *accumulate = grad.defined();
  if (!*accumulate) grad = ctx_.empty(v.value().shape(), v.value().dtype());
  return grad;
}

void Tape::backward(const Var& root, const Tensor& droot) {
  YOLO_CHECK(root.requires_grad(), "backward(): the root does not depend on any parameter or leaf");
  YOLO_CHECK(grad_enabled_, "backward() inside a NoGradGuard");
  Tensor seed = droot;
  if (!seed.defined()) {
    YOLO_CHECK(root.value().numel() == 1, "backward(): the root has shape "
                                              << shape_str(root.shape())
                                              << "; pass its gradient for a non-scalar root");
    seed = ctx_.empty(root.shape(), root.value().dtype());
    fill(ctx_, seed, 1.0);
  }
  check_same_shape("backward", "root", root.value(), "droot", seed);
  bool acc = false;
  Tensor g = grad_inplace(root, &acc);
  if (acc)
    add(ctx_, g, seed, g);
  else
    ctx_.copy(g, seed);

  std::vector<Node> nodes = std::move(nodes_);
  nodes_.clear();
  for (auto it = nodes.rbegin(); it != nodes.rend(); ++it) {
    Tensor& cell = *it->output_grad;
    if (cell.defined()) {
      const Tensor dout = cell;
      if (!it->keep_grad) cell = Tensor();  // freed once its producer used it
      it->backward(dout);
    }
    it->backward = nullptr;  // release the saved tensors now
  }
}

void Tape::clear() {
  nodes_.clear();
}

}  // namespace yolo
