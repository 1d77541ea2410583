// kiln::Attention: softmax(alpha Q K^T + mask) V in one pass per head, as fuse_transformer
// leaves attention's two products, its mask and its softmax.
//
// Separately, the scores of all heads (ViT-B/16: 12 x 197 x 197 floats, 1.9 MB a layer) went
// to memory three times over: written by the first product, read and written by the softmax,
// read by the second product. Here a block of 48 query rows of one head has its scores in L1/L2
// from the first product to the second; each head's K^T and V are packed once into the panels
// packed_gemm reads (pack_panels, as weights are at load).
//
// Inputs: Q, K, V, and with mask_kind "add" a float mask added to the scores, with "where" a
// bool condition keeping the scores where true and mask_fill elsewhere (GPT-2's causal mask; a
// block of query rows then reads only the keys up to the last one its rows keep).
// Attributes: perm_q, perm_k, perm_v, perm_y as kiln::MatMul's views (Q [.., Sq, D] =
// Transpose(input 0, perm_q), K^T [.., D, Sk] = Transpose(input 1, perm_k), V [.., Sk, D]; Y
// [.., Sq, D] is stored as Transpose(Y, perm_y)); kiln_alpha scales the scores. The head
// dimension must be the innermost stored one of Q, K, V and Y; batch dimensions broadcast.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kiln/core/parallel.h"
#include "kiln/exec/kernel.h"
#include "kiln/ops/math/packed_gemm.h"
#include "kiln/ops/reduce/softmax.h"
#include "kiln/ops/tensor/tensor_copy.h"

// GCC 12 flags the undefined pass-through operand inside the intrinsics' horizontal reductions
// and unmasked max as maybe-uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace kiln {
namespace {

constexpr int64_t kRows = 48;  // query rows per block: whole 8-row tiles (6-row with AVX2)
#if defined(__AVX512F__)
constexpr int64_t kScoreWidth = 48;  // K^T's panel width
constexpr int64_t kValueWidth = 64;  // V's panel width
#define KILN_ATTENTION_FAST 1
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int64_t kScoreWidth = 16;  // packed_gemm's only width with AVX2
constexpr int64_t kValueWidth = 16;
#define KILN_ATTENTION_FAST 1
#endif
// thread_scratch slots: K^T's panels, V's panels, a block's scores.
constexpr int kKeySlot = 0, kValueSlot = 1, kScoreSlot = 2;

class Attention : public Kernel {
 public:
  explicit Attention(const ir::Node& node)
      : perm_q_(node.attr_ints("perm_q")),
        perm_k_(node.attr_ints("perm_k")),
        perm_v_(node.attr_ints("perm_v")),
        perm_y_(node.attr_ints("perm_y")),
        alpha_(node.attr_float("kiln_alpha", 1.0f)),
        fill_(node.attr_float("mask_fill", 0.0f)) {
    const std::string kind = node.attr_string("mask_kind", "");
    if (kind == "add") mask_ = Mask::Add;
    else if (kind == "where") mask_ = Mask::Where;
    else if (!kind.empty()) fail(ErrorCode::InvalidGraph, "mask_kind must be add or where, got '", kind, "'");
  }

