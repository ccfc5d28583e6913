// The data loader (yolo/data/loader.h): worker threads, the in-order ring of batches, the pool of
// reusable batch buffers (pinned on CUDA) and the CUDA upload stage. Used by the trainer, the
// evaluator and `yolo dataset bench`.
#include "yolo/data/loader.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "kernels/augment.h"

namespace yolo {

// Note [Prefetch depth]
// The ring holds workers * prefetch batches: each worker has one batch in the making and, with the
// default 2, one finished batch waiting, so a consumer that takes batches faster than one worker
// makes them never finds every worker idle, and one slow batch (a burst of large images) does not
// stall the others, which keep filling later slots. More depth only adds memory: a 16 x 640 x 640
// batch is 19.7 MB in u8 and 78.6 MB in f32 (pinned on CUDA, where it is also scarce). PyTorch's
// DataLoader uses the same default (prefetch_factor = 2 per worker). With gpu_augment a slot holds
// the batch's distinct source images instead (about four per mosaic sample, ~70 MB pinned for 16
// samples of 640 px sources), uploaded and augmented on the GPU.
//
// Note [Batch buffers]
// Batch images (CPU path) and packed source pixels (GPU path) come from BatchBufferPool, an
// Allocator handed to Tensor::empty, so a buffer goes back to the pool when the last tensor viewing
// it dies — the caller may keep a Batch as long as it likes. A freed buffer is reused for a request
// of at most its size and at least half of it; with a fixed batch shape every batch after the
// first few reuses one of the ring's buffers and no batch-sized allocation happens in steady state.
// On CUDA the buffers are page-locked and an upload registers its completion event with
// release_after(), so a buffer is not rewritten until the DMA that reads it has finished.

namespace {

using Clock = std::chrono::steady_clock;

int64_t ns_since(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
}

}  // namespace

class BatchBufferPool final : public Allocator {
 public:
  // pinned: page-locked buffers for uploads to CUDA device `device`; else plain host memory.
  BatchBufferPool(bool pinned, int device, size_t max_free)
      : pinned_(pinned), device_(device), max_free_(max_free) {}
  ~BatchBufferPool() override {
    for (auto& [ptr, block] : blocks_) {
      if (block.event) {
        try {
          cuda_backend::event_synchronize(block.event);
        } catch (const std::exception& e) {
          std::fprintf(stderr, "data loader: waiting for an upload at shutdown: %s\n", e.what());
        }
        cuda_backend::event_destroy(block.event);
      }
      free_raw(ptr);
    }
  }

  void* allocate(size_t bytes, StreamHandle) override {
    std::lock_guard<std::mutex> lock(mutex_);
    void* best = nullptr;
    size_t best_size = SIZE_MAX;
    for (auto& [ptr, block] : blocks_) {
      if (block.in_use || block.size < bytes || block.size / 2 > bytes || block.size >= best_size)
        continue;
      if (!upload_done(block)) continue;
      best = ptr;
      best_size = block.size;
    }
    if (best) {
      blocks_[best].in_use = true;
      return best;
    }
    void* p = pinned_ ? cuda_backend::host_alloc_pinned(bytes, device_)
                      : cpu_allocator()->allocate(bytes, nullptr);
    blocks_[p] = Block{bytes, true, nullptr};
    return p;
  }

  // Trimmed buffers are freed after the lock is released: cudaFreeHost synchronises the device,
  // and the workers must not wait on the pool meanwhile.
  void deallocate(void* ptr) noexcept override {
    Victims victims;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = blocks_.find(ptr);
      YOLO_ASSERT(it != blocks_.end());
      it->second.in_use = false;
      victims = trim_locked();
    }
    for (size_t i = 0; i < victims.count; ++i) free_raw(victims.ptr[i]);
  }

  Device device() const override { return Device::cpu(); }

  // `ptr` (from allocate) is read by work that `event` completes; the pool owns the event and
  // does not hand the buffer out again before it has completed.
  void release_after(void* ptr, cuda_backend::EventHandle event) {
    std::lock_guard<std::mutex> lock(mutex_);
    Block& block = blocks_.at(ptr);
    if (block.event) cuda_backend::event_destroy(block.event);
    block.event = event;
  }

