// MatMul: numpy matmul (1-D operands promoted, batch dims broadcast) on oneDNN. A 2-D weight
// folds the batch into M and, when it is an initializer, is packed once in oneDNN's layout.
//
// kiln::FusedMatMul (made by the graph optimizer) is MatMul with a constant 2-D weight, a
// constant bias of N values (input 2), an optional `activation` ("Relu", "Gelu" with erf,
// "GeluTanh") and an optional residual Z (input 3, as many values as the output) added last:
// Y = act(A W + bias) + Z, all applied by oneDNN while the output is still in cache.
//
// kiln::MatMul (made by the optimizer from MatMul next to Transposes, as attention has them):
// MatMul whose A and B are read as Transpose(A, perm_a) and Transpose(B, perm_b), and whose
// result is written as Transpose(result, perm_y): oneDNN takes the transposes as strides.
//
// A FusedMatMul with `kiln_weight_nk` = 1 holds its weight transposed, [N, K] (Gemm's transB as
// the model stores it): oneDNN reads it through strides, and packing reorders straight from it,
// so loading never writes a transposed copy.
//
// Load-time packing (any optimization level but disabled): a constant 2-D float weight that
// only matmuls read is replaced by its bytes in oneDNN's matmul layout (a uint8 initializer),
// with that layout in `kiln_packed_desc`, [K, N] in `kiln_packed_shape` and the plain name in
// `kiln_packed_from`; the plain copy is dropped, so the session holds each weight once. oneDNN
// picks the same weight layout for every M, so one packing serves every input shape.
#include <cstring>
#include <map>
#include <set>
#include <unordered_map>
#include <vector>

#include "kiln/core/parallel.h"
#include "kiln/exec/kernel.h"
#include "kiln/ops/common/broadcast.h"
#include "kiln/ops/common/dnnl.h"
#include "kiln/ops/common/elementwise.h"
#include "kiln/ops/math/packed_gemm.h"
#include "kiln/ops/tensor/tensor_copy.h"
#include "kiln/ir/fresh_names.h"
#include "kiln/ir/graph_view.h"

