// The training/validation data loader: worker threads turn (seed, epoch, batch index) into finished
// batches — plans from DetectionDataset::prepare, pixels from augment_apply — in reusable (pinned,
// on CUDA) buffers; next() hands them out in order and, on CUDA, uploads them on the copy stream so
// the copy of batch k + 1 overlaps the caller's step k.
//   DataLoader loader(dataset, ctx, {.batch_size = 16, .workers = 2, .epochs = 300});
//   while (std::optional<Batch> b = loader.next()) train_step(b->images, b->targets);
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/context.h"
#include "yolo/data/dataset.h"
#include "yolo/data/sampler.h"

namespace yolo {

struct LoaderOptions {
  int batch_size = 16;
  // Threads making batches. 0 makes each batch inside next() on the caller's thread (as the
  // reference's num_workers=0).
  int workers = 2;
  // Batches in flight per worker (being made or finished and waiting), as PyTorch's
  // prefetch_factor. Note [Prefetch depth].
  int prefetch = 2;
  bool shuffle = true;  // Note [Epoch order] in sampler.h
  uint64_t seed = 0;    // the sampler's seed (augmentation plans use the dataset's own seed)
  int rank = -1;        // DDP rank, -1 for one process
  int world = 1;
  int64_t start_epoch = 0;
  int64_t epochs = 0;  // epochs to deliver (then next() returns nullopt); 0: no end
  // The images' dtype: u8 (pixel values) or f32 (value / 255); f16 (value / 255) with gpu_augment.
  DType dtype = DType::u8;
  // CUDA only: workers upload the decoded source images and augment_apply runs on the GPU.
  bool gpu_augment = false;
  // Calls dataset.cache_images() (--cache ram) before the workers start.
  bool cache_images = false;
};

// The reference's per-sample `shapes`, for mapping predictions back to the original image
// (meaningful for letterboxed samples; mosaic samples have none, as the reference's None).
struct SampleShapes {
  bool mosaic = false;  // built from more than one image
  int h0 = 0, w0 = 0;
  double ratio_h = 1.0, ratio_w = 1.0, pad_w = 0.0, pad_h = 0.0;
};

struct Batch {
  int64_t epoch = 0;
  int64_t index = 0;          // batch number within the epoch
  int height = 0, width = 0;  // the letterbox / mosaic output size every sample of it shares
  // images: (B, H, W, 3) NHWC RGB on the loader's device, LoaderOptions::dtype.
  Tensor images;
  // host_images: (B, H, W, 3) the host batch `images` was copied from (CPU-apply path; on the CPU
  // the same tensor as images); undefined with gpu_augment.
  Tensor host_images;
  // targets: (N, 6) f32 host, rows [image index in batch, class, x, y, w, h] (normalised xywh).
  Tensor targets;
  std::vector<int64_t> indices;  // dataset index of each sample
  std::vector<std::string> paths;
  std::vector<SampleShapes> shapes;
  int64_t size() const { return static_cast<int64_t>(indices.size()); }
};

// Per-stage totals since the loader started: nanoseconds and event counts. Worker stages add the
// time of every worker, so with W workers they can exceed wall time W-fold.
struct LoaderCounters {
  int64_t load_ns = 0, load_count = 0;        // load_image calls (decode or RAM cache) + packing
  int64_t plan_ns = 0, plan_count = 0;        // prepare() calls (one per sample)
  int64_t apply_ns = 0, apply_count = 0;      // augment_apply calls (per sample on the CPU,
                                              // per batch on the GPU: host time to launch)
  int64_t collate_ns = 0, collate_count = 0;  // targets / paths / shapes, one per batch
  int64_t copy_ns = 0, copy_count = 0;        // host time issuing uploads, one per batch
  int64_t wait_ns = 0, wait_count = 0;        // time next() waited for a batch, per call
  int64_t batches = 0, images = 0;            // delivered by next()
  // "loader: 30 batches, 480 images | load 1920 x 2.10 ms | plan 480 x 0.04 ms | ..."
  std::string str() const;
};

class BatchBufferPool;
struct PendingBatch;

class DataLoader {
 public:
  // The dataset and ctx (the device batches go to) must outlive the loader. Throws yolo::Error
  // for bad options (f16 without gpu_augment, gpu_augment on the CPU, workers < 0, ...).
  DataLoader(DetectionDataset& dataset, Context& ctx, LoaderOptions options);
  // Stops the workers (each finishes at most the sample it is on) and joins them. Never throws.
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  const LoaderOptions& options() const { return options_; }
  int64_t samples_per_epoch() const { return samples_; }
  int64_t batches_per_epoch() const { return batches_; }

  // The next batch in (epoch, index) order, or nullopt after the last epoch. Rethrows a worker's
  // failure (a yolo::Error naming the batch and the file) when its batch comes up; once failed,
  // every later call throws the same error.
  std::optional<Batch> next();

  LoaderCounters counters() const;

 private:
  struct Counters {
    std::atomic<int64_t> load_ns{0}, load_count{0}, plan_ns{0}, plan_count{0}, apply_ns{0},
        apply_count{0}, collate_ns{0}, collate_count{0}, copy_ns{0}, copy_count{0}, wait_ns{0},
        wait_count{0}, batches{0}, images{0};
  };
  struct WorkerState;
  struct Slot;
  struct Staged;

  void worker_loop(int worker);
  // Makes batch `seq` (sequence number over all epochs); errors are stored in the result.
  std::unique_ptr<PendingBatch> make_batch(int64_t seq, WorkerState& ws);
  std::unique_ptr<PendingBatch> make_batch_or_error(int64_t seq, WorkerState& ws);
  std::shared_ptr<const std::vector<int64_t>> epoch_order(int64_t epoch);
  std::unique_ptr<PendingBatch> take(int64_t seq, bool wait);
  Staged stage(std::unique_ptr<PendingBatch> p);
  Batch finish(Staged s);

  DetectionDataset& dataset_;
  Context& ctx_;
  LoaderOptions options_;
  SamplerOptions sampler_;
  int64_t samples_ = 0, batches_ = 0;
  int64_t end_seq_ = 0;  // one past the last sequence number
  std::shared_ptr<BatchBufferPool> pool_;
  Counters counters_;

  std::mutex order_mutex_;
  std::map<int64_t, std::shared_ptr<const std::vector<int64_t>>> orders_;

  std::mutex mutex_;
  std::condition_variable work_cv_;   // workers: capacity freed or stop
  std::condition_variable ready_cv_;  // consumer: a slot filled
  std::vector<Slot> slots_;
  int64_t next_claim_ = 0;  // next sequence number a worker takes
  int64_t consumed_ = 0;    // next sequence number taken out of the ring
  int64_t delivered_ = 0;   // next sequence number next() returns (consumed_ - 1 with a look-ahead)
  bool stop_ = false;
  std::atomic<bool> stopping_{false};
  std::exception_ptr failed_;
  std::unique_ptr<WorkerState> inline_state_;  // workers == 0
  std::unique_ptr<Staged> lookahead_;          // batch delivered_, taken early (uploading on CUDA)
  std::vector<std::thread> threads_;
};

}  // namespace yolo
