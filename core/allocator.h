// Allocators: the interface every tensor's storage comes from, the 64-byte aligned CPU allocator,
// and the caching allocator (used over cudaMalloc for GPUs, and over a capped host backend in
// tests).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/device.h"

namespace yolo {

// A stream is an opaque handle (cudaStream_t on CUDA, nullptr on the CPU).
using StreamHandle = void*;

class Allocator {
 public:
  virtual ~Allocator() = default;
  // Returns memory of at least `bytes` bytes usable in `stream` order. Throws yolo::Error when out
  // of memory. A zero-byte request returns a valid, unique pointer.
  virtual void* allocate(size_t bytes, StreamHandle stream) = 0;
  // Gives back a pointer from allocate(). Never throws.
  virtual void deallocate(void* ptr) noexcept = 0;
  virtual Device device() const = 0;
};

// Plain host memory, 64-byte aligned (cache line and AVX-512 width).
class CpuAllocator final : public Allocator {
 public:
  void* allocate(size_t bytes, StreamHandle stream) override;
  void deallocate(void* ptr) noexcept override;
  Device device() const override { return Device::cpu(); }
};

// The process-wide CPU allocator (stateless, so sharing it is not a hidden device global).
std::shared_ptr<Allocator> cpu_allocator();

// Where a caching allocator gets its blocks: cudaMalloc/cudaFree for a GPU, or a capped host heap
// in tests. raw_alloc returns nullptr when memory is exhausted (it must not throw for that).
class RawMemory {
 public:
  virtual ~RawMemory() = default;
  virtual void* raw_alloc(size_t bytes) noexcept = 0;
  virtual void raw_free(void* ptr) noexcept = 0;
  virtual Device device() const = 0;
  // Called before cached blocks are returned to the backend (a device synchronise on CUDA, so no
  // kernel still uses them).
  virtual void synchronize() noexcept {}
};

struct AllocatorStats {
  size_t allocated_bytes = 0;       // handed out to callers now (rounded sizes)
  size_t peak_allocated_bytes = 0;  // high-water mark of allocated_bytes
  size_t reserved_bytes = 0;        // obtained from the backend now (allocated + cached)
  size_t peak_reserved_bytes = 0;
  size_t num_allocations = 0;     // allocate() calls
  size_t num_cache_hits = 0;      // served from a cached block
  size_t num_backend_allocs = 0;  // raw_alloc calls that succeeded
  size_t num_backend_frees = 0;
  size_t num_oom_retries = 0;  // times the cache was emptied to retry a failed raw_alloc
};

// Caching allocator. Policy:
// - Requests are rounded up to a size class: multiples of 512 B below 8 KiB, then four classes per
//   power of two (…, 8, 10, 12, 14, 16 KiB, …), so a class wastes at most 25%.
// - A freed block goes to the free list of (pool, stream it was allocated on, size class) and is
//   reused only by a request of the same class on the same stream: stream order makes reuse safe
//   without synchronising. Using a block on another stream is the caller's job to order.
// - A miss asks the backend. If the backend is out of memory, every cached block of the current
// pool
//   is returned to the backend (after synchronize()) and the request is retried once; a second
//   failure throws yolo::Error with the statistics and how to fix it.
// - Private pools serve CUDA graph capture: between begin_private_pool(id) and end_private_pool(),
//   allocations come from and return to pool `id` only, so addresses baked into a captured graph
//   are never handed to code outside it. release_private_pool(id) returns the pool's cached memory.
// - Statistics (current and peak) are kept for allocated and reserved bytes.
// Thread-safe.
class CachingAllocator final : public Allocator {
 public:
  explicit CachingAllocator(std::unique_ptr<RawMemory> backend);
  ~CachingAllocator() override;

  void* allocate(size_t bytes, StreamHandle stream) override;
  void deallocate(void* ptr) noexcept override;
  Device device() const override;

  // Returns every cached (free) block of the default pool to the backend.
  void empty_cache();
  AllocatorStats stats() const;
  void reset_peak_stats();

  void begin_private_pool(int pool_id);
  void end_private_pool();
  void release_private_pool(int pool_id);

  static size_t size_class(size_t bytes);

 private:
  struct Block {
    size_t size;
    StreamHandle stream;
    int pool;
  };
  using FreeKey = std::pair<StreamHandle, size_t>;
  struct Pool {
    std::map<FreeKey, std::vector<void*>> free_blocks;
  };
  void release_cached_locked(int pool_id);

  std::unique_ptr<RawMemory> backend_;
  mutable std::mutex mutex_;
  std::unordered_map<void*, Block> blocks_;  // every block we own, free or in use
  std::map<int, Pool> pools_;                // pool 0 is the default pool
  int active_pool_ = 0;
  AllocatorStats stats_;
};

// Plain 64-byte aligned host memory as a caching allocator's backend: a CPU Context's allocator
// (Note [Host memory cache] in core/context.cpp).
class HostMemory final : public RawMemory {
 public:
  void* raw_alloc(size_t bytes) noexcept override;
  void raw_free(void* ptr) noexcept override;
  Device device() const override { return Device::cpu(); }
};

// Host heap with a byte cap, for testing the caching policy and the out-of-memory path on the CPU.
class CappedHostMemory final : public RawMemory {
 public:
  explicit CappedHostMemory(size_t cap_bytes) : cap_(cap_bytes) {}
  void* raw_alloc(size_t bytes) noexcept override;
  void raw_free(void* ptr) noexcept override;
  Device device() const override { return Device::cpu(); }
  size_t in_use() const { return in_use_; }

 private:
  size_t cap_;
  size_t in_use_ = 0;
  std::unordered_map<void*, size_t> sizes_;
};

std::string format_bytes(size_t bytes);

}  // namespace yolo
