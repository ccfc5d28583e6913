// The reference data pipeline's geometry as plain functions (see geometry.h): load_image's resize
// rule, letterbox's arithmetic, the two label conversions and the rect batch shapes, each written
// to give the same numbers as the Python/NumPy code, which tests/fixtures/geometry.json records.
#include "yolo/data/geometry.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace yolo {

namespace {

// Python's round() to an integer: halves go to the even neighbour.
int round_half_even(double x) {
  const double f = std::floor(x);
  const double frac = x - f;
  double r = f;
  if (frac > 0.5 || (frac == 0.5 && std::fmod(f, 2.0) != 0.0)) r = f + 1.0;
  return static_cast<int>(r);
}

// Python's (and np.mod's) modulo: the result takes the divisor's sign.
int py_mod(int a, int b) {
  const int m = a % b;
  return (m != 0 && ((m < 0) != (b < 0))) ? m + b : m;
}

void check_boxes(const std::vector<float>& boxes) {
  YOLO_CHECK(boxes.size() % 4 == 0, "boxes must be (n, 4), got " << boxes.size() << " values");
}

// NumPy's float64 less-than for sorting (NaN last); aspect ratios are never NaN.
bool np_less(double a, double b) {
  return a < b || (b != b && a == a);
}

// NumPy 1.24's aheapsort_ (npysort/heapsort.cpp), used by the introsort below past its depth limit.
void np_aheapsort(const std::vector<double>& v, int64_t* tosort, int64_t n) {
  int64_t* a = tosort - 1;  // one-based heap indexing, as NumPy writes it
  int64_t i, j, l, tmp;
  for (l = n >> 1; l > 0; --l) {
    tmp = a[l];
    for (i = l, j = l << 1; j <= n;) {
      if (j < n && np_less(v[a[j]], v[a[j + 1]])) j += 1;
      if (np_less(v[tmp], v[a[j]])) {
        a[i] = a[j];
        i = j;
        j += j;
      } else {
        break;
      }
    }
    a[i] = tmp;
  }
  for (; n > 1;) {
    tmp = a[n];
    a[n] = a[1];
    n -= 1;
    for (i = 1, j = 2; j <= n;) {
      if (j < n && np_less(v[a[j]], v[a[j + 1]])) j++;
      if (np_less(v[tmp], v[a[j]])) {
        a[i] = a[j];
        i = j;
        j += j;
      } else {
        break;
      }
    }
    a[i] = tmp;
  }
}

// NumPy 1.24's aquicksort_ (npysort/quicksort.cpp), the default kind of ndarray.argsort:
// median-of-3 introsort with insertion sort below 16 elements. It is not stable, so equal aspect
// ratios come out in its order, which decides which images share a rect batch; a stable sort would
// differ.
std::vector<int64_t> np_argsort(const std::vector<double>& v) {
  constexpr int64_t kSmallQuicksort = 16;
  const int64_t num = static_cast<int64_t>(v.size());
  std::vector<int64_t> idx(v.size());
  for (int64_t k = 0; k < num; ++k) idx[k] = k;
  if (num < 2) return idx;
  int64_t* pl = idx.data();
  int64_t* pr = pl + num - 1;
  std::vector<int64_t*> stack;
  std::vector<int> depth;
  int cdepth = 0;
  for (uint64_t u = static_cast<uint64_t>(num); u >>= 1;) ++cdepth;
  cdepth *= 2;
  for (;;) {
    if (cdepth < 0) {
      np_aheapsort(v, pl, pr - pl + 1);
    } else {
      while ((pr - pl) > kSmallQuicksort) {
        int64_t* pm = pl + ((pr - pl) >> 1);
        if (np_less(v[*pm], v[*pl])) std::swap(*pm, *pl);
        if (np_less(v[*pr], v[*pm])) std::swap(*pr, *pm);
        if (np_less(v[*pm], v[*pl])) std::swap(*pm, *pl);
        const double vp = v[*pm];
        int64_t* pi = pl;
        int64_t* pj = pr - 1;
        std::swap(*pm, *pj);
        for (;;) {
          do ++pi;
          while (np_less(v[*pi], vp));
          do --pj;
          while (np_less(vp, v[*pj]));
          if (pi >= pj) break;
          std::swap(*pi, *pj);
        }
        std::swap(*pi, *(pr - 1));
        if (pi - pl < pr - pi) {  // push the larger partition, go on with the smaller
          stack.push_back(pi + 1);
          stack.push_back(pr);
          pr = pi - 1;
        } else {
          stack.push_back(pl);
          stack.push_back(pi - 1);
          pl = pi + 1;
        }
        depth.push_back(--cdepth);
      }
      for (int64_t* pi = pl + 1; pi <= pr; ++pi) {  // insertion sort
        const int64_t vi = *pi;
        const double vp = v[vi];
        int64_t* pj = pi;
        int64_t* pk = pi - 1;
        while (pj > pl && np_less(vp, v[*pk])) *pj-- = *pk--;
        *pj = vi;
      }
    }
    if (stack.empty()) break;
    pr = stack.back();
    stack.pop_back();
    pl = stack.back();
    stack.pop_back();
    cdepth = depth.back();
    depth.pop_back();
  }
  return idx;
}

}  // namespace

