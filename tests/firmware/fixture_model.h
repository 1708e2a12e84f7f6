// A small artifact (FullyConnected 64 -> 10, Softmax) in two versions, the second a
// fine-tune of the first (a tenth of the weights moved by one step), and the host
// runtime's output on an input: what the firmware check updates from and to; and the
// manifest of an update for the fixtures' device (host tools only: links update_host).
#pragma once

#include <cstdint>
#include <string>

#include "tinyfleet/update/delta_encoder.h"
#include "tinyfleet/update/offer_signer.h"

namespace tinyfleet::firmware_test {

std::string fixture_artifact(int version);
std::string fixture_input();
// The host runtime's output bytes for `input`, or empty when the artifact does not run.
std::string run_on_host(const std::string& artifact, const std::string& input);

// SHA-256 of `bytes`, 32 raw bytes.
std::string fixture_sha256(const std::string& bytes);
// The update `from` -> `to` by `delta` for the fixtures' device (fixture_constants.h:
// kFleet, kClass, kDevice), model "digits" version `version`, `chunk_size`-byte chunks,
// expiring an hour after kNow, a uniform class histogram (10 classes). The release and
// self-tests are the caller's.
update::ManifestFields fixture_manifest(const std::string& from, const std::string& to,
                                        const update::Delta& delta, uint32_t version,
                                        uint32_t chunk_size);

}  // namespace tinyfleet::firmware_test