  void prepare(OpContext& ctx) override {
    const Tensor &q = ctx.input(0), &k = ctx.input(1), &v = ctx.input(2);
    dtype_ = q.dtype();
    if (dtype_ != DType::Float32 && dtype_ != DType::Float64)
      fail(ErrorCode::NotImplemented, "element type ", dtype_name(dtype_), " is not supported (float and double are)");
    for (const Tensor* t : {&k, &v})
      if (t->dtype() != dtype_)
        fail(ErrorCode::InvalidArgument, "Q is ", dtype_name(dtype_), " but K or V is ", dtype_name(t->dtype()));
    using tensor_ops::permuted, tensor_ops::view_strides;
    const Shape qs = permuted(q.shape(), perm_q_, "perm_q"), ks = permuted(k.shape(), perm_k_, "perm_k"),
                vs = permuted(v.shape(), perm_v_, "perm_v");
    const size_t r = qs.size();
    if (r < 2 || ks.size() != r || vs.size() != r)
      fail(ErrorCode::InvalidArgument, "Q ", shape_str(qs), ", K^T ", shape_str(ks), " and V ", shape_str(vs),
           " must have one rank of 2 or more");
    sq_ = qs[r - 2], d_ = qs[r - 1], sk_ = ks[r - 1], dv_ = vs[r - 1];
    if (ks[r - 2] != d_ || vs[r - 2] != sk_)
      fail(ErrorCode::InvalidArgument, "Q ", shape_str(qs), " times K^T ", shape_str(ks), " times V ", shape_str(vs),
           ": inner dimensions differ");
    // Batch dimensions, broadcast: stride 0 where an operand has 1.
    batch_.clear();
    const std::vector<int64_t> qv = view_strides(q.shape(), perm_q_, r), kv = view_strides(k.shape(), perm_k_, r),
                               vv = view_strides(v.shape(), perm_v_, r);
    strides_.assign(4, {});
    for (size_t i = 0; i + 2 < r; ++i) {
      const int64_t n = std::max({qs[i], ks[i], vs[i]});
      for (int64_t dim : {qs[i], ks[i], vs[i]})
        if (dim != n && dim != 1)
          fail(ErrorCode::InvalidArgument, "Q ", shape_str(qs), ", K^T ", shape_str(ks), " and V ", shape_str(vs),
               " do not broadcast");
      batch_.push_back(n);
      strides_[0].push_back(qs[i] == 1 ? 0 : qv[i]);
      strides_[1].push_back(ks[i] == 1 ? 0 : kv[i]);
      strides_[2].push_back(vs[i] == 1 ? 0 : vv[i]);
    }
    q_row_ = qv[r - 2], k_col_ = kv[r - 1], v_row_ = vv[r - 2];
    if (qv[r - 1] != 1 || kv[r - 2] != 1 || vv[r - 1] != 1)
      fail(ErrorCode::InvalidGraph, "the head dimension must be the innermost stored one of Q, K and V");
    Shape y = batch_;
    y.push_back(sq_);
    y.push_back(dv_);
    const Shape stored = permuted(y, perm_y_, "perm_y");
    ctx.set_output(0, dtype_, stored);
    // Y's logical strides: logical dim perm_y[j] is stored dim j.
    const std::vector<int64_t> dense = tensor_ops::contiguous_strides(stored);
    std::vector<int64_t> ys(r);
    for (size_t j = 0; j < r; ++j) ys[perm_y_.empty() ? j : size_t(perm_y_[j])] = dense[j];
    if (ys[r - 1] != 1) fail(ErrorCode::InvalidGraph, "the head dimension must be Y's innermost stored one");
    strides_[3].assign(ys.begin(), ys.end() - 2);
    y_row_ = ys[r - 2];
    if (mask_ != Mask::None) prepare_mask(ctx.input(3), r);
  }

  void compute(OpContext& ctx) override {
    if (ctx.output(0).size() == 0) return;
#if defined(KILN_ATTENTION_FAST)
    if (dtype_ == DType::Float32) return fast(operands<float>(ctx));
#endif
    dispatch(FloatTypes{}, dtype_, "Attention", [&]<typename T>() { reference(operands<T>(ctx)); });
  }

 private:
  enum class Mask { None, Add, Where };
  struct RowSoftmax {
    float top, sum;  // a row's largest scaled and masked score, its exponentials' sum
  };

  template <typename T>
  struct Operands {
    const T *q, *k, *v;
    const void* mask;  // T for an added mask, bool for a condition, or null
    T* y;
  };
  template <typename T>
  Operands<T> operands(OpContext& ctx) const {
    return {ctx.input(0).data<T>(), ctx.input(1).data<T>(), ctx.input(2).data<T>(),
            mask_ == Mask::None ? nullptr : ctx.input(3).raw(), ctx.output(0).data<T>()};
  }

