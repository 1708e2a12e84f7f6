#include "heap_trap.h"

#include <unistd.h>

#include <cstddef>

namespace {
volatile bool g_heap_locked = false;
}

void lock_heap() { g_heap_locked = true; }

extern "C" {
void* __real_malloc(size_t);
void* __real__malloc_r(void*, size_t);
void* __wrap_malloc(size_t n) {
  if (g_heap_locked) _exit(99);
  return __real_malloc(n);
}
void* __wrap__malloc_r(void* r, size_t n) {
  if (g_heap_locked) _exit(99);
  return __real__malloc_r(r, n);
}
void* __wrap_calloc(size_t, size_t) {
  _exit(99);
  return nullptr;
}
void* __wrap_realloc(void*, size_t) {
  _exit(99);
  return nullptr;
}
}
