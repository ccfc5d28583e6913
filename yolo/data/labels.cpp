// Image listing, label parsing and checking, and the label cache (see labels.h).
#include "yolo/data/labels.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <system_error>
#include <thread>

#include "core/error.h"
#include "yolo/data/image_io.h"
#include "yolo/data/image_probe.h"

namespace yolo {

// Note [Label checks]
// verify_image_label at the reference commit, step by step:
// - the text is stripped, split into lines, and lines of length 0 dropped (a line of spaces stays
//   and, having no values, makes the rows ragged: the file is corrupt, as numpy's array() fails);
// - if any row has more than 6 values the whole file is polygons "class x1 y1 x2 y2 ...", each
//   turned into its bounding box (min/max of the points, as float32 xyxy -> xywh);
// - then exactly 5 columns, every value >= 0 (NaN fails this too), x y w h <= 1; a failure drops
//   the image as corrupt with "ignoring corrupt image/label: <reason>";
// - duplicate rows are removed as np.unique(axis=0) does, which also sorts the rows
//   lexicographically. The reference crashes on duplicates in a polygon file (it indexes a list
//   with an array and drops the image); we remove them and re-order the polygons with the boxes.
// Numbers follow Python's float(): optional sign, digits with single underscores between them,
// nan/inf/infinity in any case, overflow to inf, then rounding to float32.

namespace {

std::string strip_location(const std::string& what) {
  // yolo::Error texts end with " (at file.cpp:123)"; messages for users of a scan do not need it.
  const auto at = what.rfind(" (at ");
  return at != std::string::npos && what.back() == ')' ? what.substr(0, at) : what;
}

// A label or image problem: the reason alone, without the source location yolo::Error adds.
struct LabelError : Error {
  using Error::Error;
};

std::string quote_token(std::string_view t) {
  std::string out = "'";
  for (unsigned char c : t.substr(0, 40)) {
    if (c >= 0x20 && c < 0x7F && c != '\'' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (t.size() > 40) out += "...";
  return out + "'";
}

// Python's float() on one whitespace-free token, then float32 rounding (numpy's astype).
float parse_number(std::string_view tok) {
  std::string s;
  std::size_t i = 0;
  bool negative = false;
  if (i < tok.size() && (tok[i] == '+' || tok[i] == '-')) negative = tok[i++] == '-';
  std::string rest(tok.substr(i));
  std::string lower = rest;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "nan") return std::numeric_limits<float>::quiet_NaN();
  if (lower == "inf" || lower == "infinity") return negative ? -INFINITY : INFINITY;
  // digits[_digits] [. digits[_digits]] [e [sign] digits[_digits]], one digit at least before e
  bool ok = true, mantissa_digit = false, in_exp = false, exp_digit = false, dot = false;
  for (std::size_t k = 0; k < rest.size() && ok; ++k) {
    const char c = rest[k];
    if (std::isdigit(static_cast<unsigned char>(c))) {
      (in_exp ? exp_digit : mantissa_digit) = true;
      s += c;
    } else if (c == '_') {
      ok = k > 0 && k + 1 < rest.size() && std::isdigit(static_cast<unsigned char>(rest[k - 1])) &&
           std::isdigit(static_cast<unsigned char>(rest[k + 1]));
    } else if (c == '.' && !dot && !in_exp) {
      dot = true;
      s += c;
    } else if ((c == 'e' || c == 'E') && !in_exp && mantissa_digit) {
      in_exp = true;
      s += 'e';
      if (k + 1 < rest.size() && (rest[k + 1] == '+' || rest[k + 1] == '-')) s += rest[++k];
    } else {
      ok = false;
    }
  }
  ok = ok && mantissa_digit && (!in_exp || exp_digit);
  if (!ok) throw LabelError("could not convert string to float: " + quote_token(tok));
  double v = 0.0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v, std::chars_format::general);
  if (r.ec == std::errc::result_out_of_range) {
    v = std::strtod(s.c_str(), nullptr);  // +-HUGE_VAL on overflow, 0 or a denormal on underflow
  } else if (r.ec != std::errc() || r.ptr != s.data() + s.size()) {
    throw LabelError("could not convert string to float: " + quote_token(tok));
  }
  if (negative) v = -v;
  constexpr double kFloatOverflow = 3.4028235677973366e38;  // FLT_MAX + half an ulp rounds to inf
  if (std::isinf(v) || std::abs(v) >= kFloatOverflow) return v < 0 ? -INFINITY : INFINITY;
  return static_cast<float>(v);
}

bool is_space(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\v' || c == '\f' || (c >= 0x1c && c <= 0x1f);
}
bool is_line_break(unsigned char c) {
  return c == '\n' || c == '\r' || c == '\v' || c == '\f' || (c >= 0x1c && c <= 0x1e);
}
bool is_py_space(unsigned char c) {
  return is_space(c) || c == '\n' || c == '\r';
}

// The reference prints offending values through NumPy's str() under its global print options
// (utils/general.py: formatter '{:11.5g}' for floats, linewidth 320): every value right-aligned in
// 11 characters, separated by a space, wrapped before a line would pass 320 characters (the last
// one keeps room for the closing bracket) with a one-space continuation indent.
std::string compact_values(const std::vector<float>& v) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size() && i < 10; ++i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", static_cast<double>(v[i]));
    if (i) out += ' ';
    out += buf;
  }
  if (v.size() > 10) out += " ...";
  return out + "]";
}

