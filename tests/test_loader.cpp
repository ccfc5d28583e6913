// The data loader (yolo/data/loader.h) and its epoch order (yolo/data/sampler.h): sampler orders
// against tests/fixtures/sampler.json (PyTorch 1.13's own DistributedSampler and randperm, made by
// tools/parity/make_sampler_fixtures.py), and loader batches on a small shapes dataset.
//   yolo_tests "[loader]"
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "tests/harness.h"
#include "yolo/data/dataset.h"
#include "yolo/data/loader.h"
#include "yolo/data/sampler.h"
#include "yolo/data/shapes_dataset.h"

using namespace yolo;
using nlohmann::json;

namespace {

const json& sampler_fixture() {
  static const json doc = [] {
    const auto path = std::filesystem::path(__FILE__).parent_path() / "fixtures" / "sampler.json";
    std::ifstream in(path);
    REQUIRE(in.good());
    return json::parse(in);
  }();
  return doc;
}

}  // namespace

TEST_CASE("sampler randperm matches torch.randperm", "[loader]") {
  for (const json& c : sampler_fixture().at("randperm")) {
    const auto n = c.at("n").get<int64_t>();
    const auto seed = c.at("seed").get<uint64_t>();
    INFO("n " << n << " seed " << seed);
    REQUIRE(torch_randperm(n, seed) == c.at("perm").get<std::vector<int64_t>>());
  }
}

TEST_CASE("sampler epoch order matches DistributedSampler", "[loader]") {
  for (const json& c : sampler_fixture().at("distributed")) {
    SamplerOptions o;
    o.size = c.at("n").get<int64_t>();
    o.world = c.at("world").get<int>();
    o.rank = c.at("rank").get<int>();
    o.seed = c.at("seed").get<uint64_t>();
    o.shuffle = c.at("shuffle").get<bool>();
    const auto epoch = c.at("epoch").get<int64_t>();
    INFO("n " << o.size << " world " << o.world << " rank " << o.rank << " seed " << o.seed
              << " epoch " << epoch << " shuffle " << o.shuffle);
    const std::vector<int64_t> got = epoch_indices(o, epoch);
    REQUIRE(got == c.at("indices").get<std::vector<int64_t>>());
    REQUIRE(static_cast<int64_t>(got.size()) == samples_per_rank(o));
  }
}

TEST_CASE("sampler DDP ranks partition the padded index list", "[loader]") {
  for (int64_t n : {1, 7, 12, 13, 100}) {
    for (int world : {1, 2, 3, 8}) {
      SamplerOptions o{n, true, 3, 0, world};
      const int64_t per = samples_per_rank(o);
      REQUIRE(per == (n + world - 1) / world);
      std::vector<std::vector<int64_t>> ranks;
      for (int r = 0; r < world; ++r) {
        o.rank = r;
        ranks.push_back(epoch_indices(o, 5));
        REQUIRE(static_cast<int64_t>(ranks.back().size()) == per);
      }
      // Interleaving the ranks back gives the padded list: the permutation, then its start again.
      const std::vector<int64_t> perm = torch_randperm(n, 3 + 5);
      for (int64_t k = 0; k < per * world; ++k) {
        REQUIRE(ranks[static_cast<size_t>(k % world)][static_cast<size_t>(k / world)] ==
                perm[static_cast<size_t>(k % n)]);
      }
    }
  }
}

