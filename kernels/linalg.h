// GEMM, reductions and BCE-with-logits.
// CPU: f32, f64 (OpenBLAS). CUDA: f32 (cuBLAS; reductions in f32 with a deterministic tree).
#pragma once

#include "core/context.h"

namespace yolo {

// Row-major C (M, N) = alpha * op(A) * op(B) + beta * C, op = transpose when trans_* is true.
// A: (M, K) or (K, M); B: (K, N) or (N, K).
void gemm(Context& ctx, bool trans_a, bool trans_b, double alpha, const Tensor& a, const Tensor& b,
          double beta, const Tensor& c);
// out (1) = sum of every element of x; mean likewise divided by numel.
void sum_all(Context& ctx, const Tensor& x, const Tensor& out);
void mean_all(Context& ctx, const Tensor& x, const Tensor& out);
// x (..., C) viewed as (M, C) -> out (C) = column sums. Assigned, or added to when accumulate.
void sum_channels(Context& ctx, const Tensor& x, const Tensor& out, bool accumulate);

// Mean over all elements of BCEWithLogits(logits, targets) with pos_weight, as
// torch.nn.BCEWithLogitsLoss: l = -(pos_weight * t * log(sigmoid(z)) + (1 - t) * log(1 -
// sigmoid(z))), computed stably. logits, targets: same shape; out: (1).
void bce_with_logits_fwd(Context& ctx, const Tensor& logits, const Tensor& targets,
                         double pos_weight, const Tensor& out);
// dlogits = dloss * d(mean loss)/d(logits); dloss: (1) on the device (the upstream gradient).
// Assigns.
void bce_with_logits_bwd(Context& ctx, const Tensor& logits, const Tensor& targets,
                         double pos_weight, const Tensor& dloss, const Tensor& dlogits);

void gemm_cpu(Context& ctx, bool trans_a, bool trans_b, double alpha, const Tensor& a,
              const Tensor& b, double beta, const Tensor& c);
void sum_all_cpu(Context& ctx, const Tensor& x, const Tensor& out);
void mean_all_cpu(Context& ctx, const Tensor& x, const Tensor& out);
void sum_channels_cpu(Context& ctx, const Tensor& x, const Tensor& out, bool accumulate);
void bce_with_logits_fwd_cpu(Context& ctx, const Tensor& logits, const Tensor& targets,
                             double pos_weight, const Tensor& out);
void bce_with_logits_bwd_cpu(Context& ctx, const Tensor& logits, const Tensor& targets,
                             double pos_weight, const Tensor& dloss, const Tensor& dlogits);
void gemm_cuda(Context& ctx, bool trans_a, bool trans_b, double alpha, const Tensor& a,
               const Tensor& b, double beta, const Tensor& c);
void sum_all_cuda(Context& ctx, const Tensor& x, const Tensor& out);
void mean_all_cuda(Context& ctx, const Tensor& x, const Tensor& out);
void sum_channels_cuda(Context& ctx, const Tensor& x, const Tensor& out, bool accumulate);
void bce_with_logits_fwd_cuda(Context& ctx, const Tensor& logits, const Tensor& targets,
                              double pos_weight, const Tensor& out);
void bce_with_logits_bwd_cuda(Context& ctx, const Tensor& logits, const Tensor& targets,
                              double pos_weight, const Tensor& dloss, const Tensor& dlogits);

}  // namespace yolo