namespace kiln {

namespace {

bool is_matmul(const ir::Node& n) {
  return (n.domain.empty() && n.op_type == "MatMul") || (n.domain == "kiln" && n.op_type == "FusedMatMul");
}

// The largest product (in flops) packed_gemm takes: 64x256x1024.
constexpr double kOwnGemmFlops = double(1 << 25);

bool weight_is_nk(const ir::Node& n) { return n.attr_int("kiln_weight_nk", 0) != 0; }

dnnl::memory::desc desc_from_attr(const ir::Node& n) {
  const std::string bytes = n.attr_string("kiln_packed_desc", "");
  if (bytes.size() != sizeof(dnnl_memory_desc_t))
    fail(ErrorCode::InvalidGraph, "kiln_packed_desc holds ", bytes.size(), " bytes, not a oneDNN memory descriptor");
  dnnl_memory_desc_t d;
  std::memcpy(&d, bytes.data(), sizeof d);
  return dnnl::memory::desc(d);
}

// An [N, K] weight into panels where it lies (K a multiple of 16): panel p's columns are rows
// p * width on of the weight, the very bytes panel p takes, `shift` bytes on. Last panel first,
// each through a panel's worth of rows: a panel's write reaches into the next one's rows only,
// packed before. The last panel's bytes past `kept` (the weight's end) go to `tail`. No scratch
// the size of the weight: its fresh pages and the copy back were 1.0-2.2 ms of each of
// MobileNetV3's classifier weights.
void pack_rows_in_place(char* base, int64_t k, int64_t n, const PanelLayout& pl, size_t shift, size_t kept,
                        std::string& tail) {
  const int64_t w = pl.width, panels = (n + w - 1) / w;
  const size_t panel_bytes = sizeof(float) * size_t(pl.stride);
  std::vector<float> rows(size_t(w * k)), last(size_t(pl.stride));
  for (int64_t p = panels - 1; p >= 0; --p) {
    const int64_t cols = std::min(w, n - p * w);
    std::memcpy(rows.data(), base + sizeof(float) * size_t(p * w * k), sizeof(float) * size_t(cols * k));
    const size_t at = shift + size_t(p) * panel_bytes;
    const bool whole = at + panel_bytes <= shift + kept;
    pack_panels(rows.data(), 1, k, PanelLayout{k, cols, w, pl.stride, pl.padded_k},
                whole ? reinterpret_cast<float*>(base + at) : last.data());
    if (!whole) {
      const size_t fits = shift + kept - at;
      std::memcpy(base + at, last.data(), fits);
      tail.assign(reinterpret_cast<const char*>(last.data()) + fits, panel_bytes - fits);
    }
  }
}

// A load-time packed weight as one buffer: its initializer, then kiln_packed_tail's bytes.
Tensor whole_packed(const Tensor& bytes, const std::string& tail) {
  if (tail.empty()) return bytes;
  Tensor whole(DType::UInt8, {bytes.size() + int64_t(tail.size())});
  std::memcpy(whole.raw(), bytes.raw(), bytes.bytes());
  std::memcpy(static_cast<char*>(whole.raw()) + bytes.bytes(), tail.data(), tail.size());
  return whole;
}

void pack_matmul_weights(ir::Graph& g) {
  std::map<std::string, std::vector<size_t>> readers;  // weight -> packable matmuls reading it as B
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    if (is_matmul(n) && n.inputs.size() >= 2 && !n.has_attr("kiln_bf16")) readers[n.inputs[1]].push_back(i);
  }
  GraphView view(g);
  FreshNames names(g);
  Tensor scratch(DType::UInt8, {0});
  for (const auto& [w, nodes] : readers) {
    const Tensor* t = view.constant(w);
    const bool nk = weight_is_nk(g.nodes[nodes[0]]);
    bool same = true;  // every reader stores it the same way round
    for (size_t i : nodes) same = same && weight_is_nk(g.nodes[i]) == nk;
    // Small weights stay as they are: packing pads them, and there is little to save.
    if (!same || !t || t->dtype() != DType::Float32 || t->rank() != 2 || t->bytes() < (64 << 10) ||
        view.is_graph_output(w) || view.readers(w) != int(nodes.size()))
      continue;
    const int64_t k = nk ? t->dim(1) : t->dim(0), cols = nk ? t->dim(0) : t->dim(1);
    const dnnl::memory::desc layout = matmul_weight_layout(k, cols), plain = stored_weight_desc(k, cols, nk);
    if (layout == plain) continue;
    // A weight nothing else holds is repacked into its own storage, through one scratch buffer
    // that stays warm: fresh pages for every packed copy made a third of ViT-B/16's load page
    // faults. Otherwise (shared, or a layout with padding that packed_gemm does not stream) the
    // packed weight is a copy. The parsed bytes sit 16 bytes past a cache line (the heap's
    // header): every 64-byte row of a panel read there straddles two lines, 10% off packed_gemm
    // (150 against 167 GFLOP/s at 128x768x3072). Panels it streams start at the next line
    // instead, and what then no longer fits rides in kiln_packed_tail: those bytes, and the
    // padding columns of a last panel when N is no multiple of the width (at most that panel:
    // MobileNetV3's 960x1280 classifier gains 61 KB), which packed_gemm alone reads. An aligned
    // or padded copy costs fresh pages (ViT-B/16's creation 295 -> 357 ms) and gives the
    // parser's back: MobileNetV3's creation, repeated in a process, 15.8 -> 14.4 ms once its
    // classifier's padded weights stay put.
    const size_t size = layout.get_size();
    const std::optional<PanelLayout> pl = PanelLayout::of(layout);
    const bool streamed = streams_on_packed_gemm(k, cols) && PackedPanels::from(layout, nullptr);
    const size_t shift = streamed ? (64 - uintptr_t(t->raw()) % 64) % 64 : 0;
    const size_t room = t->bytes() - std::min(shift, t->bytes()), kept = std::min(size, room);
    const bool in_place = t->owner().use_count() == 1 &&
                          (size <= room || (streamed && size - kept <= sizeof(float) * size_t(pl->stride)));
    Tensor bytes;
    std::string tail;
    if (in_place && nk && pl && pl->padded_k == k && pl->stride == k * pl->width) {
      char* base = static_cast<char*>(const_cast<void*>(t->raw()));
      pack_rows_in_place(base, k, cols, *pl, shift, kept, tail);
      bytes = Tensor::view(DType::UInt8, {int64_t(kept)}, base + shift, t->owner());
    } else if (in_place) {
      if (scratch.bytes() < size) {
        release_pages(scratch.raw(), scratch.bytes());
        scratch = Tensor(DType::UInt8, {int64_t(size)});
      }
      reorder_into(plain, t->raw(), wrap(layout, scratch.raw()));
      char* dst = static_cast<char*>(const_cast<void*>(t->raw())) + shift;
      const char* packed = static_cast<const char*>(scratch.raw());
      parallel_for(int64_t(kept), 1 << 20,  // at 2 threads 16 ms of ViT-B/16's load, against 33
                   [&](int64_t b, int64_t e) { std::memcpy(dst + b, packed + b, size_t(e - b)); });
      tail.assign(packed + kept, size - kept);
      bytes = Tensor::view(DType::UInt8, {int64_t(kept)}, dst, t->owner());
    } else {
      bytes = Tensor(DType::UInt8, {int64_t(size)});
      reorder_into(plain, t->raw(), wrap(layout, bytes.raw()));
    }
    const std::string name = names.make(w + "/kiln_packed");
    g.initializers[name] = bytes;
    ir::Attribute desc, shape, from;
    desc.kind = from.kind = ir::Attribute::Kind::String;
    desc.s = std::string(reinterpret_cast<const char*>(&layout.data), sizeof(dnnl_memory_desc_t));
    from.s = nk ? names.make(w + "/transposed") : w;  // unpacked, it is [K, N]: not the model's w
    shape.kind = ir::Attribute::Kind::Ints;
    shape.ints = {k, cols};
    for (size_t i : nodes) {
      ir::Node& n = g.nodes[i];
      n.inputs[1] = name;
      if (!tail.empty()) {
        ir::Attribute a;
        a.kind = ir::Attribute::Kind::String;
        a.s = tail;
        n.attrs["kiln_packed_tail"] = a;
      }
      n.attrs["kiln_packed_desc"] = desc;
      n.attrs["kiln_packed_shape"] = shape;
      n.attrs["kiln_packed_from"] = from;
      n.attrs.erase("kiln_weight_nk");  // packed, it has no orientation left
    }
    // One weight at a time: a plain copy goes before the next is packed. The heap would keep
    // its pages and not reuse them for the aligned packed buffers (ViT-B/16's load peaked at
    // 475 MB), so they go back first when nothing else holds them; one madvise each, where
    // trimming the heap every 16 MB added 60-90 ms to ViT's load.
    if (!in_place && t->owner().use_count() == 1)
      release_pages(const_cast<void*>(t->raw()), t->bytes());
    g.initializers.erase(w);
  }
  // The scratch's pages go back: a buffer kept for reuse would otherwise stay resident beside
  // the weights (MobileNetV3's peak 46 MB against 36 with them released; ViT-B/16's 365 -> 354).
  release_pages(scratch.raw(), scratch.bytes());
}

void unpack_matmul_weights(ir::Graph& g) {
  std::set<std::string> unpacked;  // packed initializers read no more
  for (auto& n : g.nodes) {
    if (!is_matmul(n) || !n.has_attr("kiln_packed_desc")) continue;
    const std::string w = n.attr_string("kiln_packed_from", "");
    const std::vector<int64_t> shape = n.attr_ints("kiln_packed_shape");
    if (!g.initializers.count(w)) {
      Tensor plain(DType::Float32, Shape(shape.begin(), shape.end()));
      const Tensor bytes = whole_packed(g.initializers.at(n.inputs[1]), n.attr_string("kiln_packed_tail", ""));
      reorder_into(desc_from_attr(n), bytes.raw(), wrap(plain_desc(plain.shape(), DType::Float32), plain.raw()));
      g.initializers[w] = plain;
    }
    unpacked.insert(n.inputs[1]);
    n.inputs[1] = w;
    for (const char* key : {"kiln_packed_desc", "kiln_packed_shape", "kiln_packed_from", "kiln_packed_tail"}) n.attrs.erase(key);
  }
  for (const auto& name : unpacked) g.initializers.erase(name);
  // Weights kept transposed go out as [K, N], as a FusedMatMul reads them without the attribute.
  std::map<std::string, std::string> turned;  // [N, K] name -> its [K, N] copy
  FreshNames names(g);
  for (auto& n : g.nodes) {
    if (!is_matmul(n) || !weight_is_nk(n)) continue;
    auto [it, fresh] = turned.try_emplace(n.inputs[1]);
    if (fresh) {
      const Tensor& nk = g.initializers.at(n.inputs[1]);
      Tensor kn(DType::Float32, {nk.dim(1), nk.dim(0)});
      tensor_ops::permute(nk.data<float>(), nk.shape(), {1, 0}, kn.data<float>());
      it->second = names.make(n.inputs[1] + "/transposed");
      g.initializers[it->second] = kn;
    }
    n.inputs[1] = it->second;
    n.attrs.erase("kiln_weight_nk");
  }
  GraphView view(g);
  for (const auto& [nk, kn] : turned)
    if (view.readers(nk) == 0 && !view.is_graph_output(nk)) g.initializers.erase(nk);
}

const WeightPacking kMatMulPacking{pack_matmul_weights, unpack_matmul_weights};

class MatMul : public Kernel {
 public:
  explicit MatMul(const KernelInit& init) : weight_(init.constant(1)) {
    const ir::Node& node = init.node;
    if (node.domain == "kiln" && node.op_type == "MatMul") {
      perm_a_ = node.attr_ints("perm_a"), perm_b_ = node.attr_ints("perm_b"), perm_y_ = node.attr_ints("perm_y");
      alpha_ = node.attr_float("kiln_alpha", 1.0f);
      weight_ = nullptr;  // read through a view, never packed
    } else if (node.has_attr("kiln_alpha")) {
      fail(ErrorCode::InvalidGraph, "kiln_alpha belongs to kiln::MatMul, not ", node.op_type);
    }
    if (node.has_attr("kiln_packed_desc")) {
      const std::vector<int64_t> kn = node.attr_ints("kiln_packed_shape");
      packed_layout_ = desc_from_attr(node);
      tail_ = node.attr_string("kiln_packed_tail", "");
      // The tail ends the last panel (or, in another layout, is under a cache line).
      const std::optional<PackedPanels> panels = PackedPanels::from(packed_layout_, nullptr);
      const size_t most_tail = panels ? sizeof(float) * size_t(panels->panel_stride) : 63;
      if (!weight_ || kn.size() != 2 || weight_->dtype() != DType::UInt8 || tail_.size() > most_tail ||
          size_t(weight_->size()) + tail_.size() != packed_layout_.get_size())
        fail(ErrorCode::InvalidGraph, "a packed weight must be a constant of ", packed_layout_.get_size(),
             " bytes (with kiln_packed_tail's, at most ", most_tail, ") and kiln_packed_shape [K, N]");
      packed_shape_ = Shape(kn.begin(), kn.end());
    }
    bf16_ = node.attr_int("kiln_bf16", 0) != 0 && weight_ && weight_->rank() == 2;
    w_nk_ = weight_is_nk(node) && packed_shape_.empty();
    if (w_nk_ && (node.op_type != "FusedMatMul" || !weight_ || weight_->rank() != 2 || weight_->dtype() != DType::Float32))
      fail(ErrorCode::InvalidGraph, "kiln_weight_nk needs a FusedMatMul with a constant 2-D float weight");
    if (node.op_type != "FusedMatMul") return;
    residual_ = node.has_input(3);
    bias_ = init.constant(2);
    const int64_t n = !packed_shape_.empty() ? packed_shape_[1] : !weight_ ? -1 : weight_->dim(w_nk_ ? 0 : 1);
    const DType wtype = packed_shape_.empty() && weight_ ? weight_->dtype() : DType::Float32;
    if (!weight_ || (packed_shape_.empty() && weight_->rank() != 2) || !bias_ || bias_->size() != n ||
        wtype != DType::Float32 || bias_->dtype() != DType::Float32)
      fail(ErrorCode::InvalidGraph, "FusedMatMul needs a constant 2-D float weight and a constant bias of N values");
    const std::string act = node.attr_string("activation", "");
    using alg = dnnl::algorithm;
    using Act = GemmEpilogue::Act;
    if (act == "Relu") activation_ = alg::eltwise_relu, act_ = Act::Relu;
    else if (act == "Gelu") activation_ = alg::eltwise_gelu_erf, act_ = Act::Gelu;
    else if (act == "GeluTanh") activation_ = alg::eltwise_gelu_tanh, act_ = Act::GeluTanh;
    else if (!act.empty()) fail(ErrorCode::InvalidGraph, "FusedMatMul: unknown activation '", act, "'");
  }

