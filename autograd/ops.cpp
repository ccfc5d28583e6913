// Differentiable ops: forward and backward side by side. Each backward assigns or accumulates into
// its inputs' gradients through Tape::grad_target / grad_inplace (see autograd/tape.h).
#include "autograd/ops.h"

#include "kernels/batchnorm.h"
#include "kernels/elementwise.h"
#include "kernels/linalg.h"
#include "kernels/pool.h"
#include "kernels/resample.h"

namespace yolo::ag {

Var conv2d(Tape& tape, const Var& x, const Var& w, const Var& bias, const Conv2dParams& p) {
  Context& ctx = tape.ctx();
  const Tensor b = bias.defined() ? bias.value() : Tensor();
  Tensor y = ctx.empty(conv2d_out_shape(x.value(), w.value(), p), x.value().dtype());
  conv2d_fwd(ctx, x.value(), w.value(), b, y, p);
  const bool rec = tape.needs_grad({&x, &w, &bias});
  Var out = tape.make_output(y, rec);
  if (rec) {
    tape.record(out, [&tape, x, w, bias, p](const Tensor& dy) {
      Context& c = tape.ctx();
      if (x.requires_grad()) {
        Tensor dx = tape.grad_target(x);
        conv2d_bwd_data(c, dy, w.value(), dx, p);
        tape.accumulate_into(x, dx);
      }
      const bool need_w = w.requires_grad();
      const bool need_b = bias.defined() && bias.requires_grad();
      if (need_w || need_b) {
        // The filter kernel adds into dw and dbias together, so both share one accumulate flag;
        // when they differ, the fresh one is zeroed first.
        bool acc_w = false, acc_b = false;
        Tensor dw =
            need_w ? tape.grad_inplace(w, &acc_w) : c.empty(w.value().shape(), w.value().dtype());
        Tensor db = need_b ? tape.grad_inplace(bias, &acc_b) : Tensor();
        const bool acc = acc_w || acc_b;
        if (acc && !acc_w) c.zero_(dw);
        if (acc && need_b && !acc_b) c.zero_(db);
        conv2d_bwd_filter(c, x.value(), dy, dw, db, p, acc);
      }
    });
  }
  return out;
}

Var conv2d_act(Tape& tape, const Var& x, const Var& w, const Var& bias, const Conv2dParams& p,
               Activation act) {
  if (tape.needs_grad({&x, &w, &bias})) {
    const Var y = conv2d(tape, x, w, bias, p);
    return act == Activation::silu ? silu(tape, y) : y;
  }
  Context& ctx = tape.ctx();
  const Tensor b = bias.defined() ? bias.value() : Tensor();
  Tensor y = ctx.empty(conv2d_out_shape(x.value(), w.value(), p), x.value().dtype());
  conv2d_fwd_act(ctx, x.value(), w.value(), b, y, p, act);
  return tape.make_output(y, false);
}

Var batchnorm(Tape& tape, const Var& x, const Var& gamma, const Var& beta, BatchNormState& state,
              Activation act) {
  Context& ctx = tape.ctx();
  const Tensor& xv = x.value();
  Tensor y = ctx.empty(xv.shape(), xv.dtype());
  if (!state.training) {
    batchnorm_fwd_eval(ctx, xv, gamma.value(), beta.value(), state.running_mean, state.running_var,
                       y, state.eps, act);
    return tape.make_output(y, false);
  }
  const int64_t c = xv.dim(-1);
  const DType stat_type = xv.dtype() == DType::f64 ? DType::f64 : DType::f32;
  Tensor mean = ctx.empty({c}, stat_type), invstd = ctx.empty({c}, stat_type);
  batchnorm_fwd_train(ctx, xv, gamma.value(), beta.value(), state.running_mean, state.running_var,
                      mean, invstd, y, state.momentum, state.eps, act);
  const bool rec = tape.needs_grad({&x, &gamma, &beta});
  Var out = tape.make_output(y, rec);
  if (rec) {
    tape.record(out, [&tape, x, gamma, beta, mean, invstd, act](const Tensor& dy) {
      Context& c = tape.ctx();
      Tensor dx = x.requires_grad() ? tape.grad_target(x) : c.empty(x.shape(), x.value().dtype());
      bool acc_g = false, acc_b = false;
      Tensor dg = gamma.requires_grad() ? tape.grad_inplace(gamma, &acc_g)
                                        : c.empty(gamma.shape(), gamma.value().dtype());
      Tensor db = beta.requires_grad() ? tape.grad_inplace(beta, &acc_b)
                                       : c.empty(beta.shape(), beta.value().dtype());
      const bool acc = acc_g || acc_b;
      if (acc && !acc_g) c.zero_(dg);
      if (acc && !acc_b) c.zero_(db);
      batchnorm_bwd(c, x.value(), dy, gamma.value(), beta.value(), mean, invstd, dx, dg, db, act,
                    acc);
      if (x.requires_grad()) tape.accumulate_into(x, dx);
    });
  }
  return out;
}

Var silu(Tape& tape, const Var& x) {
  Tensor y = tape.ctx().empty(x.shape(), x.value().dtype());
  silu_fwd(tape.ctx(), x.value(), y);
  const bool rec = tape.needs_grad({&x});
  Var out = tape.make_output(y, rec);
  if (rec) {
    tape.record(out, [&tape, x](const Tensor& dy) {
      Tensor dx = tape.grad_target(x);
      silu_bwd(tape.ctx(), x.value(), dy, dx);
      tape.accumulate_into(x, dx);
    });
  }
  return out;
}

Var sigmoid(Tape& tape, const Var& x) {
  Tensor y = tape.ctx().empty(x.shape(), x.value().dtype());
  sigmoid_fwd(tape.ctx(), x.value(), y);
  const bool rec = tape.needs_grad({&x});
  Var out = tape.make_output(y, rec);
  if (rec) {
    tape.record(out, [&tape, x, y](const Tensor& dy) {
      Tensor dx = tape.grad_target(x);
      sigmoid_bwd(tape.ctx(), y, dy, dx);
      tape.accumulate_into(x, dx);
    });
  }
  return out;
}

Var add(Tape& tape, const Var& a, const Var& b) {
  Tensor y = tape.ctx().empty(a.shape(), a.value().dtype());
  yolo::add(tape.ctx(), a.value(), b.value(), y);
  const bool rec = tape.needs_grad({&a, &b});
  Var out = tape.make_output(y, rec);
  if (rec) {
    tape.record(out, [&tape, a, b](const Tensor& dy) {
      for (const Var* v : {&a, &b}) {
        if (!v->requires_grad()) continue;
        Tensor d = tape.grad_target(*v);
        copy(tape.ctx(), dy, d);
        tape.accumulate_into(*v, d);
      }
    });
  }
  return out;
}

Var mul(Tape& tape, const Var& a, const Var& b) {
  Tensor y = tape.ctx().empty(a.shape(), a.value().dtype());
  yolo::mul(tape.ctx(), a.value(), b.value(), y);
  const bool rec = tape.needs_grad({&a, &b});
  Var out = tape.make_output(y, rec);
  if (rec) {
    tape.record(out, [&tape, a, b](const Tensor& dy) {
      if (a.requires_grad()) {
        Tensor d = tape.grad_target(a);
        yolo::mul(tape.ctx(), dy, b.value(), d);
        tape.accumulate_into(a, d);
      }
      if (b.requires_grad()) {
        Tensor d = tape.grad_target(b);
        yolo::mul(tape.ctx(), dy, a.value(), d);
        tape.accumulate_into(b, d);
      }
    });
  }
  return out;
}

Var scale(Tape& tape, const Var& x, double alpha) {
  Tensor y = tape.ctx().empty(x.shape(), x.value().dtype());
  yolo::scale(tape.ctx(), x.value(), alpha, y);
  const bool rec = tape.needs_grad({&x});
  Var out = tape.make_output(y, rec);
  if (rec) {
    tape.record(out, [&tape, x, alpha](const Tensor& dy) {
      Tensor d = tape.grad_target(x);
      yolo::scale(tape.ctx(), dy, alpha, d);
      tape.accumulate_into(x, d);
    });
  }
  return out;
}

Var concat(Tape& tape, const std::vector<Var>& xs) {
  YOLO_CHECK(!xs.empty(), "concat of no tensors");
  std::vector<Tensor> values;
  Shape shape = xs[0].shape();
  shape.back() = 0;
  bool rec = false;
  for (const Var& v : xs) {
    values.push_back(v.value());
    shape.back() += v.value().dim(-1);
    rec = rec || tape.needs_grad({&v});
  }
  Tensor y = tape.ctx().empty(shape, xs[0].value().dtype());
  concat_channels_fwd(tape.ctx(), values, y);
  Var out = tape.make_output(y, rec);
  if (rec) {
    tape.record(out, [&tape, xs](const Tensor& dy) {
      std::vector<Tensor> targets;
      for (const Var& v : xs) targets.push_back(v.requires_grad() ? tape.grad_target(v) : Tensor());
      concat_channels_bwd(tape.ctx(), dy, targets);
      for (size_t i = 0; i < xs.size(); ++i)
        if (xs[i].requires_grad()) tape.accumulate_into(xs[i], targets[i]);
    });
  }
  return out;
}

Var upsample2x(Tape& tape, const Var& x) {
  const Shape& s = x.shape();
  YOLO_CHECK(s.size() == 4, "upsample2x needs an (N, H, W, C) tensor, got " << shape_str(s));
  Tensor y = tape.ctx().empty({s[0], 2 * s[1], 2 * s[2], s[3]}, x.value().dtype());
  upsample_nearest2x_fwd(tape.ctx(), x.value(), y);
  const bool rec = tape.needs_grad({&x});
  Var out = tape.make_output(y, rec);
  if (rec) {
    tape.record(out, [&tape, x](const Tensor& dy) {
      Tensor d = tape.grad_target(x);
      upsample_nearest2x_bwd(tape.ctx(), dy, d);
      tape.accumulate_into(x, d);
    });
  }
  return out;
}

Var maxpool(Tape& tape, const Var& x, int k) {
  Tensor y = tape.ctx().empty(x.shape(), x.value().dtype());
  maxpool_fwd(tape.ctx(), x.value(), y, k);
  const bool rec = tape.needs_grad({&x});
  Var out = tape.make_output(y, rec);
  if (rec) {
    tape.record(out, [&tape, x, k](const Tensor& dy) {
      Tensor d = tape.grad_target(x);
      maxpool_bwd(tape.ctx(), x.value(), dy, d, k);
      tape.accumulate_into(x, d);
    });
  }
  return out;
}

Var sppf_pools(Tape& tape, const Var& x, int k) {
  Shape s = x.shape();
  s.back() *= 4;
  Tensor y = tape.ctx().empty(s, x.value().dtype());
  sppf_fwd(tape.ctx(), x.value(), y, k);
  const bool rec = tape.needs_grad({&x});
  Var out = tape.make_output(y, rec);
  if (rec) {
    tape.record(out, [&tape, x, y, k](const Tensor& dy) {
      Tensor d = tape.grad_target(x);
      sppf_bwd(tape.ctx(), y, dy, d, k);
      tape.accumulate_into(x, d);
    });
  }
  return out;
}

Var bce_with_logits(Tape& tape, const Var& logits, const Tensor& targets, double pos_weight) {
  Tensor loss = tape.ctx().empty({1}, logits.value().dtype());
  bce_with_logits_fwd(tape.ctx(), logits.value(), targets, pos_weight, loss);
  const bool rec = tape.needs_grad({&logits});
  Var out = tape.make_output(loss, rec);
  if (rec) {
    tape.record(out, [&tape, logits, targets, pos_weight](const Tensor& dloss) {
      Tensor d = tape.grad_target(logits);
      bce_with_logits_bwd(tape.ctx(), logits.value(), targets, pos_weight, dloss, d);
      tape.accumulate_into(logits, d);
    });
  }
  return out;
}

namespace {

// Shared by sum and mean: y = factor * sum(x); dx = factor * dy broadcast.
Var reduce_all(Tape& tape, const Var& x, bool is_mean) {
  Context& ctx = tape.ctx();
  Tensor y = ctx.empty({1}, x.value().dtype());
  if (is_mean)
    mean_all(ctx, x.value(), y);
  else
    sum_all(ctx, x.value(), y);
  const bool rec = tape.needs_grad({&x});
  Var out = tape.make_output(y, rec);
  if (rec) {
    const double factor = is_mean ? 1.0 / double(x.value().numel()) : 1.0;
    tape.record(out, [&tape, x, factor](const Tensor& dy) {
      Context& c = tape.ctx();
      // dx = factor * dy[0] everywhere, without reading dy on the host (capture-safe): a
      // (numel, 1) column of `factor` times dy viewed as (1, 1).
      Tensor d = tape.grad_target(x);
      Tensor ones = c.empty({x.value().numel(), 1}, x.value().dtype());
      fill(c, ones, factor);
      gemm(c, false, false, 1.0, ones, dy.reshape({1, 1}), 0.0, d.reshape({x.value().numel(), 1}));
      tape.accumulate_into(x, d);
    });
  }
  return out;
}

}  // namespace

Var sum(Tape& tape, const Var& x) {
  return reduce_all(tape, x, false);
}
Var mean(Tape& tape, const Var& x) {
  return reduce_all(tape, x, true);
}

}  // namespace yolo::ag
