// The benchmark row list, in one place: YOLOv5 v6/v7 layer shapes (yolov5n width 0.25, yolov5s
// width 0.50, depth 0.33) at the requested batch and image size, plus the flat-buffer SGD rows over
// yolov5s's real parameter tensors. `yolo_bench --list-json` prints these specs for
// tools/bench_torch_ops.py, so the torch rows can never drift from ours.
#include <cmath>
#include <sstream>

#include "bench/harness.h"

namespace yolo::bench {
namespace {

struct Model {
  std::string name;
  double width = 0.5;
  int64_t ch[5];  // P1..P5 output channels: width * {64, 128, 256, 512, 1024}
};

Model make_model(const std::string& name, double width) {
  Model m{name, width, {}};
  const int64_t base[5] = {64, 128, 256, 512, 1024};
  for (int i = 0; i < 5; ++i) m.ch[i] = static_cast<int64_t>(std::llround(base[i] * width));
  return m;
}

// One convolution of the model: input (n, h, w, c), OHWI weights (o, k, k, c).
struct ConvLayer {
  std::string layer;
  int64_t h, c, o, k, stride, pad;
  bool bias;
  bool has_bn;    // followed by BN + SiLU (every Conv module; not the Detect convs)
  bool dx_used;   // training computes the input gradient (not for the image stem)
};

// prefix + number + suffix (ostringstream: GCC 12 warns falsely on "x" + std::to_string(...)).
std::string numbered(const char* prefix, int64_t v, const char* suffix = "") {
  std::ostringstream s;
  s << prefix << v << suffix;
  return s.str();
}

std::string nhwc(int64_t n, int64_t h, int64_t w, int64_t c) {
  std::ostringstream s;
  s << n << "x" << h << "x" << w << "x" << c;
  return s.str();
}

std::vector<ConvLayer> conv_layers(const Model& m, int64_t img) {
  const int64_t* c = m.ch;
  std::vector<ConvLayer> v;
  v.push_back({"b0.stem", img, 3, c[0], 6, 2, 2, false, true, false});
  for (int s = 1; s < 5; ++s) {
    v.push_back({numbered("b", 2 * s - 1, ".down"), img >> s, c[s - 1], c[s], 3, 2, 1, false,
                 true, true});
  }
  // C3 blocks of the backbone (layers 2, 4, 6, 8): cv1 1x1 c -> c/2 and the bottleneck's 3x3.
  for (int s = 1; s < 5; ++s) {
    const int64_t h = img >> (s + 1), hidden = c[s] / 2;
    const std::string l = numbered("b", 2 * s, ".c3");
    v.push_back({l + ".cv1", h, c[s], hidden, 1, 1, 0, false, true, true});
    v.push_back({l + ".m.cv2", h, hidden, hidden, 3, 1, 1, false, true, true});
  }
  for (int p = 3; p <= 5; ++p) {
    v.push_back({numbered("detect.p", p), img >> p, c[p - 1], 255, 1, 1, 0, true, false,
                 true});
  }
  return v;
}

double dsize(DType t) { return static_cast<double>(dtype_size(t)); }

RowSpec conv_row(const std::string& op, const Model& m, const ConvLayer& L, int64_t n, DType dt) {
  RowSpec r;
  r.name = op + "/" + m.name + "." + L.layer;
  r.op = op;
  r.model = m.name;
  r.dtype = dt;
  r.n = n;
  r.h = r.w = L.h;
  r.c = L.c;
  r.out_c = L.o;
  r.k = L.k;
  r.stride = L.stride;
  r.pad = L.pad;
  r.bias = L.bias;
  const int64_t oh = (L.h + 2 * L.pad - L.k) / L.stride + 1;
  r.flops = 2.0 * double(n) * double(oh) * double(oh) * double(L.o) * double(L.k * L.k * L.c);
  std::ostringstream s;
  s << nhwc(n, L.h, L.h, L.c) << " k" << L.k << "s" << L.stride << "p" << L.pad << " o" << L.o;
  r.shape = s.str();
  return r;
}

RowSpec act_row(const std::string& op, const Model& m, const std::string& layer, int64_t n,
                int64_t h, int64_t c, DType dt, double tensors) {
  RowSpec r;
  r.name = op + "/" + m.name + "." + layer;
  r.op = op;
  r.model = m.name;
  r.dtype = dt;
  r.n = n;
  r.h = r.w = h;
  r.c = c;
  r.bytes = tensors * double(n * h * h * c) * dsize(dt);
  r.shape = nhwc(n, h, h, c);
  return r;
}

// yolov5s's parameter tensors (nc = 80) in ultralytics' optimizer groups: group 0 conv weights
// (decay), group 1 BN weights (no decay), group 2 biases. 57 + 3 weights, 57 BN weights, 60 biases.
void yolov5_param_tensors(const Model& m, std::vector<int64_t>& sizes, std::vector<int>& groups) {
  std::vector<int64_t> w, bnw, b;
  auto conv = [&](int64_t cin, int64_t cout, int64_t k) {
    w.push_back(cout * k * k * cin);
    bnw.push_back(cout);
    b.push_back(cout);
  };
  auto c3 = [&](int64_t cin, int64_t cout, int nb) {
    const int64_t h = cout / 2;
    conv(cin, h, 1);
    conv(cin, h, 1);
    conv(2 * h, cout, 1);
    for (int i = 0; i < nb; ++i) {
      conv(h, h, 1);
      conv(h, h, 3);
    }
  };
  const int64_t* c = m.ch;
  conv(3, c[0], 6);
  conv(c[0], c[1], 3);
  c3(c[1], c[1], 1);
  conv(c[1], c[2], 3);
  c3(c[2], c[2], 2);
  conv(c[2], c[3], 3);
  c3(c[3], c[3], 3);
  conv(c[3], c[4], 3);
  c3(c[4], c[4], 1);
  conv(c[4], c[3], 1);  // SPPF cv1
  conv(c[3] * 4, c[4], 1);  // SPPF cv2
  conv(c[4], c[3], 1);
  c3(c[4], c[3], 1);
  conv(c[3], c[2], 1);
  c3(c[3], c[2], 1);
  conv(c[2], c[2], 3);
  c3(c[3], c[3], 1);
  conv(c[3], c[3], 3);
  c3(c[4], c[4], 1);
  for (int p = 2; p <= 4; ++p) {  // Detect: 1x1 convs with bias to 3 * (80 + 5) channels
    w.push_back(255 * c[p]);
    b.push_back(255);
  }
  for (int64_t s : w) sizes.push_back(s), groups.push_back(0);
  for (int64_t s : bnw) sizes.push_back(s), groups.push_back(1);
  for (int64_t s : b) sizes.push_back(s), groups.push_back(2);
}

}  // namespace

std::vector<RowSpec> build_rows(const Options& opt) {
  const int64_t n = opt.batch, img = opt.img;
  YOLO_CHECK(img % 32 == 0 && img >= 64, "--img " << img << ": use a multiple of 32, at least 64");
  YOLO_CHECK(n >= 1, "--batch " << n << ": use at least 1");
  std::vector<DType> dtypes = {DType::f32};
  if (opt.device.is_cuda()) dtypes.push_back(DType::f16);
  const bool cuda = opt.device.is_cuda();

  std::vector<RowSpec> rows;
  for (const Model& m : {make_model("yolov5n", 0.25), make_model("yolov5s", 0.50)}) {
    const int64_t* c = m.ch;
    for (DType dt : dtypes) {
      for (const ConvLayer& L : conv_layers(m, img)) {
        if (L.has_bn) {
          rows.push_back(conv_row("conv_bn_silu_fwd", m, L, n, dt));
          if (cuda) rows.push_back(conv_row("conv_bn_silu_fwd_cudnn", m, L, n, dt));
        }
        rows.push_back(conv_row("conv_fwd", m, L, n, dt));
        if (L.dx_used) rows.push_back(conv_row("conv_bwd_data", m, L, n, dt));
        rows.push_back(conv_row("conv_bwd_filter", m, L, n, dt));
      }
      // BN + SiLU on the largest Conv outputs of each stage, bytes counted as each tensor read or
      // written once: fwd (training) reads x, writes y; eval (the fused apply with running
      // statistics) reads x, writes y; bwd reads x and dy, writes dx. The training forward must
      // read x twice (statistics, then the apply) and the backward reads x and dy twice (sums,
      // then dx), so by this count they top out near 67% and 60% of copy bandwidth.
      for (int s = 0; s < 4; ++s) {
        const std::string l = numbered("p", s + 1);
        rows.push_back(act_row("bn_silu_fwd", m, l, n, img >> (s + 1), c[s], dt, 2));
        rows.push_back(act_row("bn_silu_eval", m, l, n, img >> (s + 1), c[s], dt, 2));
        rows.push_back(act_row("bn_silu_bwd", m, l, n, img >> (s + 1), c[s], dt, 3));
      }
      // Head upsamples (layers 11 and 15): x (h, c) -> (2h, c); 1 + 4 tensors of x's size.
      rows.push_back(act_row("upsample_fwd", m, "h11", n, img >> 5, c[3], dt, 5));
      rows.push_back(act_row("upsample_bwd", m, "h11", n, img >> 5, c[3], dt, 5));
      rows.push_back(act_row("upsample_fwd", m, "h15", n, img >> 4, c[2], dt, 5));
      rows.push_back(act_row("upsample_bwd", m, "h15", n, img >> 4, c[2], dt, 5));
      // Concats: head layers 12 and 16, and the C3 concat of stage 2 (the largest).
      struct Cat {
        const char* layer;
        int64_t h, part;
      };
      for (const Cat& k : {Cat{"h12", img >> 4, c[3]}, Cat{"h16", img >> 3, c[2]},
                           Cat{"b2.c3.cat", img >> 2, c[1] / 2}}) {
        for (const char* op : {"concat_fwd", "concat_bwd"}) {
          RowSpec r = act_row(op, m, k.layer, n, k.h, 2 * k.part, dt, 2);
          r.parts = {k.part, k.part};
          std::ostringstream sh;
          sh << nhwc(n, k.h, k.h, 2 * k.part) << " (" << k.part << "+" << k.part << ")";
          r.shape = sh.str();
          rows.push_back(r);
        }
      }
      // SPPF (layer 9) on the P5 map after cv1: x (img/32, c4/2), k = 5.
      const int64_t hp5 = img >> 5, cs = c[4] / 2;
      rows.push_back(act_row("sppf_fwd", m, "b9.sppf", n, hp5, cs, dt, 5));   // x + out(4C)
      rows.push_back(act_row("sppf_bwd", m, "b9.sppf", n, hp5, cs, dt, 9));   // out + dout + dx
      rows.push_back(act_row("maxpool_fwd", m, "b9.sppf.m", n, hp5, cs, dt, 2));
      rows.push_back(act_row("maxpool_bwd", m, "b9.sppf.m", n, hp5, cs, dt, 3));
      for (RowSpec* r : {&rows[rows.size() - 4], &rows[rows.size() - 3], &rows[rows.size() - 2],
                         &rows[rows.size() - 1]}) {
        r->k = 5;
      }
      // Bottleneck residual adds (stages 2 and 3): read a, b, write out.
      rows.push_back(act_row("add", m, "b2.c3.m", n, img >> 2, c[1] / 2, dt, 3));
      rows.push_back(act_row("add", m, "b4.c3.m", n, img >> 3, c[2] / 2, dt, 3));
      // Casts of the stage-2 activation to the other precision (f32 -> f16, f16 -> f32).
      {
        RowSpec r = act_row("cast", m, "p2", n, img >> 2, c[1], dt, 0);
        const DType other = dt == DType::f32 ? DType::f16 : DType::f32;
        r.bytes = double(n * (img >> 2) * (img >> 2) * c[1]) * (dsize(dt) + dsize(other));
        r.shape += ' ';
        r.shape += dtype_name(dt);
        r.shape += "->";
        r.shape += dtype_name(other);
        rows.push_back(r);
      }
    }
  }
  if (!cuda) {  // the CPU casts f32 <-> f16 too: add the f16 -> f32 direction
    std::vector<RowSpec> extra;
    for (const RowSpec& r : rows) {
      if (r.op != "cast") continue;
      RowSpec e = r;
      e.dtype = DType::f16;
      e.shape = nhwc(e.n, e.h, e.w, e.c);
      e.shape += " f16->f32";
      extra.push_back(e);
    }
    rows.insert(rows.end(), extra.begin(), extra.end());
  }

  const Model s = make_model("yolov5s", 0.50);
  for (const char* op : {"sgd_step", "sgd_step_per_tensor"}) {
    RowSpec r;
    r.op = op;
    r.model = s.name;
    r.name = std::string(op) + "/yolov5s.params";
    r.dtype = DType::f32;
    yolov5_param_tensors(s, r.sizes, r.groups);
    int64_t total = 0;
    for (int64_t v : r.sizes) total += v;
    r.n = total;
    r.bytes = 5.0 * double(total) * 4.0;  // read p, g, buf; write p, buf
    std::ostringstream sh;
    sh << total << " (" << r.sizes.size() << " tensors, 3 groups)";
    r.shape = sh.str();
    rows.push_back(r);
  }
  return rows;
}

}  // namespace yolo::bench
