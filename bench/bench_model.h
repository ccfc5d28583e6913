// Whole-model rows of yolo_bench (`--model CFG`, bench/bench_model.cpp): the model built from an
// ultralytics yaml, timed at --batch / --img as an eval forward (unfused and fused) and as a
// training forward + backward. tools/bench_reference_model.py times the reference model under the
// same row names so that tools/bench_table.py can merge the two.
#pragma once

#include <vector>

#include "bench/harness.h"

namespace yolo::bench {

// The rows for opt.model_cfg: model_fwd/<stem>.eval, model_fwd/<stem>.eval_fused and
// model_fwd_bwd/<stem>.train, where <stem> is the yaml's file name without ".yaml".
std::vector<RowSpec> model_rows(const Options& opt);

// Builds the model, validates the row (fused against unfused decoded boxes; for the training row,
// finite gradients and the Detect biases' gradients against the loss coefficients), then times it.
// Errors become a FAIL status, never an exception.
Result run_model_row(Context& ctx, const RowSpec& spec, const Options& opt, const Peaks& peaks);

}  // namespace yolo::bench
