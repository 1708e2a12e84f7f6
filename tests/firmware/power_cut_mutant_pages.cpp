// The deliberately wrong slot store for the power-cut test's second mutant: the same
// source assuming a staging page program is atomic (a page's CRC is not checked).
#define TINYFLEET_NOR_MUTANT_ATOMIC_PAGE 1
#include "../../firmware/src/nor_slots.cpp"
