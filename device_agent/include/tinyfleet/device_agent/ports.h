#pragma once

#include <cstddef>
#include <cstdint>

namespace tinyfleet::device_agent {

// What the portable core needs from a device. The Linux port implements them with
// files (fsync + rename) and Paho MQTT; a bare-metal port with flash pages and its
// own MQTT client.

// Small records that must survive power loss: replaced whole, atomically.
class RecordStore {
 public:
  virtual ~RecordStore() = default;
  // Reads record `name` into `out`; returns its size, or -1 when absent.
  virtual long load(const char* name, uint8_t* out, size_t capacity) = 0;
  // Replaces record `name` atomically and durably (old or new after a power cut).
  virtual bool save(const char* name, const uint8_t* data, size_t size) = 0;
};

// Two artifact slots (A/B) and a staging area for the downloaded payload.
class SlotStore {
 public:
  virtual ~SlotStore() = default;
  // Slot writing: begin (discarding any earlier partial write), append, then commit,
  // which makes the whole slot content durable at once.
  virtual bool begin_slot(int slot) = 0;
  virtual bool append_slot(int slot, const uint8_t* data, size_t size) = 0;
  virtual bool commit_slot(int slot) = 0;
  virtual long slot_size(int slot) = 0;  // -1 when empty
  virtual bool read_slot(int slot, uint64_t offset, uint8_t* out, size_t size) = 0;
  // The slot at one address (flash, mmap), or null.
  virtual const uint8_t* map_slot(int slot) = 0;

  // Staging: the payload, appended chunk by chunk (resumable after a restart).
  virtual long staging_size() = 0;
  virtual bool staging_append(uint64_t offset, const uint8_t* data, size_t size) = 0;
  virtual bool staging_read(uint64_t offset, uint8_t* out, size_t size) = 0;
  virtual bool staging_clear() = 0;
};

class Clock {
 public:
  virtual ~Clock() = default;
  virtual uint64_t now_unix() = 0;                                   // wall clock, for expiry
  virtual uint64_t monotonic_ms() = 0;                               // for timeouts
  virtual uint64_t monotonic_us() { return monotonic_ms() * 1000; }  // for latency
  // Measured active time: read around each inference, the difference is the time the
  // model ran (telemetry's active_us). Linux: CLOCK_MONOTONIC in ns; an MCU port
  // overrides it with its cycle counter (DWT_CYCCNT x 1e9 / core clock).
  virtual uint64_t active_ns() { return monotonic_us() * 1000; }
};

// A watchdog: armed around work that may hang (each self-test run of a new model, each
// inference), disarmed when it returns. If it is not disarmed in time the device resets
// (an MCU's hardware watchdog; the Linux port ends the process, whose supervisor starts
// it again). The agent's record says what was running, so boot() rolls back a model on
// probation or in its self-test; caused_reset() lets it say that a hang was the reason.
// Contract for a port: arm() (re)starts the countdown, disarm() stops it, and a reset it
// causes must be recognisable once after the next boot (a reset-reason register, a
// marker kept in RAM that survives reset, or a file).
class Watchdog {
 public:
  virtual ~Watchdog() = default;
  virtual void arm(uint32_t timeout_ms) = 0;
  virtual void disarm() = 0;
  // True (once) when the last reset was this watchdog's.
  virtual bool caused_reset() = 0;
};

// An energy meter (current sensor, fuel gauge, a hwmon or power_supply energy counter):
// optional; where present, each telemetry window carries what it counted over the window
// besides the compiler's modelled figure.
class EnergyMeter {
 public:
  virtual ~EnergyMeter() = default;
  // The meter's cumulative count in uJ; false when it cannot be read now.
  virtual bool read_uj(uint64_t* out) = 0;
};

// Messages the agent sends: status and telemetry already encoded
// (update/status_message.h, telemetry_message.h); the transport frames the chunk request
// (update/chunk_framing.h) and picks the topics.
class Outbox {
 public:
  virtual ~Outbox() = default;
  virtual bool publish_status(const uint8_t* message, size_t size) = 0;
  virtual bool request_chunk(uint64_t release, uint64_t offset, uint32_t length) = 0;
  // A telemetry window; false while offline (the caller keeps it and retries).
  virtual bool publish_telemetry(const uint8_t* message, size_t size) {
    (void)message;
    (void)size;
    return false;
  }
};

// Runs an artifact. The Linux port and the firmware use the kernels runtime.
class ModelRunner {
 public:
  virtual ~ModelRunner() = default;
  // Prepares the artifact (verifies it; plans into the runner's arena). False with a
  // reason when it cannot run.
  virtual bool load(const uint8_t* artifact, size_t size, const char** reason) = 0;
  virtual size_t input_bytes() const = 0;
  virtual size_t output_bytes() const = 0;
  virtual bool run(const int8_t* input, int8_t* output) = 0;
  // The input and output quantization (real = scale * (q - zero_point)).
  virtual float input_scale() const { return 1.0f; }
  virtual int32_t input_zero_point() const { return 0; }
};

}  // namespace tinyfleet::device_agent
