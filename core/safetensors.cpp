// Reader and atomic writer for safetensors files (format in Note [safetensors layout]).
// The reader treats the file as hostile: every header number is checked before it is used, so a
// truncated or forged file is a yolo::Error, never a crash or an allocation larger than the file.
#include "core/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

namespace yolo {

// Note [safetensors layout]
// A file is: 8 bytes, a little-endian u64 N; N bytes of UTF-8 JSON, an object mapping each tensor
// name to {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]} plus an optional
// "__metadata__" object of string values; then the data buffer. Offsets are relative to the start
// of the buffer, and the entries sorted by offset tile it exactly (no gaps, no overlaps, nothing
// after the last one). Data is little-endian, row-major. Like the reference implementation
// (huggingface/safetensors) we refuse headers over 100 MB and headers that do not start with '{',
// and we pad our own headers with spaces to a multiple of 8 bytes so the buffer stays aligned.
// We write tensors in name order, so equal inputs give equal bytes.

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; a big-endian host needs byte swapping here");

namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the reference implementation's limit
constexpr size_t kMaxIoChunk = size_t(1) << 30;    // Linux moves at most ~2 GiB per call
constexpr const char* kCorruptFix =
    "the file is truncated or corrupt: re-export the weights or download them again";

struct FileDtype {
  const char* name;
  DType dtype;
};
// Read as themselves (BOOL as u8). The first entry per DType is the name we write.
constexpr FileDtype kFileDtypes[] = {
    {"F32", DType::f32}, {"F64", DType::f64}, {"F16", DType::f16}, {"BF16", DType::bf16},
    {"I32", DType::i32}, {"I64", DType::i64}, {"U8", DType::u8},   {"BOOL", DType::u8},
};
// Valid in the format but with no yolocore DType.
constexpr const char* kUnsupportedDtypes[] = {"I8",      "I16",     "U16",     "U32",
                                              "U64",     "F8_E4M3", "F8_E5M2", "F8_E8M0",
                                              "F6_E2M3", "F6_E3M2", "F4",      "C64"};

const char* file_dtype_name(DType dtype) {
  for (const FileDtype& d : kFileDtypes)
    if (d.dtype == dtype) return d.name;
  YOLO_ASSERT(false && "every DType has a safetensors name");
  return "";
}

[[noreturn]] void corrupt(const std::string& path, const std::string& what) {
  YOLO_FAIL(path << ": not a valid safetensors file: " << what << " (" << kCorruptFix << ")");
}

// Closes the descriptor on every path out of a function.
struct FileDescriptor {
  int fd = -1;
  explicit FileDescriptor(int f) : fd(f) {}
  ~FileDescriptor() {
    if (fd >= 0) ::close(fd);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
};

// Reads exactly `bytes` at `offset`; a short file (e.g. truncated while we read) is an error.
void read_exact(int fd, void* dst, size_t bytes, uint64_t offset, const std::string& path) {
  auto* out = static_cast<char*>(dst);
  size_t done = 0;
  while (done < bytes) {
    const size_t want = std::min(bytes - done, kMaxIoChunk);
    const ssize_t got = ::pread(fd, out + done, want, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    YOLO_CHECK(got >= 0,
               path << ": read failed at byte " << offset + done << ": " << std::strerror(errno));
    if (got == 0) corrupt(path, "the file ended while reading it (did it shrink?)");
    done += static_cast<size_t>(got);
  }
}

// A non-negative JSON integer that fits in int64 (for shapes) or uint64 (for offsets).
bool as_dimension(const json& v, int64_t* out) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > uint64_t(std::numeric_limits<int64_t>::max())) return false;
    *out = static_cast<int64_t>(u);
    return true;
  }
  if (v.is_number_integer()) {  // nlohmann stores non-negative integers as unsigned
    const int64_t i = v.get<int64_t>();
    if (i < 0) return false;
    *out = i;
    return true;
  }
  return false;
}

struct Entry {
  std::string name;
  DType dtype = DType::f32;
  Shape shape;
  uint64_t begin = 0, end = 0;  // relative to the data buffer
};

DType parse_dtype(const std::string& path, const std::string& name, const json& v) {
  if (!v.is_string()) corrupt(path, "tensor \"" + name + "\" has a dtype that is not a string");
  const std::string& s = v.get_ref<const std::string&>();
  for (const FileDtype& d : kFileDtypes)
    if (s == d.name) return d.dtype;
  for (const char* u : kUnsupportedDtypes)
    if (s == u)
      YOLO_FAIL(path << ": tensor \"" << name << "\" has dtype " << s
                     << ", which yolocore does not support (supported: F32 F64 F16 BF16 I32 I64 "
                        "U8 BOOL): convert it to one of these before saving");
  corrupt(path, "tensor \"" + name + "\" has unknown dtype \"" + s.substr(0, 32) + "\"");
}