std::string format_values(const std::vector<float>& v) {
  constexpr std::size_t kLineWidth = 320;
  std::string out, line = "[";
  for (std::size_t i = 0; i < v.size(); ++i) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%11.5g", static_cast<double>(v[i]));
    const std::string word = buf;
    const bool last = i + 1 == v.size();
    const std::size_t width = last ? kLineWidth - 1 : kLineWidth;
    if (line.size() + word.size() > width && line.size() > 1) {
      while (!line.empty() && line.back() == ' ') line.pop_back();
      out += line + "\n";
      line = " ";
    }
    line += word;
    if (!last) line += ' ';
  }
  return out + line + "]";
}

}  // namespace

ParsedLabels parse_label_text(std::string_view text) {
  // str.strip() + splitlines(); lines of length 0 dropped; Python's split() within a line.
  std::size_t b = 0, e = text.size();
  while (b < e && is_py_space(static_cast<unsigned char>(text[b]))) ++b;
  while (e > b && is_py_space(static_cast<unsigned char>(text[e - 1]))) --e;
  std::vector<std::vector<std::string_view>> rows;
  std::size_t pos = b;
  while (pos < e) {
    std::size_t end = pos;
    while (end < e && !is_line_break(static_cast<unsigned char>(text[end]))) ++end;
    const std::string_view line = text.substr(pos, end - pos);
    if (!line.empty()) {
      std::vector<std::string_view> tokens;
      std::size_t k = 0;
      while (k < line.size()) {
        while (k < line.size() && is_space(static_cast<unsigned char>(line[k]))) ++k;
        std::size_t t = k;
        while (t < line.size() && !is_space(static_cast<unsigned char>(line[t]))) ++t;
        if (t > k) tokens.push_back(line.substr(k, t - k));
        k = t;
      }
      rows.push_back(std::move(tokens));
    }
    pos = end;
    if (pos < e && text[pos] == '\r' && pos + 1 < e && text[pos + 1] == '\n') ++pos;
    if (pos < e) ++pos;
  }

  ParsedLabels out;
  if (rows.empty()) return out;
  const bool segment_file =
      std::any_of(rows.begin(), rows.end(), [](const auto& r) { return r.size() > 6; });
  std::size_t columns = 5;
  if (segment_file) {
    for (std::size_t r = 0; r < rows.size(); ++r) {
      const auto& row = rows[r];
      if (row.empty())
        throw LabelError("polygon label file has a blank row (line " + std::to_string(r + 1) + ")");
      const float cls = parse_number(row[0]);
      if ((row.size() - 1) % 2 != 0 || row.size() < 3)
        throw LabelError("polygon row " + std::to_string(r + 1) + " has " +
                         std::to_string(row.size() - 1) +
                         " coordinates; a polygon needs x y pairs (class x1 y1 x2 y2 ...)");
      std::vector<float> pts;
      for (std::size_t k = 1; k < row.size(); ++k) pts.push_back(parse_number(row[k]));
      float x0 = pts[0], y0 = pts[1], x1 = pts[0], y1 = pts[1];
      for (std::size_t k = 0; k < pts.size(); k += 2) {
        x0 = std::fmin(x0, pts[k]), x1 = std::fmax(x1, pts[k]);
        y0 = std::fmin(y0, pts[k + 1]), y1 = std::fmax(y1, pts[k + 1]);
      }
      // numpy's min/max propagate NaN; fmin/fmax do not, so carry any NaN point through.
      for (float p : pts)
        if (std::isnan(p)) x0 = p;
      out.boxes.insert(out.boxes.end(),
                       {cls, (x0 + x1) / 2.0f, (y0 + y1) / 2.0f, x1 - x0, y1 - y0});
      out.segments.push_back(std::move(pts));
    }
  } else {
    columns = rows[0].size();
    for (std::size_t r = 0; r < rows.size(); ++r) {
      if (rows[r].size() != columns)
        throw LabelError("labels require 5 columns, line " + std::to_string(r + 1) + " has " +
                         std::to_string(rows[r].size()) + " and line 1 has " +
                         std::to_string(columns));
    }
    if (columns != 5)
      throw LabelError("labels require 5 columns, " + std::to_string(columns) +
                       " columns detected");
    for (const auto& row : rows)
      for (const auto& tok : row) out.boxes.push_back(parse_number(tok));
  }

  const std::size_t n = out.boxes.size() / 5;
  // (lb >= 0).all() fails on NaN too, but the message lists lb[lb < 0] only, as the reference's.
  std::vector<float> bad;
  bool all_non_negative = true;
  for (float v : out.boxes) {
    all_non_negative = all_non_negative && v >= 0;
    if (v < 0) bad.push_back(v);
  }
  if (!all_non_negative) throw LabelError("negative label values " + format_values(bad));
  for (std::size_t i = 0; i < n; ++i)
    for (int j = 1; j < 5; ++j)
      if (out.boxes[i * 5 + j] > 1) bad.push_back(out.boxes[i * 5 + j]);
  if (!bad.empty())
    throw LabelError("non-normalized or out of bounds coordinates " + format_values(bad));

  // np.unique(lb, axis=0, return_index=True): rows sorted lexicographically, first index kept.
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  const float* rowp = out.boxes.data();
  auto less = [rowp](std::size_t a, std::size_t c) {
    return std::lexicographical_compare(rowp + a * 5, rowp + a * 5 + 5, rowp + c * 5,
                                        rowp + c * 5 + 5);
  };
  std::stable_sort(order.begin(), order.end(), less);
  std::vector<std::size_t> keep;
  for (std::size_t k = 0; k < n; ++k)
    if (keep.empty() || less(keep.back(), order[k])) keep.push_back(order[k]);
  if (keep.size() < n) {
    ParsedLabels unique;
    for (std::size_t i : keep) {
      unique.boxes.insert(unique.boxes.end(), rowp + i * 5, rowp + i * 5 + 5);
      if (!out.segments.empty()) unique.segments.push_back(out.segments[i]);
    }
    unique.duplicates_removed = static_cast<int>(n - keep.size());
    return unique;
  }
  return out;
}

