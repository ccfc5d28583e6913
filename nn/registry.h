// The layer registry (STYLE.md rule 7): a yaml module name ("Conv", "nn.Upsample", ...) maps to a
// factory registered beside the layer (nn/layers.cpp, nn/detect.cpp). A factory applies that
// module's part of parse_model (models/yolo.py): it computes the output channels from the input
// channels, the width multiple and the row's args, and returns how to construct the module.
//   const LayerRegistry& r = LayerRegistry::builtin();
//   LayerBuild b = r.find("C3")->factory(request);  std::unique_ptr<Module> m = b.make();
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nn/module.h"

namespace yolo::nn {

// A yaml argument after parse_model's eval: None, a bool, an int, a float, a string or a list.
struct Arg {
  enum class Kind { none, boolean, integer, real, string, list };
  Kind kind = Kind::none;
  bool b = false;
  int64_t i = 0;
  double r = 0.0;
  std::string s;
  std::vector<Arg> list;

  static Arg none() { return {}; }
  static Arg boolean(bool v);
  static Arg integer(int64_t v);
  static Arg real(double v);
  static Arg string(const std::string& v);
  static Arg of_list(std::vector<Arg> v);
  static Arg of_ints(const std::vector<int64_t>& v);

  bool is_number() const { return kind == Kind::integer || kind == Kind::real; }
  // Python's repr: None, True, 3, 0.5, 'nearest', [1, 2].
  std::string repr() const;
};
std::string repr(const std::vector<Arg>& args);

// What parse_model knows when it reaches a row.
struct LayerRequest {
  std::vector<int64_t> ch_in;  // channels of each `from` input, in order
  int n = 1;                   // repeats after the depth gain
  std::vector<Arg> args;       // the row's args, names (nc, anchors, None) already evaluated
  double gw = 1.0;             // width multiple
  int64_t no = 0;              // parse_model's `no` = na * (nc + 5): a c2 equal to it is not scaled
};

struct LayerBuild {
  std::function<std::unique_ptr<Module>()> make;  // constructs one instance
  int64_t c2 = 0;                                 // output channels
  std::vector<Arg> printed_args;                  // args as parse_model prints them
  bool repeats_inside = false;  // C3 / BottleneckCSP take n as an argument; others are repeated
};

using LayerFactory = std::function<LayerBuild(const LayerRequest&)>;

class LayerRegistry {
 public:
  struct Entry {
    std::string name;
    LayerFactory factory;
  };
  // Registers `name` (an alias such as "nn.Upsample" is registered as its own name).
  void add(const std::string& name, LayerFactory factory);
  const Entry* find(const std::string& name) const;
  // Sorted names, for error messages.
  std::vector<std::string> names() const;
  // The registry of every layer in nn/ (built once, on first use).
  static const LayerRegistry& builtin();

 private:
  std::vector<Entry> entries_;
};

// Registration hooks, one per layer file.
void register_common_layers(LayerRegistry& r);  // nn/layers.cpp
void register_detect_layer(LayerRegistry& r);   // nn/detect.cpp

// make_divisible(x, 8) of utils/general.py: ceil(x / d) * d.
int64_t make_divisible(double x, int64_t divisor);

// Arg access with errors naming the module and the position ("Conv arg 2 must be an int, got
// 'x'").
int64_t arg_int(const std::vector<Arg>& args, size_t i, const char* module, int64_t fallback);
bool arg_bool(const std::vector<Arg>& args, size_t i, const char* module, bool fallback);
double arg_real(const std::vector<Arg>& args, size_t i, const char* module, double fallback);

}  // namespace yolo::nn
