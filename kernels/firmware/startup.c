// Reset: enable the FPU (the code is hard-float), then newlib's _start (rdimon:
// semihosting for output and exit) zeroes .bss and calls main.
#include <stdint.h>

extern void _start(void);
extern uint32_t __stack_top;

void Reset_Handler(void) {
  *(volatile uint32_t*)0xE000ED88u |= (0xFu << 20);  // CPACR: CP10, CP11 full access
  __asm volatile("dsb\n isb");
  _start();
}

static void Fault_Handler(void) {
  for (;;) {
  }
}

__attribute__((section(".isr_vector"), used)) const void* const g_vectors[16] = {&__stack_top,
                                                                                 Reset_Handler,
                                                                                 Fault_Handler,
                                                                                 Fault_Handler,
                                                                                 Fault_Handler,
                                                                                 Fault_Handler,
                                                                                 Fault_Handler,
                                                                                 0,
                                                                                 0,
                                                                                 0,
                                                                                 0,
                                                                                 Fault_Handler,
                                                                                 Fault_Handler,
                                                                                 0,
                                                                                 Fault_Handler,
                                                                                 Fault_Handler};
