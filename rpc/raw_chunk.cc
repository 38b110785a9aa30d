#include "rpc/raw_chunk.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace fedsim {
namespace {

void AppendVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// Reads bytes across a buffer's slices in order.
class SliceCursor {
 public:
  explicit SliceCursor(const std::vector<grpc::Slice>& slices) : slices_(slices) { Settle(); }

  bool AtEnd() const { return index_ == slices_.size(); }

  bool ReadByte(uint8_t* b) {
    if (AtEnd()) return false;
    *b = slices_[index_].begin()[pos_++];
    Settle();
    return true;
  }

  bool ReadVarint(uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b = 0;
      if (!ReadByte(&b)) return false;
      *v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;  // more than 10 bytes
  }

  // The next n bytes as views, one per slice they touch; false when fewer
  // than n are left.
  bool Take(uint64_t n, std::vector<std::string_view>* parts) {
    while (n > 0) {
      if (AtEnd()) return false;
      const grpc::Slice& s = slices_[index_];
      const size_t here = std::min<uint64_t>(n, s.size() - pos_);
      parts->emplace_back(reinterpret_cast<const char*>(s.begin()) + pos_, here);
      pos_ += here;
      n -= here;
      Settle();
    }
    return true;
  }

 private:
  // Moves past exhausted (and empty) slices.
  void Settle() {
    while (index_ < slices_.size() && pos_ >= slices_[index_].size()) {
      ++index_;
      pos_ = 0;
    }
  }

  const std::vector<grpc::Slice>& slices_;
  size_t index_ = 0;
  size_t pos_ = 0;
};

absl::Status Malformed(const char* what) {
  return absl::InvalidArgumentError(absl::StrCat("malformed chunk message: ", what));
}

}  // namespace

grpc::ByteBuffer EncodeChunk(const google::protobuf::MessageLite& header, uint32_t data_field,
                             std::string_view data, std::shared_ptr<const void> owner) {
  std::string head;
  header.AppendToString(&head);
  AppendVarint(&head, (uint64_t{data_field} << 3) | 2);
  AppendVarint(&head, data.size());
  if (owner == nullptr || data.empty()) {
    head.append(data);
    grpc::Slice one(head);
    return grpc::ByteBuffer(&one, 1);
  }
  grpc::Slice parts[2] = {
      grpc::Slice(head),
      grpc::Slice(
          const_cast<char*>(data.data()), data.size(),
          [](void* keep) { delete static_cast<std::shared_ptr<const void>*>(keep); },
          new std::shared_ptr<const void>(std::move(owner)))};
  return grpc::ByteBuffer(parts, 2);
}

absl::Status DecodeChunk(const grpc::ByteBuffer& buffer, uint32_t data_field,
                         google::protobuf::MessageLite* header, DecodedChunk* out) {
  out->slices.clear();
  out->data.clear();
  if (!buffer.Dump(&out->slices).ok()) return Malformed("unreadable buffer");
  SliceCursor in(out->slices);
  std::string rest;  // every other field, re-encoded as it came
  bool seen_data = false;
  std::vector<std::string_view> parts;
  while (!in.AtEnd()) {
    uint64_t tag = 0;
    if (!in.ReadVarint(&tag)) return Malformed("truncated tag");
    const uint64_t field = tag >> 3;
    const int wire_type = static_cast<int>(tag & 7);
    if (field == 0) return Malformed("field number 0");
    if (field == data_field) {
      if (wire_type != 2) return Malformed("data field is not length-delimited");
      if (seen_data) return Malformed("data field twice");
      seen_data = true;
      uint64_t len = 0;
      if (!in.ReadVarint(&len) || !in.Take(len, &out->data)) return Malformed("truncated data");
      continue;
    }
    AppendVarint(&rest, tag);
    uint64_t len = 0;
    switch (wire_type) {
      case 0: {
        uint64_t v = 0;
        if (!in.ReadVarint(&v)) return Malformed("truncated varint");
        AppendVarint(&rest, v);
        continue;
      }
      case 1:
        len = 8;
        break;
      case 5:
        len = 4;
        break;
      case 2:
        if (!in.ReadVarint(&len)) return Malformed("truncated length");
        AppendVarint(&rest, len);
        break;
      default:
        return Malformed("unsupported wire type");
    }
    parts.clear();
    if (!in.Take(len, &parts)) return Malformed("truncated field");
    for (std::string_view p : parts) rest.append(p);
  }
  header->Clear();
  if (!header->ParseFromString(rest)) return Malformed("the fields do not parse");
  return absl::OkStatus();
}

absl::Status ParseRawMessage(const grpc::ByteBuffer& buffer, google::protobuf::MessageLite* out) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return absl::InvalidArgumentError("unreadable message");
  std::string bytes;
  for (const grpc::Slice& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  if (!out->ParseFromString(bytes)) {
    return absl::InvalidArgumentError(absl::StrCat("a ", out->GetTypeName(), " does not parse"));
  }
  return absl::OkStatus();
}

grpc::ByteBuffer SerializeRawMessage(const google::protobuf::MessageLite& message) {
  grpc::Slice slice(message.SerializeAsString());
  return grpc::ByteBuffer(&slice, 1);
}

}  // namespace fedsim