 private:
  struct Block {
    size_t size = 0;
    bool in_use = false;
    cuda_backend::EventHandle event = nullptr;
  };

  bool upload_done(Block& block) {
    if (!block.event) return true;
    if (!cuda_backend::event_query(block.event)) return false;
    cuda_backend::event_destroy(block.event);
    block.event = nullptr;
    return true;
  }

  // Buffers taken out of the pool by one trim, for the caller to free after unlocking; a fixed
  // array, so trimming allocates nothing (it runs in noexcept deallocate).
  static constexpr size_t kMaxTrim = 8;
  struct Victims {
    std::array<void*, kMaxTrim> ptr{};
    size_t count = 0;
  };

  // Keeps at most max_free_ idle buffers (rect batches vary in size): the smallest go first, at
  // most kMaxTrim per call (each deallocate adds one idle buffer, so later calls take the rest).
  Victims trim_locked() noexcept {
    Victims victims;
    size_t idle = 0;
    for (auto& [ptr, block] : blocks_) idle += block.in_use ? 0 : 1;
    while (idle > max_free_) {
      auto victim = blocks_.end();
      for (auto it = blocks_.begin(); it != blocks_.end(); ++it) {
        if (it->second.in_use || it->second.event) continue;
        if (victim == blocks_.end() || it->second.size < victim->second.size) victim = it;
      }
      if (victim == blocks_.end() || victims.count == kMaxTrim) break;
      victims.ptr[victims.count++] = victim->first;
      blocks_.erase(victim);
      --idle;
    }
    return victims;
  }

  void free_raw(void* ptr) noexcept {
    if (pinned_) {
      cuda_backend::host_free_pinned(ptr);
    } else {
      cpu_allocator()->deallocate(ptr);
    }
  }

  bool pinned_;
  int device_;
  size_t max_free_;
  std::mutex mutex_;
  std::map<void*, Block> blocks_;
};

// A batch as a worker leaves it: everything but the device copy.
struct PendingBatch {
  int64_t seq = 0;
  Batch batch;
  // gpu_augment: every distinct source image of the batch packed as u8 (pinned), their places,
  // and each sample's description with tile sources numbered in `sources`.
  Tensor pixels;
  std::vector<AugmentSource> sources;
  std::vector<AugmentSample> samples;
  std::exception_ptr error;
};

struct DataLoader::Slot {
  int64_t seq = -1;
  std::unique_ptr<PendingBatch> batch;
};

struct DataLoader::Staged {
  std::unique_ptr<PendingBatch> pending;
  Tensor device_data;  // the uploaded images (CPU apply) or packed pixels (gpu_augment)
  cuda_backend::EventHandle uploaded = nullptr;  // owned by the pool (release_after)
};

struct DataLoader::WorkerState {
  Context ctx{Device::cpu(), 1};  // augment_apply on this worker's thread only
  Tensor pack;                    // u8 (capacity): one sample's source images, reused
  std::vector<std::shared_ptr<const Image>> loaded;  // the current sample's source crops
};

