// The device's provisioning record: what a factory step writes beside the firmware so one
// binary serves many devices (docs/firmware.md, "Provisioning record"). Text, one
// `key=value` per line (LF or CRLF), read once at boot (the reference firmware reads
// `provision.txt` from QEMU's working directory through semihosting):
//   user=      the MQTT account (fleetctl's credentials file, first column; also the
//              device's topic level and client id)            required, 1..63 chars
//   password=  its password (second column)                   required, 1..63 chars
//   fleet=     the fleet (topic level and the offers' fleet)   default "default"
//   device=    the device id the offers name                   default: user
//   offer_fleet=  the fleet the offers name, when the topics use another one (tests)
//   root_key=  the fleet's root public key, 64 hex digits      default: the one built in
//   now=       the host's Unix time at power-up (no RTC)       default 0: built-in clock
//   factory=   1: install the built-in factory model first, 0: start with none
//   mode=      "once": one update then exit; "run": serve rollouts until stopped
//   rate_ms=   milliseconds between inferences in run mode (10..60000)
//   window_s=  telemetry window in run mode, seconds (1..3600)
// Every value is bounds-checked; an unknown key, a missing '=', a bad number or a
// value too long is an error naming the line. No heap.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tinyfleet::firmware {

struct Provisioning {
  static constexpr size_t kMaxText = 64;  // with the NUL
  char user[kMaxText] = {};
  char password[kMaxText] = {};
  char fleet[kMaxText] = "default";
  char device[kMaxText] = {};
  char offer_fleet[kMaxText] = {};
  uint8_t root_key[32] = {};
  bool has_root_key = false;
  uint64_t now = 0;
  bool factory = true;
  bool run = false;  // mode=run
  uint32_t rate_ms = 500;
  uint32_t window_s = 5;
};

// Parses `size` bytes of `text`; false with `error` (NUL-terminated, at most
// `error_capacity`) saying which line and what is wrong.
bool parse_provisioning(const char* text, size_t size, Provisioning* out, char* error,
                        size_t error_capacity);

}  // namespace tinyfleet::firmware
