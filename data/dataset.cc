// Dataset storage and row gathering. Readers and generators live in idx.cc and
// synthetic.cc.
#include "data/dataset.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <utility>

namespace fedsim {
namespace {

// Broken REQUIRES are programming errors, not data errors (readers validate
// input and return Status first), so they stop the process with a message
// instead of corrupting memory later.
void CheckOrDie(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fedsim::Dataset: violated requirement: %s\n", what);
    std::abort();
  }
}

void CheckShapeAndLabels(const ExampleShape& shape, int num_classes, size_t x_size,
                         const std::vector<int32_t>& y) {
  CheckOrDie(shape.channels > 0 && shape.height > 0 && shape.width > 0,
             "shape dimensions must be positive");
  CheckOrDie(num_classes > 0, "num_classes must be positive");
  CheckOrDie(x_size == y.size() * static_cast<size_t>(shape.dim()),
             "x.size() == y.size() * shape.dim()");
  for (int32_t label : y) {
    CheckOrDie(label >= 0 && label < num_classes, "labels in [0, num_classes)");
  }
}

}  // namespace

Dataset Dataset::FromU8(ExampleShape shape, int num_classes, std::vector<uint8_t> x,
                        std::vector<int32_t> y) {
  auto owned = std::make_shared<const std::vector<uint8_t>>(std::move(x));
  const std::span<const uint8_t> bytes(*owned);
  return FromU8(shape, num_classes, std::move(owned), bytes, std::move(y));
}

Dataset Dataset::FromU8(ExampleShape shape, int num_classes, std::shared_ptr<const void> owner,
                        std::span<const uint8_t> x, std::vector<int32_t> y) {
  CheckShapeAndLabels(shape, num_classes, x.size(), y);
  Dataset d;
  d.shape_ = shape;
  d.num_classes_ = num_classes;
  d.u8_owner_ = std::move(owner);
  d.x_u8_ = x;
  d.is_float_ = false;
  d.labels_ = std::move(y);
  return d;
}

Dataset Dataset::FromF32(ExampleShape shape, int num_classes, std::vector<float> x,
                         std::vector<int32_t> y) {
  CheckShapeAndLabels(shape, num_classes, x.size(), y);
  Dataset d;
  d.shape_ = shape;
  d.num_classes_ = num_classes;
  d.x_f32_ = std::move(x);
  d.is_float_ = true;
  d.labels_ = std::move(y);
  return d;
}

void Dataset::Gather(std::span<const uint32_t> indices, float* x, int32_t* y) const {
  const size_t d = static_cast<size_t>(dim());
  // Multiplying by a constant would differ from x / 255 in the last bit for
  // some bytes; divide so every path gives the same values.
  for (size_t r = 0; r < indices.size(); ++r) {
    const size_t i = indices[r];
    float* out = x + r * d;
    if (is_float_) {
      std::copy_n(x_f32_.data() + i * d, d, out);
    } else {
      const uint8_t* in = x_u8_.data() + i * d;
      for (size_t j = 0; j < d; ++j) out[j] = static_cast<float>(in[j]) / 255.0f;
    }
    y[r] = labels_[i];
  }
}

void Dataset::GatherRange(size_t begin, size_t end, float* x, int32_t* y) const {
  const size_t d = static_cast<size_t>(dim());
  for (size_t i = begin; i < end; ++i) {
    float* out = x + (i - begin) * d;
    if (is_float_) {
      std::copy_n(x_f32_.data() + i * d, d, out);
    } else {
      const uint8_t* in = x_u8_.data() + i * d;
      for (size_t j = 0; j < d; ++j) out[j] = static_cast<float>(in[j]) / 255.0f;
    }
    y[i - begin] = labels_[i];
  }
}

Dataset Dataset::Subset(std::span<const uint32_t> indices) const {
  const size_t d = static_cast<size_t>(dim());
  Dataset out;
  out.shape_ = shape_;
  out.num_classes_ = num_classes_;
  out.is_float_ = is_float_;
  out.labels_.reserve(indices.size());
  std::vector<uint8_t> bytes;
  if (is_float_) {
    out.x_f32_.reserve(indices.size() * d);
  } else {
    bytes.reserve(indices.size() * d);
  }
  for (uint32_t i : indices) {
    if (is_float_) {
      out.x_f32_.insert(out.x_f32_.end(), x_f32_.begin() + i * d, x_f32_.begin() + (i + 1) * d);
    } else {
      bytes.insert(bytes.end(), x_u8_.begin() + i * d, x_u8_.begin() + (i + 1) * d);
    }
    out.labels_.push_back(labels_[i]);
  }
  if (!is_float_) {
    auto owned = std::make_shared<const std::vector<uint8_t>>(std::move(bytes));
    out.x_u8_ = std::span<const uint8_t>(*owned);
    out.u8_owner_ = std::move(owned);
  }
  return out;
}

}  // namespace fedsim