  void prepare(OpContext& ctx) override {
    const Tensor& a = ctx.input(0);
    const bool prepacked = !packed_shape_.empty();
    const DType b_type = prepacked ? DType::Float32 : ctx.input(1).dtype();
    const Shape a_shape = tensor_ops::permuted(a.shape(), perm_a_, "perm_a");
    const Shape b_shape = prepacked ? packed_shape_
                          : w_nk_   ? Shape{weight_->dim(1), weight_->dim(0)}
                                    : tensor_ops::permuted(ctx.input(1).shape(), perm_b_, "perm_b");
    if (a.dtype() != b_type)
      fail(ErrorCode::InvalidArgument, "A is ", dtype_name(a.dtype()), " but B is ", dtype_name(b_type));
    if (a_shape.empty() || b_shape.empty()) fail(ErrorCode::InvalidArgument, "MatMul inputs must not be scalars");
    Shape sa = a_shape, sb = b_shape;
    const bool a_vec = sa.size() == 1, b_vec = sb.size() == 1;
    if (a_vec) sa.insert(sa.begin(), 1);
    if (b_vec) sb.push_back(1);
    const int64_t m = sa[sa.size() - 2], k = sa.back(), n = sb.back();
    if (sb[sb.size() - 2] != k)
      fail(ErrorCode::InvalidArgument, "A ", shape_str(a_shape), " and B ", shape_str(b_shape),
           " do not match: A has K=", k, ", B has K=", sb[sb.size() - 2]);
    Shape batch = broadcast_shapes({Shape(sa.begin(), sa.end() - 2), Shape(sb.begin(), sb.end() - 2)});
    Shape out = batch;
    if (!a_vec) out.push_back(m);
    if (!b_vec) out.push_back(n);
    Shape y_shape = tensor_ops::permuted(out, perm_y_, "perm_y");
    if (residual_) {  // Y = product + Z; Z of the product's shape rides on the sum post-op
      const Tensor& z = ctx.input(3);
      if (z.dtype() != a.dtype())
        fail(ErrorCode::InvalidArgument, "Z is ", dtype_name(z.dtype()), " but A is ", dtype_name(a.dtype()));
      y_shape = broadcast_shapes({out, z.shape()});
      z_in_place_ = z.shape() == out;
      if (!z_in_place_) product_ = Tensor(a.dtype(), out);
    }
    ctx.set_output(0, a.dtype(), y_shape);
    out_ = out;
    dtype_ = a.dtype();
    use_dnnl_ = dtype_ == DType::Float32 && shape_size(out) > 0 && k > 0;
    sa_ = sa, sb_ = sb, batch_ = batch, m_ = m, k_ = k, n_ = n;
    if (!use_dnnl_) {
      if (dtype_ != DType::Float32 && bias_) fail(ErrorCode::InvalidArgument, "FusedMatMul takes float inputs");
      return;
    }
    threads_ = primitive_threads(2.0 * double(shape_size(out)) * double(k));
    ThreadLimit limit(threads_);
    using tag = dnnl::memory::format_tag;
    const bool views = !perm_a_.empty() || !perm_b_.empty() || !perm_y_.empty();
    own_ = false;
    if (sb.size() == 2 && !views) {  // fold A's batch into M: one 2-D product with a packable weight
      const int64_t rows = shape_size(sa) / k;
      rows_ = rows;
      // Small products run on Kiln's packed_gemm, which makes nothing for a new M, and so do
      // weights of a megabyte and more at every row count, which it streams from memory while
      // it computes (BERT's 768x768 and 768x3072 products 9-15% faster than on oneDNN's gemm and
      // brgemm, GPT-2's LM head 14%; its 3072x768 ones 4-9% at 1 thread and 10-15% at 2, once
      // in panels of 48 columns). Large products of small weights run on oneDNN's brgemm,
      // whose creation their work pays for.
      if (!bf16_ && weight_ &&
          (2.0 * double(rows) * double(k) * double(n) <= kOwnGemmFlops || streams_on_packed_gemm(k, n)) &&
          find_panels(k, n)) {
        own_ = true;
        return;
      }
      auto a_md = plain_desc({rows, k}, bf16_ ? DType::BFloat16 : dtype_);
      auto c_md = plain_desc({rows, n}, dtype_);
      if (bf16_) {  // fast-math: A is converted to bfloat16 on each run, W once
        a_f32_md_ = plain_desc({rows, k}, dtype_);
        a_bf16_ = dnnl::memory(a_md, dnnl_engine());
        a_to_bf16_ = dnnl::reorder(dnnl::reorder::primitive_desc(dnnl_engine(), a_f32_md_, dnnl_engine(), a_md));
      }
      const dnnl::primitive_attr attr = post_op_attr(residual_ && z_in_place_);  // with alpha
      auto make_pd = [&](const dnnl::memory::desc& b_md) {
        auto desc = bias_ ? dnnl::matmul::desc(a_md, b_md, plain_desc({1, n}, dtype_), c_md)
                          : dnnl::matmul::desc(a_md, b_md, c_md);
        return dnnl::matmul::primitive_desc(desc, attr, dnnl_engine());
      };
      a_md_ = a_md, c_md_ = c_md;
      if (!tail_.empty()) unpack_weight();  // a tail's panels are for packed_gemm alone
      if (!packed_shape_.empty()) {
        try {
          prim_ = dnnl::matmul(make_pd(packed_layout_));
          b_md_ = packed_layout_;
          return;
        } catch (const dnnl::error&) {
          unpack_weight();  // a layout this A's primitive does not take: back to plain, packed anew
        }
      }
      const auto w_type = bf16_ ? dnnl::memory::data_type::bf16 : dnnl::memory::data_type::f32;
      auto pd = make_pd(weight_ ? dnnl::memory::desc({k, n}, w_type, tag::any) : plain_desc({k, n}, dtype_));
      prim_ = dnnl::matmul(pd);
      b_md_ = pd.weights_desc();
      auto b_plain = stored_weight_desc(k, n, w_nk_);
      packed_.pack(weight_, b_plain, pd.weights_desc());
      if (!packed_) b_md_ = b_plain;
    } else {
      // Batched: broadcast batch dims by padding both to the output's rank.
      const size_t r = batch.size() + 2;
      auto pad = [&](const Shape& s) {
        Shape p(r - s.size(), 1);
        p.insert(p.end(), s.begin(), s.end());
        return p;
      };
      Shape pa = pad(sa), pb = pad(sb), pc = batch;
      pc.push_back(m);
      pc.push_back(n);
      a_md_ = plain_desc(pa, dtype_), b_md_ = plain_desc(pb, dtype_), c_md_ = plain_desc(pc, dtype_);
      if (views) {  // the transposes as strides over the tensors as stored
        const auto f32 = dnnl::memory::data_type::f32;
        a_md_ = dnnl::memory::desc(dnnl_dims(pa), f32, tensor_ops::view_strides(a.shape(), perm_a_, r));
        b_md_ = dnnl::memory::desc(dnnl_dims(pb), f32, tensor_ops::view_strides(ctx.input(1).shape(), perm_b_, r));
        if (!perm_y_.empty()) {  // result element i of C lands where Transpose(C, perm_y) keeps it
          const std::vector<int64_t> y = tensor_ops::contiguous_strides(tensor_ops::permuted(pc, perm_y_, "perm_y"));
          std::vector<int64_t> c(r);
          for (size_t i = 0; i < r; ++i) c[size_t(perm_y_[i])] = y[i];
          c_md_ = dnnl::memory::desc(dnnl_dims(pc), f32, c);
        }
      }
      prim_ = dnnl::matmul(
          dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md_, b_md_, c_md_), post_op_attr(false), dnnl_engine()));
      packed_ = PackedWeights();
    }
  }

  // Z's buffer becomes Y's when Z dies here: the sum post-op then adds in place.
  int inplace_input() const override { return residual_ ? 3 : -1; }

  void compute(OpContext& ctx) override {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    Tensor& c = ctx.output(0);
    if (c.size() == 0) return;
    if (!use_dnnl_) {
      reference_through_views(a, b, c);
      if (alpha_ != 1.0f)
        dispatch(TypeList<double, float>{}, c.dtype(), "MatMul", [&]<typename T>() {
          T* pc = c.data<T>();
          for (int64_t i = 0; i < c.size(); ++i) pc[i] *= T(alpha_);
        });
      return;
    }
    ThreadLimit limit(threads_);
    // A Z that broadcasts is added after the product, which then lands in product_.
    Tensor& dst = residual_ && !z_in_place_ ? product_ : c;
    if (own_) {  // Kiln's packed_gemm
      const GemmEpilogue ep{bias_ ? bias_->data<float>() : nullptr, act_,
                            residual_ && z_in_place_ ? ctx.input(3).data<float>() : nullptr};
      packed_gemm(a.data<float>(), rows_, *panels_, ep, dst.data<float>());
      if (residual_ && !z_in_place_) binary_loop<float, float>(product_, ctx.input(3), c, [](float x, float z) { return x + z; });
      return;
    }
    auto& stream = dnnl_stream();
    // A load-time packed weight is the initializer itself, b_md_ its layout.
    dnnl::memory bm = packed_ ? packed_.memory() : wrap(b_md_, weight_ ? weight_->raw() : b.raw());
    dnnl::memory am = wrap(a_md_, a.raw());
    if (bf16_) {
      dnnl::memory a_f32 = wrap(a_f32_md_, a.raw());
      a_to_bf16_.execute(stream, a_f32, a_bf16_);
      am = a_bf16_;
    }
    if (residual_ && z_in_place_ && c.raw() != ctx.input(3).raw()) std::memcpy(c.raw(), ctx.input(3).raw(), c.bytes());
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, wrap(c_md_, dst.raw())}};
    if (bias_) args[DNNL_ARG_BIAS] = wrap(plain_desc({1, n_}, dtype_), bias_->raw());
    prim_.execute(stream, args);
    stream.wait();
    if (residual_ && !z_in_place_) binary_loop<float, float>(product_, ctx.input(3), c, [](float x, float z) { return x + z; });
  }

 private:
  // The reference loop on dense copies of the transposed views.
  void reference_through_views(const Tensor& a, const Tensor& b, Tensor& c) {
    if (perm_a_.empty() && perm_b_.empty() && perm_y_.empty()) return reference(a, b, c);
    auto dense = [](const Tensor& t, const std::vector<int64_t>& perm) {
      if (perm.empty()) return t;
      Tensor out(t.dtype(), tensor_ops::permuted(t.shape(), perm, "perm"));
      tensor_ops::dispatch_elements(t.dtype(), [&]<typename T>() {
        tensor_ops::permute(tensor_ops::elems<T>(t), t.shape(), perm, tensor_ops::elems<T>(out));
      });
      return out;
    };
    Tensor result = perm_y_.empty() ? c : Tensor(c.dtype(), out_);
    reference(dense(a, perm_a_), dense(b, perm_b_), result);
    if (perm_y_.empty()) return;
    tensor_ops::dispatch_elements(c.dtype(), [&]<typename T>() {
      tensor_ops::permute(tensor_ops::elems<T>(result), result.shape(), perm_y_, tensor_ops::elems<T>(c));
    });
  }

  // Every type oneDNN does not take: a plain triple loop over broadcast batches.
  void reference(const Tensor& a, const Tensor& b, Tensor& c) {
    dispatch(TypeList<double, int32_t, int64_t, uint32_t, uint64_t, float>{}, dtype_, "MatMul", [&]<typename T>() {
      const T* pa = a.data<T>();
      const T* pb = b.data<T>();
      T* pc = c.data<T>();
      Shape ba(sa_.begin(), sa_.end() - 2), bb(sb_.begin(), sb_.end() - 2);
      BroadcastWalk walk = make_broadcast_walk(batch_, {ba, bb});
      const int64_t batches = shape_size(batch_);
      parallel_for(batches, 1, [&](int64_t s, int64_t e) {
        std::vector<int64_t> off(2);
        for (int64_t bi = s; bi < e; ++bi) {
          // Element offsets of this batch in A and B, in units of matrices.
          int64_t rem = bi, oa = 0, ob = 0;
          for (size_t d = walk.dims.size(); d-- > 0;) {
            int64_t cidx = rem % walk.dims[d];
            rem /= walk.dims[d];
            oa += cidx * walk.strides[0][d];
            ob += cidx * walk.strides[1][d];
          }
          const T* ma = pa + oa * m_ * k_;
          const T* mb = pb + ob * k_ * n_;
          T* mc = pc + bi * m_ * n_;
          for (int64_t i = 0; i < m_; ++i)
            for (int64_t j = 0; j < n_; ++j) {
              T acc = T(0);
              for (int64_t q = 0; q < k_; ++q) acc += ma[i * k_ + q] * mb[q * n_ + j];
              mc[i * n_ + j] = acc;
            }
        }
      });
    });
  }

  // The product times alpha, the activation, then (sum) the add of what the destination
  // holds: Z when the product lands.
  dnnl::primitive_attr post_op_attr(bool sum) const {
    dnnl::post_ops ops;
    if (activation_ != dnnl::algorithm::undef) ops.append_eltwise(1.f, activation_, 0.f, 0.f);
    if (sum) ops.append_sum(1.f);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    if (alpha_ != 1.0f) attr.set_output_scales(0, {alpha_});
    return attr;
  }

  // The constant weight as panels packed_gemm reads: the load-time packed initializer, or a
  // copy packed here in panel_layout. Found once: K and N never change.
  bool find_panels(int64_t k, int64_t n) {
    if (!panels_tried_) {
      panels_tried_ = true;
      if (!packed_shape_.empty()) {
        panels_ = PackedPanels::from(packed_layout_, weight_->raw());
        if (panels_ && !tail_.empty()) {  // the last panel, whole, one copy for every frame
          const int64_t floats = panels_->panel_stride;
          const size_t kept = size_t(floats) * sizeof(float) - tail_.size();
          const float* stored = panels_->panel(panels_->count() - 1);
          last_panel_ = derive_weight(*weight_, packed_layout_, plain_desc({floats}, DType::Float32), [&](dnnl::memory& m) {
            std::memcpy(m.get_data_handle(), stored, kept);
            std::memcpy(static_cast<char*>(m.get_data_handle()) + kept, tail_.data(), tail_.size());
          });
          panels_->last = static_cast<const float*>(last_panel_->get_data_handle());
        }
      } else if (weight_->dtype() == DType::Float32 && weight_->rank() == 2) {
        panels_ = PackedPanels::pack(panel_pack_, weight_, stored_weight_desc(k, n, w_nk_));
      }
    }
    return panels_.has_value();
  }

  void unpack_weight() {
    plain_weight_ = Tensor(DType::Float32, packed_shape_);
    reorder_into(packed_layout_, whole_packed(*weight_, tail_).raw(),
                 wrap(plain_desc(packed_shape_, DType::Float32), plain_weight_.raw()));
    tail_.clear();
    weight_ = &plain_weight_;
    packed_shape_.clear();
  }

  const Tensor* weight_;
  float alpha_ = 1.0f;  // kiln::MatMul: the product's scale (a scaled query's or scores' scalar)
  const Tensor* bias_ = nullptr;
  Shape packed_shape_;  // [K, N] of a load-time packed weight, else empty
  bool w_nk_ = false;   // the constant weight is stored [N, K] (kiln_weight_nk)
  dnnl::memory::desc packed_layout_;
  std::string tail_;  // kiln_packed_tail: the packed bytes past the initializer's end
  std::shared_ptr<const dnnl::memory> last_panel_;  // with a tail: the last panel, whole
  Tensor plain_weight_;  // the packed weight unpacked, if its layout stopped fitting
  std::vector<int64_t> perm_a_, perm_b_, perm_y_;  // kiln::MatMul's transposed views
  Shape out_;  // the product's shape before perm_y
  int threads_ = 0;  // primitive_threads() of the product's work
  bool residual_ = false;    // FusedMatMul's Z (input 3)
  bool z_in_place_ = false;  // Z has the product's shape: oneDNN's sum post-op adds what Y holds
  Tensor product_;           // the product before a broadcasting Z is added
  bool bf16_ = false;  // kiln_bf16 (fast-math)
  dnnl::memory::desc a_f32_md_;
  dnnl::memory a_bf16_;
  dnnl::reorder a_to_bf16_;
  dnnl::algorithm activation_ = dnnl::algorithm::undef;
  DType dtype_ = DType::Undefined;
  bool use_dnnl_ = false;
  dnnl::matmul prim_;
  dnnl::memory::desc a_md_, b_md_, c_md_;
  PackedWeights packed_;
  Shape sa_, sb_, batch_;
  int64_t m_ = 0, k_ = 0, n_ = 0;
  bool own_ = false;      // this shape runs on packed_gemm over panels_
  std::optional<PackedPanels> panels_;
  PackedWeights panel_pack_;  // what panels_ reads, unless the initializer is packed already
  bool panels_tried_ = false;
  GemmEpilogue::Act act_ = GemmEpilogue::Act::None;
  int64_t rows_ = 0;  // M with A's batch folded in
};

const OpRegistration kMatMul{"MatMul", make_kernel<MatMul>};
const OpRegistration kFusedMatMul{"kiln", "FusedMatMul", 1, make_kernel<MatMul>};
const OpRegistration kViewMatMul{"kiln", "MatMul", 1, make_kernel<MatMul>};

}  // namespace
}  // namespace kiln
