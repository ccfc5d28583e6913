// CUDA augmentation apply (CPU twin: kernels/cpu/augment.cpp): one thread per output pixel,
// grid (column blocks, rows, samples). The per-sample descriptors (tiles resolved to byte
// offsets, inverted matrices, HSV tables) are prepared on the host and uploaded with one
// cudaMemcpyAsync from a pinned staging ring (Note [Descriptor staging]); every pixel is computed
// by the shared kernels/augment_pixel.h functions, so the bytes equal the CPU's.
#include <cuda_fp16.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <vector>

#include "core/cuda_check.h"
#include "core/cuda_state.h"
#include "kernels/augment.h"
#include "kernels/augment_pixel.h"

namespace yolo {
namespace {

using augment_pixel::PixelSample;

constexpr int kThreads = 128;

__device__ __forceinline__ void store(uint8_t* p, int v) {
  *p = uint8_t(v);
}
__device__ __forceinline__ void store(float* p, int v) {
  *p = __fdiv_rn(float(v), 255.0f);
}
__device__ __forceinline__ void store(__half* p, int v) {
  *p = __float2half_rn(__fdiv_rn(float(v), 255.0f));
}

// out: (B, H, W, 3) NHWC of T. samples: B prepared descriptors in device memory. tables: the HSV
// division tables hsv_sdiv(0..255) then hsv_hdiv(0..255), computed once per call on the host and
// uploaded with the descriptors (each block copies them to shared memory instead of dividing).
template <typename T>
__global__ void augment_kernel(const uint8_t* __restrict__ pixels,
                               const PixelSample* __restrict__ samples,
                               const int* __restrict__ tables, T* __restrict__ out, int H, int W) {
  __shared__ int sdiv[256];
  __shared__ int hdiv[256];
  for (int i = threadIdx.x; i < 256; i += blockDim.x) {
    sdiv[i] = tables[i];
    hdiv[i] = tables[256 + i];
  }
  __syncthreads();
  const int x = blockIdx.x * blockDim.x + threadIdx.x;
  const int y = blockIdx.y;
  const int n = blockIdx.z;
  if (x >= W) return;
  const PixelSample& s = samples[n];
  const int rx = s.flip_lr ? W - 1 - x : x;  // the pre-flip pixel this output pixel shows
  const int ry = s.flip_ud ? H - 1 - y : y;
  int a[3], b[3] = {0, 0, 0};
  augment_pixel::view_rgb(pixels, s.views[0], rx, ry, a);
  if (s.mixup) augment_pixel::view_rgb(pixels, s.views[1], rx, ry, b);
  augment_pixel::finish_rgb(s, a, b, augment_pixel::hsv_simd_column(rx, W), sdiv, hdiv, s.lut);
  T* o = out + ((int64_t(n) * H + y) * W + x) * 3;
  store(o, a[0]);
  store(o + 1, a[1]);
  store(o + 2, a[2]);
}

// Note [Descriptor staging]
// A cudaMemcpyAsync from pageable memory first waits for the stream's earlier work, so the data
// loader's thread would stall until the training step queued before it had run. The descriptors go
// through a small ring of page-locked buffers instead, each reused only after the event recorded
// behind its last upload has completed (by then long done: the ring holds kStagingSlots batches).
constexpr int kStagingSlots = 4;

struct DescriptorStaging {
  struct Slot {
    void* host = nullptr;
    size_t bytes = 0;
    cudaEvent_t uploaded = nullptr;
  };
  std::array<Slot, kStagingSlots> slots;
  int next = 0;

