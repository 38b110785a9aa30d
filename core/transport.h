// Transport: how the engine gets tasks trained. The seam between the
// deterministic event loop and whatever executes tasks (threads in this
// process, or worker processes over gRPC).
//
// The engine decides what runs and in which order effects apply; a transport
// only moves tasks out and results back. Results may physically arrive in any
// order; the engine asks for exactly the one it needs next (virtual clock) or
// for whichever comes first (wall clock).
//
// Thread safety: implementations are thread-safe; the engine calls them from
// its one thread while executors deliver results from theirs.
#ifndef FEDSIM_CORE_TRANSPORT_H_
#define FEDSIM_CORE_TRANSPORT_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/client_models.h"
#include "core/task.h"

namespace fedsim {

class Transport {
 public:
  virtual ~Transport() = default;

  // Makes the task available for execution.
  // REQUIRES: the task's base model is in the ModelStore the transport was
  // built with, and stays there until the task's result was returned or the
  // task was cancelled.
  virtual void Submit(const TaskSpec& task) = 0;

  // The engine submits the tasks of one Select call between BeginBatch and
  // EndBatch. A transport may hold them back from its workers until
  // EndBatch, so that waiting workers share a round's tasks out at once
  // rather than one submission at a time. Only scheduling depends on it,
  // never a result. Calls pair up and do not nest. Default: nothing.
  virtual void BeginBatch() {}
  virtual void EndBatch() {}

  // Blocks until the result of task `id` has arrived and returns it; results
  // of other tasks arriving meanwhile are kept for later calls. Errors:
  // Unavailable when it cannot be produced (no worker for too long),
  // Cancelled when the transport is shut down. REQUIRES: id was submitted and
  // not cancelled, and its result was not returned before.
  virtual absl::StatusOr<TaskResult> Await(TaskId id) = 0;

  // Wall-clock mode: the next result of any task, waiting until `deadline`
  // (on the transport's clock); nullopt if none came by then.
  virtual absl::StatusOr<std::optional<TaskResult>> AwaitAny(absl::Time deadline) = 0;

  // Await with a deadline (on the transport's clock): nullopt when the
  // result of `id` has not arrived by then (it may still come, for a later
  // call). Errors as Await's. Default: Await, which waits as long as it takes.
  virtual absl::StatusOr<std::optional<TaskResult>> AwaitUntil(TaskId id, absl::Time deadline) {
    (void)deadline;
    absl::StatusOr<TaskResult> r = Await(id);
    if (!r.ok()) return r.status();
    return std::optional<TaskResult>(*std::move(r));
  }

  // Deployments whose clients bring their own data: per client (index =
  // client id), whether a worker that holds its data is connected now, so
  // that a wall-clock run's availability is whoever is connected. nullopt
  // where any worker can train any client (simulation). Default: nullopt.
  virtual std::optional<std::vector<bool>> ConnectedClients() const { return std::nullopt; }

  // The changes behind ConnectedClients since the last call, in the order
  // they happened: (client, connected). A client that went away and came
  // back between two looks appears twice, so none is missed. Default: none.
  virtual std::vector<std::pair<ClientId, bool>> TakeConnectionChanges() { return {}; }

  // Peer-to-peer runs: the client models of a decentralized rule, held by
  // the workers (core/client_models.h). nullptr where they live in the
  // rule's memory. Default: nullptr.
  virtual ClientModels* client_models() { return nullptr; }

  // The result of `id` is no longer wanted (its client dropped out); the
  // transport may skip or discard it.
  virtual void Cancel(TaskId id) = 0;

  // The engine will submit no more tasks and needs nothing more from the
  // workers (no task in flight, no client model or evaluation on them): a
  // transport may tell them to exit now, so that their exit overlaps the
  // run's last evaluation and its outputs. Await, Cancel, Backends and
  // Shutdown still work; a task submitted after it is never run. Default:
  // nothing (the workers hear of the end at Shutdown).
  virtual void ReleaseWorkers() {}

  // The run is over: stop executing, tell workers to exit. Idempotent.
  virtual void Shutdown() = 0;

  // Where results were trained so far, for the manifest: "cpu" and GPU
  // backends' names ("cuda:0 (NVIDIA H200, sm_90)"), sorted, each once.
  // Results of different backends agree within float tolerance, not bit for
  // bit. Default: empty (not known).
  virtual std::vector<std::string> Backends() const { return {}; }
};

}  // namespace fedsim

#endif  // FEDSIM_CORE_TRANSPORT_H_