Entry parse_entry(const std::string& path, const std::string& name, const json& v,
                  uint64_t buffer_bytes) {
  const std::string what = "tensor \"" + name + "\"";
  if (!v.is_object())
    corrupt(path, what + " is described by a JSON " + v.type_name() +
                      ", not an object with dtype, shape and data_offsets");
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!v.contains(key)) corrupt(path, what + " has no \"" + key + "\"");
  Entry e;
  e.name = name;
  e.dtype = parse_dtype(path, name, v.at("dtype"));

  const json& shape = v.at("shape");
  if (!shape.is_array()) corrupt(path, what + " has a shape that is not a list");
  for (const json& d : shape) {
    int64_t n = 0;
    if (!as_dimension(d, &n))
      corrupt(path, what + " has shape " + shape.dump() + ": dimensions must be integers >= 0");
    e.shape.push_back(n);
  }

  const json& offsets = v.at("data_offsets");
  int64_t begin = 0, end = 0;
  if (!offsets.is_array() || offsets.size() != 2 || !as_dimension(offsets[0], &begin) ||
      !as_dimension(offsets[1], &end))
    corrupt(path, what + " has data_offsets " + offsets.dump() +
                      ": they must be two integers [begin, end] >= 0");
  e.begin = static_cast<uint64_t>(begin);
  e.end = static_cast<uint64_t>(end);
  if (e.begin > e.end || e.end > buffer_bytes)
    corrupt(path, what + " has data_offsets " + offsets.dump() +
                      " out of range of the data buffer [0, " + std::to_string(buffer_bytes) + "]");

  uint64_t expected = dtype_size(e.dtype);
  bool overflow = false;
  for (int64_t d : e.shape) overflow |= __builtin_mul_overflow(expected, uint64_t(d), &expected);
  if (overflow || expected != e.end - e.begin)
    corrupt(path, what + " of dtype " + v.at("dtype").get<std::string>() + " and shape " +
                      shape_str(e.shape) + " needs " +
                      (overflow ? std::string("more than 2^64") : std::to_string(expected)) +
                      " bytes but its data_offsets span " + std::to_string(e.end - e.begin));
  return e;
}

// Parses the header, recording the first key repeated within one object (nlohmann keeps the
// last value silently, the format forbids duplicates).
json parse_header(const std::string& path, const std::string& text) {
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  const json::parser_callback_t track_keys = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == json::parse_event_t::key && !open_objects.empty()) {
      const std::string& key = parsed.get_ref<const std::string&>();
      if (!open_objects.back().insert(key).second && duplicate.empty())
        duplicate = key.empty() ? std::string("\"\"") : key;
    }
    return true;
  };
  json root;
  try {
    root = json::parse(text, track_keys);
  } catch (const json::exception& e) {
    corrupt(path, std::string("the header is not valid JSON: ") + e.what());
  }
  if (!duplicate.empty())
    corrupt(path, "the header has the duplicate key \"" + duplicate.substr(0, 200) + "\"");
  if (!root.is_object()) corrupt(path, "the header must be a JSON object");
  return root;
}

// Removes the temporary file unless the write got as far as renaming it into place.
struct TempFile {
  std::string name;
  int fd = -1;
  bool renamed = false;
  ~TempFile() {
    if (fd >= 0) ::close(fd);
    if (!renamed && !name.empty()) ::unlink(name.c_str());
  }
};

void write_all(const TempFile& tmp, const std::string& path, const void* src, size_t bytes) {
  const auto* in = static_cast<const char*>(src);
  size_t done = 0;
  while (done < bytes) {
    const ssize_t put = ::write(tmp.fd, in + done, std::min(bytes - done, kMaxIoChunk));
    if (put < 0 && errno == EINTR) continue;
    const int err = put == 0 ? ENOSPC : errno;
    YOLO_CHECK(put > 0, path << ": writing " << tmp.name << " failed: " << std::strerror(err)
                             << " (is the disk full? " << path << " was left as it was)");
    done += static_cast<size_t>(put);
  }
}

}  // namespace

