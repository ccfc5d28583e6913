// ParamArena: all parameters of a model in one flat f32 buffer, with gradients and optimizer state
// as flat buffers of the same layout; each named parameter is a view into them (DESIGN.md "Data
// layout"). Declare, then finalize, then use views:
//   ParamArena a; a.add("model.0.conv.weight", {16, 6, 6, 3}, kGroupWeight); a.finalize(ctx);
//   Tensor w = a.param("model.0.conv.weight"), dw = a.grad("model.0.conv.weight");
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/context.h"
#include "core/tensor.h"

namespace yolo {

class ParamArena {
 public:
  struct Entry {
    std::string name;
    Shape shape;
    int group = 0;  // optimizer parameter group (e.g. 0 BN weights, 1 decayed weights, 2 biases)
    int64_t offset = 0;  // element offset in the flat buffers, a multiple of kAlign
    int64_t numel = 0;
  };
  // Each view starts on a 64-byte boundary (16 f32), so kernels can use vector loads per view.
  static constexpr int64_t kAlign = 16;

  // Declares a parameter. Names are unique. Only before finalize().
  void add(const std::string& name, const Shape& shape, int group = 0);
  // Lays entries out grouped by ascending group (declaration order inside a group), allocates the
  // flat parameter and gradient buffers on ctx's device and zero-fills both.
  void finalize(const Context& ctx);
  bool finalized() const { return finalized_; }

  // Adds a named optimizer-state buffer (momentum, exp_avg, ema, ...) of the flat size,
  // zero-filled.
  Tensor add_state(const std::string& state_name);
  bool has_state(const std::string& state_name) const;

  const std::vector<Entry>& entries() const { return entries_; }
  const Entry& entry(const std::string& name) const;
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  // Element range [begin, end) of a group in the flat buffers (empty range if the group is absent).
  std::pair<int64_t, int64_t> group_range(int group) const;
  std::vector<int> groups() const;

  int64_t size() const { return total_; }  // flat element count including alignment padding
  const Tensor& flat_params() const { return params_; }
  const Tensor& flat_grads() const { return grads_; }
  const Tensor& flat_state(const std::string& state_name) const;

  Tensor param(const std::string& name) const { return view(params_, name); }
  Tensor grad(const std::string& name) const { return view(grads_, name); }
  Tensor state(const std::string& state_name, const std::string& name) const {
    return view(flat_state(state_name), name);
  }

 private:
  Tensor view(const Tensor& flat, const std::string& name) const;

  std::vector<Entry> entries_;
  std::map<std::string, size_t> index_;
  std::map<std::string, Tensor> states_;
  Tensor params_, grads_;
  int64_t total_ = 0;
  bool finalized_ = false;
  const Context* ctx_ = nullptr;
};

}  // namespace yolo
