# The portable half of the update room (paths relative to update/).
set(TINYFLEET_UPDATE_SOURCES
  src/offer.cpp
  src/root_metadata.cpp
  src/offer_status.cpp
  src/delta_decoder.cpp
  src/range_delta_decoder.cpp
  src/topics.cpp
  src/chunk_framing.cpp
  src/wire_format.cpp
  src/status_message.cpp
  src/telemetry_message.cpp
  src/presence_message.cpp
  src/agent_reasons.cpp)
