// CPU-only build of bench/cuda_baseline.h: every CUDA timing or baseline entry throws yolo::Error
// saying this yolocore was built without CUDA. CMake compiles it only when YOLO_CUDA=OFF.
#include "bench/cuda_baseline.h"

namespace yolo::bench {

std::vector<double> cuda_time_us(Context&, const std::function<void(int)>&, int, int) {
  throw_cuda_not_built("bench cuda_time_us");
}

double cuda_copy_peak_gbps(Context&, size_t, int) { throw_cuda_not_built("bench copy peak"); }

std::string cuda_device_text(Context&) { throw_cuda_not_built("bench device text"); }

size_t cuda_l2_bytes(Context&) { throw_cuda_not_built("bench L2 size"); }

double cuda_gemm_peak_tflops(Context&, DType, int, int) { throw_cuda_not_built("bench gemm peak"); }

void cudnn_batchnorm_fwd_train(Context&, const Tensor&, const Tensor&, const Tensor&,
                               const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                               const Tensor&, double, double) {
  throw_cuda_not_built("cudnn_batchnorm_fwd_train baseline");
}

}  // namespace yolo::bench
