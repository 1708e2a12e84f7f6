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
}  // namespace

std::string write_artifact(const ModelSpec& spec) {
  flatbuffers::FlatBufferBuilder b(4096);
  std::vector<flatbuffers::Offset<artifact::Buffer>> buffers;
  std::vector<flatbuffers::Offset<artifact::Tensor>> tensors;
  for (const auto& t : spec.tensors) {
    int32_t buffer = -1;
    if (!t.data.empty()) {
      b.ForceVectorAlignment(t.data.size(), sizeof(uint8_t), 16);
      auto data = b.CreateVector(reinterpret_cast<const uint8_t*>(t.data.data()), t.data.size());
      buffer = static_cast<int32_t>(buffers.size());
      buffers.push_back(artifact::CreateBuffer(b, data));
    }
    const artifact::Dims4 shape(t.dims.n, t.dims.h, t.dims.w, t.dims.c);
    tensors.push_back(artifact::CreateTensor(b, b.CreateString(t.name), t.type, &shape,
                                             b.CreateVector(t.scale), b.CreateVector(t.zero_point),
                                             buffer, t.arena_offset));
  }
  std::vector<flatbuffers::Offset<artifact::Operator>> ops;
  for (const auto& o : spec.operators) {
    auto opt_vec = [&](const std::vector<int32_t>& v) { return v.empty() ? 0 : b.CreateVector(v); };
    ops.push_back(artifact::CreateOperator(
        b, o.kind, b.CreateVector(o.inputs), b.CreateVector(o.outputs), o.stride_h, o.stride_w,
        o.dilation_h, o.dilation_w, o.padding.top, o.padding.left, o.padding.bottom,
        o.padding.right, o.filter_h, o.filter_w, o.depth_multiplier, o.axis, o.activation_min,
        o.activation_max, opt_vec(o.requant_multiplier), opt_vec(o.requant_shift),
        opt_vec(o.int_params), opt_vec(o.pad_before), opt_vec(o.pad_after),
        o.lut_i8.empty() ? 0 : b.CreateVector(o.lut_i8),
        o.lut_u32.empty() ? 0 : b.CreateVector(o.lut_u32)));
  }
  const std::vector<uint8_t> zero_hash(32, 0);
  auto model = artifact::CreateModel(
      b, spec.format_major, 0, b.CreateString(spec.device_class), b.CreateString(spec.model_name),
      b.CreateVector(tensors), b.CreateVector(ops), b.CreateVector(spec.inputs),
      b.CreateVector(spec.outputs), b.CreateVector(buffers), spec.tensor_arena_bytes,
      spec.scratch_bytes, b.CreateVector(zero_hash));
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

std::vector<TensorSegment> tensor_segments(const std::string& bytes) {
  std::vector<TensorSegment> out;
  flatbuffers::Verifier v(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), 64,
                          1u << 20);
  if (!artifact::VerifyModelBuffer(v)) return out;
  const auto* m = artifact::GetModel(bytes.data());
  if (!m->tensors() || !m->buffers()) return out;
  for (const auto* t : *m->tensors()) {
    if (t->buffer() < 0 || static_cast<uint32_t>(t->buffer()) >= m->buffers()->size()) continue;
    const auto* data = m->buffers()->Get(static_cast<uint32_t>(t->buffer()))->data();
    if (!data || !t->name()) continue;
    out.push_back(
        {t->name()->str(),
         static_cast<uint64_t>(data->data() - reinterpret_cast<const uint8_t*>(bytes.data())),
         data->size()});
  }
  return out;
}

bool content_hash_matches(const std::string& bytes) {
  flatbuffers::Verifier v(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), 64,
                          1u << 20);
  if (!artifact::VerifyModelBuffer(v)) return false;
  const auto* m = artifact::GetModel(bytes.data());
  if (!m->content_sha256() || m->content_sha256()->size() != 32) return false;
  const size_t offset = static_cast<size_t>(m->content_sha256()->data() -
                                            reinterpret_cast<const uint8_t*>(bytes.data()));
  return sha256_with_field_zeroed(bytes, offset) ==
         std::string(reinterpret_cast<const char*>(m->content_sha256()->data()), 32);
}

}  // namespace tinyfleet::kernels
