// Differentiable space-to-depth (Focus's slicing, kernels/reorg.h): forward and backward side by
// side in autograd/reorg.cpp.
//   Var y = ag::space_to_depth(tape, x);  // (N, H, W, C) -> (N, H/2, W/2, 4C)
#pragma once

#include "autograd/tape.h"

namespace yolo::ag {

// x: (N, H, W, C), H and W even -> (N, H/2, W/2, 4C) in the reference's block order.
Var space_to_depth(Tape& tape, const Var& x);

}  // namespace yolo::ag
