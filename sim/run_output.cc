#include "sim/run_output.h"

#include <sys/stat.h>

#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "util/hash.h"

namespace fedsim {
namespace {

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out += c;
        }
    }
  }
  return out;
}

// Shortest text that reads back as the same double: replay needs exact times.
std::string Num(double v) { return absl::StrFormat("%.17g", v); }

double NowSeconds() { return absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()); }

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

absl::StatusOr<std::unique_ptr<RunWriter>> RunWriter::Open(const std::string& run_dir) {
  std::unique_ptr<RunWriter> w(new RunWriter(run_dir));
  auto open = [&](const char* name, FILE** f) -> absl::Status {
    std::string path = run_dir + "/" + name;
    *f = std::fopen(path.c_str(), "w");
    if (*f == nullptr) {
      return absl::PermissionDeniedError(
          absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
    }
    return absl::OkStatus();
  };
  if (auto s = open("events.jsonl", &w->events_); !s.ok()) return s;
  if (auto s = open("metrics.csv", &w->metrics_); !s.ok()) return s;
  if (auto s = open("timing.csv", &w->timing_); !s.ok()) return s;
  std::fprintf(w->metrics_,
               "virtual_time,version,updates_applied,updates_dropped,test_loss,test_accuracy,"
               "bytes_down,bytes_up,mean_staleness,max_staleness\n");
  std::fprintf(w->timing_, "version,virtual_time,wall_s\n");
  return w;
}

RunWriter::~RunWriter() { (void)Close(); }

void RunWriter::OnDispatch(const TaskRecord& t) {
  std::fprintf(events_,
               "{\"ev\":\"dispatch\",\"t\":%s,\"task\":%" PRIu64 ",\"client\":%u,\"base\":%" PRIu64
               ",\"dur\":%s,\"seed\":%" PRIu64 "}\n",
               Num(t.start).c_str(), t.id, t.client, t.base_version, Num(t.duration).c_str(),
               t.seed);
}

void RunWriter::OnArrival(const TaskRecord& t, VirtualTime at, uint64_t staleness,
                          const absl::Status& verdict) {
  std::string tail = verdict.ok() ? "\"accepted\":true"
                                  : absl::StrCat("\"accepted\":false,\"reason\":\"",
                                                 JsonEscape(std::string(verdict.message())), "\"");
  std::fprintf(events_,
               "{\"ev\":\"arrival\",\"t\":%s,\"task\":%" PRIu64 ",\"client\":%u,\"base\":%" PRIu64
               ",\"staleness\":%" PRIu64 ",%s}\n",
               Num(at).c_str(), t.id, t.client, t.base_version, staleness, tail.c_str());
}

void RunWriter::OnTaskLost(const TaskRecord& t, VirtualTime at, const std::string& why) {
  std::fprintf(events_,
               "{\"ev\":\"lost\",\"t\":%s,\"task\":%" PRIu64 ",\"client\":%u,\"why\":\"%s\"}\n",
               Num(at).c_str(), t.id, t.client, JsonEscape(why).c_str());
}

void RunWriter::OnAvailability(VirtualTime at, ClientId client, bool available) {
  std::fprintf(events_, "{\"ev\":\"avail\",\"t\":%s,\"client\":%u,\"on\":%s}\n",
               Num(at).c_str(), client, available ? "true" : "false");
}

void RunWriter::OnCommit(VirtualTime at, Version v, const CommitResult& r) {
  std::string applied;
  for (const AppliedUpdate& a : r.applied) {
    if (!applied.empty()) applied += ",";
    absl::StrAppend(&applied, "{\"task\":", a.task_id, ",\"client\":", a.client,
                    ",\"staleness\":", a.staleness, ",\"weight\":", Num(a.weight), "}");
  }
  std::fprintf(events_, "{\"ev\":\"commit\",\"t\":%s,\"version\":%" PRIu64 ",\"applied\":[%s]}\n",
               Num(at).c_str(), v, applied.c_str());
}

void RunWriter::OnEvaluation(const EvalRow& row) {
  std::fprintf(events_,
               "{\"ev\":\"eval\",\"t\":%s,\"version\":%" PRIu64 ",\"loss\":%s,\"accuracy\":%s}\n",
               Num(row.virtual_time).c_str(), row.version, Num(row.test_loss).c_str(),
               Num(row.test_accuracy).c_str());
  std::fprintf(metrics_,
               "%.9g,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%.9g,%.9g,%" PRIu64 ",%" PRIu64
               ",%.9g,%" PRIu64 "\n",
               row.virtual_time, row.version, row.updates_applied, row.updates_dropped,
               row.test_loss, row.test_accuracy, row.bytes_down, row.bytes_up,
               row.mean_staleness, row.max_staleness);
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
    return absl::DataLossError(absl::StrCat("writing the run files in ", dir_,
                                            " failed (disk full?)"));
  }
  return absl::OkStatus();
}