LoadSize load_image_size(int h0, int w0, int img_size, bool augment) {
  YOLO_CHECK(h0 > 0 && w0 > 0 && img_size > 0, "load_image_size: sizes must be positive, got "
                                                   << h0 << "x" << w0 << " -> " << img_size);
  const double r = static_cast<double>(img_size) / static_cast<double>(std::max(h0, w0));
  LoadSize s{h0, w0, Interp::none};
  if (r != 1.0) {
    s.h = static_cast<int>(h0 * r);
    s.w = static_cast<int>(w0 * r);
    s.interp = (augment || r > 1.0) ? Interp::linear : Interp::area;
    YOLO_CHECK(s.h > 0 && s.w > 0, "load_image_size: " << h0 << "x" << w0 << " at img_size "
                                                       << img_size << " resizes to " << s.h << "x"
                                                       << s.w);
  }
  return s;
}

// Note [letterbox arithmetic]: r = min(new_h / h, new_w / w) (min(r, 1) without scaleup) in double;
// the resized size is (round(w * r), round(h * r)) with round-half-even; the padding dw = new_w -
// unpad_w is an integer, reduced mod stride when auto, zero with the stretched size and ratios
// (new_w / w, new_h / h) when scale_fill; then halved to a double. The borders round dh - 0.1 and
// dh + 0.1, so an odd total puts its extra pixel at the bottom (right).
LetterboxParams letterbox_params(int h, int w, int new_h, int new_w, bool auto_, bool scale_fill,
                                 bool scaleup, int stride) {
  YOLO_CHECK(h > 0 && w > 0 && new_h > 0 && new_w > 0 && stride > 0,
             "letterbox_params: sizes and stride must be positive, got "
                 << h << "x" << w << " -> " << new_h << "x" << new_w << " stride " << stride);
  double r = std::min(static_cast<double>(new_h) / h, static_cast<double>(new_w) / w);
  if (!scaleup) r = std::min(r, 1.0);
  LetterboxParams p;
  p.ratio_w = p.ratio_h = r;
  p.unpad_w = round_half_even(w * r);
  p.unpad_h = round_half_even(h * r);
  int dw = new_w - p.unpad_w;
  int dh = new_h - p.unpad_h;
  if (auto_) {
    dw = py_mod(dw, stride);
    dh = py_mod(dh, stride);
  } else if (scale_fill) {
    dw = dh = 0;
    p.unpad_w = new_w;
    p.unpad_h = new_h;
    p.ratio_w = static_cast<double>(new_w) / w;
    p.ratio_h = static_cast<double>(new_h) / h;
  }
  YOLO_CHECK(p.unpad_h > 0 && p.unpad_w > 0, "letterbox_params: " << h << "x" << w << " scales to "
                                                                  << p.unpad_h << "x" << p.unpad_w);
  p.dw = dw / 2.0;
  p.dh = dh / 2.0;
  p.top = round_half_even(p.dh - 0.1);
  p.bottom = round_half_even(p.dh + 0.1);
  p.left = round_half_even(p.dw - 0.1);
  p.right = round_half_even(p.dw + 0.1);
  return p;
}

