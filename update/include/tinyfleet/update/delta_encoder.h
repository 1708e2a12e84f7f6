#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tinyfleet/kernels/runtime/artifact_writer.h"
#include "tinyfleet/storage/error.h"
#include "tinyfleet/update/update_generated.h"

namespace tinyfleet::update {

// A named byte range of an artifact (a tensor's weights, its scales, an operator's
// requantization vector) and what its elements are. Segments with the same name, size
// and kind in base and target are sent as differences (mostly zeros after fine-tuning)
// or, by the range codec, as ratio predictions.
using ArtifactSegment = kernels::TensorSegment;

// The named segments of a compiled artifact (empty when it is not one).
std::vector<ArtifactSegment> artifact_segments(const std::string& artifact);

struct Delta {
  update::DeltaCodec codec = update::DeltaCodec_Full;
  std::string payload;
  uint32_t window_log = 0;  // the decoder window the device needs (2^window_log bytes)
};

struct DeltaOptions {
  int level = 19;
  uint32_t max_window_log = 17;  // what the device class can afford for the decoder
  // The device memory applying a delta may take besides the output slot (0: no bound);
  // encode_best only picks codecs whose decoder fits (DeltaDecoder::workspace_size_for).
  size_t max_decoder_bytes = 0;
  // The codecs the device decodes, one bit each (1u << DeltaCodec); 0: any.
  uint32_t allowed_codecs = 0;
};

// The full artifact, zstd-compressed (any device can apply it).
storage::Expected<Delta> encode_full(const std::string& target, const DeltaOptions& options);

// Per-segment differences (segments matched by name and size), zstd-compressed
// without a prefix, so the decoder needs only its small window. With no segments
// given, a base and target of equal size are compared as one segment.
storage::Expected<Delta> encode_tensor_delta(const std::string& base, const std::string& target,
                                             const std::vector<ArtifactSegment>& base_segments,
                                             const std::vector<ArtifactSegment>& target_segments,
                                             const DeltaOptions& options);

// The same regions as encode_tensor_delta, LZMA2-compressed with a dictionary of at
// most 16 KB: applying it takes about 50 KB of device memory besides the output slot.
// With no base (or nothing in common) it is a compressed full artifact.
storage::Expected<Delta> encode_tensor_lzma(const std::string& base, const std::string& target,
                                            const std::vector<ArtifactSegment>& base_segments,
                                            const std::vector<ArtifactSegment>& target_segments,
                                            const DeltaOptions& options);

// Typed regions (int8 weights, words, int32 vectors predicted by one ratio, the content
// hash left to the decoder), coded by an adaptive binary range coder (range_model.h).
// Applying it takes 20.5 KB besides the output slot and needs no window.
storage::Expected<Delta> encode_tensor_range(const std::string& base, const std::string& target,
                                             const std::vector<ArtifactSegment>& base_segments,
                                             const std::vector<ArtifactSegment>& target_segments,
                                             const DeltaOptions& options);

// The region stream both tensor codecs compress (see DeltaDecoder for its layout).
storage::Expected<std::string> region_stream(const std::string& base, const std::string& target,
                                             const std::vector<ArtifactSegment>& base_segments,
                                             const std::vector<ArtifactSegment>& target_segments);

// Structure-blind fallback: zstd with the whole base as prefix. The device needs the
// base at one address and a window covering base and target.
storage::Expected<Delta> encode_prefix_delta(const std::string& base, const std::string& target,
                                             const DeltaOptions& options);

// The smallest of the applicable codecs for this pair within the window and memory
// limits; kFailedPrecondition when no codec fits the device.
storage::Expected<Delta> encode_best(const std::string& base, const std::string& target,
                                     const std::vector<ArtifactSegment>& base_segments,
                                     const std::vector<ArtifactSegment>& target_segments,
                                     const DeltaOptions& options);

}  // namespace tinyfleet::update