absl::Status WriteTextFile(const std::string& path, const std::string& text) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
  }
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (std::fclose(f) != 0 || !ok) {
    return absl::DataLossError(absl::StrCat("writing ", path, " failed"));
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
  if (f == nullptr) {
    return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
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

absl::Status WriteManifest(const std::string& path, const ManifestInfo& info,
                           const RunSummary& s) {
  std::string j = absl::StrCat(
      "{\n  \"name\": \"", JsonEscape(info.name), "\",\n  \"scenario_hash\": \"",
      info.scenario_hash, "\",\n  \"seed\": ", info.seed, ",\n  \"build_id\": \"",
      JsonEscape(info.build_id), "\",\n  \"numeric_fingerprint\": \"",
      JsonEscape(info.numeric_fingerprint), "\",\n  \"model\": \"", JsonEscape(info.model),
      "\",\n  \"num_params\": ", info.num_params, ",\n  \"algorithm\": \"",
      JsonEscape(info.algorithm), "\",\n  \"transport\": \"", JsonEscape(info.transport),
      "\",\n  \"final_model_hash\": \"", s.final_model_hash, "\",\n  \"final_version\": ",
      s.final_version, ",\n  \"final_accuracy\": ", Num(s.final_accuracy),
      ",\n  \"final_loss\": ", Num(s.final_loss), ",\n  \"virtual_time\": ",
      Num(s.virtual_time), ",\n  \"updates_applied\": ", s.updates_applied,
      ",\n  \"updates_dropped\": ", s.updates_dropped, ",\n  \"tasks_dispatched\": ",
      s.tasks_dispatched, ",\n  \"stop_reason\": \"", JsonEscape(s.stop_reason),
      "\",\n  \"wall_s\": ", absl::StrFormat("%.3f", s.wall_s), "\n}\n");
  return WriteTextFile(path, j);
}

ProgressReporter::ProgressReporter(FILE* out, bool terminal, uint64_t max_commits,
                                   double max_virtual_s)
    : out_(out),
      terminal_(terminal),
      max_commits_(max_commits),
      max_virtual_s_(max_virtual_s),
      start_wall_(NowSeconds()) {}

void ProgressReporter::OnCommit(VirtualTime t, Version v, const CommitResult& r) {
  version_ = v;
  t_ = t;
  applied_ += r.applied.size();
  if (terminal_ && NowSeconds() - last_print_ > 0.2) Print(false);
}

void ProgressReporter::OnEvaluation(const EvalRow& row) {
  version_ = row.version;
  t_ = row.virtual_time;
  accuracy_ = row.test_accuracy;
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
  std::string line = absl::StrFormat("commit %d%s  t=%.1fs%s  %.1f updates/s  wall %.1fs%s",
                                     version_,
                                     max_commits_ ? absl::StrCat("/", max_commits_) : "", t_,
                                     acc, ups, wall, eta);
  if (terminal_) {
    std::fprintf(out_, "\r\033[K%s%s", line.c_str(), final_line ? "\n" : "");
  } else {
    std::fprintf(out_, "%s\n", line.c_str());
  }
  std::fflush(out_);
}

}  // namespace fedsim
