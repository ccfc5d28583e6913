// The YOLOv5 layers' forwards, shape rules, and their registry entries (parse_model's channel
// rules: c2 = make_divisible(args[0] * gw, 8); C3 and BottleneckCSP take the repeats inside).
#include "nn/layers.h"

#include <numeric>

#include "autograd/reorg.h"
#include "nn/registry.h"

namespace yolo::nn {

int autopad(int k, int p) { return p >= 0 ? p : k / 2; }

Conv::Conv(int64_t c1, int64_t c2, int k, int s, int p, int g, bool act) : act_(act) {
  conv_ = add_child("conv", std::make_unique<Conv2d>(c1, c2, k, s, autopad(k, p), g, false));
  bn_ = add_child("bn", std::make_unique<BatchNorm2d>(c2));
  if (act) {
    add_child("act", std::make_unique<SiLU>());
  } else {
    add_child("act", std::make_unique<Identity>());
  }
}

void Conv::fuse() {
  if (!bn_) return;
  remove_child("bn");
  bn_ = nullptr;
  conv_->add_bias();
}

Var Conv::forward(Tape& tape, const Var& x) {
  const Activation act = act_ ? Activation::silu : Activation::none;
  if (bn_) return bn_->forward_act(tape, conv_->forward(tape, x), act);
  return conv_->forward_act(tape, x, act);  // fused: conv + bias + SiLU in one kernel
}

Shape Conv::infer(const std::vector<Shape>& in, double* ops) const {
  Shape s = conv_->infer(in, ops);
  return bn_ ? bn_->infer({s}, ops) : s;
}

DWConv::DWConv(int64_t c1, int64_t c2, int k, int s, bool act)
    : Conv(c1, c2, k, s, -1, int(std::gcd(c1, c2)), act) {}

Focus::Focus(int64_t c1, int64_t c2, int k, int s, int p, int g, bool act) {
  conv_ = add_child("conv", std::make_unique<Conv>(4 * c1, c2, k, s, p, g, act));
}

Var Focus::forward(Tape& tape, const Var& x) {
  return conv_->forward(tape, ag::space_to_depth(tape, x));
}

Shape Focus::infer(const std::vector<Shape>& in, double* ops) const {
  const Shape& x = in.at(0);
  YOLO_CHECK(x.size() == 4 && x[1] % 2 == 0 && x[2] % 2 == 0,
             "Focus: input height and width must be even, got " << shape_str(x));
  return conv_->infer({{x[0], x[1] / 2, x[2] / 2, 4 * x[3]}}, ops);
}

Bottleneck::Bottleneck(int64_t c1, int64_t c2, bool shortcut, int g, double e) {
  const int64_t c_ = int64_t(double(c2) * e);
  cv1_ = add_child("cv1", std::make_unique<Conv>(c1, c_, 1, 1));
  cv2_ = add_child("cv2", std::make_unique<Conv>(c_, c2, 3, 1, -1, g));
  add_ = shortcut && c1 == c2;
}

Var Bottleneck::forward(Tape& tape, const Var& x) {
  Var y = cv2_->forward(tape, cv1_->forward(tape, x));
  return add_ ? ag::add(tape, x, y) : y;
}

Shape Bottleneck::infer(const std::vector<Shape>& in, double* ops) const {
  return cv2_->infer({cv1_->infer(in, ops)}, ops);
}

BottleneckCSP::BottleneckCSP(int64_t c1, int64_t c2, int n, bool shortcut, int g, double e) {
  const int64_t c_ = int64_t(double(c2) * e);
  cv1_ = add_child("cv1", std::make_unique<Conv>(c1, c_, 1, 1));
  cv2_ = add_child("cv2", std::make_unique<Conv2d>(c1, c_, 1, 1, 0, 1, false));
  cv3_ = add_child("cv3", std::make_unique<Conv2d>(c_, c_, 1, 1, 0, 1, false));
  cv4_ = add_child("cv4", std::make_unique<Conv>(2 * c_, c2, 1, 1));
  bn_ = add_child("bn", std::make_unique<BatchNorm2d>(2 * c_));
  add_child("act", std::make_unique<SiLU>());
  m_ = add_child("m", std::make_unique<Sequential>());
  for (int i = 0; i < n; ++i) m_->append(std::make_unique<Bottleneck>(c_, c_, shortcut, g, 1.0));
}

Var BottleneckCSP::forward(Tape& tape, const Var& x) {
  Var y1 = cv3_->forward(tape, m_->forward(tape, cv1_->forward(tape, x)));
  Var y2 = cv2_->forward(tape, x);
  return cv4_->forward(tape, bn_->forward_act(tape, ag::concat(tape, {y1, y2}), Activation::silu));
}

Shape BottleneckCSP::infer(const std::vector<Shape>& in, double* ops) const {
  const Shape y1 = cv3_->infer({m_->infer({cv1_->infer(in, ops)}, ops)}, ops);
  const Shape y2 = cv2_->infer(in, ops);
  Shape cat = y1;
  cat[3] += y2[3];
  return cv4_->infer({bn_->infer({cat}, ops)}, ops);
}

C3::C3(int64_t c1, int64_t c2, int n, bool shortcut, int g, double e) {
  const int64_t c_ = int64_t(double(c2) * e);
  cv1_ = add_child("cv1", std::make_unique<Conv>(c1, c_, 1, 1));
  cv2_ = add_child("cv2", std::make_unique<Conv>(c1, c_, 1, 1));
  cv3_ = add_child("cv3", std::make_unique<Conv>(2 * c_, c2, 1));
  m_ = add_child("m", std::make_unique<Sequential>());
  for (int i = 0; i < n; ++i) m_->append(std::make_unique<Bottleneck>(c_, c_, shortcut, g, 1.0));
}

Var C3::forward(Tape& tape, const Var& x) {
  Var a = m_->forward(tape, cv1_->forward(tape, x));
  Var b = cv2_->forward(tape, x);
  return cv3_->forward(tape, ag::concat(tape, {a, b}));
}

Shape C3::infer(const std::vector<Shape>& in, double* ops) const {
  Shape a = m_->infer({cv1_->infer(in, ops)}, ops);
  const Shape b = cv2_->infer(in, ops);
  a[3] += b[3];
  return cv3_->infer({a}, ops);
}

SPP::SPP(int64_t c1, int64_t c2, std::vector<int> k) {
  const int64_t c_ = c1 / 2;
  cv1_ = add_child("cv1", std::make_unique<Conv>(c1, c_, 1, 1));
  cv2_ = add_child("cv2", std::make_unique<Conv>(c_ * int64_t(k.size() + 1), c2, 1, 1));
  m_ = add_child("m", std::make_unique<ModuleList>());
  for (int kk : k) {
    YOLO_CHECK(kk > 0 && kk % 2 == 1, "SPP: pool sizes must be odd, got " << kk);
    m_->append(std::make_unique<MaxPool2d>(kk));
  }
}

Var SPP::forward(Tape& tape, const Var& x) {
  Var y = cv1_->forward(tape, x);
  std::vector<Var> parts = {y};
  for (const auto& pool : m_->children()) parts.push_back(pool.second->forward(tape, y));
  return cv2_->forward(tape, ag::concat(tape, parts));
}

Shape SPP::infer(const std::vector<Shape>& in, double* ops) const {
  Shape y = cv1_->infer(in, ops);
  y[3] *= int64_t(m_->children().size() + 1);
  return cv2_->infer({y}, ops);
}

SPPF::SPPF(int64_t c1, int64_t c2, int k) : k_(k) {
  YOLO_CHECK(k > 0 && k % 2 == 1, "SPPF: the pool size must be odd, got " << k);
  const int64_t c_ = c1 / 2;
  cv1_ = add_child("cv1", std::make_unique<Conv>(c1, c_, 1, 1));
  cv2_ = add_child("cv2", std::make_unique<Conv>(c_ * 4, c2, 1, 1));
  add_child("m", std::make_unique<MaxPool2d>(k));
}

Var SPPF::forward(Tape& tape, const Var& x) {
  return cv2_->forward(tape, ag::sppf_pools(tape, cv1_->forward(tape, x), k_));
}

Shape SPPF::infer(const std::vector<Shape>& in, double* ops) const {
  Shape y = cv1_->infer(in, ops);
  y[3] *= 4;
  return cv2_->infer({y}, ops);
}

// --- registry -------------------------------------------------------------------------------

namespace {

// parse_model's branch for channel modules: c1 = ch[f], c2 = make_divisible(args[0] * gw, 8)
// unless it equals no; printed args [c1, c2, *args[1:]] (with n inserted for C3-like modules).
struct ChannelArgs {
  int64_t c1 = 0, c2 = 0;
  std::vector<Arg> rest;  // args[1:]
  std::vector<Arg> printed;
};

ChannelArgs channel_args(const LayerRequest& q, const char* module, bool repeats_inside) {
  YOLO_CHECK(q.ch_in.size() == 1, module << " takes one input, so `from` must be one index, got "
                                         << q.ch_in.size());
  YOLO_CHECK(!q.args.empty() && q.args[0].is_number(),
             module << " needs its output channels as the first argument, got " << repr(q.args));
  ChannelArgs a;
  a.c1 = q.ch_in[0];
  const double raw = arg_real(q.args, 0, module, 0.0);
  a.c2 = raw == double(q.no) ? q.no : make_divisible(raw * q.gw, 8);
  YOLO_CHECK(a.c2 > 0, module << " output channels must be positive, got " << q.args[0].repr());
  a.rest.assign(q.args.begin() + 1, q.args.end());
  a.printed = {Arg::integer(a.c1), Arg::integer(a.c2)};
  if (repeats_inside) a.printed.push_back(Arg::integer(q.n));
  a.printed.insert(a.printed.end(), a.rest.begin(), a.rest.end());
  return a;
}

template <typename Make>
LayerBuild channel_layer(const LayerRequest& q, const char* module, bool repeats_inside, Make make) {
  ChannelArgs a = channel_args(q, module, repeats_inside);
  LayerBuild b;
  b.c2 = a.c2;
  b.printed_args = a.printed;
  b.repeats_inside = repeats_inside;
  const int n = q.n;
  // Check the arguments once now, so a bad row fails while its row number is known.
  make(a, n);
  b.make = [a, n, make]() { return make(a, n); };
  return b;
}

int pad_arg(const std::vector<Arg>& rest, size_t i, const char* module) {
  return int(arg_int(rest, i, module, -1));
}

std::vector<int> int_list(const std::vector<Arg>& rest, size_t i, const char* module,
                          std::vector<int> fallback) {
  if (i >= rest.size()) return fallback;
  YOLO_CHECK(rest[i].kind == Arg::Kind::list, module << " expects a list of pool sizes, got "
                                                     << rest[i].repr());
  std::vector<int> out;
  for (size_t j = 0; j < rest[i].list.size(); ++j) out.push_back(int(arg_int(rest[i].list, j, module, 0)));
  return out;
}

}  // namespace

void register_common_layers(LayerRegistry& r) {
  r.add("Conv", [](const LayerRequest& q) {
    return channel_layer(q, "Conv", false, [](const ChannelArgs& a, int) -> std::unique_ptr<Module> {
      const auto& v = a.rest;
      return std::make_unique<Conv>(a.c1, a.c2, int(arg_int(v, 0, "Conv", 1)), int(arg_int(v, 1, "Conv", 1)),
                                    pad_arg(v, 2, "Conv"), int(arg_int(v, 3, "Conv", 1)),
                                    arg_bool(v, 4, "Conv", true));
    });
  });
  r.add("DWConv", [](const LayerRequest& q) {
    return channel_layer(q, "DWConv", false, [](const ChannelArgs& a, int) -> std::unique_ptr<Module> {
      const auto& v = a.rest;
      return std::make_unique<DWConv>(a.c1, a.c2, int(arg_int(v, 0, "DWConv", 1)),
                                      int(arg_int(v, 1, "DWConv", 1)), arg_bool(v, 2, "DWConv", true));
    });
  });
  r.add("Focus", [](const LayerRequest& q) {
    return channel_layer(q, "Focus", false, [](const ChannelArgs& a, int) -> std::unique_ptr<Module> {
      const auto& v = a.rest;
      return std::make_unique<Focus>(a.c1, a.c2, int(arg_int(v, 0, "Focus", 1)), int(arg_int(v, 1, "Focus", 1)),
                                     pad_arg(v, 2, "Focus"), int(arg_int(v, 3, "Focus", 1)),
                                     arg_bool(v, 4, "Focus", true));
    });
  });
  r.add("Bottleneck", [](const LayerRequest& q) {
    return channel_layer(q, "Bottleneck", false, [](const ChannelArgs& a, int) -> std::unique_ptr<Module> {
      const auto& v = a.rest;
      return std::make_unique<Bottleneck>(a.c1, a.c2, arg_bool(v, 0, "Bottleneck", true),
                                          int(arg_int(v, 1, "Bottleneck", 1)), arg_real(v, 2, "Bottleneck", 0.5));
    });
  });
  r.add("BottleneckCSP", [](const LayerRequest& q) {
    return channel_layer(q, "BottleneckCSP", true, [](const ChannelArgs& a, int n) -> std::unique_ptr<Module> {
      const auto& v = a.rest;
      return std::make_unique<BottleneckCSP>(a.c1, a.c2, n, arg_bool(v, 0, "BottleneckCSP", true),
                                             int(arg_int(v, 1, "BottleneckCSP", 1)),
                                             arg_real(v, 2, "BottleneckCSP", 0.5));
    });
  });
  r.add("C3", [](const LayerRequest& q) {
    return channel_layer(q, "C3", true, [](const ChannelArgs& a, int n) -> std::unique_ptr<Module> {
      const auto& v = a.rest;
      return std::make_unique<C3>(a.c1, a.c2, n, arg_bool(v, 0, "C3", true), int(arg_int(v, 1, "C3", 1)),
                                  arg_real(v, 2, "C3", 0.5));
    });
  });
  r.add("SPP", [](const LayerRequest& q) {
    return channel_layer(q, "SPP", false, [](const ChannelArgs& a, int) -> std::unique_ptr<Module> {
      return std::make_unique<SPP>(a.c1, a.c2, int_list(a.rest, 0, "SPP", {5, 9, 13}));
    });
  });
  r.add("SPPF", [](const LayerRequest& q) {
    return channel_layer(q, "SPPF", false, [](const ChannelArgs& a, int) -> std::unique_ptr<Module> {
      return std::make_unique<SPPF>(a.c1, a.c2, int(arg_int(a.rest, 0, "SPPF", 5)));
    });
  });
  auto upsample = [](const LayerRequest& q) {
    YOLO_CHECK(q.ch_in.size() == 1, "Upsample takes one input, got " << q.ch_in.size());
    const double scale = arg_real(q.args, 1, "Upsample", 0.0);
    const bool nearest = q.args.size() < 3 || (q.args[2].kind == Arg::Kind::string && q.args[2].s == "nearest");
    YOLO_CHECK(scale == 2.0 && nearest && (q.args.empty() || q.args[0].kind == Arg::Kind::none),
               "Upsample supports [None, 2, 'nearest'] only, got " << repr(q.args));
    LayerBuild b;
    b.c2 = q.ch_in[0];
    b.printed_args = q.args;
    b.make = [] { return std::make_unique<Upsample>(); };
    return b;
  };
  r.add("nn.Upsample", upsample);
  r.add("Upsample", upsample);
  r.add("Concat", [](const LayerRequest& q) {
    YOLO_CHECK(arg_int(q.args, 0, "Concat", 1) == 1,
               "Concat joins channels only (dimension 1), got " << repr(q.args));
    LayerBuild b;
    b.c2 = std::accumulate(q.ch_in.begin(), q.ch_in.end(), int64_t(0));
    b.printed_args = q.args;
    b.make = [] { return std::make_unique<Concat>(); };
    return b;
  });
}

}  // namespace yolo::nn
