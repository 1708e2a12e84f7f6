#include "tinyfleet/kernels/runtime/interpreter.h"

#include "operator_registry.h"
#include "tinyfleet/kernels/ops/patch_rows.h"

// Host builds: the last field of an operator's EvalContext, the weights load() packed
// for it (packed_operators.cpp); the Cortex-M build reads them as stored.
#if defined(TINYFLEET_RUNTIME_PACKS_WEIGHTS)
#define TINYFLEET_PACKED_WEIGHTS_OF(op) , packed_weights(op)
#else
#define TINYFLEET_PACKED_WEIGHTS_OF(op)
#endif

namespace tinyfleet::kernels {

namespace {

using namespace runtime_detail;
using artifact::TensorType;

RuntimeError fail(LoadStatus s, int32_t index, const char* what) { return {s, index, what}; }

size_t type_size(TensorType t) { return t == artifact::TensorType_Int8 ? 1 : 4; }

size_t bytes_of(const artifact::Tensor* t) {
  return static_cast<size_t>(count(dims_of(t))) * type_size(t->type());
}

// Geometry small enough that no index or accumulator can overflow.
bool geometry_ok(const Geometry& g) {
  return in_range(g.stride_h, 1, 64) && in_range(g.stride_w, 1, 64) &&
         in_range(g.dilation_h, 1, 64) && in_range(g.dilation_w, 1, 64) &&
         in_range(g.padding.top, 0, 255) && in_range(g.padding.left, 0, 255) &&
         in_range(g.padding.bottom, 0, 255) && in_range(g.padding.right, 0, 255) &&
         in_range(g.filter_h, 1, 255) && in_range(g.filter_w, 1, 255) &&
         in_range(g.depth_multiplier, 1, 64) && in_range(g.activation.min, -128, 127) &&
         in_range(g.activation.max, g.activation.min, 127);
}

}  // namespace

const char* to_string(LoadStatus s) {
  switch (s) {
    case LoadStatus::kOk:
      return "ok";
    case LoadStatus::kNotVerified:
      return "artifact failed verification";
    case LoadStatus::kWrongIdentifier:
      return "not a tinyfleet artifact";
    case LoadStatus::kUnsupportedMajor:
      return "unsupported artifact format version";
    case LoadStatus::kMisaligned:
      return "artifact or weights not 16-byte aligned";
    case LoadStatus::kBadTensor:
      return "invalid tensor";
    case LoadStatus::kBadOperator:
      return "invalid operator";
    case LoadStatus::kBadGraph:
      return "invalid graph";
    case LoadStatus::kArenaTooSmall:
      return "arena too small";
    case LoadStatus::kNotLoaded:
      return "no artifact loaded";
    case LoadStatus::kKernelFailed:
      return "kernel failed";
  }
  return "unknown";
}

RuntimeError Interpreter::load(const uint8_t* data, size_t size) {
  model_ = nullptr;
  arena_ = nullptr;
#if defined(TINYFLEET_RUNTIME_PACKS_WEIGHTS)
  packed_.reset();  // the previous model's packed weights
  packed_bytes_ = 0;
#endif
  if (!data || size < 8) return fail(LoadStatus::kNotVerified, -1, "artifact too short");
  if (reinterpret_cast<uintptr_t>(data) % 16 != 0) {
    return fail(LoadStatus::kMisaligned, -1, "artifact start is not 16-byte aligned");
  }
  if (!artifact::ModelBufferHasIdentifier(data)) {
    return fail(LoadStatus::kWrongIdentifier, -1, "file identifier is not TFA1");
  }
  flatbuffers::Verifier verifier(data, size, 64, 1u << 20);
  if (!artifact::VerifyModelBuffer(verifier)) {
    return fail(LoadStatus::kNotVerified, -1, "FlatBuffers verifier refused the artifact");
  }
  const auto* m = artifact::GetModel(data);
  if (m->format_major() != 1) {
    return fail(LoadStatus::kUnsupportedMajor, -1, "format_major is not 1");
  }
  const auto* tensors = m->tensors();
  const auto* ops = m->operators();
  if (!tensors || !ops || tensors->size() == 0 || ops->size() == 0 ||
      tensors->size() > kMaxTensors || ops->size() > kMaxOperators) {
    return fail(LoadStatus::kBadGraph, -1, "tensor or operator count out of range");
  }
  if (m->tensor_arena_bytes() > (1u << 30) || m->scratch_bytes() > (1u << 30)) {
    return fail(LoadStatus::kBadGraph, -1, "arena or scratch size beyond 1 GiB");
  }
  const int32_t tensor_count = static_cast<int32_t>(tensors->size());
  const size_t buffer_count = len(m->buffers());

  // Tensors: shapes, types, where their bytes are.
  for (int32_t i = 0; i < tensor_count; ++i) {
    const auto* t = tensors->Get(static_cast<uint32_t>(i));
    const Dims d = dims_of(t);
    // Checked dimension by dimension so the product cannot overflow.
    int64_t elements = 1;
    bool shape_ok = t->shape() != nullptr;
    for (const int32_t extent : {d.n, d.h, d.w, d.c}) {
      shape_ok = shape_ok && extent > 0 && extent <= (1 << 28) &&
                 (elements *= extent) <= (int64_t{1} << 28);
    }
    if (!shape_ok) {
      return fail(LoadStatus::kBadTensor, i, "shape missing or not positive");
    }
    if (t->type() < artifact::TensorType_MIN || t->type() > artifact::TensorType_MAX) {
      return fail(LoadStatus::kBadTensor, i, "unknown tensor type");
    }
    if (t->type() == artifact::TensorType_Int8 &&
        (len(t->scale()) == 0 || len(t->zero_point()) == 0)) {
      return fail(LoadStatus::kBadTensor, i, "int8 tensor without quantization");
    }
    if (len(t->scale()) != len(t->zero_point())) {
      return fail(LoadStatus::kBadTensor, i, "scale and zero_point lengths differ");
    }
    for (uint32_t q = 0; q < len(t->scale()); ++q) {
      const float sc = t->scale()->Get(q);
      if (!(sc > 0.0f && sc < 3.0e38f) || (t->type() == artifact::TensorType_Int8 &&
                                           !in_range(t->zero_point()->Get(q), -128, 127))) {
        return fail(LoadStatus::kBadTensor, i, "scale not positive or zero point outside int8");
      }
    }
    if (t->buffer() >= 0) {
      if (static_cast<size_t>(t->buffer()) >= buffer_count) {
        return fail(LoadStatus::kBadTensor, i, "buffer index out of range");
      }
      const auto* b = m->buffers()->Get(static_cast<uint32_t>(t->buffer()));
      if (!b->data() || b->data()->size() != bytes_of(t)) {
        return fail(LoadStatus::kBadTensor, i, "buffer size differs from the tensor's");
      }
      if ((b->data()->data() - data) % 16 != 0) {
        return fail(LoadStatus::kMisaligned, i, "weights not 16-byte aligned");
      }
    } else if (band_producer(m, i) < 0) {  // a band buffer: check_patches checks it
      if (uint64_t{t->arena_offset()} + bytes_of(t) > m->tensor_arena_bytes()) {
        return fail(LoadStatus::kBadTensor, i, "tensor outside the planned arena");
      }
      if (t->type() != artifact::TensorType_Int8 && t->arena_offset() % 4 != 0) {
        return fail(LoadStatus::kBadTensor, i, "32-bit tensor at an unaligned arena offset");
      }
    }
  }
  auto tensor = [&](int32_t idx) { return tensors->Get(static_cast<uint32_t>(idx)); };
  auto valid = [&](int32_t idx) { return idx >= 0 && idx < tensor_count; };
  for (const auto* list : {m->inputs(), m->outputs()}) {
    if (!list || list->size() == 0) return fail(LoadStatus::kBadGraph, -1, "no inputs or outputs");
    for (int32_t idx : *list) {
      if (!valid(idx) || tensor(idx)->buffer() >= 0 || band_producer(m, idx) >= 0) {
        return fail(LoadStatus::kBadGraph, idx, "graph input/output is not an arena tensor");
      }
    }
  }

  // Operators: arity, types, shapes, parameters.
  for (int32_t k = 0; k < static_cast<int32_t>(ops->size()); ++k) {
    const auto* op = ops->Get(static_cast<uint32_t>(k));
    const size_t nin = len(op->inputs()), nout = len(op->outputs());
    if (nout != 1 || nin == 0) return fail(LoadStatus::kBadOperator, k, "operator arity");
    // Conv2D, DepthwiseConv2D and FullyConnected (kinds 0 to 2) may go without a bias.
    const bool has_bias = op->kind() <= artifact::OpKind_FullyConnected;
    for (uint32_t i = 0; i < nin; ++i) {
      const int32_t idx = op->inputs()->Get(i);
      if (!valid(idx) && !(has_bias && i == 2 && idx == -1)) {  // -1: no bias
        return fail(LoadStatus::kBadOperator, k, "input tensor index");
      }
      const int32_t band = band_producer(m, idx);  // only the next operator reads a band
      if (band >= 0 && (i != 0 || band != k - 1)) {
        return fail(LoadStatus::kBadOperator, k, "patch intermediate read outside its chain");
      }
    }
    const int32_t out_idx = op->outputs()->Get(0);
    if (!valid(out_idx) || tensor(out_idx)->buffer() >= 0) {
      return fail(LoadStatus::kBadOperator, k, "output must be an arena tensor");
    }
    const auto* x = tensor(op->inputs()->Get(0));
    const auto* y = tensor(out_idx);
    const Dims xd = dims_of(x), yd = dims_of(y);
    const bool int8_io =
        x->type() == artifact::TensorType_Int8 && y->type() == artifact::TensorType_Int8;
    const Geometry g = geometry_of(op);
    if (!geometry_ok(g)) {
      return fail(LoadStatus::kBadOperator, k, "stride, dilation, padding or clamp out of range");
    }
    const auto* r = find_registration(op->kind());  // the kind's registered Prepare
    if (!r) return fail(LoadStatus::kBadOperator, k, "unknown operator kind");
    const char* refused = r->prepare({m, op, x, y, nin, int8_io, xd, yd, g});
    if (refused) return fail(LoadStatus::kBadOperator, k, refused);
  }
  if (const char* refused = check_patches(m)) return fail(LoadStatus::kBadGraph, -1, refused);
  base_ = data;
  model_ = m;
#if defined(TINYFLEET_RUNTIME_PACKS_WEIGHTS)
  pack_weights();
#endif
  return {};
}

size_t Interpreter::arena_bytes() const {
  if (!model_) return 0;
  const size_t tensors = (size_t{model_->tensor_arena_bytes()} + 15) & ~size_t{15};
  return tensors + model_->scratch_bytes();
}

RuntimeError Interpreter::bind_arena(uint8_t* arena, size_t size) {
  if (!model_) return fail(LoadStatus::kNotLoaded, -1, "load() first");
  if (!arena || size < arena_bytes()) {
    return fail(LoadStatus::kArenaTooSmall, -1, "arena smaller than arena_bytes()");
  }
  arena_ = arena;
  arena_size_ = size;
  return {};
}

TensorView Interpreter::view(int32_t idx) const {
  TensorView v;
  const auto* t = model_->tensors()->Get(static_cast<uint32_t>(idx));
  v.type = t->type();
  v.dims = dims_of(t);
  v.bytes = bytes_of(t);
  if (len(t->scale()) > 0) v.scale = t->scale()->Get(0);
  if (len(t->zero_point()) > 0) v.zero_point = t->zero_point()->Get(0);
  if (t->buffer() >= 0) {
    v.data = const_cast<uint8_t*>(
        model_->buffers()->Get(static_cast<uint32_t>(t->buffer()))->data()->data());
  } else if (arena_) {
    v.data = arena_ + t->arena_offset();
  }
  return v;
}

int32_t Interpreter::input_count() const {
  return model_ ? static_cast<int32_t>(model_->inputs()->size()) : 0;
}
int32_t Interpreter::output_count() const {
  return model_ ? static_cast<int32_t>(model_->outputs()->size()) : 0;
}
TensorView Interpreter::input(int32_t i) const {
  return view(model_->inputs()->Get(static_cast<uint32_t>(i)));
}
TensorView Interpreter::output(int32_t i) const {
  return view(model_->outputs()->Get(static_cast<uint32_t>(i)));
}

RuntimeError Interpreter::invoke() {
  if (!model_ || !arena_) return fail(LoadStatus::kNotLoaded, -1, "load() and bind_arena() first");
  const auto* ops = model_->operators();
  // A banded chain (format 1.3) runs at its first operator; the profiler gets it as one.
  const auto* plan = model_->patch();
  for (int32_t k = 0; k < static_cast<int32_t>(ops->size()); ++k) {
    const auto* op = ops->Get(static_cast<uint32_t>(k));
    const uint32_t t0 = profiler_.now ? profiler_.now(profiler_.ctx) : 0;
    const bool banded = plan && plan->first_operator() == k;
    const auto err = banded ? run_bands(plan) : run(k, op);
    if (err.status != LoadStatus::kOk) return err;
    if (profiler_.now && profiler_.record) {
      profiler_.record(profiler_.ctx, k, op->kind(), profiler_.now(profiler_.ctx) - t0);
    }
    if (banded) k += plan->operators() - 1;
  }
  return {};
}

RuntimeError Interpreter::run(int32_t k, const artifact::Operator* op) {
  const size_t tensors = (size_t{model_->tensor_arena_bytes()} + 15) & ~size_t{15};
  // Every kind was found at load().
  const Status s = find_registration(op->kind())
                       ->eval({op, view(op->inputs()->Get(0)), view(op->outputs()->Get(0)), *this,
                               arena_ + tensors, model_->scratch_bytes(),
                               geometry_of(op) TINYFLEET_PACKED_WEIGHTS_OF(k)});
  if (s != Status::kOk) return fail(LoadStatus::kKernelFailed, k, to_string(s));
  return {};
}

// Patch-based execution (format 1.3, artifact.fbs PatchChain): a chain of window
// operators run in horizontal bands of rows (ops/patch_rows.h). load() checks the plan
// (check_patches; band_producer keeps the chain's intermediates out of every other use);
// invoke() runs the chain band by band (run_bands), each operator through its registered
// eval on views of the band's rows with the band's padding, so every output value is the
// one the whole-tensor run gives.
namespace {

constexpr int32_t kMaxChain = 8;

// The chain's operators, vertical geometry (a weighted kind's filter height is its
// filter tensor's) and tensors' dims: dims[0] the input, dims[i] operator i - 1's output.
// False when an operator is not a window kind or does not read the previous output, or a
// tensor holds more than one image.
bool chain_geometry(const artifact::Model* m, const artifact::PatchChain* c,
                    const artifact::Operator** ops, WindowRows* rows, Dims* dims) {
  int32_t prev = -1;
  for (int32_t i = 0; i < c->operators(); ++i) {
    const auto* op = ops[i] = m->operators()->Get(static_cast<uint32_t>(c->first_operator() + i));
    const auto kind = op->kind();
    const int32_t x = op->inputs()->Get(0);
    if ((kind > artifact::OpKind_DepthwiseConv2D && kind != artifact::OpKind_AveragePool2D &&
         kind != artifact::OpKind_MaxPool2D) ||
        (i > 0 && x != prev)) {
      return false;
    }
    prev = op->outputs()->Get(0);
    const Geometry g = geometry_of(op);
    dims[i] = dims_of(m->tensors()->Get(static_cast<uint32_t>(x)));
    dims[i + 1] = dims_of(m->tensors()->Get(static_cast<uint32_t>(prev)));
    if (dims[i].n != 1 || dims[i + 1].n != 1) return false;
    const int32_t filter =
        kind <= artifact::OpKind_DepthwiseConv2D
            ? dims_of(m->tensors()->Get(static_cast<uint32_t>(op->inputs()->Get(1)))).h
            : g.filter_h;
    rows[i] = {dims[i].h, g.stride_h, g.dilation_h, filter, g.padding.top};
  }
  return true;
}

}  // namespace

int32_t Interpreter::band_producer(const artifact::Model* m, int32_t t) {
  const auto* c = m->patch();
  const int32_t ops = static_cast<int32_t>(len(m->operators()));
  if (!c) return -1;
  // Runs before the operators are checked: every index and vector is checked here.
  const int64_t end = int64_t{c->first_operator()} + c->operators() - 1;
  for (int32_t k = c->first_operator(); k >= 0 && k < ops && k < end; ++k) {
    const auto* outs = m->operators()->Get(static_cast<uint32_t>(k))->outputs();
    if (len(outs) > 0 && outs->Get(0) == t) return k;
  }
  return -1;
}

const char* Interpreter::check_patches(const artifact::Model* m) {
  const auto* c = m->patch();
  if (!c) return nullptr;
  const int32_t ops = static_cast<int32_t>(m->operators()->size());
  if (!in_range(c->operators(), 2, kMaxChain) ||
      !in_range(c->first_operator(), 0, ops - c->operators()) ||
      len(m->patch_buffer_offsets()) != static_cast<size_t>(c->operators() - 1)) {
    return "patch plan operators or buffers out of range";
  }
  const artifact::Operator* op[kMaxChain];
  WindowRows rows[kMaxChain];
  Dims dims[kMaxChain + 1];
  if (!chain_geometry(m, c, op, rows, dims)) return "patch chain is not one image's window chain";
  const int32_t n = c->operators(), out_h = dims[n].h;
  if (!in_range(c->bands(), 1, out_h < 1024 ? out_h : 1024)) return "patch bands out of range";
  for (int32_t b = 0; b < c->bands(); ++b) {
    RowRange r[kMaxChain + 1];
    band_rows(rows, n, out_h, c->bands(), b, r);
    for (int32_t i = 1; i < n; ++i) {
      if (m->patch_buffer_offsets()->Get(static_cast<uint32_t>(i - 1)) +
              uint64_t(r[i].end - r[i].begin) * uint64_t(dims[i].w) * dims[i].c >
          m->tensor_arena_bytes()) {
        return "patch buffer outside the planned arena";
      }
    }
  }
  return nullptr;
}

RuntimeError Interpreter::run_bands(const artifact::PatchChain* c) {
  const artifact::Operator* op[kMaxChain];
  WindowRows rows[kMaxChain];
  Dims dims[kMaxChain + 1];
  chain_geometry(model_, c, op, rows, dims);
  const int32_t n = c->operators();
  const size_t tensors = (size_t{model_->tensor_arena_bytes()} + 15) & ~size_t{15};
  for (int32_t b = 0; b < c->bands(); ++b) {
    RowRange r[kMaxChain + 1];
    band_rows(rows, n, dims[n].h, c->bands(), b, r);
    TensorView v[2];
    for (int32_t i = 0; i < n; ++i) {
      // The band's views: the whole input's and output's rows, or a band buffer.
      for (int32_t j = 0; j < 2; ++j) {
        const int32_t t = i + j;
        v[j] = view(j ? op[i]->outputs()->Get(0) : op[i]->inputs()->Get(0));
        v[j].dims.h = r[t].end - r[t].begin;
        const size_t row = size_t(dims[t].w) * dims[t].c;  // (bytes: the eval reads dims)
        v[j].data =
            t == 0 || t == n
                ? static_cast<uint8_t*>(v[j].data) + row * r[t].begin
                : arena_ + model_->patch_buffer_offsets()->Get(static_cast<uint32_t>(t - 1));
      }
      Geometry g = geometry_of(op[i]);
      band_padding(rows[i], r[i], r[i + 1], &g.padding.top, &g.padding.bottom);
      const Status s =
          find_registration(op[i]->kind())
              ->eval({op[i], v[0], v[1], *this, arena_ + tensors, model_->scratch_bytes(),
                      g TINYFLEET_PACKED_WEIGHTS_OF(c->first_operator() + i)});
      if (s != Status::kOk)
        return {LoadStatus::kKernelFailed, c->first_operator() + i, to_string(s)};
    }
  }
  return {};
}

}  // namespace tinyfleet::kernels
