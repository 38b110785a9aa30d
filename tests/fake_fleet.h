// FakeFleet: a settable FleetView (and ModelBank) for algorithm and engine
// tests.
//
// Holds N ClientInfo records, the clock, the version, every global model
// version ever set or committed and every client model a rule published. idle_available() is recomputed from the
// ClientInfo flags (available && !busy), ascending id, on each call, so tests
// may flip flags freely. A few helpers play the engine's part by hand:
//
//   FakeFleet fleet(3, /*initial_model=*/{0, 0});
//   ASSERT_TRUE(algo->Start(fleet, fleet).ok());
//   TaskId t = fleet.StartTask(1);           // busy, base = current version
//   fleet.set_now(2.0);
//   ClientUpdate u = fleet.FinishTask(t, {1, 2});  // idle, staleness filled
//   ASSERT_TRUE(algo->Accept(fleet, u).ok());
//   if (algo->ReadyToCommit(fleet)) fleet.CommitTo(*algo);  // version += 1
//
// Copyable, so a test can fork a run (checkpoint tests).
// Not thread-safe.
#ifndef FEDSIM_TESTS_FAKE_FLEET_H_
#define FEDSIM_TESTS_FAKE_FLEET_H_

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "algorithms/algorithm.h"
#include "algorithms/types.h"

namespace fedsim {

class FakeFleet : public FleetView, public ModelBank {
 public:
  // A task the fake has started (StartTask) and not finished or lost.
  struct Task {
    TaskId id = 0;
    ClientId client = 0;
    ModelRef base;
    VirtualTime dispatch_time = 0;
  };

  FakeFleet() = default;
  // num_clients clients with 1 example each, importance 1/N, expected
  // duration 1, available and idle; version 0 holds initial_model.
  explicit FakeFleet(size_t num_clients, std::vector<float> initial_model = {})
      : clients_(num_clients) {
    for (ClientInfo& c : clients_) {
      c.num_examples = 1;
      c.importance = num_clients > 0 ? 1.0 / static_cast<double>(num_clients) : 0;
      c.expected_duration = 1;
    }
    models_[0] = std::move(initial_model);
  }

  // ------------------------------------------------------------ FleetView
  size_t num_clients() const override { return clients_.size(); }
  const ClientInfo& client(ClientId id) const override { return clients_.at(id); }
  std::span<const ClientId> idle_available() const override {
    idle_.clear();
    for (ClientId i = 0; i < clients_.size(); ++i) {
      if (clients_[i].available && !clients_[i].busy) idle_.push_back(i);
    }
    return idle_;
  }
  size_t num_busy() const override {
    size_t n = 0;
    for (const ClientInfo& c : clients_) n += c.busy ? 1 : 0;
    return n;
  }
  VirtualTime now() const override { return now_; }
  Version version() const override { return version_; }
  // Aborts with a message when `ref` was never set or published: a test bug.
  std::span<const float> model(const ModelRef& ref) const override {
    if (!ref.is_global()) {
      auto it = published_.find(ref);
      if (it != published_.end()) return *it->second;
    } else if (auto it = models_.find(ref.version); it != models_.end()) {
      return it->second;
    }
    std::cerr << "FakeFleet::model(" << ref.ToString() << "): no such model\n";
    std::abort();
  }
  std::span<const float> model(Version v) const { return model(ModelRef::Global(v)); }

  // ------------------------------------------------------------ ModelBank
  // Inside CommitTo/FinishTo: the next version being built; else the current.
  std::span<float> global() override {
    return in_commit_ ? std::span<float>(next_) : std::span<float>(models_.at(version_));
  }
  void Publish(const ModelRef& ref, std::shared_ptr<const std::vector<float>> params) override {
    published_[ref] = std::move(params);
  }
  const std::map<ModelRef, std::shared_ptr<const std::vector<float>>>& published() const {
    return published_;
  }