DataLoader::DataLoader(DetectionDataset& dataset, Context& ctx, LoaderOptions options)
    : dataset_(dataset), ctx_(ctx), options_(options) {
  const LoaderOptions& o = options_;
  YOLO_CHECK(o.batch_size >= 1, "data loader: batch size " << o.batch_size << " must be >= 1");
  YOLO_CHECK(o.workers >= 0, "data loader: workers " << o.workers << " must be >= 0");
  YOLO_CHECK(o.prefetch >= 1, "data loader: prefetch " << o.prefetch << " must be >= 1");
  YOLO_CHECK(o.epochs >= 0 && o.start_epoch >= 0, "data loader: start_epoch "
                                                      << o.start_epoch << " and epochs " << o.epochs
                                                      << " must be >= 0");
  YOLO_CHECK(!o.gpu_augment || ctx.device().is_cuda(),
             "data loader: gpu_augment needs a CUDA context, got " << ctx.device().str()
                                                                   << " (drop --gpu-augment)");
  YOLO_CHECK(
      o.dtype == DType::u8 || o.dtype == DType::f32 || (o.dtype == DType::f16 && o.gpu_augment),
      "data loader: images dtype " << dtype_name(o.dtype)
                                   << " is not offered (u8 or f32; f16 with gpu_augment)");
  sampler_ = SamplerOptions{dataset.size(), o.shuffle, o.seed, o.rank, o.world};
  samples_ = samples_per_rank(sampler_);
  YOLO_CHECK(samples_ > 0, "data loader: the dataset is empty");
  batches_ = yolo::batches_per_epoch(samples_, o.batch_size);
  end_seq_ = o.epochs > 0 ? o.epochs * batches_ : INT64_MAX;
  consumed_ = 0;
  const int capacity = std::max(1, o.workers) * o.prefetch;
  pool_ =
      std::make_shared<BatchBufferPool>(ctx.device().is_cuda(), ctx.device().index,
                                        static_cast<size_t>(capacity) + 2);
  if (o.cache_images) dataset_.cache_images();
  slots_.resize(static_cast<size_t>(capacity));
  if (o.workers == 0) {
    inline_state_ = std::make_unique<WorkerState>();
  } else {
    threads_.reserve(static_cast<size_t>(o.workers));
    for (int w = 0; w < o.workers; ++w) threads_.emplace_back([this, w] { worker_loop(w); });
  }
}

DataLoader::~DataLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
    stopping_ = true;
  }
  work_cv_.notify_all();
  ready_cv_.notify_all();
  for (std::thread& t : threads_) t.join();
  // A batch taken ahead may still be uploading into memory from the compute stream's cache: that
  // stream waits for the copy before the memory goes back to it, so no later op reuses it early.
  if (lookahead_ && lookahead_->uploaded) {
    try {
      cuda_backend::stream_wait_event(ctx_.stream(), lookahead_->uploaded);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "data loader: ordering an upload at shutdown: %s\n", e.what());
    }
  }
}

std::shared_ptr<const std::vector<int64_t>> DataLoader::epoch_order(int64_t epoch) {
  std::lock_guard<std::mutex> lock(order_mutex_);
  auto it = orders_.find(epoch);
  if (it != orders_.end()) return it->second;
  auto order = std::make_shared<const std::vector<int64_t>>(epoch_indices(sampler_, epoch));
  orders_[epoch] = order;
  // Keep a few epochs: workers span at most the ring's depth; an evicted order is recomputed.
  while (orders_.size() > 4) orders_.erase(orders_.begin());
  return order;
}

void DataLoader::worker_loop(int) {
  WorkerState ws;
  const int64_t capacity = static_cast<int64_t>(slots_.size());
  while (true) {
    int64_t seq = 0;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_cv_.wait(lock, [&] {
        return stop_ || (next_claim_ < end_seq_ && next_claim_ < consumed_ + capacity);
      });
      if (stop_) return;
      seq = next_claim_++;
    }
    std::unique_ptr<PendingBatch> batch = make_batch_or_error(seq, ws);
    if (!batch) return;  // stopped mid-batch
    {
      std::lock_guard<std::mutex> lock(mutex_);
      Slot& slot = slots_[static_cast<size_t>(seq % capacity)];
      slot.seq = seq;
      slot.batch = std::move(batch);
    }
    ready_cv_.notify_all();
  }
}

std::unique_ptr<PendingBatch> DataLoader::make_batch_or_error(int64_t seq, WorkerState& ws) {
  try {
    return make_batch(seq, ws);
  } catch (const std::exception& e) {
    auto p = std::make_unique<PendingBatch>();
    p->seq = seq;
    std::ostringstream msg;
    msg << "data loader: epoch " << options_.start_epoch + seq / batches_ << ", batch "
        << seq % batches_ << ": " << e.what();
    p->error = std::make_exception_ptr(Error(msg.str()));
    return p;
  }
}

