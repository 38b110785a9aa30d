// GrpcTransportImpl: the clients of a run whose clients bring their own data
// (GrpcServerOptions::local_client_names): which worker holds which client,
// who is connected, and the fleet's state for progress lines.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "server/grpc_transport_impl.h"

namespace fedsim {
namespace grpc_transport_internal {

void GrpcTransportImpl::NoteWaitingClientLocked(const TaskSpec& task) {
  if (local_names_.empty() || task.client >= slot_holder_.size()) return;
  if (slot_holder_[task.client] != 0 || waiting_noted_[task.client]) return;
  waiting_noted_[task.client] = true;
  Log(absl::StrCat("task ", task.id, " of client '", local_names_[task.client],
                   "' waits: no connected worker holds its folder (start one with "
                   "fedsim client --data=.../",
                   local_names_[task.client], ")"));
}

absl::StatusOr<std::vector<uint32_t>> GrpcTransportImpl::ClaimClientsLocked(
    const wire::RegisterRequest& request, uint64_t worker_id) {
  if (!local_data_) {
    if (request.local_clients().empty()) return std::vector<uint32_t>();
    return absl::FailedPreconditionError(absl::StrCat(
        "worker ", request.worker_name(),
        " brings client data (--data), but this run simulates "
        "its clients from the scenario's dataset; start it without --data, or give the server a "
        "scenario with deployment.clients_file or deployment.admit_clients"));
  }
  if (request.local_clients().empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("worker ", request.worker_name(),
                     " brings no client data, but this run's clients bring "
                     "their own (scenario deployment.clients_file or admit_clients); start it with "
                     "--data=FOLDER for each client it serves"));
  }
  const bool counted = request.local_train_examples_size() == request.local_clients_size() &&
                       request.local_test_examples_size() == request.local_clients_size();
  if (admit_capacity_ > 0 && !counted) {
    return absl::FailedPreconditionError(
        absl::StrCat("worker ", request.worker_name(),
                     " does not say how many examples its folders hold, which a run that "
                     "admits clients by name needs; run the same fedsim build on both sides"));
  }
  std::vector<uint32_t> slots;
  std::vector<int> admit;  // indices into request.local_clients() of new names
  for (int i = 0; i < request.local_clients_size(); ++i) {
    const std::string& name = request.local_clients(i);
    if (std::count(request.local_clients().begin(), request.local_clients().end(), name) > 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("worker ", request.worker_name(), " brings client '", name, "' twice"));
    }
    auto it = slot_of_.find(name);
    if (it != slot_of_.end()) {
      const uint32_t slot = it->second;
      if (admit_capacity_ > 0 && request.local_train_examples(i) != client_examples_[slot]) {
        return absl::FailedPreconditionError(absl::StrCat(
            "worker ", request.worker_name(), " brings client '", name, "' with ",
            request.local_train_examples(i),
            " training examples, but that client was admitted "
            "with ",
            client_examples_[slot],
            "; a client's data must not change during a run (or give the new data another "
            "folder name)"));
      }
      slots.push_back(slot);
      continue;
    }
    if (local_names_.size() + admit.size() < admit_capacity_) {
      slots.push_back(static_cast<uint32_t>(local_names_.size() + admit.size()));
      admit.push_back(i);
      continue;
    }
    if (admit_capacity_ > 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("worker ", request.worker_name(), " brings client '", name,
                       "', but this run admits ", admit_capacity_, " clients and has them all (",
                       AdmittedNamesLocked(), "); is the folder named as before?"));
    }
    return absl::FailedPreconditionError(
        absl::StrCat("worker ", request.worker_name(), " brings client '", name,
                     "', which is not in this "
                     "run's client list (",
                     local_names_.size(), " clients, e.g. '", local_names_.front(),
                     "'); the folder's name is the client's name"));
  }
  for (int i : admit) {
    const uint32_t slot = static_cast<uint32_t>(local_names_.size());
    local_names_.push_back(request.local_clients(i));
    slot_of_[local_names_.back()] = slot;
    slot_holder_.push_back(0);
    waiting_noted_.push_back(false);
    if (client_examples_.size() <= slot) client_examples_.resize(slot + 1, 0);
    client_examples_[slot] = request.local_train_examples(i);
    if (local_test_examples_.size() <= slot) local_test_examples_.resize(slot + 1, 0);
    local_test_examples_[slot] = request.local_test_examples(i);
    Log(absl::StrCat("admitted client '", local_names_.back(), "' as client ", slot, " (",
                     request.local_train_examples(i), " training, ", request.local_test_examples(i),
                     " test examples; ", local_names_.size(), " of ", admit_capacity_,
                     " admitted)"));
  }
  for (uint32_t slot : slots) {
    const uint64_t before = slot_holder_[slot];
    auto w = workers_.find(before);
    if (before != 0 && w != workers_.end()) {
      std::erase(w->second.holds, slot);
      Log(absl::StrCat("client '", local_names_[slot], "' moves from worker ", before, " (",
                       w->second.name, ") to worker ", worker_id, " (", request.worker_name(),
                       ")"));
    }
    if (before == 0) connection_changes_.emplace_back(slot, true);
    slot_holder_[slot] = worker_id;
    waiting_noted_[slot] = false;
  }
  return slots;
}

