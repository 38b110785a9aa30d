#include "sim/run_output.h"

#include <sys/stat.h>

#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "util/file.h"
#include "util/hash.h"

namespace fedsim {
namespace {

using Json = nlohmann::ordered_json;  // keys stay in the order they are written

// Compact (one line) or indented JSON text. Doubles are written as a short
// text that reads back as exactly the same double (nlohmann's Grisu2
// to_chars), so replay sees exact times and durations; NaN and infinities, which JSON
// cannot express, become null. Strings that are not valid UTF-8 (a verdict
// message could quote anything) get U+FFFD for the bad bytes instead of
// making dump() throw.
std::string Dump(const Json& j, int indent = -1) {
  return j.dump(indent, ' ', /*ensure_ascii=*/false, Json::error_handler_t::replace);
}

// Appends `event` to events.jsonl as one line.
void WriteEvent(FILE* events, const Json& event) {
  const std::string line = Dump(event) + "\n";
  // A short write sets the stream's error flag; Close() reports it.
  std::fwrite(line.data(), 1, line.size(), events);
}

// Counts print as integers, other figures with 9 significant digits.
std::string MetricCell(double v) {
  if (v == std::floor(v) && std::fabs(v) < 1e15) return absl::StrFormat("%.0f", v);
  return absl::StrFormat("%.9g", v);
}

}  // namespace

absl::StatusOr<std::string> MakeRunDir(const std::string& dir, const std::string& name) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create the output folder ", dir, ": ", ec.message()));
  }
  for (int i = 1; i < 10000; ++i) {
    std::string path = absl::StrCat(dir, "/", name, i == 1 ? "" : absl::StrCat("-", i));
    if (mkdir(path.c_str(), 0755) == 0) return path;
    if (errno != EEXIST) {
      return absl::PermissionDeniedError(
          absl::StrCat("cannot create ", path, ": ", std::strerror(errno)));
    }
  }
  return absl::ResourceExhaustedError(absl::StrCat("too many runs named ", name, " in ", dir));
}