std::unique_ptr<PendingBatch> DataLoader::make_batch(int64_t seq, WorkerState& ws) {
  const int64_t epoch = options_.start_epoch + seq / batches_;
  const int64_t b = seq % batches_;
  const std::shared_ptr<const std::vector<int64_t>> order = epoch_order(epoch);
  const int64_t begin = b * options_.batch_size;
  const int64_t n = std::min<int64_t>(options_.batch_size, samples_ - begin);

  auto pending = std::make_unique<PendingBatch>();
  pending->seq = seq;
  Batch& out = pending->batch;
  out.epoch = epoch;
  out.index = b;
  out.indices.assign(order->begin() + begin, order->begin() + begin + n);

  // Plans.
  auto t0 = Clock::now();
  std::vector<PreparedSample> plans(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) plans[i] = dataset_.prepare(out.indices[i], epoch);
  counters_.plan_ns += ns_since(t0);
  counters_.plan_count += n;
  out.height = plans[0].out_h;
  out.width = plans[0].out_w;
  for (int64_t i = 1; i < n; ++i) {
    YOLO_CHECK(plans[i].out_h == out.height && plans[i].out_w == out.width,
               "samples " << out.indices[0] << " and " << out.indices[i] << " have output sizes "
                          << out.width << "x" << out.height << " and " << plans[i].out_w << "x"
                          << plans[i].out_h
                          << " in one batch (rect batches need shuffle off, no DDP and the "
                             "loader's batch size equal to the dataset's)");
  }
  const Shape image_shape{n, out.height, out.width, 3};

  if (!options_.gpu_augment) {
    // CPU apply, one sample at a time into its slice of the batch.
    Tensor images = Tensor::empty(image_shape, options_.dtype, pool_);
    for (int64_t i = 0; i < n; ++i) {
      if (stopping_) return nullptr;
      const PreparedSample& p = plans[static_cast<size_t>(i)];
      t0 = Clock::now();
      ws.loaded.clear();
      std::vector<AugmentSource> sources;
      int64_t total = 0;
      for (size_t k = 0; k < p.images.size(); ++k) {
        ws.loaded.push_back(dataset_.source_image(p, k));
        const Image& im = *ws.loaded.back();
        sources.push_back({total, im.width, im.height});
        total += static_cast<int64_t>(im.pixels.size());
      }
      Tensor pixels;
      if (ws.loaded.size() == 1) {
        // One source (letterbox): read the decoded image where it lies.
        pixels = Tensor::wrap(const_cast<uint8_t*>(ws.loaded[0]->pixels.data()), {total},
                              DType::u8, Device::cpu());
      } else {
        if (!ws.pack.defined() || ws.pack.numel() < total) {
          ws.pack = Tensor::empty_cpu({total + total / 4}, DType::u8);
        }
        uint8_t* dst = ws.pack.data<uint8_t>();
        for (size_t k = 0; k < ws.loaded.size(); ++k) {
          const std::vector<uint8_t>& px = ws.loaded[k]->pixels;
          std::memcpy(dst + sources[k].offset, px.data(), px.size());
        }
        pixels = ws.pack;
      }
      counters_.load_ns += ns_since(t0);
      counters_.load_count += static_cast<int64_t>(p.images.size());

      t0 = Clock::now();
      augment_apply(ws.ctx, pixels, sources, {p.desc}, images.slice(i, i + 1));
      counters_.apply_ns += ns_since(t0);
      counters_.apply_count += 1;
    }
    ws.loaded.clear();
    out.host_images = images;
    if (ctx_.device().is_cpu()) out.images = images;
  } else {
    // GPU apply: pack every sample's source crops, renumbering its tiles into the batch's list.
    t0 = Clock::now();
    ws.loaded.clear();
    int64_t total = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (stopping_) return nullptr;
      const PreparedSample& p = plans[static_cast<size_t>(i)];
      const int32_t first = static_cast<int32_t>(ws.loaded.size());
      for (size_t k = 0; k < p.images.size(); ++k) {
        ws.loaded.push_back(dataset_.source_image(p, k));
        const Image& im = *ws.loaded.back();
        pending->sources.push_back({total, im.width, im.height});
        total += static_cast<int64_t>(im.pixels.size());
      }
      AugmentSample desc = p.desc;
      for (AugmentView& view : desc.views) {
        for (int32_t t = 0; t < view.n_tiles; ++t) view.tiles[t].source += first;
      }
      pending->samples.push_back(desc);
    }
    pending->pixels = Tensor::empty({std::max<int64_t>(total, 1)}, DType::u8, pool_);
    uint8_t* dst = pending->pixels.data<uint8_t>();
    for (size_t k = 0; k < ws.loaded.size(); ++k) {
      const std::vector<uint8_t>& px = ws.loaded[k]->pixels;
      std::memcpy(dst + pending->sources[k].offset, px.data(), px.size());
    }
    counters_.load_ns += ns_since(t0);
    counters_.load_count += static_cast<int64_t>(ws.loaded.size());
    ws.loaded.clear();
  }

  // Collate: targets with the image index in column 0, paths, shapes.
  t0 = Clock::now();
  int64_t rows = 0;
  for (const PreparedSample& p : plans) rows += static_cast<int64_t>(p.labels.size() / 5);
  out.targets = Tensor::empty_cpu({rows, 6}, DType::f32);
  float* t = out.targets.data<float>();
  out.paths.reserve(static_cast<size_t>(n));
  out.shapes.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const PreparedSample& p = plans[static_cast<size_t>(i)];
    const size_t nl = p.labels.size() / 5;
    for (size_t r = 0; r < nl; ++r, t += 6) {
      t[0] = static_cast<float>(i);
      std::memcpy(t + 1, p.labels.data() + 5 * r, 5 * sizeof(float));
    }
    out.paths.push_back(dataset_.images()[static_cast<size_t>(out.indices[i])].image);
    SampleShapes s;
    s.mosaic = p.mosaic;
    s.h0 = p.h0;
    s.w0 = p.w0;
    s.ratio_h = p.ratio_h;
    s.ratio_w = p.ratio_w;
    s.pad_w = p.pad_w;
    s.pad_h = p.pad_h;
    out.shapes.push_back(s);
  }
  counters_.collate_ns += ns_since(t0);
  counters_.collate_count += 1;
  return pending;
}

