#pragma once

// Every repository: functions over one caller-owned transaction, so several
// changes commit or vanish together. Each throws StorageException with a
// message naming the object; run them through Database::transact to get values.
#include "tinyfleet/storage/api_tokens.h"
#include "tinyfleet/storage/artifacts.h"
#include "tinyfleet/storage/audit_log.h"
#include "tinyfleet/storage/device_classes.h"
#include "tinyfleet/storage/devices.h"
#include "tinyfleet/storage/models.h"
#include "tinyfleet/storage/operations.h"
#include "tinyfleet/storage/telemetry.h"
