// Module tree bookkeeping: declaring into and binding to the arenas, init and mode, and the
// state_dict boundary (names, OIHW <-> OHWI, strict checking).
#include "nn/module.h"

#include <cstring>
#include <sstream>

namespace yolo::nn {

bool Module::remove_child(const std::string& name) {
  for (auto it = children_.begin(); it != children_.end(); ++it) {
    if (it->first == name) {
      children_.erase(it);
      return true;
    }
  }
  return false;
}

int64_t Module::count_modules() const {
  int64_t n = 1;
  for (const auto& c : children_) n += c.second->count_modules();
  return n;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const auto& p : params_) n += shape_numel(p.shape);
  for (const auto& c : children_) n += c.second->num_parameters();
  return n;
}

int Module::declare_param(const std::string& name, const Shape& shape, int group,
                          bool conv_weight) {
  ParamSlot s;
  s.name = name;
  s.shape = shape;
  s.group = group;
  s.conv_weight = conv_weight;
  params_.push_back(std::move(s));
  return static_cast<int>(params_.size()) - 1;
}

int Module::declare_buffer(const std::string& name, const Shape& shape) {
  BufferSlot s;
  s.name = name;
  s.shape = shape;
  buffers_.push_back(std::move(s));
  return static_cast<int>(buffers_.size()) - 1;
}

int Module::declare_counter(const std::string& name, int64_t value) {
  CounterSlot s;
  s.name = name;
  s.value = value;
  counters_.push_back(std::move(s));
  return static_cast<int>(counters_.size()) - 1;
}

void Module::declare(ParamArena& params, ParamArena& buffers, const std::string& prefix) {
  for (auto& p : params_) {
    p.full_name = prefix + p.name;
    params.add(p.full_name, p.shape, p.group);
  }
  for (auto& b : buffers_) {
    b.full_name = prefix + b.name;
    buffers.add(b.full_name, b.shape, 0);
  }
  for (auto& c : counters_) c.full_name = prefix + c.name;
  for (auto& c : children_) c.second->declare(params, buffers, prefix + c.first + ".");
}

void Module::bind(const ParamArena& params, const ParamArena& buffers) {
  for (auto& p : params_) {
    p.value = params.param(p.full_name);
    p.grad = params.grad(p.full_name);
    p.offset = params.entry(p.full_name).offset;
  }
  for (auto& b : buffers_) b.value = buffers.param(b.full_name);
  for (auto& c : children_) c.second->bind(params, buffers);
}

void Module::init(Context& ctx, uint64_t seed) {
  reset_parameters(ctx, seed);
  for (auto& c : children_) c.second->init(ctx, seed);
  finish_init(ctx);
}

void Module::train(bool mode) {
  training_ = mode;
  on_mode_change();
  for (auto& c : children_) c.second->train(mode);
}

Var Module::forward(Tape& tape, const Var& x) {
  YOLO_FAIL(type_name() << " takes several inputs; call forward_many");
}

Var Module::forward_many(Tape& tape, const std::vector<Var>& xs) {
  YOLO_CHECK(xs.size() == 1, type_name() << " takes one input, got " << xs.size());
  return forward(tape, xs[0]);
}

Shape Module::infer(const std::vector<Shape>& in, double* ops) const {
  YOLO_FAIL(type_name() << " has no shape rule");
}

// --- state_dict ---------------------------------------------------------------------------------

Tensor ohwi_to_oihw(const Tensor& w) {
  YOLO_CHECK(w.ndim() == 4 && w.dtype() == DType::f32, "ohwi_to_oihw: expected a 4-d f32 tensor, got "
                                                           << w.str());
  const int64_t O = w.dim(0), KH = w.dim(1), KW = w.dim(2), I = w.dim(3);
  Tensor out = Tensor::empty_cpu({O, I, KH, KW});
  const float* src = w.data<float>();
  float* dst = out.data<float>();
  for (int64_t o = 0; o < O; ++o)
    for (int64_t h = 0; h < KH; ++h)
      for (int64_t x = 0; x < KW; ++x)
        for (int64_t i = 0; i < I; ++i)
          dst[((o * I + i) * KH + h) * KW + x] = src[((o * KH + h) * KW + x) * I + i];
  return out;
}

Tensor oihw_to_ohwi(const Tensor& w) {
  YOLO_CHECK(w.ndim() == 4 && w.dtype() == DType::f32, "oihw_to_ohwi: expected a 4-d f32 tensor, got "
                                                           << w.str());
  const int64_t O = w.dim(0), I = w.dim(1), KH = w.dim(2), KW = w.dim(3);
  Tensor out = Tensor::empty_cpu({O, KH, KW, I});
  const float* src = w.data<float>();
  float* dst = out.data<float>();
  for (int64_t o = 0; o < O; ++o)
    for (int64_t i = 0; i < I; ++i)
      for (int64_t h = 0; h < KH; ++h)
        for (int64_t x = 0; x < KW; ++x)
          dst[((o * KH + h) * KW + x) * I + i] = src[((o * I + i) * KH + h) * KW + x];
  return out;
}