std::unique_ptr<PendingBatch> DataLoader::take(int64_t seq, bool wait) {
  const int64_t capacity = static_cast<int64_t>(slots_.size());
  std::unique_ptr<PendingBatch> batch;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    Slot& slot = slots_[static_cast<size_t>(seq % capacity)];
    auto ready = [&] { return slot.seq == seq && slot.batch != nullptr; };
    if (!ready()) {
      if (!wait) return nullptr;
      ready_cv_.wait(lock, ready);
    }
    batch = std::move(slot.batch);
    slot.seq = -1;
    consumed_ = seq + 1;
  }
  work_cv_.notify_all();
  return batch;
}

DataLoader::Staged DataLoader::stage(std::unique_ptr<PendingBatch> pending) {
  Staged staged;
  staged.pending = std::move(pending);
  if (staged.pending->error || ctx_.device().is_cpu()) return staged;
  const auto t0 = Clock::now();
  const Tensor& host =
      options_.gpu_augment ? staged.pending->pixels : staged.pending->batch.host_images;
  CudaState& cuda = ctx_.cuda();
  // The destination comes from the compute stream's cache: the copy stream first waits for the
  // work queued there so far (whatever last used that memory).
  Tensor device = ctx_.empty(host.shape(), host.dtype());
  cuda_backend::EventHandle allocated = cuda_backend::event_create(cuda);
  cuda_backend::event_record(allocated, ctx_.stream());
  const StreamHandle copy = cuda_backend::copy_stream(cuda);
  cuda_backend::stream_wait_event(copy, allocated);
  cuda_backend::event_destroy(allocated);
  cuda_backend::memcpy_h2d_async(device.raw(), host.raw(), host.nbytes(), copy, cuda);
  staged.uploaded = cuda_backend::event_create(cuda);
  cuda_backend::event_record(staged.uploaded, copy);
  pool_->release_after(host.raw(), staged.uploaded);
  staged.device_data = device;
  counters_.copy_ns += ns_since(t0);
  counters_.copy_count += 1;
  return staged;
}

