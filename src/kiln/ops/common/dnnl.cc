#include "kiln/ops/common/dnnl.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <vector>

#include "kiln/core/parallel.h"
#include "kiln/ops/tensor/tensor_copy.h"

namespace kiln {

dnnl::engine& dnnl_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& dnnl_stream() {
  thread_local dnnl::stream stream(dnnl_engine());
  return stream;
}

namespace {
bool effective_isa_in(std::initializer_list<dnnl::cpu_isa> isas) {
  const dnnl::cpu_isa have = dnnl::get_effective_cpu_isa();
  return std::find(isas.begin(), isas.end(), have) != isas.end();
}
}  // namespace

bool dnnl_int8_exact() {
  using isa = dnnl::cpu_isa;
  static const bool exact =
      effective_isa_in({isa::avx512_core_vnni, isa::avx512_core_bf16, isa::avx512_core_amx, isa::avx2_vnni});
  return exact;
}

bool dnnl_has_bf16() {
  using isa = dnnl::cpu_isa;
  static const bool has =
      effective_isa_in({isa::avx512_core, isa::avx512_core_vnni, isa::avx512_core_bf16, isa::avx512_core_amx});
  return has;
}

dnnl::memory::data_type dnnl_type(DType t) {
  using dt = dnnl::memory::data_type;
  switch (t) {
    case DType::Float32: return dt::f32;
    case DType::BFloat16: return dt::bf16;
    case DType::Float16: return dt::f16;
    case DType::Int32: return dt::s32;
    case DType::Int8: return dt::s8;
    case DType::UInt8: return dt::u8;
    default: fail(ErrorCode::NotImplemented, "oneDNN has no type for ", dtype_name(t));
  }
}

std::optional<PanelLayout> PanelLayout::of(const dnnl::memory::desc& layout) {
  const dnnl_memory_desc_t& d = layout.data;
  if (d.format_kind != dnnl_blocked || d.ndims != 2 || d.data_type != dnnl_f32 || d.offset0 != 0 || d.extra.flags != 0)
    return std::nullopt;
  const dnnl_blocking_desc_t& b = d.format_desc.blocking;
  const int64_t width = b.inner_blks[1];
  if (b.inner_nblks != 2 || b.inner_idxs[0] != 0 || b.inner_blks[0] != 16 || b.inner_idxs[1] != 1 ||
      (width != 16 && width != 32 && width != 48 && width != 64))
    return std::nullopt;
  // Within a panel the 16-row blocks follow one another, so row k sits at k * width.
  if (b.strides[0] != 16 * width || b.strides[1] < d.padded_dims[0] * width || d.padded_dims[0] % 16 != 0)
    return std::nullopt;
  return PanelLayout{d.dims[0], d.dims[1], width, b.strides[1], d.padded_dims[0]};
}

void pack_panels(const float* s, int64_t rs, int64_t cs, const PanelLayout& to, float* d) {
  const int64_t w = to.width, blocks = to.padded_k / 16, panels = (to.n + w - 1) / w;
  if (cs == 1) {
    // A row-major matrix: 16 rows into every panel in turn, reading `s` front to back (panel by
    // panel, each row a page or more apart, ran at 5 GB/s).
    parallel_for(panels * blocks, 16, [&](int64_t begin, int64_t end) {
      for (int64_t item = begin; item < end; ++item) {
        const int64_t p = item % panels, k0 = item / panels * 16;
        const int64_t rows = std::min<int64_t>(16, to.k - k0), cols = std::min(w, to.n - p * w);
        float* out = d + p * to.stride + k0 * w;
        if (rows < 16 || cols < w) std::memset(out, 0, sizeof(float) * size_t(16 * w));
        for (int64_t r = 0; r < rows; ++r)
          std::memcpy(out + r * w, s + (k0 + r) * rs + p * w, sizeof(float) * size_t(cols));
      }
    });
    return;
  }
  // Otherwise (a Linear's [N, K] weight, attention's keys) a panel's columns are rows of `s`:
  // 16 of them at a time, each read front to back into a 16-column strip of the panel, which
  // stays in L2. A whole panel's 48 rows at once read 48 streams: 1000x1280 into panels of 48
  // took 1.29 ms, strips 0.50; 768x3072 1.38 -> 1.11.
  const int64_t strips = w / 16;
  parallel_for(panels * strips, 1, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t p = item / strips, strip = item % strips * 16, j0 = p * w + strip;  // j0: its first column
      const int64_t cols = std::clamp<int64_t>(to.n - j0, 0, 16);
      float* out = d + p * to.stride + strip;
      for (int64_t k0 = 0; k0 < to.padded_k; k0 += 16) {
        const int64_t rows = std::min<int64_t>(16, to.k - k0);
        float* o = out + k0 * w;
#if defined(__AVX512F__)
        if (rs == 1 && rows == 16 && cols == 16) {
          tensor_ops::detail::transpose16x16(s + k0 + j0 * cs, cs, o, w);
          continue;
        }
#endif
        for (int64_t r = 0; r < 16; ++r)
          for (int64_t j = 0; j < 16; ++j) o[r * w + j] = r < rows && j < cols ? s[(k0 + r) * rs + (j0 + j) * cs] : 0.0f;
      }
    }
  });
}

