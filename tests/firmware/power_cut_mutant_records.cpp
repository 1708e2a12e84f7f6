// The deliberately wrong record store for the power-cut test's mutant build: the same
// source with the CRC check off (a bank whose header is intact counts as valid).
#define TINYFLEET_NOR_MUTANT_NO_CRC 1
#include "../../firmware/src/nor_records.cpp"
