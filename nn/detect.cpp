// Detect: level convs, eval decode through kernels/detect.h, anchor bookkeeping, the bias prior,
// and its registry entry (parse_model appends the input channels; an int anchor count becomes
// placeholder anchors 0..2k-1 per level).
#include "nn/detect.h"

#include <cmath>

#include "kernels/detect.h"
#include "nn/registry.h"

namespace yolo::nn {

Detect::Detect(int64_t nc, const std::vector<std::vector<double>>& anchors_px,
               const std::vector<int64_t>& ch)
    : nc_(nc), nl_(int64_t(anchors_px.size())) {
  YOLO_CHECK(nc >= 1, "Detect: nc must be at least 1, got " << nc);
  YOLO_CHECK(nl_ >= 1 && !anchors_px[0].empty() && anchors_px[0].size() % 2 == 0,
             "Detect: anchors must be a list of levels, each an even number of values (w, h pairs)");
  na_ = int64_t(anchors_px[0].size() / 2);
  for (const auto& level : anchors_px) {
    YOLO_CHECK(int64_t(level.size()) == 2 * na_, "Detect: every anchor level needs " << 2 * na_
                                                     << " values (" << na_ << " w, h pairs), got "
                                                     << level.size());
    for (double v : level) anchors_px_.push_back(float(v));
  }
  YOLO_CHECK(int64_t(ch.size()) == nl_, "Detect: " << nl_ << " anchor levels but " << ch.size()
                                                   << " inputs; `from` needs one layer per level");
  declare_buffer("anchors", {nl_, na_, 2});
  ModuleList* m = add_child("m", std::make_unique<ModuleList>());
  for (int64_t c : ch) {
    auto conv = std::make_unique<Conv2d>(c, no() * na_, 1, 1, 0, 1, true);
    convs_.push_back(conv.get());
    m->append(std::move(conv));
  }
  anchors_grid_ = anchors_px_;
}

void Detect::set_strides(const std::vector<double>& strides) {
  YOLO_CHECK(int64_t(strides.size()) == nl_, "Detect: " << strides.size() << " strides for " << nl_ << " levels");
  strides_ = strides;
  auto mean_area = [&](int64_t level) {
    double sum = 0.0;
    for (int64_t a = 0; a < na_; ++a) {
      sum += double(anchors_px_[(level * na_ + a) * 2]) * double(anchors_px_[(level * na_ + a) * 2 + 1]);
    }
    return sum / double(na_);
  };
  const double da = mean_area(nl_ - 1) - mean_area(0);
  const double ds = strides.back() - strides.front();
  auto sign = [](double v) { return (v > 0) - (v < 0); };
  if (da != 0.0 && sign(da) != sign(ds)) {  // utils/autoanchor.py check_anchor_order
    std::vector<float> flipped;
    for (int64_t l = nl_ - 1; l >= 0; --l) {
      flipped.insert(flipped.end(), anchors_px_.begin() + l * na_ * 2, anchors_px_.begin() + (l + 1) * na_ * 2);
    }
    anchors_px_ = flipped;
  }
  anchors_grid_.resize(anchors_px_.size());
  for (int64_t l = 0; l < nl_; ++l) {
    for (int64_t j = 0; j < na_ * 2; ++j) {
      anchors_grid_[l * na_ * 2 + j] = float(anchors_px_[l * na_ * 2 + j] / float(strides[l]));
    }
  }
}

void Detect::reset_parameters(Context& ctx, uint64_t seed) {
  ctx.copy(anchors(), Tensor::from_vector({nl_, na_, 2}, anchors_grid_));
}

void Detect::finish_init(Context& ctx) {
  YOLO_CHECK(int64_t(strides_.size()) == nl_, "Detect: set_strides() must run before init()");
  for (int64_t l = 0; l < nl_; ++l) {
    Tensor b = ctx.to_host(convs_[size_t(l)]->bias());
    float* p = b.data<float>();
    const double s = strides_[size_t(l)];
    const float obj = float(std::log(8.0 / ((640.0 / s) * (640.0 / s))));
    const float cls = float(std::log(0.6 / (double(nc_) - 0.999999)));
    for (int64_t a = 0; a < na_; ++a) {
      p[a * no() + 4] += obj;
      for (int64_t k = 5; k < no(); ++k) p[a * no() + k] += cls;
    }
    ctx.copy(convs_[size_t(l)]->bias(), b);
  }
}

Detect::Output Detect::forward_levels(Tape& tape, const std::vector<Var>& xs) {
  YOLO_CHECK(int64_t(xs.size()) == nl_, "Detect: expected " << nl_ << " inputs, got " << xs.size());
  Output out;
  for (int64_t l = 0; l < nl_; ++l) out.levels.push_back(convs_[size_t(l)]->forward(tape, xs[size_t(l)]));
  if (training()) return out;
  YOLO_CHECK(int64_t(strides_.size()) == nl_, "Detect: strides are not set");
  Context& ctx = tape.ctx();
  int64_t rows = 0;
  for (const Var& v : out.levels) rows += na_ * v.value().dim(1) * v.value().dim(2);
  const Tensor& first = out.levels[0].value();
  const DType out_type = first.dtype() == DType::f64 ? DType::f64 : DType::f32;
  out.decoded = ctx.empty({first.dim(0), rows, no()}, out_type);
  int64_t offset = 0;
  for (int64_t l = 0; l < nl_; ++l) {
    const Tensor& y = out.levels[size_t(l)].value();
    Tensor a = anchors().slice(l, l + 1).reshape({na_, 2});
    if (out_type == DType::f64) {
      std::vector<double> grid(anchors_grid_.begin() + l * na_ * 2, anchors_grid_.begin() + (l + 1) * na_ * 2);
      std::vector<float> current = ctx.to_host(a).to_float_vector();
      for (size_t j = 0; j < grid.size(); ++j) grid[j] = current[j];
      a = Tensor::from_vector({na_, 2}, grid);
    }
    detect_decode(ctx, y, a, strides_[size_t(l)], out.decoded, offset);
    offset += na_ * y.dim(1) * y.dim(2);
  }
  return out;
}

std::vector<Shape> Detect::infer_levels(const std::vector<Shape>& in, double* ops) const {
  YOLO_CHECK(int64_t(in.size()) == nl_, "Detect: expected " << nl_ << " inputs, got " << in.size());
  std::vector<Shape> out;
  for (int64_t l = 0; l < nl_; ++l) out.push_back(convs_[size_t(l)]->infer({in[size_t(l)]}, ops));
  return out;
}

Shape Detect::infer(const std::vector<Shape>& in, double* ops) const {
  int64_t rows = 0;
  for (const Shape& s : infer_levels(in, ops)) rows += na_ * s[1] * s[2];
  return {in.at(0)[0], rows, no()};
}

void register_detect_layer(LayerRegistry& r) {
  r.add("Detect", [](const LayerRequest& q) {
    YOLO_CHECK(q.args.size() >= 2, "Detect needs [nc, anchors], got " << repr(q.args));
    const int64_t nc = arg_int(q.args, 0, "Detect", 0);
    std::vector<Arg> printed = q.args;
    std::vector<std::vector<double>> anchors;
    const Arg& a = q.args[1];
    if (a.kind == Arg::Kind::integer) {  // an anchor count: placeholders for AutoAnchor
      YOLO_CHECK(a.i >= 1, "Detect: the anchor count must be positive, got " << a.i);
      std::vector<Arg> one;
      std::vector<double> values;
      for (int64_t j = 0; j < 2 * a.i; ++j) {
        one.push_back(Arg::integer(j));
        values.push_back(double(j));
      }
      printed[1] = Arg::of_list(std::vector<Arg>(q.ch_in.size(), Arg::of_list(one)));
      anchors.assign(q.ch_in.size(), values);
    } else {
      YOLO_CHECK(a.kind == Arg::Kind::list, "Detect: anchors must be a list of levels or a count, got " << a.repr());
      for (const Arg& level : a.list) {
        YOLO_CHECK(level.kind == Arg::Kind::list, "Detect: each anchor level must be a list, got " << level.repr());
        std::vector<double> values;
        for (size_t j = 0; j < level.list.size(); ++j) values.push_back(arg_real(level.list, j, "Detect anchors", 0.0));
        anchors.push_back(values);
      }
    }
    printed.push_back(Arg::of_ints(q.ch_in));
    const std::vector<int64_t> ch = q.ch_in;
    Detect check(nc, anchors, ch);  // fails now, with the row known, if the arguments are bad
    LayerBuild b;
    b.c2 = 0;
    b.printed_args = printed;
    b.make = [nc, anchors, ch] { return std::make_unique<Detect>(nc, anchors, ch); };
    return b;
  });
}

}  // namespace yolo::nn
