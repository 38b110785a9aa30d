#include "rpc/shm_segment.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedsim {
namespace {

using ::testing::HasSubstr;

std::string PathOf(const std::string& name) { return std::string(kShmDir) + "/" + name; }

TEST(ShmSegmentTest, WorkerWritesServerCopiesAndTheNameIsGone) {
  absl::StatusOr<std::unique_ptr<UpdateSegment>> seg = UpdateSegment::Create(1000, 3);
  ASSERT_TRUE(seg.ok()) << seg.status();
  EXPECT_TRUE(IsUpdateSegmentName((*seg)->name())) << (*seg)->name();
  EXPECT_EQ(std::filesystem::file_size(PathOf((*seg)->name())), 3u * 1000 * sizeof(float));

  const std::optional<uint32_t> slot = (*seg)->Acquire();
  ASSERT_TRUE(slot.has_value());
  std::span<float> s = (*seg)->Slot(*slot);
  ASSERT_EQ(s.size(), 1000u);
  for (size_t i = 0; i < s.size(); ++i) s[i] = 0.5f * static_cast<float>(i) - 7;

  absl::StatusOr<std::shared_ptr<const MappedUpdateSegment>> mapped =
      MappedUpdateSegment::Open((*seg)->name(), 1000);
  ASSERT_TRUE(mapped.ok()) << mapped.status();
  EXPECT_EQ((*mapped)->slots(), 3u);
  EXPECT_FALSE(std::filesystem::exists(PathOf((*seg)->name())));  // the server took the name
  std::vector<float> out(3, -1);                                  // resized by the copy
  (*mapped)->CopySlot(*slot, &out);
  ASSERT_EQ(out.size(), 1000u);
  for (size_t i = 0; i < out.size(); ++i) ASSERT_EQ(out[i], s[i]) << i;

  // Later writes are seen through the same mapping (other slots too).
  const std::optional<uint32_t> other = (*seg)->Acquire();
  ASSERT_TRUE(other.has_value());
  EXPECT_NE(*other, *slot);
  (*seg)->Slot(*other)[999] = 42;
  (*mapped)->CopySlot(*other, &out);
  EXPECT_EQ(out[999], 42);
}

// Downloads: the server maps the worker's segment read-write and writes a
// slot; a read-only mapping cannot be written, nor a slot out of range.
TEST(ShmSegmentTest, AServerWritesADownloadOnlyIntoAReadWriteMappingsSlots) {
  absl::StatusOr<std::unique_ptr<UpdateSegment>> seg = UpdateSegment::Create(100, 2);
  ASSERT_TRUE(seg.ok()) << seg.status();
  absl::StatusOr<std::shared_ptr<const MappedUpdateSegment>> rw =
      MappedUpdateSegment::Open((*seg)->name(), 100, MappedUpdateSegment::Access::kReadWrite);
  ASSERT_TRUE(rw.ok()) << rw.status();
  EXPECT_FALSE(std::filesystem::exists(PathOf((*seg)->name())));
  std::vector<float> model(100);
  for (size_t i = 0; i < model.size(); ++i) model[i] = 0.25f * static_cast<float>(i) - 3;
  model[5] = std::numeric_limits<float>::quiet_NaN();
  ASSERT_TRUE((*rw)->WriteSlot(2, model).ok());
  std::span<float> got = (*seg)->Slot(2);
  EXPECT_EQ(std::memcmp(got.data(), model.data(), model.size() * sizeof(float)), 0);
  for (float v : (*seg)->Slot(1)) ASSERT_EQ(v, 0.0f);  // the other slot is untouched

  EXPECT_EQ((*rw)->WriteSlot(3, model).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*rw)->WriteSlot(0, model).code(), absl::StatusCode::kInvalidArgument);
  model.pop_back();
  EXPECT_EQ((*rw)->WriteSlot(1, model).code(), absl::StatusCode::kInvalidArgument);

  absl::StatusOr<std::unique_ptr<UpdateSegment>> other = UpdateSegment::Create(100, 1);
  ASSERT_TRUE(other.ok()) << other.status();
  absl::StatusOr<std::shared_ptr<const MappedUpdateSegment>> ro =
      MappedUpdateSegment::Open((*other)->name(), 100);
  ASSERT_TRUE(ro.ok()) << ro.status();
  model.push_back(1);
  const absl::Status refused = (*ro)->WriteSlot(1, model);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.message(), HasSubstr("read-only"));
  for (float v : (*other)->Slot(1)) ASSERT_EQ(v, 0.0f);
}

