#include "rpc/chunker.h"

#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rpc/wire.h"

namespace fedsim {
namespace {

using ::testing::HasSubstr;

struct Chunk {
  uint64_t offset;
  std::string bytes;
};

std::vector<Chunk> Split(const std::vector<float>& v, size_t chunk_bytes) {
  std::vector<Chunk> out;
  SplitIntoChunks(v, chunk_bytes, [&](uint64_t offset, std::string_view bytes) {
    out.push_back({offset, std::string(bytes)});
    return true;
  });
  return out;
}

std::vector<float> Iota(size_t n) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = 0.5f * static_cast<float>(i) - 3.0f;
  return v;
}

TEST(ClampChunkBytesTest, WholeFloatsWithinLimits) {
  EXPECT_EQ(ClampChunkBytes(0), 4u);
  EXPECT_EQ(ClampChunkBytes(3), 4u);
  EXPECT_EQ(ClampChunkBytes(10), 8u);
  EXPECT_EQ(ClampChunkBytes(kMaxChunkBytes), kMaxChunkBytes);
  EXPECT_EQ(ClampChunkBytes(kMaxChunkBytes * 4), kMaxChunkBytes);
}

TEST(SplitIntoChunksTest, ContiguousChunksOfTheRequestedSize) {
  const std::vector<float> v = Iota(10);
  const std::vector<Chunk> chunks = Split(v, 16);  // 4 floats each
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0].offset, 0u);
  EXPECT_EQ(chunks[1].offset, 4u);
  EXPECT_EQ(chunks[2].offset, 8u);
  EXPECT_EQ(chunks[0].bytes.size(), 16u);
  EXPECT_EQ(chunks[2].bytes.size(), 8u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(v.data()), 40),
            chunks[0].bytes + chunks[1].bytes + chunks[2].bytes);
}

TEST(SplitIntoChunksTest, NeverMoreThanOneMebibytePerChunk) {
  const std::vector<float> v = Iota(600'000);  // 2.4 MB
  const std::vector<Chunk> chunks = Split(v, 64u << 20);
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0].bytes.size(), kMaxChunkBytes);
  EXPECT_EQ(chunks[1].offset, kMaxChunkBytes / 4);
}

TEST(SplitIntoChunksTest, EmptyTensorIsOneEmptyChunk) {
  const std::vector<Chunk> chunks = Split({}, 1024);
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].offset, 0u);
  EXPECT_TRUE(chunks[0].bytes.empty());
}

TEST(SplitIntoChunksTest, StopsWhenThePeerGoesAwayAndCountsOnlyAcceptedBytes) {
  const std::vector<float> v = Iota(10);
  int calls = 0;
  const uint64_t accepted = SplitIntoChunks(v, 8, [&](uint64_t, std::string_view) {
    return ++calls < 3;  // the third write fails
  });
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(accepted, 16u);
}

TEST(ChunkAssemblerTest, RoundTripsBitForBit) {
  const std::vector<float> v = Iota(1001);
  ChunkAssembler a(v.size());
  for (const Chunk& c : Split(v, 400)) ASSERT_TRUE(a.Add(c.offset, c.bytes).ok());
  ASSERT_TRUE(a.Finish().ok());
  EXPECT_EQ(a.bytes_seen(), v.size() * 4);
  EXPECT_EQ(std::move(a).Take(), v);
}

TEST(ChunkAssemblerTest, GapIsRefusedAndTheFirstErrorSticks) {
  ChunkAssembler a(1000);
  ASSERT_TRUE(a.Add(0, std::string(400, '\0')).ok());
  absl::Status gap = a.Add(200, std::string(400, '\0'));
  EXPECT_EQ(gap.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(gap.message(), HasSubstr("expected offset 100, got 200"));
  // A later, well-formed chunk does not heal the stream.
  EXPECT_EQ(a.Add(100, std::string(3600, '\0')).message(), gap.message());
  EXPECT_EQ(a.Finish().message(), gap.message());
  EXPECT_EQ(a.bytes_seen(), 4400u);
}

TEST(ChunkAssemblerTest, PartialFloatIsRefused) {
  ChunkAssembler a(10);
  absl::Status s = a.Add(0, std::string(6, '\0'));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("6 bytes is not a whole number of float32"));
}

TEST(ChunkAssemblerTest, TooManyAndTooFewFloatsAreRefused) {
  ChunkAssembler many(3);
  EXPECT_THAT(many.Add(0, std::string(16, '\0')).message(),
              HasSubstr("expected 3 floats, got at least 4"));
  ChunkAssembler few(3);
  ASSERT_TRUE(few.Add(0, std::string(8, '\0')).ok());
  EXPECT_THAT(few.Finish().message(), HasSubstr("expected 3 floats, got 2"));
  ChunkAssembler none(0);
  ASSERT_TRUE(none.Add(0, "").ok());
  EXPECT_TRUE(none.Finish().ok());
}

}  // namespace
}  // namespace fedsim