  // Offsets of head h's Q, K, V, Y and mask.
  void head_offsets(int64_t h, int64_t off[5]) const {
    std::fill(off, off + 5, 0);
    for (int64_t i = int64_t(batch_.size()) - 1, rest = h; i >= 0; --i) {
      const int64_t idx = rest % batch_[size_t(i)];
      rest /= batch_[size_t(i)];
      for (size_t t = 0; t < 4; ++t) off[t] += idx * strides_[t][size_t(i)];
      if (mask_ != Mask::None) off[4] += idx * mask_strides_[size_t(i)];
    }
  }

#if defined(KILN_ATTENTION_FAST)
  void fast(const Operands<float>& in) {
    const auto [q, k, v, mask, out] = in;
    const int64_t heads = shape_size(batch_), blocks = (sq_ + kRows - 1) / kRows;
    const int64_t kpanels = (sk_ + kScoreWidth - 1) / kScoreWidth, vpanels = (dv_ + kValueWidth - 1) / kValueWidth;
    const int64_t ldscores = kpanels * kScoreWidth;
    // Per head, K^T [D, Sk] (K's rows read as columns) and V [Sk, Dv] in panels.
    const int64_t dp = (d_ + 15) / 16 * 16, skp = (sk_ + 15) / 16 * 16;
    const PanelLayout key_panels{d_, sk_, kScoreWidth, dp * kScoreWidth, dp};
    const PanelLayout value_panels{sk_, dv_, kValueWidth, skp * kValueWidth, skp};
    parallel_for(heads, 1, [&](int64_t h0, int64_t h1) {
      float* kt = static_cast<float*>(thread_scratch(kKeySlot, sizeof(float) * size_t(kpanels * key_panels.stride)));
      float* vp = static_cast<float*>(thread_scratch(kValueSlot, sizeof(float) * size_t(vpanels * value_panels.stride)));
      float* scores = static_cast<float*>(thread_scratch(kScoreSlot, sizeof(float) * size_t(kRows * ldscores)));
      std::vector<int64_t> limits(size_t(mask_ == Mask::Where ? blocks : 0));  // kept_keys per block
      int64_t limits_at = -1;  // the mask offset they were found at
      for (int64_t h = h0; h < h1; ++h) {
        int64_t off[5];
        head_offsets(h, off);
        pack_panels(k + off[1], 1, k_col_, key_panels, kt);
        pack_panels(v + off[2], v_row_, 1, value_panels, vp);
        const PackedPanels keys{kt, d_, sk_, kScoreWidth, key_panels.stride};
        PackedPanels values{vp, sk_, dv_, kValueWidth, value_panels.stride};
        if (mask_ == Mask::Where && off[4] != limits_at) {
          limits_at = off[4];
          for (int64_t b = 0; b < blocks; ++b) limits[size_t(b)] = kept_keys(mask, off[4], b * kRows);
        }
        for (int64_t b = 0; b < blocks; ++b) {
          const int64_t r0 = b * kRows, rows = std::min(kRows, sq_ - r0);
          for (int64_t n : {mask_ == Mask::Where ? limits[size_t(b)] : sk_, sk_}) {
            packed_gemm_block(q + off[0] + r0 * q_row_, q_row_, rows, keys, 0, (n + kScoreWidth - 1) / kScoreWidth,
                              scores, ldscores);
            // The keys past n would each weigh exactly 0 where every row's largest score
            // stands more than 87 above the fill (the softmax's cut): else all keys, again.
            bool exact = true;
            float inv[kRows];
            for (int64_t i = 0; i < rows; ++i) {
              const RowSoftmax row = softmax_row(scores + i * ldscores, mask, off[4] + (r0 + i) * mask_row_, n);
              exact = exact && (n == sk_ || fill_ < row.top - 87.0f);
              inv[i] = 1.0f / row.sum;
            }
            if (!exact) continue;
            values.k = n;
            float* y = out + off[3] + r0 * y_row_;
            packed_gemm_block(scores, ldscores, rows, values, 0, vpanels, y, y_row_);
            for (int64_t i = 0; i < rows; ++i)
              for (int64_t j = 0; j < dv_; ++j) y[i * y_row_ + j] *= inv[i];
            break;
          }
        }
      }
    });
  }

  // One past the last key that some row of the block from r0 keeps (a condition mask): a
  // causal mask's first block of 48 rows reads 48 keys, not all of them.
  int64_t kept_keys(const void* mask, int64_t moff, int64_t r0) const {
    const bool* m = static_cast<const bool*>(mask) + moff;
    int64_t keys = 0;
    for (int64_t i = std::min(kRows, sq_ - r0) - 1; i >= 0 && keys < sk_; --i) {
      const bool* row = m + (r0 + i) * mask_row_;
      int64_t end = sk_;
      for (uint64_t word = 0; end - keys >= 8; end -= 8) {
        std::memcpy(&word, row + end - 8, 8);
        if (word) break;
      }
      while (end > keys && !row[end - 1]) --end;
      keys = end;
    }
    return keys;
  }
#endif

