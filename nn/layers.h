// The YOLOv5 layers of models/common.py (at ultralytics/yolov5@48a85314), built from nn/basic.h so
// their trees, names and counts are the reference's: Conv, DWConv, Focus, Bottleneck,
// BottleneckCSP, C3, SPP, SPPF. Activations are NHWC: x (N, H, W, c1) -> (N, OH, OW, c2).
// Each is registered under its yaml name in nn/layers.cpp (with Upsample and Concat).
#pragma once

#include <vector>

#include "nn/basic.h"

namespace yolo::nn {

// autopad(k, p): p when given (p >= 0), else k // 2.
int autopad(int k, int p);

// Conv = Conv2d(bias=False) -> BatchNorm2d -> SiLU (children conv, bn, act). After fuse():
// Conv2d with bias -> SiLU (children conv, act), as Model.fuse leaves it.
class Conv : public Module {
 public:
  // p < 0: autopad. act false: nn.Identity.
  Conv(int64_t c1, int64_t c2, int k = 1, int s = 1, int p = -1, int g = 1, bool act = true);
  std::string type_name() const override { return "models.common.Conv"; }
  Var forward(Tape& tape, const Var& x) override;
  Shape infer(const std::vector<Shape>& in, double* ops) const override;
  // Drops bn and gives conv a bias (the structure of a fused Conv). Only before declare().
  void fuse();
  bool fused() const { return bn_ == nullptr; }
  Conv2d& conv() const { return *conv_; }
  BatchNorm2d* bn() const { return bn_; }

 private:
  Conv2d* conv_;
  BatchNorm2d* bn_;
  bool act_;
};

// Conv with groups = gcd(c1, c2).
class DWConv : public Conv {
 public:
  DWConv(int64_t c1, int64_t c2, int k = 1, int s = 1, bool act = true);
  std::string type_name() const override { return "models.common.DWConv"; }
};

// Focus: space-to-depth (x[::2, ::2], x[1::2, ::2], x[::2, 1::2], x[1::2, 1::2] on channels),
// then Conv(4 c1, c2, k, s, p, g, act). H and W must be even.
class Focus : public Module {
 public:
  Focus(int64_t c1, int64_t c2, int k = 1, int s = 1, int p = -1, int g = 1, bool act = true);
  std::string type_name() const override { return "models.common.Focus"; }
  Var forward(Tape& tape, const Var& x) override;
  Shape infer(const std::vector<Shape>& in, double* ops) const override;

 private:
  Conv* conv_;
};

// cv2(cv1(x)) (+ x when shortcut and c1 == c2); c_ = int(c2 * e).
class Bottleneck : public Module {
 public:
  Bottleneck(int64_t c1, int64_t c2, bool shortcut = true, int g = 1, double e = 0.5);
  std::string type_name() const override { return "models.common.Bottleneck"; }
  Var forward(Tape& tape, const Var& x) override;
  Shape infer(const std::vector<Shape>& in, double* ops) const override;

 private:
  Conv *cv1_, *cv2_;
  bool add_;
};

// cv4(SiLU(bn(cat(cv3(m(cv1(x))), cv2(x))))); cv2, cv3 plain 1x1 Conv2d without bias.
class BottleneckCSP : public Module {
 public:
  BottleneckCSP(int64_t c1, int64_t c2, int n = 1, bool shortcut = true, int g = 1, double e = 0.5);
  std::string type_name() const override { return "models.common.BottleneckCSP"; }
  Var forward(Tape& tape, const Var& x) override;
  Shape infer(const std::vector<Shape>& in, double* ops) const override;

 private:
  Conv *cv1_, *cv4_;
  Conv2d *cv2_, *cv3_;
  BatchNorm2d* bn_;
  Sequential* m_;
};

// cv3(cat(m(cv1(x)), cv2(x))).
class C3 : public Module {
 public:
  C3(int64_t c1, int64_t c2, int n = 1, bool shortcut = true, int g = 1, double e = 0.5);
  std::string type_name() const override { return "models.common.C3"; }
  Var forward(Tape& tape, const Var& x) override;
  Shape infer(const std::vector<Shape>& in, double* ops) const override;

 private:
  Conv *cv1_, *cv2_, *cv3_;
  Sequential* m_;
};

// cv2(cat(x, pool_k1(x), pool_k2(x), ...)) with x = cv1(x); pools in parallel.
class SPP : public Module {
 public:
  SPP(int64_t c1, int64_t c2, std::vector<int> k = {5, 9, 13});
  std::string type_name() const override { return "models.common.SPP"; }
  Var forward(Tape& tape, const Var& x) override;
  Shape infer(const std::vector<Shape>& in, double* ops) const override;

 private:
  Conv *cv1_, *cv2_;
  ModuleList* m_;
};

// cv2(cat(x, p1, p2, p3)) with x = cv1(x) and the pools in cascade (ag::sppf_pools).
class SPPF : public Module {
 public:
  SPPF(int64_t c1, int64_t c2, int k = 5);
  std::string type_name() const override { return "models.common.SPPF"; }
  Var forward(Tape& tape, const Var& x) override;
  Shape infer(const std::vector<Shape>& in, double* ops) const override;

 private:
  Conv *cv1_, *cv2_;
  int k_;
};

}  // namespace yolo::nn