TEST_CASE("sampler single-process order is randperm(seed + epoch) or the identity", "[loader]") {
  SamplerOptions o{10, true, 7, -1, 1};
  REQUIRE(epoch_indices(o, 2) == torch_randperm(10, 9));
  REQUIRE(epoch_indices(o, 2) != epoch_indices(o, 3));
  o.shuffle = false;
  REQUIRE(epoch_indices(o, 2) == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  REQUIRE(epoch_indices(o, 2) == epoch_indices(o, 3));
  REQUIRE(batches_per_epoch(10, 4) == 3);
  REQUIRE(batches_per_epoch(12, 4) == 3);
  o.rank = 2;
  o.world = 2;
  REQUIRE_THROWS_WITH(epoch_indices(o, 0), Catch::Contains("rank 2 is not in [0, world=2)"));
}

// Batch pixels are compared exactly (u8); value / 255 may be computed as value * (1 / 255.f), so
// f32 allows 2 ulp, and f16 its half-ulp rounding (2^-11 relative).
constexpr test::Tol kExact{0.0, 0.0};
constexpr test::Tol kScaledF32{0.0, 2.4e-7};
constexpr test::Tol kScaledF16{1e-6, 4.9e-4};

namespace {

// A 12-image shapes set at 96 px (written once per process into a temp folder) and its scan.
const std::filesystem::path& shapes_dir() {
  static const std::filesystem::path dir = [] {
    const auto d =
        std::filesystem::temp_directory_path() / ("yolo_test_loader_" + std::to_string(::getpid()));
    std::filesystem::remove_all(d);
    ShapesOptions o;
    o.out_dir = d.string();
    o.train = 12;
    o.val = 4;
    o.imgsz = 96;
    o.seed = 3;
    write_shapes_dataset(o);
    return d;
  }();
  return dir;
}

LabelScan scan_train(const std::filesystem::path& dir) {
  ScanOptions so;
  so.use_cache = false;
  return scan_labels({(dir / "images" / "train").string()}, so);
}

DatasetOptions train_options() {
  DatasetOptions o;
  o.img_size = 96;
  o.batch_size = 4;
  o.augment = true;
  o.seed = 11;
  o.hyp.mixup = 0.5;  // exercise mixup (eight source images) as well as mosaic
  o.hyp.degrees = 5.0;
  return o;
}

// What one batch holds, for comparing runs.
struct BatchRecord {
  int64_t epoch = 0, index = 0;
  std::vector<int64_t> indices;
  std::vector<uint8_t> image_bytes;
  std::vector<float> targets;
  bool operator==(const BatchRecord&) const = default;
};

BatchRecord record(const Batch& b) {
  BatchRecord r;
  r.epoch = b.epoch;
  r.index = b.index;
  r.indices = b.indices;
  const auto* p = static_cast<const uint8_t*>(b.host_images.raw());
  r.image_bytes.assign(p, p + b.host_images.nbytes());
  r.targets = b.targets.to_float_vector();
  return r;
}

std::vector<BatchRecord> run_loader(DetectionDataset& ds, LoaderOptions lo) {
  Context cpu;
  DataLoader loader(ds, cpu, lo);
  std::vector<BatchRecord> out;
  while (std::optional<Batch> b = loader.next()) out.push_back(record(*b));
  return out;
}

}  // namespace

TEST_CASE("loader batches are the same with 0, 1, 2 and 4 workers and across runs", "[loader]") {
  DetectionDataset ds(scan_train(shapes_dir()), train_options());
  LoaderOptions lo;
  lo.batch_size = 5;  // 12 images: batches of 5, 5 and a partial 2
  lo.epochs = 2;
  lo.seed = 4;
  lo.workers = 1;
  const std::vector<BatchRecord> want = run_loader(ds, lo);
  REQUIRE(want.size() == 6);
  REQUIRE(want[2].indices.size() == 2);
  for (int workers : {0, 1, 2, 4}) {
    for (int prefetch : {1, 3}) {
      lo.workers = workers;
      lo.prefetch = prefetch;
      INFO("workers " << workers << " prefetch " << prefetch);
      const std::vector<BatchRecord> got = run_loader(ds, lo);
      REQUIRE(got.size() == want.size());
      for (size_t k = 0; k < got.size(); ++k) {
        INFO("batch " << k);
        REQUIRE(got[k].epoch == want[k].epoch);
        REQUIRE(got[k].index == want[k].index);
        REQUIRE(got[k].indices == want[k].indices);
        REQUIRE(got[k].targets == want[k].targets);
        REQUIRE(got[k].image_bytes == want[k].image_bytes);
      }
    }
  }
}

TEST_CASE("loader images and targets are DetectionDataset::get's", "[loader]") {
  DetectionDataset ds(scan_train(shapes_dir()), train_options());
  Context cpu;
  LoaderOptions lo;
  lo.batch_size = 4;
  lo.epochs = 1;
  lo.start_epoch = 3;
  lo.workers = 2;
  DataLoader loader(ds, cpu, lo);
  LoaderOptions lo_f32 = lo;
  lo_f32.dtype = DType::f32;
  DataLoader loader_f32(ds, cpu, lo_f32);
  int64_t batches = 0;
  while (std::optional<Batch> b = loader.next()) {
    std::optional<Batch> bf = loader_f32.next();
    REQUIRE(bf);
    ++batches;
    REQUIRE(b->epoch == 3);
    REQUIRE(b->images.shape() == Shape{b->size(), 96, 96, 3});
    REQUIRE(b->images.dtype() == DType::u8);
    REQUIRE(b->images.raw() == b->host_images.raw());
    REQUIRE(bf->images.dtype() == DType::f32);
    REQUIRE(b->paths.size() == static_cast<size_t>(b->size()));
    REQUIRE(b->targets.ndim() == 2);
    REQUIRE(b->targets.dim(1) == 6);
    const uint8_t* px = b->images.data<uint8_t>();
    std::vector<float> scaled(static_cast<size_t>(b->images.numel()));
    for (size_t e = 0; e < scaled.size(); ++e) scaled[e] = static_cast<float>(px[e] / 255.0);
    test::require_close(bf->images, Tensor::from_vector(bf->images.shape(), scaled), kScaledF32,
                        "loader f32 images");
    const float* t = b->targets.data<float>();
    int64_t row = 0;
    for (int64_t i = 0; i < b->size(); ++i) {
      const int64_t idx = b->indices[static_cast<size_t>(i)];
      INFO("batch " << b->index << " sample " << i << " dataset index " << idx);
      const Sample s = ds.get(idx, 3);
      REQUIRE(b->paths[static_cast<size_t>(i)] == ds.images()[static_cast<size_t>(idx)].image);
      REQUIRE(s.image.width == 96);
      REQUIRE(s.image.height == 96);
      const size_t plane = 96 * 96 * 3;
      REQUIRE(std::equal(s.image.pixels.begin(), s.image.pixels.end(), px + i * plane));
      // Targets: this sample's labels, column 0 its place in the batch.
      const size_t nl = s.prepared.labels.size() / 5;
      for (size_t r = 0; r < nl; ++r, ++row) {
        REQUIRE(t[row * 6] == static_cast<float>(i));
        for (size_t c = 0; c < 5; ++c) REQUIRE(t[row * 6 + 1 + c] == s.prepared.labels[r * 5 + c]);
      }
    }
    REQUIRE(row == b->targets.dim(0));
  }
  REQUIRE(batches == 3);
  REQUIRE(!loader_f32.next());
}

TEST_CASE("loader epoch changes the order when shuffling and not otherwise", "[loader]") {
  DetectionDataset ds(scan_train(shapes_dir()), train_options());
  for (bool shuffle : {true, false}) {
    LoaderOptions lo;
    lo.batch_size = 12;
    lo.epochs = 2;
    lo.shuffle = shuffle;
    const std::vector<BatchRecord> got = run_loader(ds, lo);
    REQUIRE(got.size() == 2);
    std::vector<int64_t> sorted = got[0].indices;
    std::sort(sorted.begin(), sorted.end());
    REQUIRE(sorted == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
    if (shuffle) {
      REQUIRE(got[0].indices != got[1].indices);
    } else {
      REQUIRE(got[0].indices == sorted);
      REQUIRE(got[1].indices == sorted);
    }
    // Augmentation differs between epochs either way.
    REQUIRE(got[0].image_bytes != got[1].image_bytes);
  }
}

TEST_CASE("loader DDP ranks partition the padded index list", "[loader]") {
  DetectionDataset ds(scan_train(shapes_dir()), train_options());
  const int world = 5;  // 12 images -> 3 per rank, 15 in the padded list
  std::vector<std::vector<int64_t>> ranks;
  for (int r = 0; r < world; ++r) {
    LoaderOptions lo;
    lo.batch_size = 2;
    lo.epochs = 1;
    lo.start_epoch = 7;
    lo.rank = r;
    lo.world = world;
    lo.seed = 1;
    Context cpu;
    DataLoader loader(ds, cpu, lo);
    REQUIRE(loader.samples_per_epoch() == 3);
    REQUIRE(loader.batches_per_epoch() == 2);
    std::vector<int64_t> mine;
    while (std::optional<Batch> b = loader.next()) {
      mine.insert(mine.end(), b->indices.begin(), b->indices.end());
    }
    ranks.push_back(mine);
  }
  const std::vector<int64_t> perm = torch_randperm(12, 1 + 7);
  for (int64_t k = 0; k < 15; ++k) {
    REQUIRE(ranks[static_cast<size_t>(k % world)][static_cast<size_t>(k / world)] ==
            perm[static_cast<size_t>(k % 12)]);
  }
}

TEST_CASE("loader rect batches share the dataset's batch shape", "[loader]") {
  DatasetOptions o;
  o.img_size = 96;
  o.batch_size = 4;
  o.rect = true;
  o.pad = 0.5;
  DetectionDataset ds(scan_train(shapes_dir()), o);
  Context cpu;
  LoaderOptions lo;
  lo.batch_size = 4;
  lo.shuffle = false;
  lo.epochs = 1;
  DataLoader loader(ds, cpu, lo);
  while (std::optional<Batch> b = loader.next()) {
    for (int64_t i = 0; i < b->size(); ++i) {
      const auto [h, w] = ds.batch_shape_hw(b->indices[static_cast<size_t>(i)]);
      REQUIRE(b->height == h);
      REQUIRE(b->width == w);
      REQUIRE(!b->shapes[static_cast<size_t>(i)].mosaic);
      REQUIRE(b->shapes[static_cast<size_t>(i)].h0 > 0);
    }
  }
  // A loader batch that straddles two rect batches is refused, naming the fix.
  lo.batch_size = 3;
  lo.workers = 0;
  DataLoader straddling(ds, cpu, lo);
  bool refused = false;
  for (int k = 0; k < 4 && !refused; ++k) {
    try {
      straddling.next();
    } catch (const Error& e) {
      refused = true;
      REQUIRE_THAT(e.what(), Catch::Contains("in one batch"));
    }
  }
  const bool shapes_differ =
      ds.batch_shape_hw(0) != ds.batch_shape_hw(4) || ds.batch_shape_hw(4) != ds.batch_shape_hw(8);
  REQUIRE(refused == shapes_differ);
}

TEST_CASE("loader counters are non-zero and consistent", "[loader]") {
  DetectionDataset ds(scan_train(shapes_dir()), train_options());
  Context cpu;
  LoaderOptions lo;
  lo.batch_size = 4;
  lo.epochs = 2;
  lo.workers = 2;
  DataLoader loader(ds, cpu, lo);
  REQUIRE(loader.counters().batches == 0);
  int64_t n = 0;
  while (loader.next()) ++n;
  const LoaderCounters c = loader.counters();
  REQUIRE(n == 6);
  REQUIRE(c.batches == 6);
  REQUIRE(c.images == 24);
  REQUIRE(c.plan_count == 24);
  REQUIRE(c.apply_count == 24);
  REQUIRE(c.load_count >= 4 * 24);  // every mosaic reads four images (eight with mixup)
  REQUIRE(c.collate_count == 6);
  REQUIRE(c.wait_count == 6);
  REQUIRE(c.copy_count == 0);  // nothing to upload on the CPU
  REQUIRE(c.load_ns > 0);
  REQUIRE(c.plan_ns > 0);
  REQUIRE(c.apply_ns > 0);
  REQUIRE(c.collate_ns > 0);
  REQUIRE(c.wait_ns >= 0);
  const std::string line = c.str();
  REQUIRE_THAT(line, Catch::StartsWith("loader: 6 batches, 24 images | load "));
  REQUIRE_THAT(line, Catch::Contains("| apply 24 x "));
}

TEST_CASE("loader rethrows a worker's error naming the file, and stops cleanly", "[loader]") {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("yolo_test_loader_corrupt_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::filesystem::copy(shapes_dir(), dir, std::filesystem::copy_options::recursive);
  LabelScan scan = scan_train(dir);
  REQUIRE(scan.images.size() == 12);
  // Broken after the scan (as a file changed on disk during training).
  const std::string bad = scan.images[5].image;
  {
    std::ofstream f(bad, std::ios::binary | std::ios::trunc);
    f << "not an image at all";
  }
  DetectionDataset ds(std::move(scan), train_options());
  for (int workers : {0, 2}) {
    Context cpu;
    LoaderOptions lo;
    lo.batch_size = 4;
    lo.shuffle = false;
    lo.workers = workers;
    lo.epochs = 1;
    DataLoader loader(ds, cpu, lo);
    // Sample 5 (batch 1) always reads image 5; a mosaic partner may fail batch 0 first.
    bool thrown = false;
    for (int k = 0; k < 2 && !thrown; ++k) {
      try {
        loader.next();
      } catch (const Error& e) {
        thrown = true;
        REQUIRE_THAT(e.what(), Catch::Contains(std::filesystem::path(bad).filename().string()));
        REQUIRE_THAT(e.what(), Catch::Contains("data loader: epoch 0, batch "));
      }
    }
    REQUIRE(thrown);
    REQUIRE_THROWS_AS(loader.next(), Error);  // it stays failed
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("loader destructor mid-epoch does not hang", "[loader]") {
  DetectionDataset ds(scan_train(shapes_dir()), train_options());
  Context cpu;
  const auto t0 = std::chrono::steady_clock::now();
  for (int taken : {0, 1, 2}) {
    LoaderOptions lo;
    lo.batch_size = 2;
    lo.workers = 4;
    lo.prefetch = 2;
    DataLoader loader(ds, cpu, lo);  // no end: workers keep filling the ring
    for (int k = 0; k < taken; ++k) REQUIRE(loader.next());
  }
  REQUIRE(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30));
}

TEST_CASE("loader options are checked", "[loader]") {
  DetectionDataset ds(scan_train(shapes_dir()), train_options());
  Context cpu;
  LoaderOptions lo;
  lo.dtype = DType::f16;
  REQUIRE_THROWS_WITH(DataLoader(ds, cpu, lo), Catch::Contains("images dtype f16"));
  lo.dtype = DType::u8;
  lo.gpu_augment = true;
  REQUIRE_THROWS_WITH(DataLoader(ds, cpu, lo), Catch::Contains("gpu_augment needs a CUDA"));
  lo.gpu_augment = false;
  lo.batch_size = 0;
  REQUIRE_THROWS_WITH(DataLoader(ds, cpu, lo), Catch::Contains("batch size 0"));
}

TEST_CASE("loader cuda batches equal the cpu ones (upload and gpu augment)", "[loader][cuda]") {
  auto cuda = test::cuda_or_skip();
  if (!cuda) return;
  DetectionDataset ds(scan_train(shapes_dir()), train_options());
  LoaderOptions lo;
  lo.batch_size = 4;
  lo.epochs = 2;
  lo.workers = 2;
  const std::vector<BatchRecord> want = run_loader(ds, lo);

  // CPU apply, uploaded on the copy stream.
  {
    DataLoader loader(ds, *cuda, lo);
    size_t k = 0;
    while (std::optional<Batch> b = loader.next()) {
      REQUIRE(b->images.device().is_cuda());
      const Tensor back = cuda->to_host(b->images);
      const auto* p = static_cast<const uint8_t*>(back.raw());
      REQUIRE(std::vector<uint8_t>(p, p + back.nbytes()) == want[k].image_bytes);
      REQUIRE(record(*b).image_bytes == want[k].image_bytes);
      REQUIRE(b->targets.to_float_vector() == want[k].targets);
      ++k;
    }
    REQUIRE(k == want.size());
  }
  // GPU apply: u8 equal to the CPU apply; f16 / f32 = value / 255.
  for (DType dtype : {DType::u8, DType::f32, DType::f16}) {
    LoaderOptions g = lo;
    g.gpu_augment = true;
    g.dtype = dtype;
    DataLoader loader(ds, *cuda, g);
    size_t k = 0;
    while (std::optional<Batch> b = loader.next()) {
      INFO("dtype " << dtype_name(dtype) << " batch " << k);
      REQUIRE(!b->host_images.defined());
      REQUIRE(b->images.dtype() == dtype);
      const Tensor got = test::to_f32(test::host(*cuda, b->images));
      const std::vector<uint8_t>& ref = want[k].image_bytes;
      std::vector<float> scaled(ref.size());
      const double scale = dtype == DType::u8 ? 1.0 : 1.0 / 255.0;
      for (size_t e = 0; e < ref.size(); ++e) scaled[e] = static_cast<float>(ref[e] * scale);
      const test::Tol tol =
          dtype == DType::u8 ? kExact : (dtype == DType::f32 ? kScaledF32 : kScaledF16);
      test::require_close(got, Tensor::from_vector(got.shape(), scaled), tol, "gpu augment");
      REQUIRE(b->targets.to_float_vector() == want[k].targets);
      ++k;
    }
    REQUIRE(k == want.size());
    REQUIRE(loader.counters().copy_count == static_cast<int64_t>(want.size()));
  }
}