  // The same by plain loops, in T (double models, machines without AVX-512 or AVX2).
  template <typename T>
  void reference(const Operands<T>& in) {
    const auto [q, k, v, mask, out] = in;
    parallel_for(shape_size(batch_), 1, [&](int64_t h0, int64_t h1) {
      std::vector<T> s(static_cast<size_t>(sk_));
      for (int64_t h = h0; h < h1; ++h) {
        int64_t off[5];
        head_offsets(h, off);
        for (int64_t i = 0; i < sq_; ++i) {
          const T* qi = q + off[0] + i * q_row_;
          const int64_t moff = off[4] + i * mask_row_;
          for (int64_t j = 0; j < sk_; ++j) {
            T dot = 0;
            for (int64_t dd = 0; dd < d_; ++dd) dot += qi[dd] * k[off[1] + j * k_col_ + dd];
            dot *= T(alpha_);
            if (mask_ == Mask::Add) dot += static_cast<const T*>(mask)[moff + j];
            if (mask_ == Mask::Where && !static_cast<const bool*>(mask)[moff + j]) dot = T(fill_);
            s[size_t(j)] = dot;
          }
          const T top = vmath::row_max(s.data(), sk_);
          const T inv = T(1) / vmath::exp_sum(s.data(), s.data(), sk_, top);
          T* yi = out + off[3] + i * y_row_;
          for (int64_t dd = 0; dd < dv_; ++dd) {
            T sum = 0;
            for (int64_t j = 0; j < sk_; ++j) sum += s[size_t(j)] * v[off[2] + j * v_row_ + dd];
            yi[dd] = sum * inv;
          }
        }
      }
    });
  }

  void prepare_mask(const Tensor& m, size_t r) {
    if (mask_ == Mask::Add && m.dtype() != dtype_)
      fail(ErrorCode::InvalidArgument, "the added mask must be ", dtype_name(dtype_), " as Q is, got ",
           dtype_name(m.dtype()));
    if (mask_ == Mask::Where && m.dtype() != DType::Bool)
      fail(ErrorCode::InvalidArgument, "the mask condition must be bool, got ", dtype_name(m.dtype()));
    Shape scores = batch_;
    scores.push_back(sq_);
    scores.push_back(sk_);
    if (m.rank() > r)
      fail(ErrorCode::InvalidArgument, "mask ", shape_str(m.shape()), " has more dimensions than the scores ",
           shape_str(scores));
    const std::vector<int64_t> dense = tensor_ops::contiguous_strides(m.shape());
    std::vector<int64_t> s(r, 0);
    for (size_t i = 0; i < m.rank(); ++i) {
      const size_t at = r - m.rank() + i;
      const int64_t dim = m.dim(int(i));
      if (dim != 1 && dim != scores[at])
        fail(ErrorCode::InvalidArgument, "mask ", shape_str(m.shape()), " does not broadcast to the scores ",
             shape_str(scores));
      s[at] = dim == 1 ? 0 : dense[i];
    }
    if (s[r - 1] != 1 && sk_ > 1)
      fail(ErrorCode::NotImplemented, "mask ", shape_str(m.shape()), " must hold a value per key");
    mask_strides_.assign(s.begin(), s.end() - 2);
    mask_row_ = s[r - 2];
  }

#if defined(__AVX512F__)
  // A row's first n scores, scaled and masked: their largest and the sum of their exponentials
  // from it, which are left in place (the softmax's weights before the division, which the
  // block's output rows take instead: 48 x 64 values against 48 x Sk). Exponentials below e^-87
  // are 0: a masked key's e^(-1e4) or e^(-3.4e38) would otherwise be a subnormal float, and
  // every multiply that reads one takes a microcode assist (BERT's padded keys: a quarter of
  // the kernel's time).
  RowSoftmax softmax_row(float* s, const void* mask, int64_t moff, int64_t n) const {
    using namespace fastmath::avx512;
    const __m512 alpha = _mm512_set1_ps(alpha_), fill = _mm512_set1_ps(fill_);
    auto score = [&](int64_t j, __mmask16 live) {
      __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(live, s + j), alpha);
      if (mask_ == Mask::Add) {
        v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(live, static_cast<const float*>(mask) + moff + j));
      } else if (mask_ == Mask::Where) {
        const __m128i keep = _mm_maskz_loadu_epi8(live, static_cast<const bool*>(mask) + moff + j);
        v = _mm512_mask_blend_ps(_mm_test_epi8_mask(keep, keep), fill, v);
      }
      return v;
    };
    // The scaled and masked scores are found twice rather than stored and read back.
    __m512 top = _mm512_set1_ps(-INFINITY);
    for (int64_t j = 0; j < n; j += 16) {
      const __mmask16 live = tail_mask(n - j);
      top = _mm512_mask_max_ps(top, live, top, score(j, live));
    }
    const float largest = _mm512_reduce_max_ps(top);
    const __m512 shift = _mm512_set1_ps(largest);
    __m512 sum = _mm512_setzero_ps();
    for (int64_t j = 0; j < n; j += 16) {
      const __mmask16 live = tail_mask(n - j);
      const __m512 t = _mm512_sub_ps(score(j, live), shift);
      // NaN compares false: a NaN score stays NaN through exp_bounded's clamps, as in Softmax.
      const __mmask16 kept = _mm512_mask_cmp_ps_mask(live, t, _mm512_set1_ps(-87.0f), _CMP_NLT_UQ);
      const __m512 e = _mm512_maskz_mov_ps(kept, exp_bounded(_mm512_max_ps(_mm512_set1_ps(-87.0f), t)));
      _mm512_mask_storeu_ps(s + j, live, e);
      sum = _mm512_add_ps(sum, e);
    }
    return {largest, _mm512_reduce_add_ps(sum)};
  }