Batch DataLoader::finish(Staged staged) {
  Batch batch = std::move(staged.pending->batch);
  if (ctx_.device().is_cuda()) {
    // The caller's work on the compute stream starts after the upload (no host wait).
    cuda_backend::stream_wait_event(ctx_.stream(), staged.uploaded);
    if (options_.gpu_augment) {
      const auto t0 = Clock::now();
      Tensor images = ctx_.empty({batch.size(), batch.height, batch.width, 3}, options_.dtype);
      augment_apply(ctx_, staged.device_data, staged.pending->sources, staged.pending->samples,
                    images);
      batch.images = images;
      counters_.apply_ns += ns_since(t0);
      counters_.apply_count += 1;
    } else {
      batch.images = staged.device_data;
    }
  }
  counters_.batches += 1;
  counters_.images += batch.size();
  return batch;
}

std::optional<Batch> DataLoader::next() {
  if (failed_) std::rethrow_exception(failed_);
  if (delivered_ >= end_seq_) return std::nullopt;
  const int64_t seq = delivered_;
  std::unique_ptr<Staged> staged;
  const auto t0 = Clock::now();
  if (lookahead_ && lookahead_->pending->seq == seq) {
    staged = std::move(lookahead_);
  } else if (options_.workers == 0) {
    std::unique_ptr<PendingBatch> pending = make_batch_or_error(seq, *inline_state_);
    consumed_ = seq + 1;
    staged = std::make_unique<Staged>(stage(std::move(pending)));
  } else {
    std::unique_ptr<PendingBatch> pending = take(seq, true);
    counters_.wait_ns += ns_since(t0);
    staged = std::make_unique<Staged>(stage(std::move(pending)));
  }
  counters_.wait_count += 1;
  if (staged->pending->error) {
    failed_ = staged->pending->error;
    std::rethrow_exception(failed_);
  }
  Batch batch = finish(std::move(*staged));
  delivered_ = seq + 1;
  // Take the following batch now if it is ready: on CUDA its upload then overlaps the caller's
  // step on this one; on the CPU it only frees its ring slot a step early (one more batch in
  // the making), and keeps both devices on the same sequence logic.
  if (options_.workers > 0 && delivered_ < end_seq_) {
    YOLO_ASSERT(consumed_ == delivered_);
    if (std::unique_ptr<PendingBatch> ahead = take(delivered_, false)) {
      lookahead_ = std::make_unique<Staged>(stage(std::move(ahead)));
    }
  }
  return batch;
}

LoaderCounters DataLoader::counters() const {
  LoaderCounters c;
  c.load_ns = counters_.load_ns;
  c.load_count = counters_.load_count;
  c.plan_ns = counters_.plan_ns;
  c.plan_count = counters_.plan_count;
  c.apply_ns = counters_.apply_ns;
  c.apply_count = counters_.apply_count;
  c.collate_ns = counters_.collate_ns;
  c.collate_count = counters_.collate_count;
  c.copy_ns = counters_.copy_ns;
  c.copy_count = counters_.copy_count;
  c.wait_ns = counters_.wait_ns;
  c.wait_count = counters_.wait_count;
  c.batches = counters_.batches;
  c.images = counters_.images;
  return c;
}

std::string LoaderCounters::str() const {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(2);
  auto stage = [&](const char* name, int64_t ns, int64_t count) {
    s << " | " << name << " " << count << " x "
      << (count > 0 ? static_cast<double>(ns) / static_cast<double>(count) * 1e-6 : 0.0) << " ms";
  };
  s << "loader: " << batches << " batches, " << images << " images";
  stage("load", load_ns, load_count);
  stage("plan", plan_ns, plan_count);
  stage("apply", apply_ns, apply_count);
  stage("collate", collate_ns, collate_count);
  stage("copy", copy_ns, copy_count);
  stage("wait", wait_ns, wait_count);
  return s.str();
}

}  // namespace yolo
