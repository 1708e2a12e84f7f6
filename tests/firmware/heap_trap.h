#pragma once

// The check apps link with -Wl,--wrap=malloc,--wrap=_malloc_r,--wrap=calloc,--wrap=realloc
// and heap_trap.cpp: allocation is allowed while starting up (newlib's stdio buffers),
// and once lock_heap() ran any allocation ends the app with exit code 99.
void lock_heap();
