// Arg values, their Python repr, the registry and parse_model's small helpers.
#include "nn/registry.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace yolo::nn {

Arg Arg::boolean(bool v) {
  Arg a;
  a.kind = Kind::boolean;
  a.b = v;
  return a;
}
Arg Arg::integer(int64_t v) {
  Arg a;
  a.kind = Kind::integer;
  a.i = v;
  return a;
}
Arg Arg::real(double v) {
  Arg a;
  a.kind = Kind::real;
  a.r = v;
  return a;
}
Arg Arg::string(const std::string& v) {
  Arg a;
  a.kind = Kind::string;
  a.s = v;
  return a;
}
Arg Arg::of_list(std::vector<Arg> v) {
  Arg a;
  a.kind = Kind::list;
  a.list = std::move(v);
  return a;
}
Arg Arg::of_ints(const std::vector<int64_t>& v) {
  std::vector<Arg> items;
  for (int64_t x : v) items.push_back(integer(x));
  return of_list(std::move(items));
}

std::string Arg::repr() const {
  switch (kind) {
    case Kind::none:
      return "None";
    case Kind::boolean:
      return b ? "True" : "False";
    case Kind::integer:
      return std::to_string(i);
    case Kind::real: {
      char buf[64];
      auto res = std::to_chars(buf, buf + sizeof(buf), r);
      std::string text(buf, res.ptr);
      if (text.find_first_of(".e") == std::string::npos && std::isfinite(r)) text += ".0";
      return text;
    }
    case Kind::string:
      return "'" + s + "'";
    case Kind::list:
      return nn::repr(list);
  }
  return "";
}

std::string repr(const std::vector<Arg>& args) {
  std::string out = "[";
  for (size_t i = 0; i < args.size(); ++i) out += (i ? ", " : "") + args[i].repr();
  return out + "]";
}

void LayerRegistry::add(const std::string& name, LayerFactory factory) {
  YOLO_ASSERT(find(name) == nullptr);
  entries_.push_back({name, std::move(factory)});
}

const LayerRegistry::Entry* LayerRegistry::find(const std::string& name) const {
  for (const Entry& e : entries_) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

std::vector<std::string> LayerRegistry::names() const {
  std::vector<std::string> out;
  for (const Entry& e : entries_) out.push_back(e.name);
  std::sort(out.begin(), out.end());
  return out;
}

const LayerRegistry& LayerRegistry::builtin() {
  static const LayerRegistry registry = [] {
    LayerRegistry r;
    register_common_layers(r);
    register_detect_layer(r);
    return r;
  }();
  return registry;
}

int64_t make_divisible(double x, int64_t divisor) {
  return int64_t(std::ceil(x / double(divisor))) * divisor;
}

int64_t arg_int(const std::vector<Arg>& args, size_t i, const char* module, int64_t fallback) {
  if (i >= args.size() || args[i].kind == Arg::Kind::none) return fallback;
  const Arg& a = args[i];
  if (a.kind == Arg::Kind::integer) return a.i;
  if (a.kind == Arg::Kind::real && a.r == std::floor(a.r)) return int64_t(a.r);
  YOLO_FAIL(module << " argument " << i << " must be an integer, got " << a.repr());
}

bool arg_bool(const std::vector<Arg>& args, size_t i, const char* module, bool fallback) {
  if (i >= args.size()) return fallback;
  const Arg& a = args[i];
  if (a.kind == Arg::Kind::boolean) return a.b;
  if (a.kind == Arg::Kind::integer) return a.i != 0;
  YOLO_FAIL(module << " argument " << i << " must be True or False, got " << a.repr());
}

double arg_real(const std::vector<Arg>& args, size_t i, const char* module, double fallback) {
  if (i >= args.size() || args[i].kind == Arg::Kind::none) return fallback;
  const Arg& a = args[i];
  if (a.kind == Arg::Kind::integer) return double(a.i);
  if (a.kind == Arg::Kind::real) return a.r;
  YOLO_FAIL(module << " argument " << i << " must be a number, got " << a.repr());
}

}  // namespace yolo::nn