std::string GrpcTransportImpl::AdmittedNamesLocked() const {
  std::vector<std::string> names(local_names_.begin(),
                                 local_names_.begin() + std::min<size_t>(local_names_.size(), 10));
  return absl::StrCat(absl::StrJoin(names, ", "), local_names_.size() > 10 ? ", ..." : "");
}

std::vector<LocalClient> GrpcTransportImpl::LocalClients() const {
  absl::MutexLock lock(&mu_);
  std::vector<LocalClient> out;
  for (size_t slot = 0; slot < local_names_.size(); ++slot) {
    out.push_back(LocalClient{local_names_[slot],
                              slot < client_examples_.size() ? client_examples_[slot] : 0,
                              slot < local_test_examples_.size() ? local_test_examples_[slot] : 0});
  }
  return out;
}

void GrpcTransportImpl::ReleaseClientsLocked(uint64_t worker_id, const WorkerState& worker) {
  for (uint32_t slot : worker.holds) {
    if (slot_holder_[slot] != worker_id) continue;
    slot_holder_[slot] = 0;
    connection_changes_.emplace_back(slot, false);
  }
}

bool GrpcTransportImpl::MayTrainLocked(const WorkerState& worker, ClientId client) const {
  if (!home_.empty()) return IsHomeLocked(client, worker.id);
  return !local_data_ || std::binary_search(worker.holds.begin(), worker.holds.end(), client);
}

bool GrpcTransportImpl::HasTaskForLocked(const WorkerState& worker) const {
  if (!local_data_ && home_.empty()) return !pending_.empty();
  return std::any_of(pending_.begin(), pending_.end(),
                     [&](TaskId id) { return MayTrainLocked(worker, tasks_.at(id).spec.client); });
}

std::optional<std::vector<bool>> GrpcTransportImpl::ConnectedClients() const {
  absl::MutexLock lock(&mu_);
  if (!local_data_) return std::nullopt;
  std::vector<bool> connected(slot_holder_.size());
  for (size_t slot = 0; slot < slot_holder_.size(); ++slot) {
    connected[slot] = slot_holder_[slot] != 0;
  }
  return connected;
}

std::vector<std::pair<ClientId, bool>> GrpcTransportImpl::TakeConnectionChanges() {
  absl::MutexLock lock(&mu_);
  std::vector<std::pair<ClientId, bool>> out;
  out.swap(connection_changes_);
  return out;
}

