#include "rpc/raw_chunk.h"

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/fedsim.pb.h"
#include "rpc/chunker.h"

namespace fedsim {
namespace {

using ::testing::HasSubstr;

std::string Concat(const std::vector<std::string_view>& parts) {
  std::string out;
  for (std::string_view p : parts) out.append(p);
  return out;
}

// The buffer's bytes re-cut into slices of `piece` bytes (gRPC's reads cut
// them anywhere).
grpc::ByteBuffer Recut(const grpc::ByteBuffer& buffer, size_t piece) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(buffer.Dump(&slices).ok());
  std::string all;
  for (const grpc::Slice& s : slices)
    all.append(reinterpret_cast<const char*>(s.begin()), s.size());
  std::vector<grpc::Slice> cut;
  for (size_t i = 0; i < all.size(); i += piece) cut.emplace_back(all.substr(i, piece));
  return grpc::ByteBuffer(cut.data(), cut.size());
}

std::vector<float> Floats(size_t n) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = 0.25f * static_cast<float>(i) - 3;
  return v;
}

TEST(RawChunkTest, AnEncodedChunkIsAnOrdinaryProtobufMessage) {
  auto values = std::make_shared<std::vector<float>>(Floats(1000));
  wire::ModelChunk header;
  header.mutable_model()->set_version(7);
  header.set_num_params(5000);
  header.set_offset(123);
  const std::string_view bytes(reinterpret_cast<const char*>(values->data()), 4000);
  for (bool owned : {true, false}) {
    grpc::ByteBuffer buffer =
        EncodeChunk(header, kModelChunkDataField, bytes, owned ? values : nullptr);
    wire::ModelChunk parsed;
    ASSERT_TRUE(ParseRawMessage(buffer, &parsed).ok());
    EXPECT_EQ(parsed.model().version(), 7u);
    EXPECT_EQ(parsed.num_params(), 5000u);
    EXPECT_EQ(parsed.offset(), 123u);
    EXPECT_EQ(parsed.data(), bytes);
  }
}

TEST(RawChunkTest, DecodingFindsTheFieldsAndTheDataHoweverTheSlicesFall) {
  const std::vector<float> values = Floats(777);
  wire::UpdateChunk chunk;
  chunk.mutable_header()->set_task_id(42);
  chunk.mutable_header()->mutable_metrics()->insert({"train_loss", 0.5});
  chunk.set_offset(9);
  chunk.set_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * 4));
  // Written by plain protobuf code (data in the middle of the fields).
  const grpc::ByteBuffer whole = SerializeRawMessage(chunk);
  for (size_t piece : {1, 3, 7, 64, 4096, 1 << 20}) {
    wire::UpdateChunk header;
    DecodedChunk decoded;
    absl::Status s = DecodeChunk(Recut(whole, piece), kUpdateChunkDataField, &header, &decoded);
    ASSERT_TRUE(s.ok()) << piece << ": " << s;
    EXPECT_EQ(header.header().task_id(), 42u);
    EXPECT_EQ(header.header().metrics().at("train_loss"), 0.5);
    EXPECT_EQ(header.offset(), 9u);
    EXPECT_TRUE(header.data().empty());
    EXPECT_EQ(Concat(decoded.data), chunk.data()) << piece;

    // The assembler takes the pieces as they are, floats split or not.
    ChunkAssembler assembler(9 + values.size());
    ASSERT_TRUE(assembler.Add(0, std::string(36, '\0')).ok());
    ASSERT_TRUE(assembler.AddParts(9, decoded.data).ok()) << piece;
    ASSERT_TRUE(assembler.Finish().ok());
    std::vector<float> got = std::move(assembler).Take();
    EXPECT_EQ(std::vector<float>(got.begin() + 9, got.end()), values) << piece;
  }
}

TEST(RawChunkTest, MalformedBytesAreRefused) {
  wire::UpdateChunk header;
  DecodedChunk decoded;
  auto decode = [&](const std::string& bytes) {
    grpc::Slice s(bytes);
    return DecodeChunk(grpc::ByteBuffer(&s, 1), kUpdateChunkDataField, &header, &decoded);
  };
  EXPECT_THAT(decode("\x1a\x05"
                     "ab")
                  .message(),
              HasSubstr("truncated data"));
  EXPECT_THAT(decode("\x18\x01").message(), HasSubstr("not length-delimited"));
  EXPECT_THAT(decode("\x1a\x01"
                     "a\x1a\x01"
                     "b")
                  .message(),
              HasSubstr("twice"));
  EXPECT_THAT(decode(std::string("\x00\x01", 2)).message(), HasSubstr("field number 0"));
  EXPECT_THAT(decode("\x10").message(), HasSubstr("truncated varint"));
  EXPECT_THAT(decode("\x0b").message(), HasSubstr("wire type"));
  EXPECT_THAT(decode("\x0a\x03\xff\xff\xff").message(), HasSubstr("do not parse"));
  EXPECT_TRUE(decode("").ok());  // an empty message is a valid one
}

TEST(RawChunkTest, SplitFloatsAreRejoinedAndBadSizesStillRefused) {
  const std::vector<float> values = Floats(3);
  const char* b = reinterpret_cast<const char*>(values.data());
  std::vector<std::string_view> parts = {{b, 1}, {b + 1, 6}, {b + 7, 0}, {b + 7, 5}};
  ChunkAssembler ok(3);
  ASSERT_TRUE(ok.AddParts(0, parts).ok());
  ASSERT_TRUE(ok.Finish().ok());
  EXPECT_EQ(std::move(ok).Take(), values);

  ChunkAssembler ragged(3);
  std::vector<std::string_view> odd = {{b, 5}, {b + 5, 2}};
  EXPECT_THAT(ragged.AddParts(0, odd).message(), HasSubstr("not a whole number"));
  EXPECT_EQ(ragged.bytes_seen(), 7u);
}

}  // namespace
}  // namespace fedsim
