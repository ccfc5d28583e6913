// Model: parse_model's build loop over the layer registry, strides from shape inference, the
// forward over the save list, fusing, weights I/O and size numbers.
#include "yolo/model.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "core/safetensors.h"
#include "kernels/elementwise.h"
#include "nn/layers.h"

namespace yolo {
namespace {

// The Model and its `model` Sequential, so names start with "model." and module counts match.
class ModelRoot : public nn::Module {
 public:
  std::string type_name() const override { return "models.yolo.Model"; }
};
class LayerList : public nn::Module {
 public:
  std::string type_name() const override { return "torch.nn.modules.container.Sequential"; }
};

// Python's round(): halves go to the even neighbour.
double round_half_even(double v) {
  const double f = std::floor(v);
  const double diff = v - f;
  if (diff > 0.5) return f + 1.0;
  if (diff < 0.5) return f;
  return std::fmod(f, 2.0) == 0.0 ? f : f + 1.0;
}

// `from` entry x of row i as a layer index (-1 at row 0 is the input: returned as -1).
int resolve_from(int x, int i, const std::string& where) {
  if (x == -1 && i == 0) return -1;
  const int resolved = x < 0 ? i + x : x;
  YOLO_CHECK(resolved >= 0 && resolved < i,
             where << ": `from` index " << x << " is out of range (row " << i << " can use "
                   << (i == 0 ? std::string("only -1, the input")
                              : "earlier layers 0.." + std::to_string(i - 1) + " or -" +
                                    std::to_string(i) + "..-1")
                   << ")");
  return resolved;
}

}  // namespace

Model::Model(const ModelConfig& cfg, Context& ctx, const ModelOptions& options)
    : cfg_(cfg), options_(options), ctx_(ctx) {
  if (options.nc > 0) cfg_.nc = options.nc;
  if (options.anchors > 0) cfg_.anchors = nn::Arg::integer(options.anchors);
  options_.nc = 0;
  options_.anchors = 0;
  const int64_t na = cfg_.anchors.kind == nn::Arg::Kind::integer
                         ? cfg_.anchors.i
                         : int64_t(cfg_.anchors.list.at(0).list.size() / 2);
  const int64_t no = na * (cfg_.nc + 5);

  root_ = std::make_unique<ModelRoot>();
  nn::Module* list = root_->add_child("model", std::make_unique<LayerList>());
  const nn::LayerRegistry& registry = nn::LayerRegistry::builtin();
  std::vector<int64_t> ch;  // output channels of each built layer
  std::set<int> save;
  for (size_t row = 0; row < cfg_.rows.size(); ++row) {
    const ModelConfig::Row& r = cfg_.rows[row];
    const int i = int(row);
    const std::string where = cfg_.source + ": row " + std::to_string(i);
    const nn::LayerRegistry::Entry* entry = registry.find(r.module);
    if (!entry) {
      std::string known;
      for (const std::string& n : registry.names()) known += (known.empty() ? "" : ", ") + n;
      YOLO_FAIL(where << ": unknown module '" << r.module << "' (known: " << known << ")");
    }
    YOLO_CHECK(!detect_, where << ": Detect must be the last row");
    nn::LayerRequest q;
    for (int f : r.from) {
      const int src = resolve_from(f, i, where);
      q.ch_in.push_back(src < 0 ? cfg_.ch : ch[size_t(src)]);
      if (f != -1) save.insert(src);
    }
    q.n = r.number > 1 ? std::max(int(round_half_even(r.number * cfg_.depth_multiple)), 1) : r.number;
    for (const nn::Arg& a : r.args) q.args.push_back(evaluate_model_arg(a, cfg_));
    q.gw = cfg_.width_multiple;
    q.no = no;
    nn::LayerBuild b;
    try {
      b = entry->factory(q);
    } catch (const Error& e) {
      YOLO_FAIL(where << " (" << r.module << " " << nn::repr(q.args) << "): " << e.what());
    }
    std::unique_ptr<nn::Module> m = b.make();
    const std::string type = m->type_name();
    if (q.n > 1 && !b.repeats_inside) {  // nn.Sequential(*(m(*args) for _ in range(n)))
      auto seq = std::make_unique<nn::Sequential>();
      seq->append(std::move(m));
      for (int k = 1; k < q.n; ++k) seq->append(b.make());
      m = std::move(seq);
    }
    if (auto* d = dynamic_cast<nn::Detect*>(m.get())) detect_ = d;
    LayerInfo info;
    info.index = i;
    info.from = r.from;
    info.from_is_list = r.from_is_list;
    info.n = q.n;
    info.params = m->num_parameters();
    info.type = type;
    info.args = nn::repr(b.printed_args);
    info.out_channels = b.c2;
    info_.push_back(info);
    layers_.push_back(list->add_child(std::to_string(i), std::move(m)));
    ch.push_back(b.c2);
  }
  save_.assign(save.begin(), save.end());

  if (detect_) {  // strides from a 256x256 probe, as Model.__init__ (shapes only, nothing runs)
    const double s = 256.0;
    std::vector<Shape> shapes = layer_shapes({1, int64_t(s), int64_t(s), cfg_.ch});
    std::vector<double> strides;
    for (int f : cfg_.rows.back().from) {
      strides.push_back(s / double(shapes[size_t(resolve_from(f, int(layers_.size()) - 1, ""))][1]));
    }
    detect_->set_strides(strides);
  }
  if (options_.fused) {
    root_->visit([](nn::Module& m) {
      if (auto* c = dynamic_cast<nn::Conv*>(&m)) c->fuse();
    });
  }
  root_->declare(params_, buffers_, "");
  params_.finalize(ctx_);
  buffers_.finalize(ctx_);
  root_->bind(params_, buffers_);
  root_->init(ctx_, options_.seed);
  if (options_.fused) root_->train(false);
}

Model::~Model() = default;

bool Model::training() const { return root_->training(); }
void Model::train(bool mode) { root_->train(mode); }

std::vector<Shape> Model::layer_shapes(const Shape& input) const {
  std::vector<Shape> out;
  double ops = 0.0;
  Shape x = input;
  for (size_t i = 0; i < layers_.size(); ++i) {
    std::vector<Shape> in;
    for (int f : cfg_.rows[i].from) in.push_back(f == -1 ? x : out[size_t(resolve_from(f, int(i), ""))]);
    x = layers_[i]->infer(in, &ops);
    out.push_back(x);
  }
  return out;
}

std::vector<double> Model::strides() const { return detect_ ? detect_->strides() : std::vector<double>{}; }

double Model::gflops(int64_t img) const {
  std::vector<double> st = strides();
  const int64_t s = std::max<int64_t>(st.empty() ? 32 : int64_t(*std::max_element(st.begin(), st.end())), 32);
  double ops = 0.0;
  Shape x = {1, s, s, cfg_.ch};
  std::vector<Shape> out;
  for (size_t i = 0; i < layers_.size(); ++i) {
    std::vector<Shape> in;
    for (int f : cfg_.rows[i].from) in.push_back(f == -1 ? x : out[size_t(resolve_from(f, int(i), ""))]);
    x = layers_[i]->infer(in, &ops);
    out.push_back(x);
  }
  return ops * 2.0 / 1e9 * (double(img) / double(s)) * (double(img) / double(s));
}

ModelOutput Model::forward(Tape& tape, const Var& x) {
  YOLO_CHECK(x.value().ndim() == 4 && x.value().dim(3) == cfg_.ch,
             "Model: input must be (N, H, W, " << cfg_.ch << ") NHWC, got " << shape_str(x.shape()));
  std::vector<Var> saved(layers_.size());
  Var current = x;
  ModelOutput out;
  for (size_t i = 0; i < layers_.size(); ++i) {
    std::vector<Var> in;
    for (int f : cfg_.rows[i].from) in.push_back(f == -1 ? current : saved[size_t(resolve_from(f, int(i), ""))]);
    if (layers_[i] == detect_) {
      nn::Detect::Output d = detect_->forward_levels(tape, in);
      out.levels = std::move(d.levels);
      out.decoded = d.decoded;
      return out;
    }
    current = layers_[i]->forward_many(tape, in);
    if (std::binary_search(save_.begin(), save_.end(), int(i))) saved[i] = current;
  }
  out.levels = {current};
  return out;
}

std::map<std::string, Tensor> Model::state_dict() const { return nn::state_dict(*root_, ctx_); }

std::string Model::load_hint(const nn::StateDictReport& r) const {
  std::string generic = "build the model from the yaml the weights were made with, or load with strict=false to skip them";
  if (!detect_) return generic;
  const std::string head = detect_->conv(0).params()[0].full_name;  // model.N.m.0.weight
  for (const auto& m : r.mismatched) {
    if (m.name == head && !m.checkpoint.empty() && m.checkpoint[0] % detect_->na() == 0) {
      const int64_t nc = m.checkpoint[0] / detect_->na() - 5;
      return "the checkpoint was trained with nc=" + std::to_string(nc) +
             "; build the model with the same nc, or load with strict=false to skip them";
    }
  }
  return generic;
}

nn::StateDictReport Model::load_state_dict(const std::map<std::string, Tensor>& sd, bool strict) {
  nn::StateDictReport r = nn::check_state_dict(*root_, sd);
  return nn::load_state_dict(*root_, ctx_, sd, strict, r.ok() ? "" : load_hint(r));
}

void Model::load_weights(const std::string& path, bool strict) {
  SafetensorsFile f = read_safetensors(path);
  try {
    load_state_dict(f.tensors, strict);
  } catch (const Error& e) {
    YOLO_FAIL(path << ": " << e.what());
  }
}

void Model::save_weights(const std::string& path, const std::map<std::string, std::string>& metadata) const {
  std::map<std::string, std::string> meta = metadata;
  meta.emplace("yaml", cfg_.yaml_text);
  write_safetensors(path, state_dict(), meta);
}

std::unique_ptr<Model> Model::fused() const {
  YOLO_CHECK(!options_.fused, "Model::fused: the model is fused already");
  ModelOptions o = options_;
  o.fused = true;
  auto out = std::make_unique<Model>(cfg_, ctx_, o);
  std::map<std::string, Tensor> sd = state_dict();
  // fuse_conv_and_bn (utils/torch_utils.py) in f32, in the reference's order of operations.
  root_->visit([&](nn::Module& m) {
    auto* c = dynamic_cast<nn::Conv*>(&m);
    if (!c || !c->bn()) return;
    const std::string w_name = c->conv().params()[0].full_name;
    const std::string prefix = w_name.substr(0, w_name.size() - std::string("conv.weight").size());
    const std::string bn = prefix + "bn.";
    Tensor w = sd.at(w_name);
    const float* gamma = sd.at(bn + "weight").data<float>();
    const float* beta = sd.at(bn + "bias").data<float>();
    const float* mean = sd.at(bn + "running_mean").data<float>();
    const float* var = sd.at(bn + "running_var").data<float>();
    const int64_t O = w.dim(0), per = w.numel() / O;
    Tensor wf = Tensor::empty_cpu(w.shape()), bf = Tensor::empty_cpu({O});
    const float eps = float(nn::BatchNorm2d::kEps);
    for (int64_t o = 0; o < O; ++o) {
      const float denom = std::sqrt(eps + var[o]);
      const float scale = gamma[o] / denom;
      for (int64_t j = 0; j < per; ++j) wf.data<float>()[o * per + j] = scale * w.data<float>()[o * per + j];
      bf.data<float>()[o] = beta[o] - gamma[o] * mean[o] / std::sqrt(var[o] + eps);
    }
    for (const char* k : {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}) sd.erase(bn + k);
    sd[w_name] = wf;
    sd[prefix + "conv.bias"] = bf;
  });
  out->load_state_dict(sd, true);
  out->eval();
  return out;
}

void Model::set_compute_dtype(DType dtype) {
  if (dtype == DType::f32) {
    compute_copy_ = Tensor();
    return;
  }
  compute_copy_ = ctx_.empty(params_.flat_params().shape(), dtype);
  cast(ctx_, params_.flat_params(), compute_copy_);
  root_->visit([&](nn::Module& m) {
    if (auto* c = dynamic_cast<nn::Conv2d*>(&m)) c->set_compute_copy(compute_copy_, params_);
  });
}

}  // namespace yolo