namespace {

// One expected state_dict entry of a tree.
struct Expected {
  std::string name;
  Shape torch_shape;
  Module::ParamSlot* param = nullptr;
  Module::BufferSlot* buffer = nullptr;
  Module::CounterSlot* counter = nullptr;
};

Shape torch_shape_of(const Module::ParamSlot& p) {
  if (!p.conv_weight) return p.shape;
  return {p.shape[0], p.shape[3], p.shape[1], p.shape[2]};
}

void collect(Module& m, std::vector<Expected>& out) {
  for (auto& p : m.params()) out.push_back({p.full_name, torch_shape_of(p), &p, nullptr, nullptr});
  for (auto& b : m.buffers()) out.push_back({b.full_name, b.shape, nullptr, &b, nullptr});
  for (auto& c : m.counters()) out.push_back({c.full_name, {}, nullptr, nullptr, &c});
  for (auto& c : m.children()) collect(*c.second, out);
}

std::vector<Expected> expected_entries(const Module& root) {
  std::vector<Expected> out;
  collect(const_cast<Module&>(root), out);  // read-only use by the const callers
  return out;
}

// Host f32 copy of a float tensor of any float dtype.
Tensor host_f32(const Tensor& t, const std::string& name) {
  Tensor out = Tensor::empty_cpu(t.shape(), DType::f32);
  float* dst = out.data<float>();
  const int64_t n = t.numel();
  switch (t.dtype()) {
    case DType::f32:
      if (n) std::memcpy(dst, t.raw(), size_t(n) * sizeof(float));
      break;
    case DType::f64:
      for (int64_t i = 0; i < n; ++i) dst[i] = float(t.data<double>()[i]);
      break;
    case DType::f16:
      for (int64_t i = 0; i < n; ++i) dst[i] = half_to_float(t.data<Half>()[i]);
      break;
    case DType::bf16:
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_float(t.data<BFloat16>()[i]);
      break;
    default:
      YOLO_FAIL("state_dict entry " << name << " has dtype " << dtype_name(t.dtype())
                                    << "; a floating-point tensor was expected");
  }
  return out;
}

int64_t read_counter(const Tensor& t, const std::string& name) {
  YOLO_CHECK(t.numel() == 1, "state_dict entry " << name << " must hold one value, got shape "
                                                 << shape_str(t.shape()));
  switch (t.dtype()) {
    case DType::i64:
      return t.data<int64_t>()[0];
    case DType::i32:
      return t.data<int32_t>()[0];
    case DType::f32:
      return int64_t(t.data<float>()[0]);
    default:
      YOLO_FAIL("state_dict entry " << name << " has dtype " << dtype_name(t.dtype())
                                    << "; an integer was expected");
  }
}

}  // namespace

std::map<std::string, Tensor> state_dict(const Module& root, const Context& ctx) {
  std::map<std::string, Tensor> out;
  for (const Expected& e : expected_entries(root)) {
    if (e.param) {
      Tensor h = ctx.to_host(e.param->value);
      out[e.name] = e.param->conv_weight ? ohwi_to_oihw(h) : h;
    } else if (e.buffer) {
      out[e.name] = ctx.to_host(e.buffer->value);
    } else {
      Tensor c = Tensor::empty_cpu({}, DType::i64);
      c.data<int64_t>()[0] = e.counter->value;
      out[e.name] = c;
    }
  }
  return out;
}

std::string StateDictReport::describe() const {
  std::ostringstream s;
  const char* sep = "";
  auto list = [&](size_t count, const char* one, const char* many, auto&& item) {
    if (count == 0) return;
    s << sep << count << " " << (count == 1 ? one : many) << " (";
    for (size_t i = 0; i < count; ++i) s << (i ? ", " : "") << item(i);
    s << ")";
    sep = ", ";
  };
  list(mismatched.size(), "shape mismatch", "shape mismatches", [&](size_t i) {
    const Mismatch& m = mismatched[i];
    return m.name + ": checkpoint " + shape_str(m.checkpoint) + " vs model " + shape_str(m.model);
  });
  list(missing.size(), "missing name", "missing names", [&](size_t i) { return missing[i]; });
  list(unexpected.size(), "unexpected name", "unexpected names", [&](size_t i) { return unexpected[i]; });
  return s.str();
}

StateDictReport check_state_dict(const Module& root, const std::map<std::string, Tensor>& sd) {
  StateDictReport r;
  std::map<std::string, bool> known;
  for (const Expected& e : expected_entries(root)) {
    known[e.name] = true;
    auto it = sd.find(e.name);
    if (it == sd.end()) {
      r.missing.push_back(e.name);
    } else if (it->second.shape() != e.torch_shape &&
               !(e.counter && it->second.numel() == 1)) {
      r.mismatched.push_back({e.name, it->second.shape(), e.torch_shape});
    }
  }
  for (const auto& kv : sd) {
    if (!known.count(kv.first)) r.unexpected.push_back(kv.first);
  }
  return r;
}

StateDictReport load_state_dict(Module& root, Context& ctx,
                                const std::map<std::string, Tensor>& sd, bool strict,
                                const std::string& hint) {
  StateDictReport r = check_state_dict(root, sd);
  if (strict && !r.ok()) {
    YOLO_FAIL("weights do not fit this model: " << r.describe() << (hint.empty() ? "" : " — ")
                                                << hint);
  }
  std::map<std::string, bool> skip;
  for (const auto& m : r.mismatched) skip[m.name] = true;
  for (const Expected& e : expected_entries(root)) {
    auto it = sd.find(e.name);
    if (it == sd.end() || skip.count(e.name)) continue;
    YOLO_CHECK(it->second.device().is_cpu(), "state_dict entry " << e.name << " must be a host tensor");
    if (e.counter) {
      e.counter->value = read_counter(it->second, e.name);
      continue;
    }
    Tensor h = host_f32(it->second, e.name);
    if (e.param) {
      ctx.copy(e.param->value, e.param->conv_weight ? oihw_to_ohwi(h) : h);
    } else {
      ctx.copy(e.buffer->value, h);
    }
  }
  return r;
}

}  // namespace yolo::nn