TEST(ShmSegmentTest, SlotsAreHandedOutOnceUntilReleasedAndRetiredOnesNeverAgain) {
  absl::StatusOr<std::unique_ptr<UpdateSegment>> seg = UpdateSegment::Create(10, 2);
  ASSERT_TRUE(seg.ok()) << seg.status();
  std::optional<uint32_t> a = (*seg)->Acquire();
  std::optional<uint32_t> b = (*seg)->Acquire();
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_EQ(*a, 1u);
  EXPECT_EQ(*b, 2u);
  EXPECT_FALSE((*seg)->Acquire().has_value());
  (*seg)->Release(*a);
  EXPECT_EQ((*seg)->Acquire(), a);
  (*seg)->Retire(*a);
  (*seg)->Release(*b);
  EXPECT_EQ((*seg)->Acquire(), b);
  (*seg)->Release(*b);
  EXPECT_EQ((*seg)->Acquire(), b);
  EXPECT_FALSE((*seg)->Acquire().has_value());  // a is retired
  // Releasing a retired slot (its holder gives it back as usual) does not
  // make it free again.
  EXPECT_TRUE((*seg)->retired(*a));
  EXPECT_FALSE((*seg)->retired(*b));
  (*seg)->Release(*a);
  EXPECT_FALSE((*seg)->Acquire().has_value());
}

