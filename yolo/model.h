// The YOLOv5 model built from an ultralytics model yaml with parse_model's semantics (models/yolo.py
// at ultralytics/yolov5@48a85314): depth/width multiples, round-half-even repeats, make_divisible
// by 8, `from` lists and the save list, through the layer registry (nn/registry.h). The model owns
// its module tree and its parameter and buffer arenas on the caller's Context.
//   yolo::Context ctx;  yolo::Model m(yolo::load_model_config("configs/yolov5n.yaml"), ctx);
//   yolo::Tape tape(ctx);  yolo::ModelOutput out = m.forward(tape, yolo::Var::constant(x_nhwc));
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nn/detect.h"
#include "nn/registry.h"

namespace yolo {

// A model yaml, read but not yet built. Args are as the yaml has them; the builder evaluates
// strings as parse_model's eval does (evaluate_model_arg), after the nc / anchors overrides.
struct ModelConfig {
  struct Row {
    std::vector<int> from;  // one entry for an int `from`
    bool from_is_list = false;
    int number = 1;         // repeats before the depth gain
    std::string module;
    std::vector<nn::Arg> args;
  };
  std::string source = "<string>";  // file name for messages
  std::string yaml_text;
  int64_t nc = 80;
  double depth_multiple = 1.0, width_multiple = 1.0;
  nn::Arg anchors;  // a list of levels (w, h pairs in pixels) or an int count
  int64_t ch = 3;
  std::vector<Row> rows;  // backbone then head; row i builds layer i
};

// Parses a model yaml; throws yolo::Error naming the file, the row and what would be valid.
ModelConfig parse_model_config(const std::string& yaml_text, const std::string& source = "<string>");
ModelConfig load_model_config(const std::string& path);
// parse_model's `eval(a)` of a string argument: nc, anchors, gd, gw, None, True, False and
// numbers; other strings ('nearest') stay strings.
nn::Arg evaluate_model_arg(const nn::Arg& a, const ModelConfig& cfg);

struct ModelOptions {
  int64_t nc = 0;       // > 0: override the yaml's nc (Model(cfg, nc=...))
  int64_t anchors = 0;  // > 0: this many placeholder anchors per level (Model(cfg, anchors=k))
  uint64_t seed = 0;    // Philox seed of the initialisation
  bool fused = false;   // build the fused structure (Conv2d with bias, no BN); see Model::fused()
};

// One row of parse_model's table.
struct LayerInfo {
  int index = 0;
  std::vector<int> from;
  bool from_is_list = false;
  int n = 1;  // repeats after the depth gain (parse_model's n_)
  int64_t params = 0;
  std::string type;       // "models.common.C3"
  std::string args;       // Python repr of the printed args
  int64_t out_channels = 0;
};

struct ModelOutput {
  std::vector<Var> levels;  // per Detect level (N, ny, nx, na * no), NHWC
  Tensor decoded;           // eval mode: (N, sum(na * ny * nx), no) f32, the reference's order
};

class Model {
 public:
  Model(const ModelConfig& cfg, Context& ctx, const ModelOptions& options = {});
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  // x: (N, H, W, ch) NHWC, H and W multiples of the largest stride. Training mode returns the
  // level outputs; eval mode also the decoded boxes.
  ModelOutput forward(Tape& tape, const Var& x);
  void train(bool mode = true);
  void eval() { train(false); }
  bool training() const;

  // Host tensors with the reference's names and layouts (nn/module.h).
  std::map<std::string, Tensor> state_dict() const;
  // Strict: one yolo::Error listing every missing, unexpected and mismatched name, with a hint
  // (e.g. the checkpoint's nc). Not strict: loads what fits and reports the rest.
  nn::StateDictReport load_state_dict(const std::map<std::string, Tensor>& sd, bool strict = true);
  void load_weights(const std::string& safetensors_path, bool strict = true);
  void save_weights(const std::string& safetensors_path,
                    const std::map<std::string, std::string>& metadata = {}) const;

  // A new model with BN folded into each Conv (Model.fuse / fuse_conv_and_bn): conv biases appear,
  // BN parameters and buffers disappear. In eval mode.
  std::unique_ptr<Model> fused() const;
  bool is_fused() const { return options_.fused; }

  // Makes a `dtype` (f16 / bf16) copy of the parameters for forwards with inputs of that dtype (the
  // conv weights use it; BN keeps f32 parameters). Call again after the parameters change.
  void set_compute_dtype(DType dtype);

  // Sizes, as model_info reports them.
  int64_t num_parameters() const { return root_->num_parameters(); }
  int64_t num_modules() const { return root_->count_modules(); }  // len(list(model.modules()))
  // thop's count at a (1, ch, s, s) input, s = max(largest stride, 32), x2 / 1e9, scaled to img.
  double gflops(int64_t img = 640) const;
  // Output shape of every layer for an (N, H, W, ch) input (shape inference, nothing runs).
  std::vector<Shape> layer_shapes(const Shape& input) const;

  const std::vector<LayerInfo>& layers() const { return info_; }
  const std::vector<int>& save() const { return save_; }
  std::vector<double> strides() const;
  nn::Detect* detect() const { return detect_; }
  nn::Module& root() const { return *root_; }
  const ModelConfig& config() const { return cfg_; }
  ParamArena& params() { return params_; }
  const ParamArena& params() const { return params_; }
  const ParamArena& buffers() const { return buffers_; }
  Context& ctx() const { return ctx_; }

 private:
  std::string load_hint(const nn::StateDictReport& r) const;

  ModelConfig cfg_;  // with the nc / anchors overrides applied
  ModelOptions options_;
  Context& ctx_;
  std::unique_ptr<nn::Module> root_;
  std::vector<nn::Module*> layers_;
  std::vector<LayerInfo> info_;
  std::vector<int> save_;
  nn::Detect* detect_ = nullptr;
  ParamArena params_, buffers_;
  Tensor compute_copy_;
};

}  // namespace yolo
