// NonMaxSuppression (opsets 10, 11): per batch and class, greedily keeps the highest-scoring
// boxes whose score passes score_threshold (strictly greater) and drops every later box whose
// IoU with a kept one exceeds iou_threshold, up to max_output_boxes_per_class. Boxes are
// [y1, x1, y2, x2] in either corner order (center_point_box=0) or [x_center, y_center, width,
// height] (center_point_box=1). Output [K, 3] int64 rows (batch, class, box), batch-major, then
// class, then selection order. Ties in score keep the lower box index first.
#include <algorithm>
#include <numeric>

#include "kiln/exec/kernel.h"

namespace kiln {
namespace {

struct Box {
  float y1, x1, y2, x2, area;
};

class NonMaxSuppression : public Kernel {
 public:
  explicit NonMaxSuppression(const ir::Node& node) : center_(node.attr_int("center_point_box", 0)) {
    if (center_ != 0 && center_ != 1)
      fail(ErrorCode::InvalidGraph, "center_point_box must be 0 or 1, got ", center_);
  }

  void prepare(OpContext& ctx) override {
    const Tensor& boxes = ctx.input(0);
    const Tensor& scores = ctx.input(1);
    if (boxes.dtype() != DType::Float32 || scores.dtype() != DType::Float32)
      fail(ErrorCode::InvalidArgument, "boxes and scores must be float, got ", dtype_name(boxes.dtype()), " and ",
           dtype_name(scores.dtype()));
    if (boxes.rank() != 3 || boxes.dim(2) != 4)
      fail(ErrorCode::InvalidArgument, "boxes must be [batch, boxes, 4], got ", shape_str(boxes.shape()));
    if (scores.rank() != 3 || scores.dim(0) != boxes.dim(0) || scores.dim(2) != boxes.dim(1))
      fail(ErrorCode::InvalidArgument, "scores must be [", boxes.dim(0), ", classes, ", boxes.dim(1), "], got ",
           shape_str(scores.shape()));
  }

  void compute(OpContext& ctx) override {
    const Tensor& boxes = ctx.input(0);
    const Tensor& scores = ctx.input(1);
    auto scalar = [&](int i, const char* what) -> const Tensor* {
      if (!ctx.has_input(i)) return nullptr;
      const Tensor& t = ctx.input(i);
      if (t.size() != 1) fail(ErrorCode::InvalidArgument, what, " must hold one value, got ", shape_str(t.shape()));
      return &t;
    };
    int64_t max_out = 0;
    if (const Tensor* t = scalar(2, "max_output_boxes_per_class")) {
      if (t->dtype() != DType::Int64)
        fail(ErrorCode::InvalidArgument, "max_output_boxes_per_class must be int64, got ", dtype_name(t->dtype()));
      max_out = std::max<int64_t>(0, t->data<int64_t>()[0]);
    }
    float iou_threshold = 0;
    if (const Tensor* t = scalar(3, "iou_threshold")) iou_threshold = float(t->scalar_as_double());
    if (iou_threshold < 0 || iou_threshold > 1)
      fail(ErrorCode::InvalidArgument, "iou_threshold must be in [0, 1], got ", iou_threshold);
    const Tensor* st = scalar(4, "score_threshold");
    const bool has_score_threshold = st != nullptr;
    const float score_threshold = st ? float(st->scalar_as_double()) : 0.0f;

    const int64_t nb = boxes.dim(0), n = boxes.dim(1), nc = scores.dim(1);
    const float* pb = boxes.data<float>();
    const float* ps = scores.data<float>();
    std::vector<int64_t> selected;  // triples
    std::vector<Box> bx(static_cast<size_t>(n));
    std::vector<int64_t> order;
    std::vector<int64_t> kept;
    for (int64_t b = 0; b < nb && max_out > 0; ++b) {
      for (int64_t i = 0; i < n; ++i) bx[size_t(i)] = to_box(pb + (b * n + i) * 4);
      for (int64_t c = 0; c < nc; ++c) {
        const float* s = ps + (b * nc + c) * n;
        order.clear();
        for (int64_t i = 0; i < n; ++i)
          if (!has_score_threshold || s[i] > score_threshold) order.push_back(i);
        std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return s[x] > s[y]; });
        kept.clear();
        for (int64_t i : order) {
          if (int64_t(kept.size()) >= max_out) break;
          bool keep = true;
          for (int64_t k : kept)
            if (suppresses(bx[size_t(k)], bx[size_t(i)], iou_threshold)) {
              keep = false;
              break;
            }
          if (!keep) continue;
          kept.push_back(i);
          selected.insert(selected.end(), {b, c, i});
        }
      }
    }
    Tensor& out = ctx.allocate_output(0, DType::Int64, {int64_t(selected.size() / 3), 3});
    std::copy(selected.begin(), selected.end(), out.data<int64_t>());
  }

 private:
  Box to_box(const float* p) const {
    Box b;
    if (center_) {
      const float xc = p[0], yc = p[1], w = p[2], h = p[3];
      b.x1 = xc - w / 2, b.x2 = xc + w / 2, b.y1 = yc - h / 2, b.y2 = yc + h / 2;
    } else {
      b.y1 = std::min(p[0], p[2]), b.y2 = std::max(p[0], p[2]);
      b.x1 = std::min(p[1], p[3]), b.x2 = std::max(p[1], p[3]);
    }
    b.area = (b.y2 - b.y1) * (b.x2 - b.x1);
    return b;
  }

  // IoU(a, b) > threshold; boxes without area never suppress.
  static bool suppresses(const Box& a, const Box& b, float threshold) {
    if (a.area <= 0 || b.area <= 0) return false;
    const float ih = std::min(a.y2, b.y2) - std::max(a.y1, b.y1);
    const float iw = std::min(a.x2, b.x2) - std::max(a.x1, b.x1);
    if (ih <= 0 || iw <= 0) return false;
    const float inter = ih * iw;
    return inter / (a.area + b.area - inter) > threshold;
  }

  int64_t center_;
};

const OpRegistration kNonMaxSuppression{"", "NonMaxSuppression", 10, make_kernel<NonMaxSuppression>};

}  // namespace
}  // namespace kiln
