// CPU allocator and the caching allocator (policy at the top of core/allocator.h).
#include "core/allocator.h"

#include <cstdlib>
#include <sstream>

#include "core/error.h"

namespace yolo {

void* CpuAllocator::allocate(size_t bytes, StreamHandle) {
  const size_t rounded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
  YOLO_CHECK(p != nullptr, "out of host memory allocating "
                               << format_bytes(bytes) << ": use a smaller batch or image size");
  return p;
}

void CpuAllocator::deallocate(void* ptr) noexcept {
  std::free(ptr);
}

std::shared_ptr<Allocator> cpu_allocator() {
  static std::shared_ptr<Allocator> instance = std::make_shared<CpuAllocator>();
  return instance;
}

std::string format_bytes(size_t bytes) {
  std::ostringstream s;
  s.precision(3);
  if (bytes >= (size_t(1) << 30)) {
    s << double(bytes) / double(size_t(1) << 30) << " GiB";
  } else if (bytes >= (size_t(1) << 20)) {
    s << double(bytes) / double(size_t(1) << 20) << " MiB";
  } else if (bytes >= 1024) {
    s << double(bytes) / 1024.0 << " KiB";
  } else {
    s << bytes << " B";
  }
  return s.str();
}

CachingAllocator::CachingAllocator(std::unique_ptr<RawMemory> backend)
    : backend_(std::move(backend)) {
  pools_[0];
}

CachingAllocator::~CachingAllocator() {
  // Blocks still in use at destruction are a leak in the caller; free everything we own.
  for (auto& [ptr, block] : blocks_) backend_->raw_free(ptr);
}

Device CachingAllocator::device() const {
  return backend_->device();
}

size_t CachingAllocator::size_class(size_t bytes) {
  if (bytes == 0) bytes = 1;
  if (bytes <= 8192) return (bytes + 511) / 512 * 512;
  // Four classes per power of two: step = 2^(floor(log2(bytes-1)) - 2).
  size_t top = 8192;
  while (top < bytes) top <<= 1;  // top is the power of two >= bytes
  const size_t step = top / 8;    // classes between top/2 and top: top/2 + k*top/8
  return (bytes + step - 1) / step * step;
}

void* CachingAllocator::allocate(size_t bytes, StreamHandle stream) {
  const size_t size = size_class(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  ++stats_.num_allocations;
  Pool& pool = pools_[active_pool_];
  auto it = pool.free_blocks.find({stream, size});
  void* ptr = nullptr;
  if (it != pool.free_blocks.end() && !it->second.empty()) {
    ptr = it->second.back();
    it->second.pop_back();
    ++stats_.num_cache_hits;
  } else {
    ptr = backend_->raw_alloc(size);
    if (ptr == nullptr) {
      ++stats_.num_oom_retries;
      release_cached_locked(active_pool_);
      if (active_pool_ != 0) release_cached_locked(0);
      ptr = backend_->raw_alloc(size);
    }
    YOLO_CHECK(ptr != nullptr, "out of memory on "
                                   << backend_->device().str() << " allocating "
                                   << format_bytes(size) << " (in use "
                                   << format_bytes(stats_.allocated_bytes) << ", reserved "
                                   << format_bytes(stats_.reserved_bytes)
                                   << " after emptying the cache): reduce --batch-size or --imgsz");
    ++stats_.num_backend_allocs;
    stats_.reserved_bytes += size;
    if (stats_.reserved_bytes > stats_.peak_reserved_bytes)
      stats_.peak_reserved_bytes = stats_.reserved_bytes;
    blocks_[ptr] = Block{size, stream, active_pool_};
  }
  blocks_[ptr].pool = active_pool_;
  stats_.allocated_bytes += size;
  if (stats_.allocated_bytes > stats_.peak_allocated_bytes)
    stats_.peak_allocated_bytes = stats_.allocated_bytes;
  return ptr;
}

void CachingAllocator::deallocate(void* ptr) noexcept {
  if (ptr == nullptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = blocks_.find(ptr);
  YOLO_ASSERT(it != blocks_.end());
  const Block& b = it->second;
  stats_.allocated_bytes -= b.size;
  pools_[b.pool].free_blocks[{b.stream, b.size}].push_back(ptr);
}

void CachingAllocator::release_cached_locked(int pool_id) {
  auto pit = pools_.find(pool_id);
  if (pit == pools_.end()) return;
  bool synced = false;
  for (auto& [key, list] : pit->second.free_blocks) {
    for (void* p : list) {
      if (!synced) {
        backend_->synchronize();
        synced = true;
      }
      stats_.reserved_bytes -= blocks_[p].size;
      blocks_.erase(p);
      backend_->raw_free(p);
      ++stats_.num_backend_frees;
    }
    list.clear();
  }
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  release_cached_locked(0);
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void CachingAllocator::reset_peak_stats() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.peak_allocated_bytes = stats_.allocated_bytes;
  stats_.peak_reserved_bytes = stats_.reserved_bytes;
}

void CachingAllocator::begin_private_pool(int pool_id) {
  YOLO_CHECK(pool_id > 0, "private pool ids start at 1 (0 is the default pool)");
  std::lock_guard<std::mutex> lock(mutex_);
  YOLO_CHECK(active_pool_ == 0, "private pool " << active_pool_ << " is already active");
  active_pool_ = pool_id;
  pools_[pool_id];
}

void CachingAllocator::end_private_pool() {
  std::lock_guard<std::mutex> lock(mutex_);
  active_pool_ = 0;
}

void CachingAllocator::release_private_pool(int pool_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  YOLO_CHECK(pool_id != active_pool_, "cannot release private pool " << pool_id << " while active");
  release_cached_locked(pool_id);
  pools_.erase(pool_id);
}

void* HostMemory::raw_alloc(size_t bytes) noexcept {
  return std::aligned_alloc(64, bytes == 0 ? 64 : (bytes + 63) / 64 * 64);
}

void HostMemory::raw_free(void* ptr) noexcept {
  std::free(ptr);
}

void* CappedHostMemory::raw_alloc(size_t bytes) noexcept {
  if (in_use_ + bytes > cap_) return nullptr;
  void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (p == nullptr) return nullptr;
  in_use_ += bytes;
  sizes_[p] = bytes;
  return p;
}

void CappedHostMemory::raw_free(void* ptr) noexcept {
  auto it = sizes_.find(ptr);
  if (it == sizes_.end()) return;
  in_use_ -= it->second;
  sizes_.erase(it);
  std::free(ptr);
}

}  // namespace yolo
