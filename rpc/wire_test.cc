#include "rpc/wire.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace fedsim {
namespace {

TEST(WireTest, ModelRefsRoundTrip) {
  for (const ModelRef& ref : {ModelRef::Global(0), ModelRef::Global(41), ModelRef::OfClient(0, 0),
                              ModelRef::OfClient(17, 5)}) {
    wire::ModelRef w;
    ModelRefToWire(ref, &w);
    absl::StatusOr<ModelRef> back = ModelRefFromWire(w);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, ref) << ref.ToString();
  }
  wire::ModelRef unknown;
  unknown.set_kind(static_cast<wire::ModelRef::Kind>(7));
  EXPECT_EQ(ModelRefFromWire(unknown).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(WireTest, TaskRoundTripsWithTheWholeLocalTrainingMessage) {
  TaskSpec spec;
  spec.id = 12;
  spec.client = 3;
  spec.base = ModelRef::OfClient(3, 9);
  spec.seed = 0xDEADBEEFCAFEull;
  spec.duration_s = 1.25;
  spec.due = 99;  // stays on the server
  spec.local.set_steps(7);
  spec.local.set_batch_size(32);
  spec.local.set_lr(0.05);
  spec.local.set_momentum(0.9);
  spec.local.set_weight_decay(1e-4);
  spec.local.set_prox_mu(0.01);
  wire::Task task;
  TaskToWire(spec, &task);
  absl::StatusOr<TaskSpec> back = TaskFromWire(task);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->id, 12u);
  EXPECT_EQ(back->client, 3u);
  EXPECT_EQ(back->base, ModelRef::OfClient(3, 9));
  EXPECT_EQ(back->seed, spec.seed);
  EXPECT_EQ(back->duration_s, 1.25);
  EXPECT_EQ(back->due, 0);
  // Byte-identical message: every field, set or not, travels as it was.
  EXPECT_EQ(back->local.SerializeAsString(), spec.local.SerializeAsString());
  EXPECT_FALSE(back->local.has_epochs());  // unset stays unset
}

TEST(WireTest, TaskWithAnUnknownModelKindIsRefused) {
  wire::Task task;
  task.set_task_id(5);
  task.mutable_base()->set_kind(static_cast<wire::ModelRef::Kind>(9));
  absl::StatusOr<TaskSpec> spec = TaskFromWire(task);
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(WireTest, StatusCodesSurviveTheGrpcEdge) {
  absl::Status s = absl::FailedPreconditionError("fix it");
  absl::Status back = FromGrpcStatus(ToGrpcStatus(s));
  EXPECT_EQ(back, s);
  EXPECT_TRUE(FromGrpcStatus(ToGrpcStatus(absl::OkStatus())).ok());
}

TEST(WireTest, GrpcTimeoutIsRelative) {
  gpr_timespec t = GrpcTimeout(absl::Milliseconds(1500));
  EXPECT_EQ(t.clock_type, GPR_TIMESPAN);
  EXPECT_EQ(t.tv_sec, 1);
  EXPECT_EQ(t.tv_nsec, 500'000'000);
  EXPECT_EQ(GrpcTimeout(-absl::Seconds(1)).tv_sec, 0);
}

TEST(WireTest, FingerprintSeesEveryBit) {
  std::vector<float> delta(1001, 1.0f);
  std::map<std::string, double> metrics = {{"loss", 1.0}};
  const ModelRef base = ModelRef::Global(2);
  uint64_t h = UpdateFingerprint(1, base, 3, delta, metrics);
  EXPECT_EQ(h, UpdateFingerprint(1, base, 3, delta, metrics));
  for (size_t i : {size_t{0}, size_t{511}, size_t{1000}}) {
    std::vector<float> changed = delta;
    changed[i] = std::nextafter(1.0f, 2.0f);
    EXPECT_NE(h, UpdateFingerprint(1, base, 3, changed, metrics)) << i;
  }
  EXPECT_NE(h, UpdateFingerprint(1, base, 4, delta, metrics));
  EXPECT_NE(h, UpdateFingerprint(2, base, 3, delta, metrics));
  EXPECT_NE(h, UpdateFingerprint(1, base, 3, delta, {{"loss", 2.0}}));
  EXPECT_NE(h, UpdateFingerprint(1, ModelRef::Global(3), 3, delta, metrics));
  EXPECT_NE(h, UpdateFingerprint(1, ModelRef::OfClient(0, 2), 3, delta, metrics));
  EXPECT_NE(UpdateFingerprint(1, ModelRef::OfClient(1, 2), 3, delta, metrics),
            UpdateFingerprint(1, ModelRef::OfClient(2, 2), 3, delta, metrics));
}

// The check a shared-memory update and a streamed one both pass
// (UpdateReader::Finish): the first NaN or infinity, across scan blocks, and
// the fingerprint of the same pass.
TEST(WireTest, ScanUpdateNamesTheFirstBadValueWhereverItIs) {
  const size_t n = 3 * 4096 + 17;  // many 64-float blocks and a ragged end
  const ModelRef base = ModelRef::Global(2);
  std::vector<float> v(n);
  for (size_t bad :
       {size_t{0}, size_t{63}, size_t{64}, size_t{4095}, size_t{4096}, n - 17, n - 1}) {
    for (float x : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
      std::fill(v.begin(), v.end(), 1.0f);
      v[bad] = x;
      if (bad + 5000 < n) v[bad + 5000] = x;  // a later one does not hide the first
      EXPECT_EQ(ScanUpdate(1, base, 3, v, {}).first_non_finite, bad) << bad << " " << x;
    }
  }
  for (size_t i = 0; i < n; ++i)
    v[i] =
        (i % 2 == 0 ? 1.0f : -1.0f) * std::numeric_limits<float>::max() / static_cast<float>(i + 1);
  const DeltaScan scan = ScanUpdate(1, base, 3, v, {{"loss", 1.0}});
  EXPECT_EQ(scan.first_non_finite, n);
  EXPECT_EQ(scan.fingerprint, UpdateFingerprint(1, base, 3, v, {{"loss", 1.0}}));
}

TEST(WireTest, FingerprintSeesOrder) {
  std::vector<float> delta(256);
  for (size_t i = 0; i < delta.size(); ++i) delta[i] = static_cast<float>(i);
  const uint64_t h = UpdateFingerprint(1, ModelRef::Global(2), 3, delta, {});
  // Two words that one lane hashes (one block apart), and the two halves of
  // a block, swapped.
  std::vector<float> swapped = delta;
  std::swap(swapped[0], swapped[128]);
  EXPECT_NE(h, UpdateFingerprint(1, ModelRef::Global(2), 3, swapped, {}));
  swapped = delta;
  std::swap_ranges(swapped.begin(), swapped.begin() + 64, swapped.begin() + 64);
  EXPECT_NE(h, UpdateFingerprint(1, ModelRef::Global(2), 3, swapped, {}));
}

// A streamed push scans its delta as the chunks come: any cut into pieces
// gives ScanUpdate's figures for the whole.
TEST(WireTest, DeltaScannerInPiecesEqualsOneScan) {
  const size_t n = 5 * 128 + 77;
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>(i) * 0.25f - 3.0f;
  v[300] = std::numeric_limits<float>::infinity();
  const ModelRef base = ModelRef::Global(4);
  const std::map<std::string, double> metrics = {{"loss", 0.5}};
  const DeltaScan whole = ScanUpdate(7, base, 60, v, metrics);
  EXPECT_EQ(whole.first_non_finite, 300u);
  for (size_t piece : {size_t{1}, size_t{100}, size_t{128}, size_t{129}, size_t{600}, n}) {
    DeltaScanner scanner(7, base, 60, n);
    for (size_t upto = piece; upto < n; upto += piece) {
      scanner.Advance(v.data(), upto);
      EXPECT_LE(scanner.position(), upto);
    }
    const DeltaScan scan = scanner.Finish(v.data(), metrics);
    EXPECT_EQ(scan.fingerprint, whole.fingerprint) << piece;
    EXPECT_EQ(scan.first_non_finite, whole.first_non_finite) << piece;
  }
}

}  // namespace
}  // namespace fedsim
