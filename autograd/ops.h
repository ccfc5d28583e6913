// Differentiable ops: each computes its forward with the kernels and, in grad mode, records its
// backward on the tape right beside it (autograd/ops.cpp). Shapes are NHWC as in kernels/.
//   Var y = ag::batchnorm(tape, ag::conv2d(tape, x, w, Var(), p), gamma, beta, bn,
//   Activation::silu);
#pragma once

#include <vector>

#include "autograd/tape.h"
#include "kernels/activation.h"
#include "kernels/conv.h"

namespace yolo::ag {

// x: (N, H, W, C); w: (O, KH, KW, C/groups); bias: (O) or an undefined Var.
Var conv2d(Tape& tape, const Var& x, const Var& w, const Var& bias, const Conv2dParams& p);
// act(conv2d(x, w, bias)): one fused kernel when nothing needs a gradient (inference of a fused
// model), else the conv2d and activation ops, each with its backward.
Var conv2d_act(Tape& tape, const Var& x, const Var& w, const Var& bias, const Conv2dParams& p,
               Activation act);

// Batch-norm state that is not a parameter: running statistics (updated in training mode).
struct BatchNormState {
  Tensor running_mean, running_var;  // (C)
  double momentum = 0.03;
  double eps = 1e-3;
  bool training = true;
};
// act(gamma * normalise(x) + beta) over the channel axis; x: (..., C); gamma, beta: (C).
Var batchnorm(Tape& tape, const Var& x, const Var& gamma, const Var& beta, BatchNormState& state,
              Activation act);

Var silu(Tape& tape, const Var& x);
Var sigmoid(Tape& tape, const Var& x);
Var add(Tape& tape, const Var& a, const Var& b);
Var mul(Tape& tape, const Var& a, const Var& b);
Var scale(Tape& tape, const Var& x, double alpha);
// Channel concat of NHWC tensors (torch.cat(dim=1) in NCHW terms).
Var concat(Tape& tape, const std::vector<Var>& xs);
Var upsample2x(Tape& tape, const Var& x);
Var maxpool(Tape& tape, const Var& x, int k);
// [x, pool(x), pool(pool(x)), pool(pool(pool(x)))] on channels: SPPF's middle.
Var sppf_pools(Tape& tape, const Var& x, int k);
// Mean BCE-with-logits over all elements; targets get no gradient. Returns a (1) Var.
Var bce_with_logits(Tape& tape, const Var& logits, const Tensor& targets, double pos_weight = 1.0);
Var sum(Tape& tape, const Var& x);
Var mean(Tape& tape, const Var& x);

}  // namespace yolo::ag
