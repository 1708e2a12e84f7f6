#include "tinyfleet/kernels/runtime/artifact_writer.h"

#include <sodium.h>

#include <cstring>

namespace tinyfleet::kernels {

namespace {
std::string sha256_with_field_zeroed(const std::string& bytes, size_t field_offset) {
  std::string copy = bytes;
  std::memset(copy.data() + field_offset, 0, 32);
  std::string digest(32, '\0');
  crypto_hash_sha256(reinterpret_cast<unsigned char*>(digest.data()),
                     reinterpret_cast<const unsigned char*>(copy.data()), copy.size());
  return digest;
}

// int_params as written: the spec's (format 1.1's form), and [1] beside a Tflm Softmax's
// options, so that a runtime before format 1.2 (which ignores the options) still runs
// TFLM's softmax instead of its table softmax over TFLM's table.
std::vector<int32_t> legacy_int_params(const OperatorSpec& o) {
  const bool tflm = o.kind == artifact::OpKind_Softmax && o.int_params.empty() &&
                    o.softmax_mode == artifact::SoftmaxMode_Tflm;
  return tflm ? std::vector<int32_t>{1} : o.int_params;
}

// Add's, Mul's, Mean's and Softmax's typed options (format 1.2): each a table of one struct.
artifact::OperatorOptions int_options(flatbuffers::FlatBufferBuilder& b, const OperatorSpec& o,
                                      flatbuffers::Offset<void>* options) {
  if (o.kind == artifact::OpKind_Add) {
    const auto& p = o.add;
    const artifact::AddParameters s(p.input1_offset, p.input2_offset, p.output_offset, p.left_shift,
                                    p.input1_multiplier, p.input1_shift, p.input2_multiplier,
                                    p.input2_shift, p.output_multiplier, p.output_shift);
    *options = artifact::CreateAddOptions(b, &s).Union();
    return artifact::OperatorOptions_AddOptions;
  }
  if (o.kind == artifact::OpKind_Mul) {
    const auto& p = o.mul;
    const artifact::MulParameters s(p.input1_offset, p.input2_offset, p.output_offset,
                                    p.output_multiplier, p.output_shift);
    *options = artifact::CreateMulOptions(b, &s).Union();
    return artifact::OperatorOptions_MulOptions;
  }
  if (o.kind == artifact::OpKind_Mean) {
    const auto& p = o.mean;
    const artifact::MeanParameters s(p.input_offset, p.output_offset, p.multiplier, p.shift);
    *options = artifact::CreateMeanOptions(b, &s).Union();
    return artifact::OperatorOptions_MeanOptions;
  }
  if (o.kind == artifact::OpKind_Softmax) {
    const artifact::SoftmaxParameters s(o.softmax_mode);
    *options = artifact::CreateSoftmaxOptions(b, &s).Union();
    return artifact::OperatorOptions_SoftmaxOptions;
  }
  return artifact::OperatorOptions_NONE;
}
}  // namespace

std::string write_artifact(const ModelSpec& spec) {
  flatbuffers::FlatBufferBuilder b(4096);
  // FlatBuffers builds back to front: what is created first comes last in the file.
  // The hash first, so it ends the file; operators before tensors, so their
  // requantization vectors follow the tensors' scales: a delta decoder has seen the
  // scales when it reaches them.
  const std::vector<uint8_t> zero_hash(32, 0);
  const auto hash = b.CreateVector(zero_hash);
  std::vector<flatbuffers::Offset<artifact::Operator>> ops;
  for (const auto& o : spec.operators) {
    auto opt_vec = [&](const std::vector<int32_t>& v) { return v.empty() ? 0 : b.CreateVector(v); };
    auto options_type = artifact::OperatorOptions_NONE;
    flatbuffers::Offset<void> options = 0;
    if (o.kind == artifact::OpKind_Transpose || o.kind == artifact::OpKind_StridedSlice) {
      options_type = artifact::OperatorOptions_StridedCopyOptions;
      options = artifact::CreateStridedCopyOptions(b, o.copy_offset, opt_vec(o.copy_count),
                                                   opt_vec(o.copy_step))
                    .Union();
    } else if (o.kind == artifact::OpKind_Pad && o.has_pad_value) {
      options_type = artifact::OperatorOptions_PadOptions;
      options = artifact::CreatePadOptions(b, o.pad_value).Union();
    } else if (o.int_params.empty()) {
      options_type = int_options(b, o, &options);
    }
    ops.push_back(artifact::CreateOperator(
        b, o.kind, b.CreateVector(o.inputs), b.CreateVector(o.outputs), o.stride_h, o.stride_w,
        o.dilation_h, o.dilation_w, o.padding.top, o.padding.left, o.padding.bottom,
        o.padding.right, o.filter_h, o.filter_w, o.depth_multiplier, o.axis, o.activation_min,
        o.activation_max, opt_vec(o.requant_multiplier), opt_vec(o.requant_shift),
        opt_vec(legacy_int_params(o)), opt_vec(o.pad_before), opt_vec(o.pad_after),
        o.lut_i8.empty() ? 0 : b.CreateVector(o.lut_i8),
        o.lut_u32.empty() ? 0 : b.CreateVector(o.lut_u32), options_type, options));
  }
  // The constant data before the tensor tables, so every scale precedes every bias in
  // the file too.
  std::vector<flatbuffers::Offset<artifact::Buffer>> buffers;
  std::vector<int32_t> buffer_of;
  for (const auto& t : spec.tensors) {
    buffer_of.push_back(-1);
    if (t.data.empty()) continue;
    b.ForceVectorAlignment(t.data.size(), sizeof(uint8_t), 16);
    auto data = b.CreateVector(reinterpret_cast<const uint8_t*>(t.data.data()), t.data.size());
    buffer_of.back() = static_cast<int32_t>(buffers.size());
    buffers.push_back(artifact::CreateBuffer(b, data));
  }
  // A banded chain: its intermediates' tensors point past the arena (older runtimes
  // refuse them), their buffers are in the plan. (Tests write malformed plans: indices
  // outside the operators or tensors mark nothing.)
  const PatchSpec& ps = spec.patches;
  std::vector<bool> banded(spec.tensors.size(), false);
  for (int32_t k = ps.first_operator; ps.operators > 0 && k < ps.first_operator + ps.operators - 1;
       ++k) {
    if (k < 0 || static_cast<size_t>(k) >= spec.operators.size()) continue;
    const auto& outs = spec.operators[static_cast<size_t>(k)].outputs;
    if (!outs.empty() && outs[0] >= 0 && static_cast<size_t>(outs[0]) < banded.size())
      banded[static_cast<size_t>(outs[0])] = true;
  }
  std::vector<flatbuffers::Offset<artifact::Tensor>> tensors;
  for (size_t i = 0; i < spec.tensors.size(); ++i) {
    const auto& t = spec.tensors[i];
    const artifact::Dims4 shape(t.dims.n, t.dims.h, t.dims.w, t.dims.c);
    tensors.push_back(artifact::CreateTensor(b, b.CreateString(t.name), t.type, &shape,
                                             b.CreateVector(t.scale), b.CreateVector(t.zero_point),
                                             buffer_of[i],
                                             banded[i] ? spec.tensor_arena_bytes : t.arena_offset));
  }
  const artifact::PatchChain chain(ps.first_operator, ps.operators, ps.bands);
  auto model = artifact::CreateModel(
      b, spec.format_major, ps.operators > 0 ? 3 : 2, b.CreateString(spec.device_class),
      b.CreateString(spec.model_name), b.CreateVector(tensors), b.CreateVector(ops),
      b.CreateVector(spec.inputs), b.CreateVector(spec.outputs), b.CreateVector(buffers),
      spec.tensor_arena_bytes, spec.scratch_bytes, hash, ps.operators > 0 ? &chain : nullptr,
      ps.operators > 0 ? b.CreateVector(ps.buffer_offsets) : 0);
  artifact::FinishModelBuffer(b, model);
  std::string bytes(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
  // Fill in the hash of the bytes as they are with the hash field zeroed.
  const auto* m = artifact::GetModel(bytes.data());
  const size_t offset = static_cast<size_t>(m->content_sha256()->data() -
                                            reinterpret_cast<const uint8_t*>(bytes.data()));
  const std::string digest = sha256_with_field_zeroed(bytes, offset);
  std::memcpy(bytes.data() + offset, digest.data(), 32);
  return bytes;
}

namespace {
const artifact::Model* verified_model(const std::string& bytes) {
  flatbuffers::Verifier v(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), 64,
                          1u << 20);
  return artifact::VerifyModelBuffer(v) ? artifact::GetModel(bytes.data()) : nullptr;
}

template <typename V>
void add_segment(std::vector<TensorSegment>& out, const std::string& bytes, std::string name,
                 const V* v, SegmentKind kind) {
  if (!v || v->size() == 0) return;
  const auto* data = reinterpret_cast<const uint8_t*>(v->data());
  out.push_back({std::move(name),
                 static_cast<uint64_t>(data - reinterpret_cast<const uint8_t*>(bytes.data())),
                 static_cast<uint64_t>(v->size()) * sizeof(*v->data()), kind});
}

// The struct of a typed options table (Add, Mul, Mean, Softmax: its one field) as one
// int32 segment.
void add_options_segment(std::vector<TensorSegment>& out, const std::string& bytes,
                         std::string name, const artifact::Operator* o) {
  const auto type = o->options_type();
  const uint64_t size = type == artifact::OperatorOptions_AddOptions       ? 40
                        : type == artifact::OperatorOptions_MulOptions     ? 20
                        : type == artifact::OperatorOptions_MeanOptions    ? 16
                        : type == artifact::OperatorOptions_SoftmaxOptions ? 4
                                                                           : 0;
  const auto* t = static_cast<const flatbuffers::Table*>(o->options());
  const uint8_t* s = size && t ? t->GetAddressOf(4) : nullptr;
  if (!s) return;
  out.push_back({std::move(name),
                 static_cast<uint64_t>(s - reinterpret_cast<const uint8_t*>(bytes.data())), size,
                 SegmentKind::kInt32});
}

const char* tensor_name(const artifact::Model* m, int32_t index) {
  if (index < 0 || static_cast<uint32_t>(index) >= m->tensors()->size()) return nullptr;
  const auto* name = m->tensors()->Get(static_cast<uint32_t>(index))->name();
  return name ? name->c_str() : nullptr;
}
}  // namespace

std::vector<TensorSegment> tensor_segments(const std::string& bytes) {
  std::vector<TensorSegment> out;
  const auto* m = verified_model(bytes);
  if (!m || !m->tensors() || !m->buffers()) return out;
  for (const auto* t : *m->tensors()) {
    if (!t->name()) continue;
    const std::string name = t->name()->str();
    add_segment(out, bytes, name + "/scale", t->scale(), SegmentKind::kFloat32);
    if (t->buffer() < 0 || static_cast<uint32_t>(t->buffer()) >= m->buffers()->size()) continue;
    add_segment(out, bytes, name, m->buffers()->Get(static_cast<uint32_t>(t->buffer()))->data(),
                t->type() == artifact::TensorType_Int8    ? SegmentKind::kInt8
                : t->type() == artifact::TensorType_Int32 ? SegmentKind::kInt32
                                                          : SegmentKind::kFloat32);
  }
  if (!m->operators()) return out;
  if (const auto* chain = m->patch()) {
    const auto first = static_cast<uint32_t>(chain->first_operator());
    const auto* outs =
        first < m->operators()->size() ? m->operators()->Get(first)->outputs() : nullptr;
    const char* y = outs && outs->size() > 0 ? tensor_name(m, outs->Get(0)) : nullptr;
    if (y) {
      const auto* at = reinterpret_cast<const uint8_t*>(chain);
      out.push_back({std::string(y) + "/patch",
                     static_cast<uint64_t>(at - reinterpret_cast<const uint8_t*>(bytes.data())),
                     sizeof(artifact::PatchChain), SegmentKind::kInt32});
      add_segment(out, bytes, std::string(y) + "/patch_offsets", m->patch_buffer_offsets(),
                  SegmentKind::kInt32);
    }
  }
  for (const auto* o : *m->operators()) {
    if (!o->outputs() || o->outputs()->size() == 0) continue;
    const char* y = tensor_name(m, o->outputs()->Get(0));
    if (!y) continue;
    const std::string name = y;
    const size_t multiplier = out.size();
    add_segment(out, bytes, name + "/requant_multiplier", o->requant_multiplier(),
                SegmentKind::kMultiplier);
    const bool has_multiplier = out.size() > multiplier;
    add_segment(out, bytes, name + "/requant_shift", o->requant_shift(), SegmentKind::kInt32);
    add_segment(out, bytes, name + "/int_params", o->int_params(), SegmentKind::kInt32);
    add_options_segment(out, bytes, name + "/options", o);
    // Weighted layers: multipliers scale with the weight scales, biases inversely.
    const char* w =
        o->inputs() && o->inputs()->size() >= 2 ? tensor_name(m, o->inputs()->Get(1)) : nullptr;
    if (!w || !has_multiplier) continue;
    out[multiplier].follows = std::string(w) + "/scale";
    const char* bias = o->inputs()->size() >= 3 ? tensor_name(m, o->inputs()->Get(2)) : nullptr;
    for (auto& s : out) {
      if (bias && s.name == bias && s.kind == SegmentKind::kInt32) {
        s.follows = std::string(w) + "/scale";
        s.follows_inverse = true;
      }
    }
  }
  return out;
}

int64_t content_hash_offset(const std::string& bytes) {
  const auto* m = verified_model(bytes);
  if (!m || !m->content_sha256() || m->content_sha256()->size() != 32) return -1;
  return m->content_sha256()->data() - reinterpret_cast<const uint8_t*>(bytes.data());
}

bool content_hash_matches(const std::string& bytes) {
  const int64_t offset = content_hash_offset(bytes);
  return offset >= 0 &&
         sha256_with_field_zeroed(bytes, static_cast<size_t>(offset)) == bytes.substr(offset, 32);
}

}  // namespace tinyfleet::kernels