const std::vector<std::string>& image_extensions() {
  static const std::vector<std::string> exts = {"bmp", "dng", "jpeg", "jpg", "mpo",
                                                "png", "tif", "tiff", "webp"};
  return exts;
}

bool has_image_extension(const std::string& path) {
  const auto dot = path.rfind('.');
  if (dot == std::string::npos) return false;
  std::string ext = path.substr(dot + 1);
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const auto& all = image_extensions();
  return std::find(all.begin(), all.end(), ext) != all.end();
}

namespace {

namespace fs = std::filesystem;

// glob('**/*.*', recursive=True): names holding a '.', not starting with '.', in folders that do
// not start with '.'; symlinked folders followed once each.
void walk_folder(const fs::path& dir, std::set<fs::path>& visited, std::vector<std::string>& out) {
  std::error_code ec;
  const fs::path canon = fs::canonical(dir, ec);
  if (ec || !visited.insert(canon).second) return;
  for (fs::directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
       !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    const std::string name = p.filename().string();
    if (name.empty() || name[0] == '.') continue;
    std::error_code sec;
    if (it->is_directory(sec)) {
      // glob('**/*.*') also matches a folder whose name has a dot; the reference then fails to
      // open it as an image ("Is a directory") and counts it corrupt.
      if (name.find('.') != std::string::npos) out.push_back(p.string());
      walk_folder(p, visited, out);
    } else if (name.find('.') != std::string::npos) {
      out.push_back(p.string());
    }
  }
}

std::string trim(const std::string& s) {
  std::size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

}  // namespace

std::vector<std::string> list_image_files(const std::vector<std::string>& sources) {
  std::vector<std::string> files;
  for (const auto& src : sources) {
    const fs::path p(src);
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::set<fs::path> visited;
      walk_folder(p, visited, files);
    } else if (fs::is_regular_file(p, ec) && has_image_extension(src)) {
      files.push_back(src);
    } else if (fs::is_regular_file(p, ec)) {
      std::ifstream in(p, std::ios::binary);
      YOLO_CHECK(in.good(), "Error loading data from "
                                << src << ": cannot read the image list; check its permissions");
      const std::string parent = p.parent_path().string() + "/";
      std::string line;
      while (std::getline(in, line)) {
        line = trim(line);
        if (line.empty()) continue;
        files.push_back(line.rfind("./", 0) == 0 ? parent + line.substr(2) : line);
      }
    } else {
      YOLO_FAIL("Error loading data from " << src << ": " << src
                                           << " does not exist; check the path in the data yaml");
    }
  }
  std::vector<std::string> images;
  for (auto& f : files)
    if (has_image_extension(f)) images.push_back(std::move(f));
  std::sort(images.begin(), images.end());
  images.erase(std::unique(images.begin(), images.end()), images.end());
  std::string all;
  for (const auto& s : sources) all += (all.empty() ? "" : ", ") + s;
  YOLO_CHECK(!images.empty(), "Error loading data from "
                                  << all << ": No images found (looked for ."
                                  << "bmp .dng .jpeg .jpg .mpo .png .tif .tiff .webp files)");
  return images;
}

