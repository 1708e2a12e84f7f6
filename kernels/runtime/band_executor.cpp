// Patch-based execution (format 1.3, artifact.fbs PatchPlan): a chain of window
// operators run in horizontal bands of rows (ops/patch_rows.h). load() checks the plan
// (check_patches; band_producer keeps the chain's intermediates out of every other use);
// invoke() runs the chain band by band (run_bands), each operator through its registered
// eval on views of the band's rows with the band's padding, so every output value is the
// one the whole-tensor run gives.
#include "operator_registry.h"
#include "tinyfleet/kernels/ops/patch_rows.h"
#include "tinyfleet/kernels/runtime/interpreter.h"

namespace tinyfleet::kernels {

using namespace runtime_detail;

namespace {

constexpr int32_t kMaxChain = 8;

const artifact::PatchChain* chain_of(const artifact::Model* m) {
  const auto* plans = m->patches();
  return plans && plans->size() > 0 ? plans->Get(0)->chain() : nullptr;
}

// The chain's operators, vertical geometry (a weighted kind's filter height is its
// filter tensor's) and tensors' dims: dims[0] the input, dims[i] operator i - 1's output.
// False when an operator is not a window kind or does not read the previous output.
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
  const auto* c = chain_of(m);
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
  if (!m->patches() || m->patches()->size() == 0) return nullptr;
  const auto* c = chain_of(m);
  const int32_t ops = static_cast<int32_t>(m->operators()->size());
  if (m->patches()->size() > 1 || !c || !in_range(c->operators(), 2, kMaxChain) ||
      !in_range(c->first_operator(), 0, ops - c->operators()) ||
      len(m->patches()->Get(0)->buffer_offsets()) != static_cast<size_t>(c->operators() - 1)) {
    return "patch plan operators or buffers out of range";
  }
  const artifact::Operator* op[kMaxChain];
  WindowRows rows[kMaxChain];
  Dims dims[kMaxChain + 1];
  if (!chain_geometry(m, c, op, rows, dims)) return "patch chain is not a chain";
  const int32_t n = c->operators(), out_h = dims[n].h;
  if (!in_range(c->bands(), 1, out_h < 1024 ? out_h : 1024)) return "patch bands out of range";
  for (int32_t b = 0; b < c->bands(); ++b) {
    RowRange r[kMaxChain + 1];
    band_rows(rows, n, out_h, c->bands(), b, r);
    for (int32_t i = 0; i <= n; ++i) {
      const uint64_t end = m->patches()->Get(0)->buffer_offsets()->Get(i > 0 && i < n ? i - 1 : 0) +
                           uint64_t(r[i].end - r[i].begin) * uint64_t(dims[i].w) * dims[i].c;
      if (dims[i].n != 1) return "patch chain tensors must be one image";
      if (i > 0 && i < n && end > m->tensor_arena_bytes()) {
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
        const size_t row = size_t(dims[t].w) * dims[t].c;
        v[j].bytes = row * v[j].dims.h;
        v[j].data = t == 0 || t == n ? static_cast<uint8_t*>(v[j].data) + row * r[t].begin
                                     : arena_ + model_->patches()->Get(0)->buffer_offsets()->Get(
                                                    static_cast<uint32_t>(t - 1));
      }
      Geometry g = geometry_of(op[i]);
      band_padding(rows[i], r[i], r[i + 1], &g.padding.top, &g.padding.bottom);
      const Status s =
          find_registration(op[i]->kind())
              ->eval({op[i], v[0], v[1], *this, arena_ + tensors, model_->scratch_bytes(), g});
      if (s != Status::kOk)
        return {LoadStatus::kKernelFailed, c->first_operator() + i, to_string(s)};
    }
  }
  return {};
}

}  // namespace tinyfleet::kernels
