#include "kiln/ops/common/dnnl.h"

#include <functional>
#include <mutex>
#include <vector>

namespace kiln {

dnnl::engine& dnnl_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& dnnl_stream() {
  thread_local dnnl::stream stream(dnnl_engine());
  return stream;
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

void reorder_into(const dnnl::memory::desc& from, const void* src, dnnl::memory dst) {
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