std::string image_to_label_path(const std::string& image_path) {
  const std::string sa = "/images/", sb = "/labels/";
  std::string s = image_path;
  const auto at = s.rfind(sa);
  if (at != std::string::npos) s = s.substr(0, at) + sb + s.substr(at + sa.size());
  const auto dot = s.rfind('.');
  if (dot != std::string::npos) s = s.substr(0, dot);
  return s + ".txt";
}

fs::path label_cache_path(const std::vector<std::string>& sources,
                          const std::vector<std::string>& label_files) {
  std::error_code ec;
  fs::path base;
  if (!sources.empty() && fs::is_regular_file(sources.back(), ec) &&
      !has_image_extension(sources.back())) {
    base = sources.back();
  } else {
    base = label_files.empty() ? fs::path("labels") : fs::path(label_files.front()).parent_path();
  }
  base.replace_extension(".yolocore.cache");
  return base;
}

// ---- label cache --------------------------------------------------------------------------------

namespace {

// Note [Label cache format]
// "YOLOLBLC" magic, u32 version, u64 hash of the inputs, u32 counts (found, missing, empty,
// corrupt, total), the messages, then per usable image: path, width, height, status, the (n, 5)
// floats and the polygons; a final u64 FNV-1a checksum of everything before it. Little-endian as
// the machine writes it (the hash includes the byte order, so a foreign cache is simply rebuilt).
// Any mismatch, short read or bad checksum means "no cache": the scan runs and rewrites it.
constexpr char kCacheMagic[8] = {'Y', 'O', 'L', 'O', 'L', 'B', 'L', 'C'};
constexpr uint32_t kCacheVersion = 2;  // 2: NumPy-style value lists, JPEG end-marker outcomes

uint64_t fnv1a(const void* data, std::size_t n, uint64_t h = 1469598103934665603ull) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

// Hash of the file names, sizes and modification times of every image and label file.
uint64_t inputs_hash(const std::vector<std::string>& images,
                     const std::vector<std::string>& labels) {
  const uint32_t endian = 0x01020304;
  uint64_t h = fnv1a(&endian, sizeof endian);
  h = fnv1a(&kCacheVersion, sizeof kCacheVersion, h);
  for (const auto* list : {&images, &labels}) {
    for (const auto& f : *list) {
      h = fnv1a(f.data(), f.size() + 1, h);  // with the terminating 0, so names cannot run together
      std::error_code ec;
      int64_t stamp[2] = {-1, -1};
      const auto size = fs::file_size(f, ec);
      if (!ec) {
        stamp[0] = static_cast<int64_t>(size);
        stamp[1] = static_cast<int64_t>(fs::last_write_time(f, ec).time_since_epoch().count());
      }
      h = fnv1a(stamp, sizeof stamp, h);
    }
  }
  return h;
}

class ByteWriter {
 public:
  template <typename T>
  void put(const T& v) {
    buf_.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void put_string(const std::string& s) {
    put(static_cast<uint32_t>(s.size()));
    buf_ += s;
  }
  void put_floats(const std::vector<float>& v) {
    put(static_cast<uint32_t>(v.size()));
    if (!v.empty()) buf_.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
  }
  std::string& bytes() { return buf_; }

 private:
  std::string buf_;
};

class ByteReader {
 public:
  ByteReader(const std::string& b, std::size_t end) : b_(b), end_(end) {}
  template <typename T>
  bool get(T& v) {
    if (end_ - pos_ < sizeof v) return false;
    std::memcpy(&v, b_.data() + pos_, sizeof v);
    pos_ += sizeof v;
    return true;
  }
  bool get_string(std::string& s) {
    uint32_t n = 0;
    if (!get(n) || end_ - pos_ < n) return false;
    s.assign(b_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  bool get_floats(std::vector<float>& v) {
    uint32_t n = 0;
    if (!get(n) || (end_ - pos_) / sizeof(float) < n) return false;
    v.resize(n);
    if (n > 0) std::memcpy(v.data(), b_.data() + pos_, n * sizeof(float));
    pos_ += n * sizeof(float);
    return true;
  }
  bool done() const { return pos_ == end_; }

 private:
  const std::string& b_;
  std::size_t end_;
  std::size_t pos_ = 0;
};

std::string encode_cache(const LabelScan& scan, uint64_t hash) {
  ByteWriter w;
  w.bytes().append(kCacheMagic, sizeof kCacheMagic);
  w.put(kCacheVersion);
  w.put(hash);
  for (int v : {scan.found, scan.missing, scan.empty, scan.corrupt, scan.total})
    w.put(static_cast<uint32_t>(v));
  w.put(static_cast<uint32_t>(scan.messages.size()));
  for (const auto& m : scan.messages) w.put_string(m);
  w.put(static_cast<uint32_t>(scan.images.size()));
  for (const auto& im : scan.images) {
    w.put_string(im.image);
    w.put(static_cast<int32_t>(im.width));
    w.put(static_cast<int32_t>(im.height));
    w.put(static_cast<uint8_t>(im.status));
    w.put_floats(im.boxes);
    w.put(static_cast<uint32_t>(im.segments.size()));
    for (const auto& s : im.segments) w.put_floats(s);
  }
  const uint64_t sum = fnv1a(w.bytes().data(), w.bytes().size());
  w.put(sum);
  return std::move(w.bytes());
}

// True and fills `scan` when `bytes` is a well-formed cache for `hash`.
bool decode_cache(const std::string& bytes, uint64_t hash, LabelScan& scan) {
  if (bytes.size() < sizeof kCacheMagic + sizeof(uint64_t) ||
      std::memcmp(bytes.data(), kCacheMagic, sizeof kCacheMagic) != 0)
    return false;
  const std::size_t body = bytes.size() - sizeof(uint64_t);
  uint64_t sum = 0;
  std::memcpy(&sum, bytes.data() + body, sizeof sum);
  if (sum != fnv1a(bytes.data(), body)) return false;
  ByteReader r(bytes, body);
  char magic[8];
  uint32_t version = 0, counts[5] = {}, n_msgs = 0, n_images = 0;
  uint64_t stored_hash = 0;
  if (!r.get(magic) || !r.get(version) || version != kCacheVersion || !r.get(stored_hash) ||
      stored_hash != hash)
    return false;
  for (uint32_t& c : counts)
    if (!r.get(c)) return false;
  if (!r.get(n_msgs)) return false;
  LabelScan out;
  for (uint32_t i = 0; i < n_msgs; ++i) {
    std::string m;
    if (!r.get_string(m)) return false;
    out.messages.push_back(std::move(m));
  }
  if (!r.get(n_images)) return false;
  for (uint32_t i = 0; i < n_images; ++i) {
    ImageLabels im;
    int32_t w = 0, h = 0;
    uint8_t status = 0;
    uint32_t n_seg = 0;
    if (!r.get_string(im.image) || !r.get(w) || !r.get(h) || !r.get(status) || status > 2 ||
        !r.get_floats(im.boxes) || im.boxes.size() % 5 != 0 || !r.get(n_seg) || w <= 0 || h <= 0)
      return false;
    im.width = w;
    im.height = h;
    im.status = static_cast<LabelStatus>(status);
    for (uint32_t k = 0; k < n_seg; ++k) {
      std::vector<float> s;
      if (!r.get_floats(s)) return false;
      im.segments.push_back(std::move(s));
    }
    out.images.push_back(std::move(im));
  }
  if (!r.done()) return false;
  out.found = static_cast<int>(counts[0]);
  out.missing = static_cast<int>(counts[1]);
  out.empty = static_cast<int>(counts[2]);
  out.corrupt = static_cast<int>(counts[3]);
  out.total = static_cast<int>(counts[4]);
  scan = std::move(out);
  return true;
}

bool read_file(const fs::path& path, std::string& bytes, std::size_t limit) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec || size > limit) return false;
  std::ifstream in(path, std::ios::binary);
  if (!in.good()) return false;
  bytes.resize(static_cast<std::size_t>(size));
  in.read(bytes.data(), static_cast<std::streamsize>(size));
  return static_cast<std::size_t>(in.gcount()) == size;
}

// Writes `bytes` to a temporary file beside `path`, then renames it over `path`. Returns an empty
// string on success, else why it failed (the temporary file is removed).
std::string write_atomically(const fs::path& path, const std::string& bytes) {
  const fs::path tmp = path.string() + ".tmp" + std::to_string(::getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return std::strerror(errno);
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size() &&
                  std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
  const int write_errno = errno;
  const bool closed = std::fclose(f) == 0;
  std::error_code ec;
  if (!ok || !closed) {
    fs::remove(tmp, ec);
    return std::strerror(write_errno ? write_errno : EIO);
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    std::error_code ec2;
    fs::remove(tmp, ec2);
    return ec.message();
  }
  return "";
}

struct PairResult {
  bool usable = false;
  ImageLabels labels;
  int nm = 0, nf = 0, ne = 0, nc = 0;
  std::vector<std::string> msgs;
};

// verify_image_label for one (image, label) pair.
PairResult verify_pair(const std::string& image, const std::string& label,
                       const std::string& prefix) {
  PairResult r;
  try {
    ImageProbe probe;
    std::error_code dir_ec;
    if (fs::is_directory(image, dir_ec)) throw LabelError("Is a directory: '" + image + "'");
    try {
      probe = probe_image(image);
    } catch (const Error& e) {
      std::string why = strip_location(e.what());
      if (why.rfind(image + ": ", 0) == 0) why = why.substr(image.size() + 2);
      throw LabelError(why);
    }
    const int w = probe.oriented_width(), h = probe.oriented_height();
    if (!(w > 9 && h > 9))
      throw LabelError("image size (" + std::to_string(w) + ", " + std::to_string(h) +
                       ") <10 pixels");
    if (probe.format == ImageFormat::gif || probe.format == ImageFormat::tga)
      throw LabelError(std::string("invalid image format ") + image_format_name(probe.format));
    if (probe.format == ImageFormat::jpeg && !probe.jpeg_eoi) {
      // Note [JPEG end marker]: the reference re-saves such a file through PIL, which decodes
      // it: with bytes after an intact FF D9 that works ("restored and saved"), with the data cut
      // short it raises and the image is dropped. We decode the same way, but never re-save.
      try {
        DecodeOptions strict;
        strict.accept_truncated_jpeg = false;
        (void)decode_image_file(image, strict);
      } catch (const Error&) {
        throw LabelError("image file is truncated (no FF D9 end marker)");
      }
      r.msgs.push_back(prefix + "WARNING: " + image +
                       ": corrupt JPEG (bytes after its FF D9 end marker); read as it is, the file "
                       "is left unchanged");
    }
    r.labels.image = image;
    r.labels.width = w;
    r.labels.height = h;
    std::error_code ec;
    if (fs::is_regular_file(label, ec)) {
      r.nf = 1;
      std::string text;
      constexpr std::size_t kMaxLabelBytes = std::size_t{64} << 20;
      if (!read_file(label, text, kMaxLabelBytes))
        throw LabelError("cannot read label file " + label + " (unreadable or over 64 MiB)");
      ParsedLabels parsed = parse_label_text(text);
      // One message per file, as the reference's single msg: the duplicates note replaces an
      // earlier JPEG warning.
      if (parsed.duplicates_removed > 0)
        r.msgs.assign(1, prefix + "WARNING: " + image + ": " +
                         std::to_string(parsed.duplicates_removed) + " duplicate labels removed");
      r.labels.boxes = std::move(parsed.boxes);
      r.labels.segments = std::move(parsed.segments);
      if (r.labels.boxes.empty()) {
        r.ne = 1;
        r.labels.status = LabelStatus::empty;
      } else {
        r.labels.status = LabelStatus::found;
      }
    } else {
      r.nm = 1;
      r.labels.status = LabelStatus::missing;
    }
    r.usable = true;
  } catch (const std::exception& e) {  // LabelError, or e.g. out of memory on a huge label file
    r.nc = 1;
    r.usable = false;
    r.msgs.assign(1, prefix + "WARNING: " + image + ": ignoring corrupt image/label: " + e.what());
  }
  return r;
}

std::string counts_text(const LabelScan& s) {
  return std::to_string(s.found) + " found, " + std::to_string(s.missing) + " missing, " +
         std::to_string(s.empty) + " empty, " + std::to_string(s.corrupt) + " corrupt";
}

}  // namespace

LabelScan scan_labels(const std::vector<std::string>& sources, const ScanOptions& options) {
  const std::vector<std::string> images = list_image_files(sources);
  std::vector<std::string> labels;
  labels.reserve(images.size());
  for (const auto& im : images) labels.push_back(image_to_label_path(im));
  const fs::path cache_path = label_cache_path(sources, labels);
  const uint64_t hash = inputs_hash(images, labels);

  LabelScan scan;
  if (options.use_cache) {
    std::string bytes;
    constexpr std::size_t kMaxCacheBytes = std::size_t{4} << 30;
    std::error_code ec;
    if (fs::exists(cache_path, ec) && read_file(cache_path, bytes, kMaxCacheBytes)) {
      if (decode_cache(bytes, hash, scan)) {
        scan.cache_path = cache_path;
        scan.from_cache = true;
        scan.summary = options.prefix + "Scanning '" + cache_path.string() +
                       "' images and labels... " + counts_text(scan);
        return scan;
      }
      scan = LabelScan{};
    }
  }

  std::vector<PairResult> results(images.size());
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  const int threads = options.threads > 0 ? options.threads : static_cast<int>(std::min(8u, hw));
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    for (std::size_t i = next++; i < images.size(); i = next++)
      results[i] = verify_pair(images[i], labels[i], options.prefix);
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < std::min<int>(threads, static_cast<int>(images.size())); ++t)
    pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();

