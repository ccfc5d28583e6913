// Detect (models/yolo.py): per level a 1x1 Conv2d with bias to na * (nc + 5) channels. Training
// mode returns the raw level outputs; eval mode also decodes them (kernels/detect.h) into the
// reference's (N, sum(na * ny * nx), no) boxes. The `anchors` buffer (nl, na, 2) is in grid units.
// Layout note: a level output here is NHWC (N, ny, nx, na * no) = (N, ny, nx, na, no); the
// reference's is (N, na, ny, nx, no), so parity tests permute. The decoded output is the same.
#pragma once

#include <vector>

#include "nn/basic.h"

namespace yolo::nn {

class Detect : public Module {
 public:
  // anchors_px: nl rows of 2 * na pixel values (w, h pairs), as in the yaml. ch: input channels.
  Detect(int64_t nc, const std::vector<std::vector<double>>& anchors_px, const std::vector<int64_t>& ch);
  std::string type_name() const override { return "models.yolo.Detect"; }

  struct Output {
    std::vector<Var> levels;  // (N, ny, nx, na * no) per level, raw conv outputs
    Tensor decoded;           // eval only: (N, R, no) f32 (f64 for f64 inputs on the CPU)
  };
  // xs: the nl inputs (N, ny_i, nx_i, ch_i).
  Output forward_levels(Tape& tape, const std::vector<Var>& xs);
  // Level output shapes (N, ny, nx, na * no); adds the convs' operation counts.
  std::vector<Shape> infer_levels(const std::vector<Shape>& in, double* ops) const;
  Shape infer(const std::vector<Shape>& in, double* ops) const override;

  // Sets the strides (from a shape probe), runs check_anchor_order (reverses the levels when the
  // mean anchor area orders against the strides) and converts the anchors to grid units. Before
  // init(); the buffer is written by init().
  void set_strides(const std::vector<double>& strides);
  const std::vector<double>& strides() const { return strides_; }
  int64_t nc() const { return nc_; }
  int64_t na() const { return na_; }
  int64_t nl() const { return nl_; }
  int64_t no() const { return nc_ + 5; }
  const Tensor& anchors() const { return buffers()[0].value; }
  // The anchors in grid units as set by set_strides (host copy of what init() writes).
  const std::vector<float>& anchors_grid() const { return anchors_grid_; }
  Conv2d& conv(int64_t level) const { return *convs_[size_t(level)]; }

 protected:
  void reset_parameters(Context& ctx, uint64_t seed) override;
  // Bias prior (Model._initialize_biases): obj += log(8 / (640 / s)^2), cls += log(0.6 / (nc -
  // 0.999999)) on each level's bias viewed as (na, no).
  void finish_init(Context& ctx) override;

 private:
  int64_t nc_, na_, nl_;
  std::vector<float> anchors_px_, anchors_grid_;  // nl * na * 2
  std::vector<double> strides_;
  std::vector<Conv2d*> convs_;
};

}  // namespace yolo::nn