absl::Status MakeExactRunDir(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec) && !std::filesystem::is_directory(path, ec)) {
    return absl::AlreadyExistsError(
        absl::StrCat("the run folder ", path, " is a file, not a folder; pick another --run_dir"));
  }
  if (std::filesystem::exists(path, ec) && !std::filesystem::is_empty(path, ec)) {
    return absl::AlreadyExistsError(absl::StrCat(
        "the run folder ", path, " already exists and is not empty; pick another --run_dir"));
  }
  std::filesystem::create_directories(path, ec);
  if (ec) {
    return absl::PermissionDeniedError(absl::StrCat("cannot create ", path, ": ", ec.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<RunWriter>> RunWriter::Open(const std::string& run_dir,
                                                           const OutputOffsets* resume) {
  std::unique_ptr<RunWriter> w(new RunWriter(run_dir));
  w->resumed_ = resume != nullptr;
  auto open = [&](const char* name, FILE** f, uint64_t offset) -> absl::Status {
    std::string path = run_dir + "/" + name;
    if (resume != nullptr) {
      std::error_code ec;
      const uint64_t size = std::filesystem::file_size(path, ec);
      if (ec || size < offset) {
        return absl::DataLossError(
            absl::StrCat(path, " holds ", ec ? 0 : size, " bytes but the checkpoint was taken at ",
                         offset, ": this folder's outputs do not belong to that checkpoint"));
      }
      std::filesystem::resize_file(path, offset, ec);
      if (ec) {
        return absl::PermissionDeniedError(
            absl::StrCat("cannot truncate ", path, ": ", ec.message()));
      }
    }
    *f = std::fopen(path.c_str(), resume != nullptr ? "a" : "w");
    if (*f == nullptr) {
      return absl::PermissionDeniedError(
          absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
    }
    return absl::OkStatus();
  };
  const OutputOffsets none;
  const OutputOffsets& at = resume != nullptr ? *resume : none;
  if (auto s = open("events.jsonl", &w->events_, at.events); !s.ok()) return s;
  if (auto s = open("metrics.csv", &w->metrics_, at.metrics); !s.ok()) return s;
  if (auto s = open("timing.csv", &w->timing_, at.timing); !s.ok()) return s;
  if (resume == nullptr) std::fprintf(w->timing_, "version,virtual_time,wall_s\n");
  return w;
}

void RunWriter::OnStart(const std::vector<std::string>& columns) {
  columns_ = columns;
  if (!resumed_) std::fprintf(metrics_, "%s\n", absl::StrJoin(columns_, ",").c_str());
}

void RunWriter::OnCheckpoint(ckpt::EngineState* state) {
  for (FILE* f : {events_, metrics_, timing_}) {
    if (f != nullptr && std::fflush(f) != 0) write_failed_ = true;
  }
  // Only ever appended to, so each file's size is where a resumed run goes on.
  auto size = [](FILE* f) -> uint64_t {
    struct stat st;
    if (f == nullptr || fstat(fileno(f), &st) != 0) return 0;
    return static_cast<uint64_t>(st.st_size);
  };
  state->set_events_bytes(size(events_));
  state->set_metrics_bytes(size(metrics_));
  state->set_timing_bytes(size(timing_));
}

RunWriter::~RunWriter() { (void)Close(); }

void RunWriter::OnDispatch(const TaskRecord& t) {
  Json e{{"ev", "dispatch"},
         {"t", t.start},
         {"task", t.id},
         {"client", t.client},
         {"base", t.base.version}};
  // A client's own model (decentralized rules) also names the client.
  if (!t.base.is_global()) e["base_client"] = t.base.client;
  e["dur"] = t.duration;
  e["seed"] = t.seed;
  WriteEvent(events_, e);
}

void RunWriter::OnArrival(const TaskRecord& t, VirtualTime at, uint64_t staleness,
                          const absl::Status& verdict) {
  Json e{
      {"ev", "arrival"}, {"t", at}, {"task", t.id}, {"client", t.client}, {"base", t.base.version}};
  if (!t.base.is_global()) e["base_client"] = t.base.client;
  e["staleness"] = staleness;
  if (real_durations_) e["dur"] = std::max(0.0, at - t.start);
  e["accepted"] = verdict.ok();
  if (!verdict.ok()) e["reason"] = std::string(verdict.message());
  WriteEvent(events_, e);
}

void RunWriter::OnTaskLost(const TaskRecord& t, VirtualTime at, const std::string& why) {
  WriteEvent(events_,
             Json{{"ev", "lost"}, {"t", at}, {"task", t.id}, {"client", t.client}, {"why", why}});
}

void RunWriter::OnAvailability(VirtualTime at, ClientId client, bool available) {
  WriteEvent(events_, Json{{"ev", "avail"}, {"t", at}, {"client", client}, {"on", available}});
}

void RunWriter::OnCommit(VirtualTime at, Version v, const CommitResult& r) {
  Json applied = Json::array();
  for (const AppliedUpdate& a : r.applied) {
    applied.push_back(Json{{"task", a.task_id},
                           {"client", a.client},
                           {"staleness", a.staleness},
                           {"weight", a.weight}});
  }
  WriteEvent(events_,
             Json{{"ev", "commit"}, {"t", at}, {"version", v}, {"applied", std::move(applied)}});
}

void RunWriter::OnEvaluation(const MetricsRow& row) {
  WriteEvent(events_, Json{{"ev", "eval"},
                           {"t", row.virtual_time},
                           {"version", row.version},
                           {"loss", row.Get("test_loss")},
                           {"accuracy", row.Get("test_accuracy")}});
  std::string line;
  for (size_t i = 0; i < columns_.size(); ++i) {
    if (i > 0) line += ',';
    auto it = row.values.find(columns_[i]);
    if (it != row.values.end()) line += MetricCell(it->second);
  }
  std::fprintf(metrics_, "%s\n", line.c_str());
  std::fprintf(timing_, "%" PRIu64 ",%.9g,%.3f\n", row.version, row.virtual_time, row.wall_s);
  // Rows reach the disk as they come, so a crashed run keeps its figures.
  std::fflush(metrics_);
  std::fflush(timing_);
  std::fflush(events_);
}

absl::Status RunWriter::Close() {
  for (FILE** f : {&events_, &metrics_, &timing_}) {
    if (*f == nullptr) continue;
    if (std::ferror(*f) || std::fclose(*f) != 0) write_failed_ = true;
    *f = nullptr;
  }
  if (write_failed_) {
    return absl::DataLossError(
        absl::StrCat("writing the run files in ", dir_, " failed (disk full?)"));
  }
  return absl::OkStatus();
}

absl::Status WriteFinalModel(const std::string& path, std::span<const float> params,
                             uint64_t version) {
  std::string bytes = "FSMODEL1";
  auto put = [&](const void* p, size_t n) { bytes.append(static_cast<const char*>(p), n); };
  const uint32_t format = 1;
  const uint64_t n = params.size();
  put(&format, 4);
  put(&n, 8);
  put(&version, 8);
  put(params.data(), params.size_bytes());
  return WriteTextFile(path, bytes);
}

absl::StatusOr<std::vector<float>> ReadFinalModel(const std::string& path, uint64_t* version) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return FileReadError(path, errno);
  char magic[8];
  uint32_t format = 0;
  uint64_t n = 0, v = 0;
  bool ok = std::fread(magic, 1, 8, f) == 8 && std::memcmp(magic, "FSMODEL1", 8) == 0 &&
            std::fread(&format, 4, 1, f) == 1 && format == 1 && std::fread(&n, 8, 1, f) == 1 &&
            std::fread(&v, 8, 1, f) == 1 && n < (uint64_t{1} << 34);
  std::vector<float> params;
  if (ok) {
    params.resize(n);
    ok = std::fread(params.data(), sizeof(float), n, f) == n;
  }
  std::fclose(f);
  if (!ok) return absl::DataLossError(absl::StrCat(path, " is not a fedsim model file"));
  if (version) *version = v;
  return params;
}

absl::Status WriteManifest(const std::string& path, const ManifestInfo& info, const RunSummary& s) {
  Json j{
      {"name", info.name},
      {"scenario_hash", info.scenario_hash},
      {"seed", info.seed},
      {"build_id", info.build_id},
      {"numeric_fingerprint", info.numeric_fingerprint},
      {"model", info.model},
      {"num_params", info.num_params},
      {"algorithm", info.algorithm},
      {"algorithm_notes", info.algorithm_notes},
      {"transport", info.transport},
      {"backends", info.backends},
      {"final_model_hash", s.final_model_hash},
      {"final_version", s.final_version},
      {"final_accuracy", s.final_accuracy},
      {"final_loss", s.final_loss},
      {"virtual_time", s.virtual_time},
      {"updates_applied", s.updates_applied},
      {"updates_dropped", s.updates_dropped},
      {"tasks_dispatched", s.tasks_dispatched},
      {"stop_reason", s.stop_reason},
      // Milliseconds are all a wall time is good for.
      {"wall_s", std::round(s.wall_s * 1000.0) / 1000.0},
  };
  if (!info.robust_eval.empty()) j["robust_eval"] = info.robust_eval;
  for (const auto& [name, value] : info.final_figures) j["final_" + name] = value;
  return WriteTextFile(path, Dump(j, 2) + "\n");
}

ProgressReporter::ProgressReporter(FILE* out, bool terminal, uint64_t max_commits,
                                   double max_virtual_s, Clock* clock,
                                   std::function<std::string()> suffix)
    : out_(out),
      terminal_(terminal),
      max_commits_(max_commits),
      max_virtual_s_(max_virtual_s),
      clock_(clock),
      suffix_(std::move(suffix)),
      start_wall_(NowSeconds()) {}

void ProgressReporter::OnCommit(VirtualTime t, Version v, const CommitResult& r) {
  version_ = v;
  t_ = t;
  applied_ += r.applied.size();
  if (terminal_ && NowSeconds() - last_print_ > 0.2) Print(false);
}

void ProgressReporter::OnEvaluation(const MetricsRow& row) {
  version_ = row.version;
  t_ = row.virtual_time;
  accuracy_ = row.Get("test_accuracy");
  Print(false);
}

void ProgressReporter::OnFinish(const RunSummary& s) {
  version_ = s.final_version;
  t_ = s.virtual_time;
  accuracy_ = s.final_accuracy;
  // Off a terminal the last evaluation's line already said it all.
  if (terminal_) Print(true);
}

void ProgressReporter::Print(bool final_line) {
  const double wall = NowSeconds() - start_wall_;
  last_print_ = NowSeconds();
  const double ups = wall > 0 ? applied_ / wall : 0;
  std::string eta;
  double frac = 0;
  if (max_commits_ > 0) frac = static_cast<double>(version_) / max_commits_;
  if (max_virtual_s_ > 0) frac = std::max(frac, t_ / max_virtual_s_);
  if (frac > 0.01 && frac < 1 && !final_line) {
    eta = absl::StrFormat(" ETA %.0fs", wall * (1 - frac) / frac);
  }
  std::string acc = accuracy_ >= 0 ? absl::StrFormat(" acc %.4f", accuracy_) : "";
  std::string line =
      absl::StrFormat("commit %d%s  t=%.1fs%s  %.1f updates/s  wall %.1fs%s", version_,
                      max_commits_ ? absl::StrCat("/", max_commits_) : "", t_, acc, ups, wall, eta);
  if (suffix_) line += suffix_();
  if (terminal_) {
    std::fprintf(out_, "\r\033[K%s%s", line.c_str(), final_line ? "\n" : "");
  } else {
    std::fprintf(out_, "%s\n", line.c_str());
  }
  std::fflush(out_);
}

}  // namespace fedsim