FleetStatus GrpcTransportImpl::FleetLocked() const {
  FleetStatus f;
  f.workers_connected = static_cast<uint32_t>(workers_.size());
  f.clients_total = static_cast<uint32_t>(std::max(local_names_.size(), admit_capacity_));
  for (uint64_t holder : slot_holder_) f.clients_connected += holder != 0 ? 1 : 0;
  f.tasks_pending = static_cast<uint32_t>(pending_.size());
  const absl::Time now = clock_->Now();
  const TaskState* slowest = nullptr;
  for (const auto& [id, w] : workers_) {
    for (TaskId task_id : w.leased) {
      const TaskState& task = tasks_.at(task_id);
      if (task.received || task.cancelled || task.holder != id) continue;
      ++f.tasks_in_flight;
      if (slowest == nullptr || task.leased_at < slowest->leased_at ||
          (task.leased_at == slowest->leased_at && task.seq < slowest->seq)) {
        slowest = &task;
      }
    }
  }
  if (slowest != nullptr) {
    const ClientId c = slowest->spec.client;
    f.slowest_client = c < local_names_.size() ? local_names_[c] : absl::StrCat("client ", c);
    f.slowest_s = absl::ToDoubleSeconds(now - slowest->leased_at);
  }
  return f;
}

FleetStatus GrpcTransportImpl::fleet() const {
  absl::MutexLock lock(&mu_);
  return FleetLocked();
}

std::vector<std::string> GrpcTransportImpl::MissingNamesLocked(size_t max, size_t* more) const {
  std::vector<std::string> missing;
  *more = 0;
  for (size_t slot = 0; slot < slot_holder_.size(); ++slot) {
    if (slot_holder_[slot] != 0) continue;
    if (missing.size() < max) {
      missing.push_back(local_names_[slot]);
    } else {
      ++*more;
    }
  }
  return missing;
}

std::string GrpcTransportImpl::MissingClientsLocked(size_t max) const {
  size_t more = 0;
  const std::vector<std::string> missing = MissingNamesLocked(max, &more);
  std::string text = absl::StrJoin(missing, ", ");
  if (more > 0) absl::StrAppend(&text, ", and ", more, " more");
  if (local_names_.size() < admit_capacity_) {
    absl::StrAppend(&text, text.empty() ? "" : "; ", admit_capacity_ - local_names_.size(),
                    " not admitted yet");
  }
  return text.empty() ? "none" : text;
}

absl::Status GrpcTransportImpl::AwaitClients(size_t k, absl::Time deadline,
                                             absl::Duration log_every) {
  absl::MutexLock lock(&mu_);
  if (!local_data_) return absl::OkStatus();
  // Admitting: every client must have come once (its n_i is unknown before).
  k = admit_capacity_ > 0 ? admit_capacity_ : std::min(k, local_names_.size());
  auto connected = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return static_cast<size_t>(
        std::count_if(slot_holder_.begin(), slot_holder_.end(), [](uint64_t h) { return h != 0; }));
  };
  absl::Time next_log = clock_->Now();
  size_t last_logged = SIZE_MAX;
  while (true) {
    const size_t have = connected();
    if (have >= k) {
      Log(absl::StrCat(have, " of ", std::max(local_names_.size(), admit_capacity_),
                       " clients connected: starting the run"));
      return absl::OkStatus();
    }
    const absl::Time now = clock_->Now();
    if (now >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "only ", have, " of the ", k,
          " clients the run waits for connected in time; missing: ", MissingClientsLocked(10),
          ". Start a worker for each with: fedsim client --server=", address_,
          " --data=FOLDER[,FOLDER...]"));
    }
    if (options_.interrupt != nullptr && options_.interrupt->load()) {
      return absl::CancelledError("interrupted while waiting for clients");
    }
    if (now >= next_log || have != last_logged) {
      Log(absl::StrCat("waiting for clients: ", have, " of ", k,
                       " connected; missing: ", MissingClientsLocked(10)));
      last_logged = have;
      next_log = now + log_every;
    }
    // Registrations bump result_events_; the interrupt is polled.
    const uint64_t seen = result_events_;
    auto changed = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return result_events_ != seen; };
    clock_->AwaitWithDeadline(&mu_, absl::Condition(&changed),
                              std::min({deadline, next_log, now + absl::Milliseconds(100)}));
  }
}

}  // namespace grpc_transport_internal
}  // namespace fedsim