SafetensorsFile read_safetensors(const std::string& path) {
  FileDescriptor file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  YOLO_CHECK(file.fd >= 0,
             path << ": cannot open for reading: " << std::strerror(errno) << " (check the path)");
  struct stat st {};
  YOLO_CHECK(::fstat(file.fd, &st) == 0, path << ": cannot stat: " << std::strerror(errno));
  YOLO_CHECK(S_ISREG(st.st_mode), path << ": not a regular file (expected a .safetensors file)");
  const uint64_t file_bytes = static_cast<uint64_t>(st.st_size);

  if (file_bytes < 8)
    corrupt(path, "it is " + std::to_string(file_bytes) +
                      " bytes long, shorter than the 8-byte header length");
  uint64_t header_bytes = 0;
  read_exact(file.fd, &header_bytes, 8, 0, path);
  if (header_bytes > kMaxHeaderBytes)
    corrupt(path, "header length " + std::to_string(header_bytes) + " is over the 100 MB limit");
  if (header_bytes > file_bytes - 8)
    corrupt(path, "header length " + std::to_string(header_bytes) +
                      " runs past the end of the file (" + std::to_string(file_bytes) + " bytes)");

  std::string text(header_bytes, '\0');
  read_exact(file.fd, text.data(), text.size(), 8, path);
  if (text.empty() || text[0] != '{')
    corrupt(path, "the header does not start with '{' (it must be a JSON object)");
  const json root = parse_header(path, text);

  const uint64_t buffer_start = 8 + header_bytes;
  const uint64_t buffer_bytes = file_bytes - buffer_start;
  SafetensorsFile out;
  std::vector<Entry> entries;
  for (const auto& [name, value] : root.items()) {
    if (name == "__metadata__") {
      if (!value.is_object()) corrupt(path, "__metadata__ is not a JSON object");
      for (const auto& [key, text_value] : value.items()) {
        if (!text_value.is_string())
          corrupt(path, "metadata \"" + key + "\" is a JSON " + text_value.type_name() +
                            ", but metadata values must be strings");
        out.metadata[key] = text_value.get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(path, name, value, buffer_bytes));
  }

  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t covered = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    if (e.begin < covered)
      corrupt(path, "tensors \"" + entries[i - 1].name + "\" and \"" + e.name +
                        "\" overlap in the data buffer");
    if (e.begin > covered)
      corrupt(path, "a gap of " + std::to_string(e.begin - covered) + " bytes precedes tensor \"" +
                        e.name + "\" in the data buffer");
    covered = e.end;
  }
  if (covered != buffer_bytes)
    corrupt(path, std::to_string(buffer_bytes - covered) +
                      " bytes after the last tensor are not described by the header");

  for (const Entry& e : entries) {
    Tensor t = Tensor::empty_cpu(e.shape, e.dtype);
    read_exact(file.fd, t.raw(), t.nbytes(), buffer_start + e.begin, path);
    out.tensors.emplace(e.name, std::move(t));
  }
  return out;
}

void write_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  YOLO_CHECK(!path.empty(), "write_safetensors: empty file name");
  json header = json::object();
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    YOLO_CHECK(name != "__metadata__",
               path << ": \"__metadata__\" is reserved for metadata and cannot name a tensor");
    YOLO_CHECK(t.defined(), path << ": tensor \"" << name << "\" is undefined");
    YOLO_CHECK(t.device().is_cpu(), path << ": tensor \"" << name << "\" is on " << t.device().str()
                                         << ": copy it to the host with ctx.to_host first");
    const uint64_t end = offset + t.nbytes();
    header[name] = {{"dtype", file_dtype_name(t.dtype())},
                    {"shape", t.shape()},
                    {"data_offsets", json::array({offset, end})}};
    offset = end;
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {
    YOLO_FAIL(path << ": cannot write the header: " << e.what()
                   << " (tensor names and metadata must be valid UTF-8)");
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  const uint64_t header_bytes = text.size();

  // Keep an existing file's permissions; a new file gets rw-r--r--.
  mode_t mode = 0644;
  struct stat existing {};
  if (::stat(path.c_str(), &existing) == 0 && S_ISREG(existing.st_mode))
    mode = existing.st_mode & 07777;

  TempFile tmp;
  const std::string pattern = path + ".tmp-XXXXXX";
  std::string name_template = pattern;
  tmp.fd = ::mkostemp(name_template.data(), O_CLOEXEC);
  YOLO_CHECK(tmp.fd >= 0, path << ": cannot create the temporary file " << pattern << ": "
                               << std::strerror(errno)
                               << " (check that the directory exists and is writable)");
  tmp.name = name_template;

  write_all(tmp, path, &header_bytes, 8);
  write_all(tmp, path, text.data(), text.size());
  for (const auto& entry : tensors) write_all(tmp, path, entry.second.raw(), entry.second.nbytes());
  YOLO_CHECK(::fchmod(tmp.fd, mode) == 0,
             path << ": cannot set permissions on " << tmp.name << ": " << std::strerror(errno));
  YOLO_CHECK(::fsync(tmp.fd) == 0, path << ": flushing " << tmp.name << " to disk failed: "
                                        << std::strerror(errno) << " (is the disk full?)");
  const int fd = tmp.fd;
  tmp.fd = -1;
  YOLO_CHECK(::close(fd) == 0,
             path << ": closing " << tmp.name << " failed: " << std::strerror(errno));
  YOLO_CHECK(::rename(tmp.name.c_str(), path.c_str()) == 0,
             path << ": cannot replace it with " << tmp.name << ": " << std::strerror(errno)
                  << " (is it a directory, or on another file system?)");
  tmp.renamed = true;

  // Make the rename itself durable. The file is already complete in place, so a failure to sync
  // the directory is not reported.
  std::string dir = std::filesystem::path(path).parent_path().string();
  FileDescriptor dir_fd(
      ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.fd >= 0) ::fsync(dir_fd.fd);
}

}  // namespace yolo