namespace {
// `src`, a plain 2-D float weight, into the column panels `to` describes; false, with nothing
// written, for other layouts. oneDNN 2.6's reorder transposed PyTorch's [N, K] Linear weights
// into panels at 5 GB/s: 63 ms of ViT-B/16's 270 ms session creation.
bool pack_into_panels(const dnnl::memory::desc& from, const void* src, const dnnl::memory::desc& to, void* dst) {
  const std::optional<PanelLayout> pl = PanelLayout::of(to);
  const dnnl_memory_desc_t& f = from.data;
  if (!pl || f.format_kind != dnnl_blocked || f.ndims != 2 || f.data_type != dnnl_f32 || f.offset0 != 0 ||
      f.extra.flags != 0 || f.format_desc.blocking.inner_nblks != 0 || f.dims[0] != pl->k || f.dims[1] != pl->n ||
      pl->stride != pl->padded_k * pl->width)
    return false;
  const int64_t panels = (pl->n + pl->width - 1) / pl->width;
  if (to.get_size() != size_t(panels * pl->stride) * sizeof(float)) return false;
  pack_panels(static_cast<const float*>(src), f.format_desc.blocking.strides[0], f.format_desc.blocking.strides[1], *pl,
              static_cast<float*>(dst));
  return true;
}
}  // namespace

void reorder_into(const dnnl::memory::desc& from, const void* src, dnnl::memory dst) {
  if (pack_into_panels(from, src, dst.get_desc(), dst.get_data_handle())) return;
  dnnl::memory in = wrap(from, src);
  dnnl::reorder(in, dst).execute(dnnl_stream(), in, dst);
  dnnl_stream().wait();
}

std::shared_ptr<const dnnl::memory> derive_weight(const Tensor& weight, const dnnl::memory::desc& from,
                                                  const dnnl::memory::desc& to,
                                                  const std::function<void(dnnl::memory&)>& fill) {
  struct Entry {
    std::weak_ptr<void> owner;  // the weight's storage: a dead owner's address may come back
    const void* data;
    dnnl::memory::desc from;  // how the bytes are read: one buffer may be read transposed too
    dnnl::memory::desc desc;
    std::weak_ptr<const dnnl::memory> derived;
  };
  static std::mutex mu;
  static std::vector<Entry> cache;
  std::lock_guard<std::mutex> lock(mu);
  std::erase_if(cache, [](const Entry& e) { return e.owner.expired() || e.derived.expired(); });
  const auto& owner = weight.owner();
  for (const Entry& e : cache) {
    if (e.data == weight.raw() && e.from == from && e.desc == to && !e.owner.owner_before(owner) &&
        !owner.owner_before(e.owner)) {
      if (auto found = e.derived.lock()) return found;
    }
  }
  auto made = std::make_shared<dnnl::memory>(to, dnnl_engine());
  fill(*made);
  if (owner) cache.push_back({owner, weight.raw(), from, to, made});
  return made;
}

void PackedWeights::pack(const Tensor* weight, const dnnl::memory::desc& plain, const dnnl::memory::desc& wanted) {
  if (!weight || wanted == plain) {
    memory_.reset();
    return;
  }
  if (memory_ && memory_->get_desc() == wanted && from_ == plain) return;
  from_ = plain;
  memory_ = derive_weight(*weight, plain, wanted, [&](dnnl::memory& m) { reorder_into(plain, weight->raw(), m); });
}

dnnl::memory::desc plain_desc(const Shape& s, DType t) {
  dnnl::memory::dims strides(s.size());
  int64_t stride = 1;
  for (size_t i = s.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= std::max<int64_t>(s[i], 1);
  }
  return dnnl::memory::desc(dnnl_dims(s), dnnl_type(t), strides);
}

}  // namespace kiln
