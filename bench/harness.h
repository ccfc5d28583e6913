// The benchmark harness (STYLE.md rule 11): every row validates against the CPU reference, warms
// up, times many repeats (CUDA events on the GPU, steady_clock on the CPU) and reports the median
// and min in µs, GB/s or TFLOP/s and the percentage of the measured peak. The row list (RowSpec) is
// built in one place, bench/rows.cpp, and printed by `yolo_bench --list-json` so that
// tools/bench_torch_ops.py times exactly the same shapes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/context.h"

namespace yolo::bench {

struct Options {
  Device device = Device::cpu();
  int batch = 0;  // 0: the device's default (16 on CUDA, 1 on the CPU)
  int img = 0;    // 0: the device's default (640 on CUDA, 320 on the CPU)
  std::string filter;
  int repeats = 0;  // 0: 50 on CUDA, 10 on the CPU
  int warmup = 0;   // 0: 5 on CUDA, 2 on the CPU
  int threads = 0;  // CPU threads for the context (0: every core)
  std::string json_path;
  std::string list_json_path;  // write the row specs and exit ("-" for stdout)
  std::string model_cfg;       // --model: time this model yaml (bench/bench_model.h) instead
};

// What a row measures and on which shapes. Activations are NHWC: (n, h, w, c).
struct RowSpec {
  std::string name;   // "<op>/<model>.<layer>", unique together with dtype
  std::string op;     // conv_fwd, conv_bwd_data, conv_bwd_filter, conv_bn_silu_fwd, ...
  std::string model;  // yolov5n, yolov5s
  DType dtype = DType::f32;
  int64_t n = 0, h = 0, w = 0, c = 0;
  // Convolutions: OHWI weights (out_c, k, k, c), stride, padding, bias for the Detect convs.
  int64_t out_c = 0, k = 0, stride = 1, pad = 0;
  bool bias = false;
  std::vector<int64_t> parts;  // concat: channel count of each input
  std::vector<int64_t> sizes;  // sgd: element count of each parameter tensor, in flat order
  std::vector<int> groups;     // sgd: parameter group of each tensor
  double bytes = 0;            // inputs read once + outputs written once (memory-bound rows)
  double flops = 0;            // 2 * MACs (convolutions)
  std::string shape;           // human-readable shape, shared with the torch script
};

// Peaks use the fastest repeat (a peak is the best attainable), rows the median.
struct Peaks {
  double copy_gbps = 0;        // CUDA: 1 GiB cudaMemcpyAsync D2D; CPU: 256 MiB memcpy (read + write)
  double gemm_tflops_f32 = 0;  // CUDA: cuBLAS SGEMM 4096^3 (FP32, no TF32); CPU: cblas_sgemm 2048^3
  double gemm_tflops_f16 = 0;  // CUDA: cuBLAS f16 GEMM 8192^3 (tensor cores); CPU: 0
};

struct Result {
  RowSpec spec;
  std::string device;  // "cpu" or "cuda"
  double median_us = 0, min_us = 0;
  double gbps = 0, tflops = 0, pct_peak = 0;
  double peak_mib = 0;  // whole-model rows on CUDA: the allocator's high-water mark while timed
  bool validated = false;
  std::string status;  // "ok", "FAIL: ..." or "skip: ..."
};

// One benchmark instance, built for a spec on a context.
//   run(i): launches the op on input set i % sets (sets > 1 rotate buffers past the L2 cache);
//   validate(): runs the op on set 0 and compares with the CPU reference; "" when it agrees,
//   otherwise what went wrong (worst element, index, allowed error).
struct Runner {
  std::function<void(int)> run;
  std::function<std::string()> validate;
  int sets = 1;
};

// |got - ref| <= atol + rtol * |ref| element-wise; any NaN/Inf fails.
struct Tol {
  double atol;
  double rtol;
};

// Compares a device (or host) tensor of any float dtype with a host reference; "" when close,
// otherwise "what: worst |d| at index i (got g, ref r, x.xx of allowed)".
std::string compare(Context& ctx, const Tensor& got, const Tensor& ref, Tol tol,
                    const std::string& what);
// Host f32 copy of any float tensor (f16/bf16/f64 converted).
Tensor host_f32(Context& ctx, const Tensor& t);
// A tensor on ctx's device with uniform values in [lo, hi) from Philox(seed), in dtype (f16/bf16
// values are rounded from the f32 draw).
Tensor uniform(Context& ctx, const Shape& shape, DType dtype, uint64_t seed, float lo, float hi);
// How many input sets to rotate so the working set (bytes per set) exceeds 3x the L2 cache.
int rotation_sets(Context& ctx, double bytes_per_set);

struct Timing {
  double median_us = 0, min_us = 0;
};
// Warms up, then times `repeats` calls of fn(i) (i counts up from 0 across warm-up and timing).
Timing time_fn(Context& ctx, const std::function<void(int)>& fn, int warmup, int repeats);

Peaks measure_peaks(Context& ctx);
// Builds the runner (bench_conv.cpp, bench_memory.cpp, bench_optim.cpp by spec.op), validates,
// times, and fills a Result. Errors become a FAIL status, never an exception.
Result run_row(Context& ctx, const RowSpec& spec, const Options& opt, const Peaks& peaks);

// Row list (bench/rows.cpp) for this device, batch and image size.
std::vector<RowSpec> build_rows(const Options& opt);
std::string spec_json(const RowSpec& s);
std::string result_json(const Result& r);
void print_header(const Peaks& peaks, const Options& opt, const std::string& device_text);
void print_result(const Result& r);

// Runner factories, one per family; each returns false when it does not know spec.op.
bool make_conv_runner(Context& ctx, const RowSpec& spec, Runner& out);
bool make_memory_runner(Context& ctx, const RowSpec& spec, Runner& out);
bool make_optim_runner(Context& ctx, const RowSpec& spec, Runner& out);

}  // namespace yolo::bench