  DescriptorStaging() = default;
  DescriptorStaging(const DescriptorStaging&) = delete;
  DescriptorStaging& operator=(const DescriptorStaging&) = delete;
  ~DescriptorStaging() {
    for (Slot& s : slots) {
      if (s.uploaded) cudaEventDestroy(s.uploaded);
      if (s.host) cudaFreeHost(s.host);
    }
  }
};

// Copies `bytes` of host descriptors to `device` on `stream` through the staging ring.
void upload_descriptors(CudaState& cs, cudaStream_t stream, void* device, const void* host,
                        size_t bytes) {
  std::lock_guard<std::mutex> lock(cs.cache_mutex());
  DescriptorStaging& ring = cs.cache<DescriptorStaging>("augment_apply.staging");
  DescriptorStaging::Slot& slot = ring.slots[size_t(ring.next)];
  ring.next = (ring.next + 1) % kStagingSlots;
  if (slot.uploaded) CUDA_CHECK(cudaEventSynchronize(slot.uploaded));
  if (slot.bytes < bytes) {
    if (slot.host) CUDA_CHECK(cudaFreeHost(slot.host));
    slot.host = nullptr;
    slot.bytes = 0;
    CUDA_CHECK(cudaMallocHost(&slot.host, bytes));
    slot.bytes = bytes;
  }
  if (!slot.uploaded) CUDA_CHECK(cudaEventCreateWithFlags(&slot.uploaded, cudaEventDisableTiming));
  std::memcpy(slot.host, host, bytes);
  CUDA_CHECK(cudaMemcpyAsync(device, slot.host, bytes, cudaMemcpyHostToDevice, stream));
  CUDA_CHECK(cudaEventRecord(slot.uploaded, stream));
}

}  // namespace

void augment_apply_cuda(Context& ctx, const Tensor& pixels,
                        const std::vector<AugmentSource>& sources,
                        const std::vector<AugmentSample>& samples, const Tensor& out) {
  const int B = int(out.dim(0)), H = int(out.dim(1)), W = int(out.dim(2));
  if (B == 0 || H == 0 || W == 0) return;
  // One upload: B descriptors, then (at a 16-byte boundary) the two HSV division tables.
  const size_t sample_bytes = size_t(B) * sizeof(PixelSample);
  const size_t table_offset = (sample_bytes + 15) / 16 * 16;
  std::vector<uint8_t> host(table_offset + 2 * 256 * sizeof(int), 0);
  for (int n = 0; n < B; ++n) {
    PixelSample ps;
    augment_pixel::prepare_sample(samples[size_t(n)], sources, W, H, ps);
    std::memcpy(host.data() + size_t(n) * sizeof(PixelSample), &ps, sizeof(PixelSample));
  }
  int tables[2 * 256];
  for (int i = 0; i < 256; ++i) {
    tables[i] = augment_pixel::hsv_sdiv(i);
    tables[256 + i] = augment_pixel::hsv_hdiv(i);
  }
  std::memcpy(host.data() + table_offset, tables, sizeof(tables));
  const Tensor desc = ctx.empty({int64_t(host.size())}, DType::u8);
  cudaStream_t stream = ctx.cuda().stream;
  upload_descriptors(ctx.cuda(), stream, desc.raw(), host.data(), host.size());
  const dim3 grid(unsigned((W + kThreads - 1) / kThreads), unsigned(H), unsigned(B));
  const auto* d = static_cast<const PixelSample*>(desc.raw());
  const auto* t =
      reinterpret_cast<const int*>(static_cast<const uint8_t*>(desc.raw()) + table_offset);
  const auto* px = static_cast<const uint8_t*>(pixels.raw());
  switch (out.dtype()) {
    case DType::u8:
      augment_kernel<uint8_t>
          <<<grid, kThreads, 0, stream>>>(px, d, t, static_cast<uint8_t*>(out.raw()), H, W);
      break;
    case DType::f32:
      augment_kernel<float>
          <<<grid, kThreads, 0, stream>>>(px, d, t, static_cast<float*>(out.raw()), H, W);
      break;
    default:
      augment_kernel<__half>
          <<<grid, kThreads, 0, stream>>>(px, d, t, static_cast<__half*>(out.raw()), H, W);
      break;
  }
  YOLO_LAUNCH_CHECK();
}

}  // namespace yolo
