// Tests of core/safetensors: round trips of every dtype (0-d, empty and larger tensors, metadata),
// deterministic bytes, a file written by Python's `safetensors` package, forged and truncated files
// (each a yolo::Error with a useful message, never a crash), and atomic writes that fail cleanly.
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "core/safetensors.h"
#include "tests/harness.h"

using namespace yolo;
namespace fs = std::filesystem;

namespace {

// Written by the `safetensors` PyPI package (0.8.0, numpy 2.4) from the repository root with:
//   python3 -c "
//   import numpy as np
//   from safetensors.numpy import save_file
//   save_file({
//       'f32': (np.arange(24).reshape(2, 3, 4) / 4 - 1).astype(np.float32),
//       'f64': np.array([1.5, -2.25, 1e300], dtype=np.float64),
//       'f16': np.array([[0.5, -1.0], [65504, 2**-24]], dtype=np.float16),
//       'i32': np.array([-7, 0, 2147483647], dtype=np.int32),
//       'i64_scalar': np.array(42, dtype=np.int64),
//       'u8': (np.arange(5) * 50).astype(np.uint8),
//       'bool': np.array([True, False, True]),
//       'empty': np.zeros((0, 3), dtype=np.float32),
//   }, 'tests/fixtures/safetensors_numpy_sample.safetensors',
//      metadata={'format': 'np', 'note': 'h\u00e9llo'})
//   "
const fs::path kNumpyFixture =
    fs::path(__FILE__).parent_path() / "fixtures" / "safetensors_numpy_sample.safetensors";

// A fresh directory under /tmp, removed with everything in it at scope exit.
struct TempDir {
  fs::path dir;
  TempDir() {
    std::string name = (fs::temp_directory_path() / "yolo_safetensors_XXXXXX").string();
    REQUIRE(::mkdtemp(name.data()) != nullptr);
    dir = name;
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(dir, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(dir, ec);
  }
  std::string file(const std::string& name) const { return (dir / name).string(); }
};

std::vector<std::string> list_dir(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

// 8-byte little-endian length + header + buffer, with no checks: for forging files.
std::string forge(const std::string& header, const std::string& buffer, uint64_t length) {
  std::string out(8, '\0');
  std::memcpy(out.data(), &length, 8);
  return out + header + buffer;
}
std::string forge(const std::string& header, const std::string& buffer) {
  return forge(header, buffer, header.size());
}

// Host tensor of any dtype filled with random bytes (splitmix64 of `seed`).
Tensor random_bytes(const Shape& shape, DType dtype, uint64_t seed) {
  Tensor t = Tensor::empty_cpu(shape, dtype);
  auto* p = static_cast<unsigned char*>(t.raw());
  uint64_t x = seed;
  for (size_t i = 0; i < t.nbytes(); ++i) {
    x += 0x9e3779b97f4a7c15ull;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    p[i] = static_cast<unsigned char>(z ^ (z >> 31));
  }
  return t;
}

void require_same_tensor(const Tensor& got, const Tensor& want, const std::string& name) {
  INFO("tensor " << name << ": got " << got.str() << ", want " << want.str());
  REQUIRE(got.defined());
  REQUIRE(got.device().is_cpu());
  REQUIRE(got.dtype() == want.dtype());
  REQUIRE(got.shape() == want.shape());
  REQUIRE(std::memcmp(got.raw(), want.raw(), want.nbytes()) == 0);
}

// Writes `bytes` to a file and requires read_safetensors to throw yolo::Error whose message names
// the file and contains `fragment`.
void require_rejected(const TempDir& tmp, const std::string& bytes, const std::string& fragment) {
  const std::string path = tmp.file("forged.safetensors");
  write_bytes(path, bytes);
  INFO("expecting an error containing: " << fragment);
  REQUIRE_THROWS_AS(read_safetensors(path), Error);
  REQUIRE_THROWS_WITH(read_safetensors(path),
                      Catch::Contains(fragment) && Catch::Contains("forged.safetensors"));
}

// A valid one-tensor header and buffer that the forged cases below change one thing of.
const std::string kTwoFloats = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
const std::string kEightBytes(8, '\x01');

}  // namespace

TEST_CASE("safetensors round trip keeps every dtype, shape and metadata", "[safetensors]") {
  TempDir tmp;
  std::map<std::string, Tensor> tensors;
  uint64_t salt = 1;
  for (DType dtype :
       {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i32, DType::i64, DType::u8}) {
    const std::string name = dtype_name(dtype);
    tensors["model.0." + name] = random_bytes({3, 5, 7}, dtype, test::seed(salt++));
    tensors["scalar." + name] = random_bytes({}, dtype, test::seed(salt++));
    tensors["empty." + name] = random_bytes({4, 0, 2}, dtype, test::seed(salt++));
  }
  tensors["model.0.bn.num_batches_tracked"] = random_bytes({}, DType::i64, test::seed(salt++));
  tensors["large"] = random_bytes({512, 1024}, DType::f32, test::seed(salt++));
  tensors["odd"] = random_bytes({13}, DType::u8, test::seed(salt++));
  // A view: rows 1..3 of a 4x3 tensor are written, not the whole storage.
  Tensor whole = random_bytes({4, 3}, DType::f32, test::seed(salt++));
  tensors["rows"] = whole.slice(1, 3);
  const std::map<std::string, std::string> metadata = {
      {"yaml", "nc: 80\ndepth_multiple: 0.33\n"}, {"empty", ""}, {"unicode", "h\u00e9llo \u2713"}};

  const std::string path = tmp.file("round.safetensors");
  write_safetensors(path, tensors, metadata);
  const SafetensorsFile back = read_safetensors(path);
  REQUIRE(back.metadata == metadata);
  REQUIRE(back.tensors.size() == tensors.size());
  for (const auto& [name, t] : tensors) {
    REQUIRE(back.tensors.count(name) == 1);
    require_same_tensor(back.tensors.at(name), t, name);
  }
  REQUIRE(back.tensors.at("scalar.i64").shape().empty());
  REQUIRE(back.tensors.at("scalar.i64").numel() == 1);
  REQUIRE(back.tensors.at("empty.f32").numel() == 0);

  // No metadata and no tensors at all are valid files too.
  write_safetensors(path, {}, {});
  const SafetensorsFile nothing = read_safetensors(path);
  REQUIRE(nothing.tensors.empty());
  REQUIRE(nothing.metadata.empty());
  REQUIRE(list_dir(tmp.dir) == std::vector<std::string>{"round.safetensors"});
}

TEST_CASE("safetensors writes deterministic, aligned bytes", "[safetensors]") {
  TempDir tmp;
  // The exact bytes of a tiny file: name order, sorted keys, spaces to a multiple of 8.
  const float one = 1.0f;
  std::map<std::string, Tensor> tiny = {{"b", Tensor::from_vector({1}, std::vector<float>{1.0f})},
                                        {"a", Tensor::zeros_cpu({}, DType::u8)}};
  write_safetensors(tmp.file("tiny.safetensors"), tiny, {{"k", "v"}});
  const std::string header =
      R"({"__metadata__":{"k":"v"},"a":{"data_offsets":[0,1],"dtype":"U8","shape":[]},)"
      R"("b":{"data_offsets":[1,5],"dtype":"F32","shape":[1]}})";
  std::string padded = header + std::string((8 - header.size() % 8) % 8, ' ');
  std::string buffer(1, '\0');
  buffer.append(reinterpret_cast<const char*>(&one), 4);
  REQUIRE(read_bytes(tmp.file("tiny.safetensors")) == forge(padded, buffer));

  std::map<std::string, Tensor> tensors;
  for (int i = 0; i < 20; ++i) {
    std::string name = "t";  // built with += : GCC 12 warns falsely on "t" + std::string
    name += std::to_string(i * 7 % 20);
    tensors[name] = random_bytes({i % 4, 3}, i % 2 ? DType::f16 : DType::i64, test::seed(100 + i));
  }
  write_safetensors(tmp.file("first.safetensors"), tensors, {{"x", "1"}});
  const std::string first = read_bytes(tmp.file("first.safetensors"));
  // Rewriting what was read gives the same bytes.
  const SafetensorsFile read_back = read_safetensors(tmp.file("first.safetensors"));
  write_safetensors(tmp.file("second.safetensors"), read_back.tensors, read_back.metadata);
  REQUIRE(read_bytes(tmp.file("second.safetensors")) == first);
  uint64_t header_bytes = 0;
  std::memcpy(&header_bytes, first.data(), 8);
  REQUIRE(header_bytes % 8 == 0);
  REQUIRE(first[8] == '{');
  // A new file is readable by everyone, writable by its owner.
  struct stat st {};
  REQUIRE(::stat(tmp.file("first.safetensors").c_str(), &st) == 0);
  REQUIRE((st.st_mode & 0777) == 0644);
}

TEST_CASE("safetensors reads a file written by Python's safetensors package", "[safetensors]") {
  const SafetensorsFile f = read_safetensors(kNumpyFixture.string());
  REQUIRE(f.metadata ==
          std::map<std::string, std::string>{{"format", "np"}, {"note", "h\u00e9llo"}});
  REQUIRE(f.tensors.size() == 8);

  const Tensor& f32 = f.tensors.at("f32");
  REQUIRE(f32.shape() == Shape{2, 3, 4});
  for (int i = 0; i < 24; ++i) REQUIRE(f32.data<float>()[i] == float(i) / 4.0f - 1.0f);

  const Tensor& f64 = f.tensors.at("f64");
  REQUIRE(f64.shape() == Shape{3});
  REQUIRE(f64.data<double>()[0] == 1.5);
  REQUIRE(f64.data<double>()[1] == -2.25);
  REQUIRE(f64.data<double>()[2] == 1e300);

  const Tensor& f16 = f.tensors.at("f16");
  REQUIRE(f16.shape() == Shape{2, 2});
  const Half* h = f16.data<Half>();
  REQUIRE(half_to_float(h[0]) == 0.5f);
  REQUIRE(half_to_float(h[1]) == -1.0f);
  REQUIRE(half_to_float(h[2]) == 65504.0f);
  REQUIRE(half_to_float(h[3]) == std::ldexp(1.0f, -24));

  const Tensor& i32 = f.tensors.at("i32");
  REQUIRE(i32.shape() == Shape{3});
  REQUIRE(i32.data<int32_t>()[0] == -7);
  REQUIRE(i32.data<int32_t>()[1] == 0);
  REQUIRE(i32.data<int32_t>()[2] == 2147483647);

  const Tensor& scalar = f.tensors.at("i64_scalar");
  REQUIRE(scalar.shape().empty());
  REQUIRE(scalar.data<int64_t>()[0] == 42);

  const Tensor& u8 = f.tensors.at("u8");
  REQUIRE(u8.shape() == Shape{5});
  for (int i = 0; i < 5; ++i) REQUIRE(u8.data<uint8_t>()[i] == 50 * i);

  const Tensor& b = f.tensors.at("bool");  // BOOL is read as u8
  REQUIRE(b.dtype() == DType::u8);
  REQUIRE(b.shape() == Shape{3});
  REQUIRE(b.data<uint8_t>()[0] == 1);
  REQUIRE(b.data<uint8_t>()[1] == 0);
  REQUIRE(b.data<uint8_t>()[2] == 1);

  const Tensor& empty = f.tensors.at("empty");
  REQUIRE(empty.dtype() == DType::f32);
  REQUIRE(empty.shape() == Shape{0, 3});
}

TEST_CASE("safetensors rejects a file truncated at any byte", "[safetensors]") {
  TempDir tmp;
  const std::string path = tmp.file("whole.safetensors");
  write_safetensors(path,
                    {{"w", random_bytes({2, 3}, DType::f32, test::seed(7))},
                     {"n", random_bytes({}, DType::i64, test::seed(8))},
                     {"e", Tensor::zeros_cpu({0}, DType::f16)},
                     {"u", random_bytes({3}, DType::u8, test::seed(9))}},
                    {{"epoch", "3"}});
  const std::string bytes = read_bytes(path);
  REQUIRE_NOTHROW(read_safetensors(path));
  const std::string cut = tmp.file("cut.safetensors");
  for (size_t length = 0; length < bytes.size(); ++length) {
    write_bytes(cut, bytes.substr(0, length));
    INFO("truncated to " << length << " of " << bytes.size() << " bytes");
    REQUIRE_THROWS_AS(read_safetensors(cut), Error);
  }
}

TEST_CASE("safetensors survives every single-byte corruption without crashing", "[safetensors]") {
  TempDir tmp;
  const std::string path = tmp.file("whole.safetensors");
  write_safetensors(path,
                    {{"w", random_bytes({2, 2}, DType::f32, test::seed(11))},
                     {"n", random_bytes({}, DType::i64, test::seed(12))}},
                    {{"k", "v"}});
  const std::string bytes = read_bytes(path);
  const std::string bad = tmp.file("bad.safetensors");
  int rejected = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (char c : {'\0', '\xff', '\x80', '{', '[', '"', ',', '-', '9', '0', 'e', ' '}) {
      std::string changed = bytes;
      changed[i] = c;
      write_bytes(bad, changed);
      INFO("byte " << i << " set to " << int(static_cast<unsigned char>(c)));
      try {
        read_safetensors(bad);
      } catch (const Error&) {
        ++rejected;
      }
    }
  }
  REQUIRE(rejected > 0);
}

TEST_CASE("safetensors rejects forged headers with a message naming the problem", "[safetensors]") {
  TempDir tmp;
  // The unmodified case reads.
  write_bytes(tmp.file("good.safetensors"), forge(kTwoFloats, kEightBytes));
  REQUIRE(read_safetensors(tmp.file("good.safetensors")).tensors.at("a").numel() == 2);

  SECTION("file shorter than the length field") {
    require_rejected(tmp, "", "shorter than the 8-byte header length");
    require_rejected(tmp, std::string(7, '\0'), "shorter than the 8-byte header length");
  }
  SECTION("header length larger than the file") {
    require_rejected(tmp, forge(kTwoFloats, kEightBytes, kTwoFloats.size() + 9),
                     "runs past the end of the file");
  }
  SECTION("header length 2^63") {
    require_rejected(tmp, forge(kTwoFloats, kEightBytes, uint64_t(1) << 63),
                     "over the 100 MB limit");
    require_rejected(tmp, forge(kTwoFloats, kEightBytes, ~uint64_t(0)), "over the 100 MB limit");
  }
  SECTION("header that is not JSON") {
    require_rejected(tmp, forge(R"({"a": nope})", ""), "not valid JSON");
    require_rejected(tmp, forge(R"({"a":{"dtype":"F32")", ""), "not valid JSON");
    require_rejected(tmp, forge("{\"\xff\xfe\":{}}", ""), "not valid JSON");
    require_rejected(tmp, forge("", ""), "does not start with '{'");
  }
  SECTION("JSON array instead of an object") {
    require_rejected(tmp, forge("[1, 2]", ""), "does not start with '{'");
    require_rejected(tmp, forge(R"({"a":[1]})", ""), "not an object");
    require_rejected(tmp, forge(R"({"a":3})", ""), "not an object");
  }
  SECTION("deeply nested JSON") {
    const std::string deep = "{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
    require_rejected(tmp, forge(deep, ""), "not an object");
  }
  SECTION("unknown and unsupported dtypes") {
    require_rejected(
        tmp, forge(R"({"a":{"dtype":"F17","shape":[2],"data_offsets":[0,8]}})", kEightBytes),
        "unknown dtype \"F17\"");
    require_rejected(
        tmp, forge(R"({"a":{"dtype":"U16","shape":[4],"data_offsets":[0,8]}})", kEightBytes),
        "does not support");
    require_rejected(tmp,
                     forge(R"({"a":{"dtype":32,"shape":[2],"data_offsets":[0,8]}})", kEightBytes),
                     "dtype that is not a string");
  }
  SECTION("missing fields") {
    require_rejected(tmp, forge(R"({"a":{"dtype":"F32","shape":[2]}})", kEightBytes),
                     "has no \"data_offsets\"");
    require_rejected(tmp, forge(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", kEightBytes),
                     "has no \"dtype\"");
  }
  SECTION("negative or non-integer shape") {
    require_rejected(
        tmp, forge(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", kEightBytes),
        "dimensions must be integers >= 0");
    require_rejected(
        tmp, forge(R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", kEightBytes),
        "dimensions must be integers >= 0");
    require_rejected(tmp,
                     forge(R"({"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", kEightBytes),
                     "shape that is not a list");
  }
  SECTION("offsets out of range") {
    require_rejected(
        tmp, forge(R"({"a":{"dtype":"F32","shape":[200],"data_offsets":[0,800]}})", kEightBytes),
        "out of range of the data buffer [0, 8]");
    require_rejected(
        tmp, forge(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", kEightBytes),
        "out of range");
    require_rejected(tmp,
                     forge(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", kEightBytes),
                     "two integers [begin, end]");
    require_rejected(
        tmp, forge(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", kEightBytes),
        "two integers [begin, end]");
  }
  SECTION("overlapping offsets") {
    require_rejected(tmp,
                     forge(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                           std::string(12, '\0')),
                     "\"a\" and \"b\" overlap");
  }
  SECTION("a gap between tensors, or bytes after the last one") {
    require_rejected(tmp,
                     forge(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}})",
                           std::string(20, '\0')),
                     "gap of 4 bytes precedes tensor \"b\"");
    require_rejected(
        tmp,
        forge(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", std::string(12, '\0')),
        "gap of 4 bytes precedes tensor \"a\"");
    require_rejected(tmp, forge(kTwoFloats, std::string(12, '\0')),
                     "4 bytes after the last tensor");
  }
  SECTION("size mismatch between shape and offsets") {
    require_rejected(
        tmp, forge(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", kEightBytes),
        "needs 12 bytes but its data_offsets span 8");
    require_rejected(
        tmp,
        forge(R"({"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}})",
              kEightBytes),
        "needs more than 2^64 bytes");
  }
  SECTION("duplicate keys") {
    require_rejected(tmp,
                     forge(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                           R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                           kEightBytes),
                     "duplicate key \"a\"");
    require_rejected(
        tmp,
        forge(R"({"a":{"dtype":"F32","dtype":"I32","shape":[2],"data_offsets":[0,8]}})",
              kEightBytes),
        "duplicate key \"dtype\"");
  }
  SECTION("metadata that is not a string map") {
    require_rejected(tmp, forge(R"({"__metadata__":{"epoch":3}})", ""),
                     "metadata values must be strings");
    require_rejected(tmp, forge(R"({"__metadata__":["x"]})", ""),
                     "__metadata__ is not a JSON object");
  }
}

TEST_CASE("safetensors read errors name the path and say why", "[safetensors]") {
  TempDir tmp;
  REQUIRE_THROWS_WITH(read_safetensors(tmp.file("missing.safetensors")),
                      Catch::Contains("missing.safetensors: cannot open for reading"));
  REQUIRE_THROWS_WITH(read_safetensors(tmp.dir.string()), Catch::Contains("not a regular file"));
}

TEST_CASE("safetensors write is atomic and fails cleanly", "[safetensors]") {
  TempDir tmp;
  const std::map<std::string, Tensor> tensors = {
      {"w", random_bytes({4, 4}, DType::f32, test::seed(21))}};

  SECTION("target in a directory that does not exist") {
    REQUIRE_THROWS_WITH(write_safetensors(tmp.file("no/such/dir/x.safetensors"), tensors),
                        Catch::Contains("cannot create the temporary file") &&
                            Catch::Contains("check that the directory exists"));
    REQUIRE(list_dir(tmp.dir).empty());
  }
  SECTION("target is a directory: the rename fails and the temporary file is removed") {
    fs::create_directory(tmp.dir / "target.safetensors");
    REQUIRE_THROWS_WITH(write_safetensors(tmp.file("target.safetensors"), tensors),
                        Catch::Contains("cannot replace it"));
    REQUIRE(list_dir(tmp.dir) == std::vector<std::string>{"target.safetensors"});
    REQUIRE(list_dir(tmp.dir / "target.safetensors").empty());
  }
  SECTION("a full disk leaves the existing file untouched") {
    const std::string path = tmp.file("ckpt.safetensors");
    write_safetensors(path, tensors, {{"epoch", "1"}});
    const std::string before = read_bytes(path);
    // RLIMIT_FSIZE makes write() fail with EFBIG past 4 KiB, as a full disk fails with ENOSPC.
    rlimit old_limit{};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    rlimit small = old_limit;
    small.rlim_cur = 4096;
    void (*old_handler)(int) = ::signal(SIGXFSZ, SIG_IGN);
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    bool threw = false;
    std::string message;
    try {
      write_safetensors(path, {{"big", random_bytes({64, 1024}, DType::f32, test::seed(22))}});
    } catch (const Error& e) {
      threw = true;
      message = e.what();
    }
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    ::signal(SIGXFSZ, old_handler);
    INFO(message);
    REQUIRE(threw);
    REQUIRE(message.find("is the disk full?") != std::string::npos);
    REQUIRE(read_bytes(path) == before);
    REQUIRE(list_dir(tmp.dir) == std::vector<std::string>{"ckpt.safetensors"});
  }
  SECTION("a read-only directory (skipped as root, who may write anyway)") {
    if (::geteuid() == 0) return;
    fs::permissions(tmp.dir,
                    fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write,
                    fs::perm_options::remove);
    REQUIRE_THROWS_WITH(write_safetensors(tmp.file("x.safetensors"), tensors),
                        Catch::Contains("cannot create the temporary file"));
    fs::permissions(tmp.dir, fs::perms::owner_write, fs::perm_options::add);
    REQUIRE(list_dir(tmp.dir).empty());
  }
  SECTION("bad arguments throw before any file is created") {
    REQUIRE_THROWS_WITH(write_safetensors(tmp.file("x.safetensors"), {{"t", Tensor()}}),
                        Catch::Contains("tensor \"t\" is undefined"));
    REQUIRE_THROWS_WITH(
        write_safetensors(tmp.file("x.safetensors"), {{"__metadata__", Tensor::zeros_cpu({1})}}),
        Catch::Contains("reserved for metadata"));
    REQUIRE_THROWS_WITH(
        write_safetensors(tmp.file("x.safetensors"), {{"t", Tensor::zeros_cpu({1})}},
                          {{"k", std::string("\xff\xfe")}}),
        Catch::Contains("must be valid UTF-8"));
    REQUIRE(list_dir(tmp.dir).empty());
  }
  SECTION("an existing file is replaced and keeps its permissions") {
    const std::string path = tmp.file("ckpt.safetensors");
    write_safetensors(path, {{"old", Tensor::zeros_cpu({2})}});
    REQUIRE(::chmod(path.c_str(), 0600) == 0);
    write_safetensors(path, tensors);
    const SafetensorsFile f = read_safetensors(path);
    REQUIRE(f.tensors.size() == 1);
    require_same_tensor(f.tensors.at("w"), tensors.at("w"), "w");
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    REQUIRE((st.st_mode & 0777) == 0600);
    REQUIRE(list_dir(tmp.dir) == std::vector<std::string>{"ckpt.safetensors"});
  }
}
