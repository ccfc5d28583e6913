// Module: the tree of layers a model is made of, mirroring the reference's nn.Module tree so names,
// parameter counts and module counts come out the same. Parameters and float buffers live in flat
// arenas (core/arena.h); a module only declares them and later takes views. The life of a tree:
//   construct (shapes only) -> declare(params, buffers, "model.") -> arenas finalize(ctx)
//   -> bind(params, buffers) -> init(ctx, seed) or load_state_dict(...) -> forward / train / eval.
// Conv weights are OHWI inside; state_dict()/load_state_dict() speak PyTorch's OIHW (the one place
// the layout is converted, DESIGN.md "Data layout").
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/tape.h"
#include "core/arena.h"

namespace yolo::nn {

// Optimizer groups of the parameters (the reference's smart_optimizer order is g[2] biases,
// g[0] decayed weights, g[1] BN weights; here the arena lays them out 0, 1, 2).
enum ParamGroup : int { kGroupBias = 0, kGroupWeight = 1, kGroupBnWeight = 2 };

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // The reference's class path, as parse_model prints it ("models.common.Conv",
  // "torch.nn.modules.conv.Conv2d", ...).
  virtual std::string type_name() const = 0;

  // --- tree ---------------------------------------------------------------------------------
  template <typename T>
  T* add_child(const std::string& name, std::unique_ptr<T> child) {
    T* raw = child.get();
    children_.emplace_back(name, std::move(child));
    return raw;
  }
  // Removes a child (fusing drops `bn`). Returns false when there is none of that name.
  bool remove_child(const std::string& name);
  const std::vector<std::pair<std::string, std::unique_ptr<Module>>>& children() const {
    return children_;
  }
  // Modules in this subtree, this one included: len(list(module.modules())) in PyTorch.
  int64_t count_modules() const;
  // Parameter elements in this subtree (sum of numel over named_parameters()).
  int64_t num_parameters() const;
  // Pre-order visit of this subtree.
  template <typename F>
  void visit(F&& f) {
    f(*this);
    for (auto& c : children_) c.second->visit(f);
  }

  // --- two-phase life -----------------------------------------------------------------------
  // Adds this subtree's parameters to `params` and float buffers to `buffers` under
  // prefix + name (prefix ends with '.' or is empty), own tensors first, then the children's.
  void declare(ParamArena& params, ParamArena& buffers, const std::string& prefix);
  // Takes views of the finalized arenas.
  void bind(const ParamArena& params, const ParamArena& buffers);
  // Initialises like the reference (reset_parameters of each module, pre-order). Parameters draw
  // from Philox(seed) at their arena offset, so a value depends only on (seed, layout).
  void init(Context& ctx, uint64_t seed);

  void train(bool mode = true);
  void eval() { train(false); }
  bool training() const { return training_; }

  // --- forward --------------------------------------------------------------------------------
  // Single-input modules override forward; Concat and Detect take several inputs.
  virtual Var forward(Tape& tape, const Var& x);
  virtual Var forward_many(Tape& tape, const std::vector<Var>& xs);
  // Output shape (NHWC) for the given input shapes, adding thop's operation count of this module
  // (conv multiply-adds, BN 4 per element, nearest upsample 1 per output element) to *ops.
  virtual Shape infer(const std::vector<Shape>& in, double* ops) const;

  // --- state ----------------------------------------------------------------------------------
  struct ParamSlot {
    std::string name;       // local name ("weight")
    std::string full_name;  // after declare ("model.0.conv.weight")
    Shape shape;            // internal layout (OHWI for conv weights)
    int group = kGroupWeight;
    bool conv_weight = false;
    Tensor value, grad;
    int64_t offset = 0;     // element offset in the arena (Philox stream position)
  };
  struct BufferSlot {
    std::string name, full_name;
    Shape shape;
    Tensor value;
  };
  struct CounterSlot {  // an int64 0-d buffer kept on the host (BN num_batches_tracked)
    std::string name, full_name;
    int64_t value = 0;
  };
  std::vector<ParamSlot>& params() { return params_; }
  const std::vector<ParamSlot>& params() const { return params_; }
  std::vector<BufferSlot>& buffers() { return buffers_; }
  const std::vector<BufferSlot>& buffers() const { return buffers_; }
  std::vector<CounterSlot>& counters() { return counters_; }
  const std::vector<CounterSlot>& counters() const { return counters_; }

 protected:
  int declare_param(const std::string& name, const Shape& shape, int group,
                    bool conv_weight = false);
  int declare_buffer(const std::string& name, const Shape& shape);
  int declare_counter(const std::string& name, int64_t value);
  Var param_var(int i) const { return Var::param(params_[i].value, params_[i].grad); }
  // Module-specific initialisation of this module's own tensors (children are visited by init).
  virtual void reset_parameters(Context& ctx, uint64_t seed) {}
  // Runs after the children were initialised (Detect adds its bias prior to its convs' biases).
  virtual void finish_init(Context& ctx) {}
  // Called by train(); the mode flag is already set.
  virtual void on_mode_change() {}

 private:
  std::vector<std::pair<std::string, std::unique_ptr<Module>>> children_;
  std::vector<ParamSlot> params_;
  std::vector<BufferSlot> buffers_;
  std::vector<CounterSlot> counters_;
  bool training_ = true;
};

// --- state_dict --------------------------------------------------------------------------------
// Host tensors under the reference's names, PyTorch layouts (conv weights OIHW, f32; counters i64
// 0-d).
std::map<std::string, Tensor> state_dict(const Module& root, const Context& ctx);

// What a checkpoint lacks or has too much of, compared with a module tree.
struct StateDictReport {
  std::vector<std::string> missing, unexpected;
  struct Mismatch {
    std::string name;
    Shape checkpoint, model;
  };
  std::vector<Mismatch> mismatched;
  bool ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  // "6 shape mismatches (a: checkpoint (..) vs model (..), ...), 2 missing (...)".
  std::string describe() const;
};
StateDictReport check_state_dict(const Module& root, const std::map<std::string, Tensor>& sd);

// Copies every entry whose name and shape fit into the tree (OIHW -> OHWI, any float dtype ->
// f32). strict: any missing, unexpected or mismatched name throws ONE yolo::Error listing them all,
// followed by `hint`, and nothing is loaded. Not strict: the entries that fit are loaded, the rest
// skipped; the report says which.
StateDictReport load_state_dict(Module& root, Context& ctx,
                                const std::map<std::string, Tensor>& sd, bool strict,
                                const std::string& hint = "");

// Host-side layout conversions: (O, KH, KW, I) <-> (O, I, KH, KW), f32.
Tensor ohwi_to_oihw(const Tensor& w);
Tensor oihw_to_ohwi(const Tensor& w);

}  // namespace yolo::nn
