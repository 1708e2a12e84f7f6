// The NOR flash driver and the agent's stores on it (firmware/src/nor_*.cpp) on the host,
// over a RAM medium: the chip's rules, and a power cut before EVERY piece of a record
// save, a staging append and a slot write (the medium drops what the dead device would
// not have written), each followed by a "restart" (fresh stores over the same bits).
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "tinyfleet/firmware/nor_stores.h"

namespace tinyfleet::firmware {
namespace {

class RamMedium final : public FlashMedium {
 public:
  explicit RamMedium(uint32_t bytes) : bits(bytes, 0xFF) {}
  bool read(uint32_t addr, uint8_t* out, size_t size) override {
    std::memcpy(out, bits.data() + addr, size);
    return true;
  }
  bool write(uint32_t addr, const uint8_t* data, size_t size) override {
    if (!dead) std::memcpy(bits.data() + addr, data, size);
    return true;  // after the cut nothing lands, and nobody is left to notice
  }
  std::vector<uint8_t> bits;
  bool dead = false;
};

RamMedium* g_medium = nullptr;
uint64_t g_cut_at = 0;
void cut_hook(NorOp, uint32_t, uint64_t n) {
  if (n == g_cut_at) g_medium->dead = true;
}

NorLayout small_layout() {
  NorLayout l;
  l.record_pairs = 3;
  l.bank_sectors = 1;
  l.slot_sector[0] = 6;
  l.slot_sector[1] = 8;
  l.slot_sectors = 2;
  l.staging_sector = 10;
  l.staging_sectors = 2;
  return l;
}

struct Chip {
  Chip() : medium(small_layout().sectors() * 4096), flash(medium, geometry()) {}
  static NorGeometry geometry() {
    NorGeometry g;
    g.sectors = small_layout().sectors();
    return g;
  }
  // Arms a cut before piece `n` (counted from now).
  void cut_before(uint64_t n) {
    g_medium = &medium;
    g_cut_at = flash.ops() + n;
    flash.set_hook(cut_hook);
  }
  RamMedium medium;
  NorFlash flash;
};

std::string bytes(size_t n, int seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 31 + seed * 7) % 251);
  return s;
}
const uint8_t* u(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

std::string load(NorFlash& flash, const char* name) {
  NorRecords records(flash, small_layout());
  std::string out(4096, '\0');
  const long n = records.load(name, reinterpret_cast<uint8_t*>(out.data()), out.size());
  return n < 0 ? "<absent>" : out.substr(0, static_cast<size_t>(n));
}

TEST(NorFlashTest, FollowsTheChipsRules) {
  Chip chip;
  const std::string page = bytes(256, 1);
  const uint64_t before = chip.flash.ops();
  ASSERT_TRUE(chip.flash.program(4096, u(page), page.size()));
  EXPECT_EQ(chip.flash.ops() - before, 4u) << "a 256-byte page lands in four 64-byte pieces";
  EXPECT_FALSE(chip.flash.program(4096 + 10, u(page), 1));
  EXPECT_STREQ(chip.flash.error(), "program over bytes that are not erased");
  EXPECT_FALSE(chip.flash.program(chip.flash.geometry().bytes() - 1, u(page), 2));
  EXPECT_STREQ(chip.flash.error(), "program past the end of the chip");
  const uint64_t erase_start = chip.flash.ops();
  ASSERT_TRUE(chip.flash.erase_sector(1));
  EXPECT_EQ(chip.flash.ops() - erase_start, 4u) << "a 4 KB erase lands in four pieces";
  EXPECT_TRUE(chip.flash.is_erased(4096, 4096));
  EXPECT_TRUE(chip.flash.program(4096 + 10, u(page), 1)) << "erased again: programmable";
}

TEST(NorFlashTest, HalfAnEraseLeavesTheRestOfTheSector) {
  Chip chip;
  const std::string data = bytes(4096, 2);
  ASSERT_TRUE(chip.flash.program(0, u(data), data.size()));
  chip.cut_before(3);
  chip.flash.erase_sector(0);
  EXPECT_TRUE(chip.flash.is_erased(0, 2048));
  EXPECT_EQ(std::memcmp(chip.medium.bits.data() + 2048, data.data() + 2048, 2048), 0);
}

TEST(NorRecordsTest, ACutBeforeAnyPieceOfASaveLeavesTheOldRecord) {
  const std::string old_value = bytes(100, 3), new_value = bytes(300, 4);
  Chip base;
  {
    NorRecords records(base.flash, small_layout());
    ASSERT_TRUE(records.save("agent-state", u(old_value), old_value.size()));
    ASSERT_TRUE(records.save("other", u(old_value), 7));
  }
  // Count the pieces of the save, then cut before each of them.
  Chip probe;
  probe.medium.bits = base.medium.bits;
  const uint64_t start = probe.flash.ops();
  ASSERT_TRUE(NorRecords(probe.flash, small_layout()).save("agent-state", u(new_value), 300));
  const uint64_t pieces = probe.flash.ops() - start;
  ASSERT_GT(pieces, 5u);
  EXPECT_EQ(load(probe.flash, "agent-state"), new_value);
  for (uint64_t k = 1; k <= pieces; ++k) {
    Chip chip;
    chip.medium.bits = base.medium.bits;
    chip.cut_before(k);
    NorRecords(chip.flash, small_layout()).save("agent-state", u(new_value), new_value.size());
    chip.medium.dead = false;  // the restart
    chip.flash.set_hook(nullptr);
    EXPECT_EQ(load(chip.flash, "agent-state"), old_value) << "cut before piece " << k;
    EXPECT_EQ(load(chip.flash, "other"), old_value.substr(0, 7));
    // The torn bank is erased and reused by the next save.
    ASSERT_TRUE(NorRecords(chip.flash, small_layout()).save("agent-state", u(new_value), 300));
    EXPECT_EQ(load(chip.flash, "agent-state"), new_value) << "save after a cut at " << k;
  }
}

TEST(NorRecordsTest, AlternatesBanksAndRefusesWhatDoesNotFit) {
  Chip chip;
  NorRecords records(chip.flash, small_layout());
  for (int i = 0; i < 5; ++i) {
    const std::string v = bytes(50 + i, i);
    ASSERT_TRUE(records.save("r", u(v), v.size()));
    EXPECT_EQ(load(chip.flash, "r"), v);
  }
  EXPECT_FALSE(records.save("a-name-too-long-for-16", u(bytes(1, 0)), 1));
  EXPECT_FALSE(records.save("big", u(bytes(4096, 0)), 4096)) << "over a bank minus its header";
  uint8_t small[4];
  EXPECT_EQ(records.load("r", small, sizeof small), -1) << "larger than the caller's buffer";
  EXPECT_EQ(records.load("absent", small, sizeof small), -1);
  ASSERT_TRUE(records.save("b", u(bytes(1, 0)), 1));
  ASSERT_TRUE(records.save("c", u(bytes(1, 0)), 1));
  EXPECT_FALSE(records.save("d", u(bytes(1, 0)), 1)) << "three pairs, all named";
}

std::string staged(NorFlash& flash) {
  NorSlots slots(flash, small_layout(), nullptr, nullptr, 0);
  const long n = slots.staging_size();
  std::string out(static_cast<size_t>(n > 0 ? n : 0), '\0');
  if (n > 0 && !slots.staging_read(0, reinterpret_cast<uint8_t*>(out.data()), out.size())) {
    return "<unreadable>";
  }
  return out;
}

TEST(NorSlotsTest, ACutInAStagingAppendResumesAtTheLastWholeChunk) {
  const std::string payload = bytes(700, 5);
  Chip base;
  {
    NorSlots slots(base.flash, small_layout(), nullptr, nullptr, 0);
    ASSERT_TRUE(slots.staging_append(0, u(payload), 300));
  }
  Chip probe;  // 400 B more: two pages, each a header and its bytes, in 9 pieces
  probe.medium.bits = base.medium.bits;
  const uint64_t start = probe.flash.ops();
  ASSERT_TRUE(NorSlots(probe.flash, small_layout(), nullptr, nullptr, 0)
                  .staging_append(300, u(payload) + 300, 400));
  const uint64_t pieces = probe.flash.ops() - start;
  EXPECT_EQ(pieces, 9u);
  EXPECT_EQ(staged(probe.flash), payload);
  for (uint64_t k = 1; k <= pieces; ++k) {
    Chip chip;
    chip.medium.bits = base.medium.bits;
    chip.cut_before(k);
    NorSlots(chip.flash, small_layout(), nullptr, nullptr, 0)
        .staging_append(300, u(payload) + 300, 400);
    chip.medium.dead = false;
    chip.flash.set_hook(nullptr);
    NorSlots slots(chip.flash, small_layout(), nullptr, nullptr, 0);
    const long have = slots.staging_size();
    EXPECT_TRUE(have == 300 || have == 540) << "cut before piece " << k << ": " << have;
    ASSERT_TRUE(slots.staging_append(static_cast<uint64_t>(have), u(payload) + have,
                                     payload.size() - static_cast<size_t>(have)));
    EXPECT_EQ(staged(chip.flash), payload) << "cut before piece " << k;
    EXPECT_TRUE(slots.staging_clear());
    EXPECT_EQ(slots.staging_size(), 0);
    EXPECT_EQ(NorSlots(chip.flash, small_layout(), nullptr, nullptr, 0).staging_size(), 0);
  }
  NorSlots slots(base.flash, small_layout(), nullptr, nullptr, 0);
  EXPECT_FALSE(slots.staging_append(10, u(payload), 5)) << "not at the end";
  EXPECT_FALSE(slots.staging_append(300, u(bytes(8192, 0)), 8192)) << "over the staging area";
}

TEST(NorSlotsTest, ASlotIsEmptyUntilCommittedAndACutNeverTouchesTheOther) {
  const std::string a = bytes(5000, 6), b = bytes(3000, 7);
  static uint8_t map0[8192], map1[8192];
  Chip base;
  {
    NorSlots slots(base.flash, small_layout(), map0, map1, sizeof map0);
    ASSERT_TRUE(slots.begin_slot(0) && slots.append_slot(0, u(a), a.size()) &&
                slots.commit_slot(0));
  }
  Chip probe;
  probe.medium.bits = base.medium.bits;
  const uint64_t start = probe.flash.ops();
  {
    NorSlots slots(probe.flash, small_layout(), map0, map1, sizeof map0);
    ASSERT_TRUE(slots.begin_slot(1) && slots.append_slot(1, u(b), b.size()) &&
                slots.commit_slot(1));
  }
  const uint64_t pieces = probe.flash.ops() - start;
  for (uint64_t k = 1; k <= pieces; ++k) {
    Chip chip;
    chip.medium.bits = base.medium.bits;
    chip.cut_before(k);
    {
      NorSlots slots(chip.flash, small_layout(), map0, map1, sizeof map0);
      slots.begin_slot(1) && slots.append_slot(1, u(b), b.size()) && slots.commit_slot(1);
    }
    chip.medium.dead = false;
    chip.flash.set_hook(nullptr);
    NorSlots slots(chip.flash, small_layout(), map0, map1, sizeof map0);
    EXPECT_EQ(slots.slot_size(1), -1) << "cut before piece " << k;
    EXPECT_EQ(slots.map_slot(1), nullptr);
    ASSERT_EQ(slots.slot_size(0), static_cast<long>(a.size()));
    const uint8_t* m = slots.map_slot(0);
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(std::memcmp(m, a.data(), a.size()), 0);
  }
  NorSlots slots(probe.flash, small_layout(), map0, map1, sizeof map0);
  ASSERT_EQ(slots.slot_size(1), static_cast<long>(b.size()));
  std::string back(b.size(), '\0');
  ASSERT_TRUE(slots.read_slot(1, 0, reinterpret_cast<uint8_t*>(back.data()), back.size()));
  EXPECT_EQ(back, b);
  EXPECT_FALSE(slots.read_slot(1, 1, reinterpret_cast<uint8_t*>(back.data()), back.size()));
  EXPECT_FALSE(slots.append_slot(1, u(b), 1)) << "committed: begin_slot first";
  // Bits flipped in a committed slot's content: the copy map_slot makes is refused.
  probe.medium.bits[8 * 4096 + 256 + 100] ^= 0x01;
  EXPECT_EQ(NorSlots(probe.flash, small_layout(), map0, map1, sizeof map0).map_slot(1), nullptr);
}

}  // namespace
}  // namespace tinyfleet::firmware