#elif defined(KILN_ATTENTION_FAST)
  // As above on 8 lanes; the scaling and masking pass in plain code, stored.
  RowSoftmax softmax_row(float* s, const void* mask, int64_t moff, int64_t n) const {
    using namespace fastmath::avx2;
    float top = -INFINITY;
    for (int64_t j = 0; j < n; ++j) {
      float v = s[j] * alpha_;
      if (mask_ == Mask::Add) v += static_cast<const float*>(mask)[moff + j];
      else if (mask_ == Mask::Where && !static_cast<const bool*>(mask)[moff + j]) v = fill_;
      s[j] = v;
      top = v > top ? v : top;
    }
    const __m256 shift = _mm256_set1_ps(top), floor = _mm256_set1_ps(-87.0f);
    __m256 sum = _mm256_setzero_ps();
    for (int64_t j = 0; j < n; j += 8) {
      const __m256i live = tail_mask(n - j);
      const __m256 t = _mm256_sub_ps(_mm256_maskload_ps(s + j, live), shift);
      // NaN compares true here (unordered): a NaN score stays NaN, as in Softmax.
      const __m256 kept = _mm256_and_ps(_mm256_cmp_ps(t, floor, _CMP_NLT_UQ), _mm256_castsi256_ps(live));
      const __m256 e = _mm256_and_ps(kept, exp_bounded(_mm256_max_ps(floor, t)));
      _mm256_maskstore_ps(s + j, live, e);
      sum = _mm256_add_ps(sum, e);
    }
    return {top, reduce_add(sum)};
  }
#endif

  std::vector<int64_t> perm_q_, perm_k_, perm_v_, perm_y_;
  float alpha_, fill_;
  DType dtype_ = DType::Float32;
  Mask mask_ = Mask::None;
  int64_t sq_ = 0, d_ = 0, sk_ = 0, dv_ = 0;
  Shape batch_;
  std::vector<std::vector<int64_t>> strides_;  // per batch dimension: Q, K, V, Y
  std::vector<int64_t> mask_strides_;
  int64_t q_row_ = 0, k_col_ = 0, v_row_ = 0, y_row_ = 0, mask_row_ = 0;
};

const OpRegistration kAttention{"kiln", "Attention", 1, make_kernel<Attention>};

}  // namespace
}  // namespace kiln
