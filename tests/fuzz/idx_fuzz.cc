// Fuzz target: the IDX reader and the Fashion-MNIST loader (data/idx.cc).
// The first byte picks the entry point:
//  - even: ReadIdxFile on the rest (plain or gzip: zlib reads both);
//  - odd: the rest cut at "\n====\n" into train images, train labels, test
//    images and test labels, written into a scratch folder, and
//    LoadFashionMnist on it.
// Corpus: tests/fuzz/idx/.
#include <stdlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_split.h"
#include "data/dataset.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

// A folder of this process for the four files, removed at exit.
const std::string& ScratchDir() {
  static const std::string* dir = [] {
    char tmpl[] = "/tmp/fedsim-idx-fuzz-XXXXXX";
    FUZZ_CHECK(mkdtemp(tmpl) != nullptr);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(ScratchDir(), ec);
    });
    return new std::string(tmpl);
  }();
  return *dir;
}

void WriteFile(const std::string& path, absl::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  FUZZ_CHECK(out.good());
}

void CheckDataset(const fedsim::Dataset& d) {
  FUZZ_CHECK(d.dim() > 0);
  for (int32_t y : d.labels()) FUZZ_CHECK(y >= 0 && y < d.num_classes());
  // Every row can be read (ASan sees a read past the pixels).
  std::vector<float> x(static_cast<size_t>(d.dim()));
  int32_t y = 0;
  for (size_t i = 0; i < d.size(); ++i) d.GatherRange(i, i + 1, x.data(), &y);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string rest = fedsim::fuzz::AsString(data + 1, size - 1);
  if (data[0] % 2 == 0) {
    fedsim::fuzz::MemFile file(rest);
    absl::StatusOr<fedsim::IdxArray> a = fedsim::ReadIdxFile(file.path());
    if (!a.ok()) return 0;
    FUZZ_CHECK(!a->dims.empty());
    const uint64_t n = std::accumulate(a->dims.begin(), a->dims.end(), uint64_t{1},
                                       std::multiplies<uint64_t>());
    FUZZ_CHECK(n == a->data.size());
    return 0;
  }
  const std::vector<absl::string_view> parts = absl::StrSplit(rest, "\n====\n");
  const char* const names[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
  for (size_t i = 0; i < 4; ++i) {
    WriteFile(ScratchDir() + "/" + names[i], i < parts.size() ? parts[i] : absl::string_view());
  }
  absl::StatusOr<fedsim::TrainTest> tt = fedsim::LoadFashionMnist(ScratchDir());
  if (!tt.ok()) return 0;
  CheckDataset(tt->train);
  CheckDataset(tt->test);
  return 0;
}
