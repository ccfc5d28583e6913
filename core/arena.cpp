// ParamArena layout and views.
#include "core/arena.h"

#include <algorithm>
#include <set>

namespace yolo {

void ParamArena::add(const std::string& name, const Shape& shape, int group) {
  YOLO_CHECK(!finalized_, "ParamArena: cannot add '" << name << "' after finalize()");
  YOLO_CHECK(index_.count(name) == 0, "ParamArena: parameter '" << name << "' declared twice");
  Entry e;
  e.name = name;
  e.shape = shape;
  e.group = group;
  e.numel = shape_numel(shape);
  index_[name] = entries_.size();
  entries_.push_back(e);
}

void ParamArena::finalize(const Context& ctx) {
  YOLO_CHECK(!finalized_, "ParamArena: finalize() called twice");
  std::vector<size_t> order(entries_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return entries_[a].group < entries_[b].group; });
  int64_t off = 0;
  for (size_t i : order) {
    entries_[i].offset = off;
    off += (entries_[i].numel + kAlign - 1) / kAlign * kAlign;
  }
  total_ = off;
  ctx_ = &ctx;
  params_ = ctx.zeros({total_}, DType::f32);
  grads_ = ctx.zeros({total_}, DType::f32);
  finalized_ = true;
}

Tensor ParamArena::add_state(const std::string& state_name) {
  YOLO_CHECK(finalized_, "ParamArena: add_state('" << state_name << "') before finalize()");
  YOLO_CHECK(states_.count(state_name) == 0, "ParamArena: state '" << state_name << "' exists");
  Tensor t = ctx_->zeros({total_}, DType::f32);
  states_[state_name] = t;
  return t;
}

bool ParamArena::has_state(const std::string& state_name) const {
  return states_.count(state_name) != 0;
}

const ParamArena::Entry& ParamArena::entry(const std::string& name) const {
  auto it = index_.find(name);
  YOLO_CHECK(it != index_.end(), "ParamArena: no parameter named '" << name << "'");
  return entries_[it->second];
}

std::pair<int64_t, int64_t> ParamArena::group_range(int group) const {
  int64_t begin = -1, end = -1;
  for (const Entry& e : entries_) {
    if (e.group != group) continue;
    const int64_t padded_end = e.offset + (e.numel + kAlign - 1) / kAlign * kAlign;
    begin = begin < 0 ? e.offset : std::min(begin, e.offset);
    end = std::max(end, padded_end);
  }
  if (begin < 0) return {0, 0};
  return {begin, end};
}

std::vector<int> ParamArena::groups() const {
  std::set<int> g;
  for (const Entry& e : entries_) g.insert(e.group);
  return std::vector<int>(g.begin(), g.end());
}

const Tensor& ParamArena::flat_state(const std::string& state_name) const {
  auto it = states_.find(state_name);
  YOLO_CHECK(it != states_.end(), "ParamArena: no state buffer named '" << state_name << "'");
  return it->second;
}

Tensor ParamArena::view(const Tensor& flat, const std::string& name) const {
  YOLO_CHECK(finalized_, "ParamArena: view of '" << name << "' before finalize()");
  const Entry& e = entry(name);
  return flat.slice(e.offset, e.offset + e.numel).reshape(e.shape);
}

}  // namespace yolo