// Sum slots: the server reads a pushed slot in place (HeldSlot) and the
// worker lends it again only once the server let go of it, whatever order
// the slots were released in.
TEST(ShmSegmentTest, AHeldSlotIsLentAgainOnlyOnceTheServerLetsGoOfIt) {
  constexpr uint64_t kValues = 50;  // int64 values: 2 * kValues floats
  absl::StatusOr<std::unique_ptr<UpdateSegment>> seg =
      UpdateSegment::Create(2 * kValues, 2, /*hold_words=*/true);
  ASSERT_TRUE(seg.ok()) << seg.status();
  EXPECT_EQ(std::filesystem::file_size(PathOf((*seg)->name())),
            2u * (2 * kValues + kHoldWordFloats) * sizeof(float));
  EXPECT_EQ((*seg)->Slot(1).size(), 2 * kValues);  // the tail is not the caller's
  absl::StatusOr<std::shared_ptr<const MappedUpdateSegment>> mapped = MappedUpdateSegment::Open(
      (*seg)->name(), 2 * kValues + kHoldWordFloats, MappedUpdateSegment::Access::kReadWrite);
  ASSERT_TRUE(mapped.ok()) << mapped.status();
  ASSERT_EQ((*mapped)->slots(), 2u);

  const std::optional<uint32_t> a = (*seg)->Acquire();
  ASSERT_EQ(a, 1u);
  std::span<float> floats = (*seg)->Slot(*a);
  auto* values = reinterpret_cast<int64_t*>(floats.data());
  for (uint64_t i = 0; i < kValues; ++i) values[i] = static_cast<int64_t>(i * i) - 1000;
  (*seg)->Hold(*a);
  EXPECT_TRUE((*seg)->held(*a));
  auto held = std::make_shared<HeldSlot>(*mapped, *a);
  const std::span<const int64_t> seen = held->As<int64_t>(kValues);
  for (uint64_t i = 0; i < kValues; ++i) ASSERT_EQ(seen[i], values[i]) << i;

  // The push returned: the worker gives the slot back, but the server still
  // holds it, so the other slot is lent, and then none.
  (*seg)->Release(*a);
  EXPECT_EQ((*seg)->Acquire(), std::optional<uint32_t>(2));
  EXPECT_FALSE((*seg)->Acquire().has_value());
  (*seg)->Release(2);
  EXPECT_EQ((*seg)->Acquire(), std::optional<uint32_t>(2));  // not the held one
  (*seg)->Release(2);
  held.reset();  // the server is done with slot 1
  EXPECT_FALSE((*seg)->held(*a));
  std::optional<uint32_t> first = (*seg)->Acquire();
  std::optional<uint32_t> second = (*seg)->Acquire();
  ASSERT_TRUE(first.has_value() && second.has_value());
  EXPECT_NE(*first, *second);
  // Clearing the word never touched the values.
  for (uint64_t i = 0; i < kValues; ++i) ASSERT_EQ(values[i], static_cast<int64_t>(i * i) - 1000);

  // Only a read-write mapping can clear a word, and only of its slots.
  EXPECT_EQ((*mapped)->ClearHold(3).code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<std::unique_ptr<UpdateSegment>> other =
      UpdateSegment::Create(2 * kValues, 1, /*hold_words=*/true);
  ASSERT_TRUE(other.ok()) << other.status();
  absl::StatusOr<std::shared_ptr<const MappedUpdateSegment>> ro =
      MappedUpdateSegment::Open((*other)->name(), 2 * kValues + kHoldWordFloats);
  ASSERT_TRUE(ro.ok()) << ro.status();
  EXPECT_EQ((*ro)->ClearHold(1).code(), absl::StatusCode::kFailedPrecondition);
  // A segment without hold words: Hold does nothing, nothing is ever held.
  absl::StatusOr<std::unique_ptr<UpdateSegment>> plain = UpdateSegment::Create(2 * kValues, 1);
  ASSERT_TRUE(plain.ok()) << plain.status();
  (*plain)->Hold(1);
  EXPECT_FALSE((*plain)->held(1));
}

// The word crosses processes: a forked "server" clears it after reading the
// slot, and the worker sees the slot come back.
TEST(ShmSegmentTest, AHoldWordClearedInAnotherProcessFreesTheSlot) {
  constexpr uint64_t kValues = 1000;
  absl::StatusOr<std::unique_ptr<UpdateSegment>> seg =
      UpdateSegment::Create(2 * kValues, 1, /*hold_words=*/true);
  ASSERT_TRUE(seg.ok()) << seg.status();
  const std::optional<uint32_t> slot = (*seg)->Acquire();
  ASSERT_EQ(slot, 1u);
  auto* values = reinterpret_cast<int64_t*>((*seg)->Slot(*slot).data());
  for (uint64_t i = 0; i < kValues; ++i) values[i] = static_cast<int64_t>(3 * i) + 1;
  (*seg)->Hold(*slot);
  (*seg)->Release(*slot);
  const std::string name = (*seg)->name();
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    absl::StatusOr<std::shared_ptr<const MappedUpdateSegment>> mapped = MappedUpdateSegment::Open(
        name, 2 * kValues + kHoldWordFloats, MappedUpdateSegment::Access::kReadWrite);
    if (!mapped.ok()) _exit(2);
    int64_t sum = 0;
    {
      HeldSlot held(*mapped, 1);
      for (int64_t v : held.As<int64_t>(kValues)) sum += v;
    }
    _exit(sum == static_cast<int64_t>(3 * (kValues * (kValues - 1) / 2) + kValues) ? 0 : 3);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_FALSE((*seg)->held(*slot));
  EXPECT_EQ((*seg)->Acquire(), slot);
}

TEST(ShmSegmentTest, ACopyIsBitForBitNonFiniteValuesIncluded) {
  const uint64_t n = 3 * 4096 + 17;  // a ragged size
  absl::StatusOr<std::unique_ptr<UpdateSegment>> seg = UpdateSegment::Create(n, 1);
  ASSERT_TRUE(seg.ok()) << seg.status();
  absl::StatusOr<std::shared_ptr<const MappedUpdateSegment>> mapped =
      MappedUpdateSegment::Open((*seg)->name(), n);
  ASSERT_TRUE(mapped.ok()) << mapped.status();
  std::span<float> s = (*seg)->Slot(1);
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<float>(i) * 0.5f - 100;
  // Judging values is the server's check (server/admission.h), not the copy's.
  s[0] = std::numeric_limits<float>::quiet_NaN();
  s[4096] = std::numeric_limits<float>::infinity();
  s[n - 1] = -std::numeric_limits<float>::infinity();
  std::vector<float> out(5, 7.0f);
  (*mapped)->CopySlot(1, &out);
  ASSERT_EQ(out.size(), n);
  EXPECT_EQ(std::memcmp(out.data(), s.data(), n * sizeof(float)), 0);
}

TEST(ShmSegmentTest, TheServerRefusesWhatIsNotAWorkersSegment) {
  for (const std::string& bad : std::vector<std::string>{
           "", "fedsim-updates-", "fedsim-updates-../../etc/passwd", "other-1234",
           "fedsim-updates-ABC", "fedsim-updates-" + std::string(49, 'a')}) {
    EXPECT_FALSE(IsUpdateSegmentName(bad)) << bad;
    absl::StatusOr<std::shared_ptr<const MappedUpdateSegment>> m =
        MappedUpdateSegment::Open(bad, 10);
    EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  // A name that exists on no machine: the worker must be elsewhere.
  absl::StatusOr<std::shared_ptr<const MappedUpdateSegment>> missing =
      MappedUpdateSegment::Open("fedsim-updates-0-0123456789abcdef", 10);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(missing.status().message(), HasSubstr(kShmRefused));
  EXPECT_THAT(missing.status().message(), HasSubstr("another machine"));

  // Not a whole number of slots for this model.
  absl::StatusOr<std::unique_ptr<UpdateSegment>> seg = UpdateSegment::Create(10, 1);
  ASSERT_TRUE(seg.ok()) << seg.status();
  absl::StatusOr<std::shared_ptr<const MappedUpdateSegment>> wrong =
      MappedUpdateSegment::Open((*seg)->name(), 7);
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(wrong.status().message(), HasSubstr("7-float slots"));
}

TEST(ShmSegmentTest, TooLargeASegmentIsNotMade) {
  absl::StatusOr<std::unique_ptr<UpdateSegment>> seg =
      UpdateSegment::Create(kMaxUpdateSegmentBytes / sizeof(float) / 4 + 1, 4);
  EXPECT_EQ(seg.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(UpdateSegment::Create(0, 1).status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(ShmSegmentTest, TheWorkerRemovesANameTheServerNeverTook) {
  std::string name;
  {
    absl::StatusOr<std::unique_ptr<UpdateSegment>> seg = UpdateSegment::Create(10, 1);
    ASSERT_TRUE(seg.ok()) << seg.status();
    name = (*seg)->name();
    EXPECT_TRUE(std::filesystem::exists(PathOf(name)));
  }
  EXPECT_FALSE(std::filesystem::exists(PathOf(name)));
}

}  // namespace
}  // namespace fedsim
