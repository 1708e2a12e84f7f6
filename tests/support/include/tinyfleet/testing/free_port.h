#pragma once

namespace tinyfleet::testing {

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released), for
// a server the test starts right after (the private broker and PostgreSQL).
int free_loopback_port();

}  // namespace tinyfleet::testing