std::vector<float> xywhn_to_xyxy(const std::vector<float>& boxes, double w, double h, double padw,
                                 double padh) {
  check_boxes(boxes);
  const float fw = static_cast<float>(w), fh = static_cast<float>(h);
  const float pw = static_cast<float>(padw), ph = static_cast<float>(padh);
  std::vector<float> out(boxes.size());
  for (size_t i = 0; i < boxes.size(); i += 4) {
    const float x = boxes[i], y = boxes[i + 1], bw = boxes[i + 2], bh = boxes[i + 3];
    out[i] = fw * (x - bw / 2.0f) + pw;
    out[i + 1] = fh * (y - bh / 2.0f) + ph;
    out[i + 2] = fw * (x + bw / 2.0f) + pw;
    out[i + 3] = fh * (y + bh / 2.0f) + ph;
  }
  return out;
}

std::vector<float> xyxy_to_xywhn(const std::vector<float>& boxes, double w, double h, bool clip,
                                 double eps) {
  check_boxes(boxes);
  const float fw = static_cast<float>(w), fh = static_cast<float>(h);
  const float xmax = static_cast<float>(w - eps), ymax = static_cast<float>(h - eps);
  std::vector<float> out(boxes.size());
  for (size_t i = 0; i < boxes.size(); i += 4) {
    float x1 = boxes[i], y1 = boxes[i + 1], x2 = boxes[i + 2], y2 = boxes[i + 3];
    if (clip) {
      x1 = std::min(std::max(x1, 0.0f), xmax);
      x2 = std::min(std::max(x2, 0.0f), xmax);
      y1 = std::min(std::max(y1, 0.0f), ymax);
      y2 = std::min(std::max(y2, 0.0f), ymax);
    }
    out[i] = ((x1 + x2) / 2.0f) / fw;
    out[i + 1] = ((y1 + y2) / 2.0f) / fh;
    out[i + 2] = (x2 - x1) / fw;
    out[i + 3] = (y2 - y1) / fh;
  }
  return out;
}

RectBatches rect_batch_shapes(const std::vector<std::pair<int, int>>& shapes_wh, int batch_size,
                              int img_size, int stride, double pad) {
  YOLO_CHECK(!shapes_wh.empty(), "rect_batch_shapes: no images");
  YOLO_CHECK(batch_size > 0 && img_size > 0 && stride > 0,
             "rect_batch_shapes: batch_size, img_size and stride must be positive, got "
                 << batch_size << ", " << img_size << ", " << stride);
  std::vector<double> ar(shapes_wh.size());
  for (size_t k = 0; k < shapes_wh.size(); ++k) {
    const auto [w, h] = shapes_wh[k];
    YOLO_CHECK(w > 0 && h > 0, "rect_batch_shapes: image " << k << " has size " << w << "x" << h);
    ar[k] = static_cast<double>(h) / static_cast<double>(w);
  }
  RectBatches rb;
  rb.order = np_argsort(ar);
  const size_t n = ar.size();
  const size_t nb = (n - 1) / static_cast<size_t>(batch_size) + 1;
  auto side = [&](double factor) {
    return static_cast<int>(std::ceil(factor * img_size / stride + pad)) * stride;
  };
  for (size_t b = 0; b < nb; ++b) {
    const size_t lo = b * batch_size, hi = std::min(n, lo + batch_size);
    double mini = ar[rb.order[lo]], maxi = mini;
    for (size_t k = lo; k < hi; ++k) {
      mini = std::min(mini, ar[rb.order[k]]);
      maxi = std::max(maxi, ar[rb.order[k]]);
    }
    double fh = 1.0, fw = 1.0;
    if (maxi < 1.0) {
      fh = maxi;
    } else if (mini > 1.0) {
      fw = 1.0 / mini;
    }
    rb.shapes_hw.emplace_back(side(fh), side(fw));
  }
  return rb;
}

}  // namespace yolo