  // ------------------------------------------------------------ setters
  ClientInfo& mutable_client(ClientId id) { return clients_.at(id); }
  std::vector<ClientInfo>& clients() { return clients_; }
  void set_now(VirtualTime t) { now_ = t; }
  // Sets the version; the model of a new version defaults to the current one.
  void set_version(Version v) {
    if (models_.find(v) == models_.end()) models_[v] = models_[version_];
    version_ = v;
  }
  void set_model(Version v, std::vector<float> m) { models_[v] = std::move(m); }
  // The current global model.
  const std::vector<float>& current() const { return models_.at(version_); }

  // ------------------------------------------------------------ engine helpers

  // Starts a task for `client` at now(): marks it busy. Its base is `base`
  // (default: the current global version).
  TaskId StartTask(ClientId client, std::optional<ModelRef> base = std::nullopt) {
    clients_.at(client).busy = true;
    Task t{next_task_++, client, base.value_or(ModelRef::Global(version_)), now_};
    tasks_[t.id] = t;
    return t.id;
  }
  // StartTask for every dispatch, in order; returns the task ids.
  std::vector<TaskId> StartTasks(const std::vector<Dispatch>& dispatches) {
    std::vector<TaskId> ids;
    for (const Dispatch& d : dispatches) ids.push_back(StartTask(d.client, d.base));
    return ids;
  }
  // Finishes task `id` at now(): the client is idle again; the update carries
  // the client's num_examples, staleness = version - base, arrival = now().
  ClientUpdate FinishTask(TaskId id, std::vector<float> delta) {
    const Task t = tasks_.at(id);
    tasks_.erase(id);
    clients_.at(t.client).busy = false;
    ClientUpdate u;
    u.task_id = t.id;
    u.client = t.client;
    u.base = t.base;
    u.num_examples = clients_.at(t.client).num_examples;
    u.dispatch_time = t.dispatch_time;
    u.arrival_time = now_;
    u.staleness = t.base.is_global() ? version_ - t.base.version : 0;
    u.delta = std::move(delta);
    return u;
  }
  // The task will never report: the client is idle again.
  void LoseTask(TaskId id) {
    clients_.at(tasks_.at(id).client).busy = false;
    tasks_.erase(id);
  }
  const std::map<TaskId, Task>& tasks() const { return tasks_; }

  // Commits as the engine does: Commit on a copy of the current model, then
  // version += 1 with the result stored as the new version's model.
  absl::StatusOr<CommitResult> CommitTo(Algorithm& algorithm) {
    next_ = models_.at(version_);
    in_commit_ = true;
    absl::StatusOr<CommitResult> r = algorithm.Commit(*this, *this);
    in_commit_ = false;
    if (!r.ok()) return r;
    models_[++version_] = std::move(next_);
    return r;
  }
  // Finish as the engine does: a flush that returns a result is a commit.
  absl::StatusOr<std::optional<CommitResult>> FinishTo(Algorithm& algorithm) {
    next_ = models_.at(version_);
    in_commit_ = true;
    absl::StatusOr<std::optional<CommitResult>> r = algorithm.Finish(*this, *this);
    in_commit_ = false;
    if (r.ok() && r->has_value()) models_[++version_] = std::move(next_);
    return r;
  }
  // Fires a timer as the engine does: now = t, then OnTimer.
  absl::Status FireTimer(Algorithm& algorithm, VirtualTime t) {
    now_ = t;
    return algorithm.OnTimer(*this);
  }

 private:
  std::vector<ClientInfo> clients_;
  VirtualTime now_ = 0;
  Version version_ = 0;
  std::map<Version, std::vector<float>> models_;
  std::map<ModelRef, std::shared_ptr<const std::vector<float>>> published_;
  std::vector<float> next_;  // the version being built in CommitTo/FinishTo
  bool in_commit_ = false;
  std::map<TaskId, Task> tasks_;
  TaskId next_task_ = 1;
  mutable std::vector<ClientId> idle_;  // backing store of idle_available()
};

}  // namespace fedsim

#endif  // FEDSIM_TESTS_FAKE_FLEET_H_