  for (auto& r : results) {
    scan.missing += r.nm;
    scan.found += r.nf;
    scan.empty += r.ne;
    scan.corrupt += r.nc;
    for (auto& m : r.msgs) scan.messages.push_back(std::move(m));
    if (r.usable) scan.images.push_back(std::move(r.labels));
  }
  scan.total = static_cast<int>(images.size());
  scan.cache_path = cache_path;
  fs::path shown = cache_path;
  shown.replace_extension("");
  shown.replace_extension("");
  scan.summary = options.prefix + "Scanning '" + shown.string() + "' images and labels... " +
                 counts_text(scan);
  if (scan.found == 0)
    scan.cache_messages.push_back(
        options.prefix + "WARNING: No labels found in " + cache_path.string() +
        ". See https://github.com/ultralytics/yolov5/wiki/Train-Custom-Data");
  if (options.use_cache) {
    const std::string why = write_atomically(cache_path, encode_cache(scan, hash));
    if (why.empty()) {
      scan.cache_messages.push_back(options.prefix + "New cache created: " + cache_path.string());
    } else {
      scan.cache_messages.push_back(
          options.prefix + "WARNING: Cache directory " + cache_path.parent_path().string() +
          " is not writeable: " + why + " (continuing without a label cache)");
    }
  }
  return scan;
}

std::vector<std::string> class_range_problems(const LabelScan& scan, int nc,
                                              const std::string& data_name) {
  float max_class = -1;
  for (const auto& im : scan.images)
    for (std::size_t i = 0; i < im.boxes.size(); i += 5)
      max_class = std::max(max_class, im.boxes[i]);
  std::vector<std::string> out;
  if (max_class < static_cast<float>(nc)) return out;
  const std::string mlc =
      std::isinf(max_class) ? std::string("inf")
                            : std::to_string(static_cast<long long>(std::min(max_class, 9.0e18f)));
  out.push_back("Label class " + mlc + " exceeds nc=" + std::to_string(nc) + " in " + data_name +
                ". Possible class labels are 0-" + std::to_string(nc - 1));
  for (const auto& im : scan.images) {
    std::vector<float> bad;
    for (std::size_t i = 0; i < im.boxes.size(); i += 5)
      if (im.boxes[i] >= static_cast<float>(nc)) bad.push_back(im.boxes[i]);
    if (!bad.empty())
      out.push_back(image_to_label_path(im.image) + ": class " + compact_values(bad) + " >= nc=" +
                    std::to_string(nc) + "; fix the class ids or raise nc/names in the data yaml");
  }
  return out;
}

}  // namespace yolo
