// The data loader (yolo/data/loader.h) and its epoch order (yolo/data/sampler.h): sampler orders
// against tests/fixtures/sampler.json (PyTorch 1.13's own DistributedSampler and randperm, made by
// tools/parity/make_sampler_fixtures.py), and loader batches on a small shapes dataset.
//   yolo_tests "[loader]"
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "tests/harness.h"
#include "yolo/data/sampler.h"

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
