// The engine: runs segmentation tasks (one per image or keyframe) on worker threads. Every task
// passes the memory gate and the recovery ladder of the lane (GPU) it runs on; with several GPUs
// each has its own, and a picker spreads tasks over them. `segmentor run`, `serve` and `bench`
// all submit here.
#pragma once

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/stage_times.h"
#include "common/status.h"
#include "imaging/decode.h"
#include "memory/admission_gate.h"
#include "memory/cache_policy.h"
#include "memory/calibration.h"
#include "memory/concurrency_tuner.h"
#include "memory/oom_recovery.h"
#include "models/mask_model.h"
#include "pipeline/mask_paths.h"
#include "pipeline/segmenter.h"
#include "pipeline/slot_threads.h"

namespace segmentor {

// The models loaded on one device (a lane's model set). `serialize` makes tasks on this lane run
// one at a time (the CPU lane: LibTorch already spreads one task over every core). Otherwise tasks
// run concurrently, each on its gate slot's thread (and, with CUDA_STREAMS=worker, stream).
struct ModelSet {
  std::string name;  // "cuda:0", "cpu"
  std::unique_ptr<MaskModel> foreground;
  std::unique_ptr<MaskModel> people;  // may be null: no people masks
  bool serialize = false;
  // May be null: the people model alone decides (Note [People are decided by a detector]).
  std::unique_ptr<MaskModel> person_detector{};

  // The models that are loaded, in pipeline order (foreground, people, detector).
  std::vector<MaskModel*> models() const {
    std::vector<MaskModel*> loaded;
    for (MaskModel* model : {foreground.get(), people.get(), person_detector.get()}) {
      if (model != nullptr) loaded.push_back(model);
    }
    return loaded;
  }
};

// The engine's borrowed view of a lane: its model set and the memory manager that guards it: its
// device's gate, recovery ladder, calibration (may be null or empty: tasks are then admitted by
// count alone), cache policy (may be null) and concurrency tuner (may be null: the gate admits up
// to MAX). One per GPU; on a machine without one, the CPU lane with a host-memory gate.
struct LaneView {
  ModelSet* lane = nullptr;
  AdmissionGate* gate = nullptr;
  OomRecovery* recovery = nullptr;
  const CalibrationTable* calibration = nullptr;
  CachePolicy* cache = nullptr;
  ConcurrencyTuner* tuner = nullptr;
  // The device's long-lived slot threads (Note [Slot threads outlive engines] in
  // slot_threads.h); null: the engine starts its own, which end with it.
  SlotThreads* slot_threads = nullptr;
};

struct EngineTask {
  AssetKind kind = AssetKind::kProductImage;
  std::string id;                 // mask file stem; validated (CONTRACT §4)
  std::filesystem::path source;   // the image file
  std::optional<RgbImage> image;  // already decoded (bench): `source` is then only a name
  // Reads the file's bytes instead of opening `source` by name (serve: beneath its input root,
  // following no link). May be empty.
  std::function<Result<std::vector<std::uint8_t>>(const ReadOptions&)> read;
};

struct TaskOutcome {
  Status status;
  MaskPaths paths;
  bool people_found = false;
  std::string lane;         // where the masks were made
  RecoveryReport recovery;  // what the out-of-memory ladder did, if anything
  bool threw = false;       // the task threw (a bug or an unwrapped library): do not retry it
  int width = 0;
  int height = 0;
  std::int64_t predicted_bytes = 0;
  double decode_seconds = 0;   // decode on a worker thread (no GPU held)
  double wait_seconds = 0;     // waiting for the memory gate
  double segment_seconds = 0;  // on the lane, retries and back-off included
  double write_seconds = 0;    // PNG encode + atomic writes (no GPU held)
  double total_seconds = 0;
  // Per stage, with EngineOptions::stage_times (Note [Where the time goes]); all zero without.
  StageTimes stages;
};

// Note [Worker threads for the GPU and for the codecs]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// An engine worker thread carries a task from decoding through its wait at the gate and its time
// on the GPU (blocked while its slot thread runs the models) to writing the masks. With
// lanes × MAX_CONCURRENT_IMAGES + 2 threads, a lane running all its slots left two threads for
// every decode and PNG write: `segmentor run` over JPEG frames on the H200 with 16 concurrent
// spent 7 ms decoding and 14 ms writing per frame, beside 94 ms on the GPU, and reached 148
// frames/s where `bench` (pre-decoded, no writes) reached 225 (bench/RESULTS.md, 2026-11-30). So
// the default adds a thread per core on top of the slots, so the codecs keep up with every slot
// busy. No more than one per slot, though: a thread waiting at the gate holds its decoded image,
// and a CPU-only host with many cores would otherwise decode far ahead of its serialised lane.
int default_worker_threads(int lanes, int max_concurrent);

struct EngineOptions {
  MaskLayout layout;
  DecodeOptions decode;
  // 0 = default_worker_threads(lanes, max_concurrent)
  int worker_threads = 0;
  int max_concurrent = 4;                           // per lane; used for the default worker count
  std::optional<std::filesystem::path> cutout_dir;  // also write RGBA cut-outs there
  bool write_masks = true;  // bench may skip the disk to measure the pipeline alone
  // Fill TaskOutcome::stages. On a GPU this synchronises each model call's stream at its stage
  // boundaries (models/stage_clock.h), so it is for benchmarks, not the service.
  bool stage_times = false;
};

// Thread-safe. Does not own the lanes or their gates, ladders, calibrations and cache policies:
// they must outlive the engine. The destructor finishes queued tasks first.
class Engine {
 public:
  using Done = std::function<void(const EngineTask&, const TaskOutcome&)>;

  // `lanes` run tasks (one per GPU, or the CPU lane on a machine without one; at least one, each
  // fully set); `cpu_fallback` (may be null) takes tasks whose GPU retries ran out.
  Engine(EngineOptions options, std::vector<LaneView> lanes, ModelSet* cpu_fallback);
  // One lane.
  Engine(EngineOptions options, ModelSet& primary, ModelSet* cpu_fallback, AdmissionGate& gate,
         OomRecovery& recovery, const CalibrationTable* calibration, CachePolicy* cache);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Queues a task. `done` runs on a worker thread after the task's masks are written or it
  // failed; it must not block for long.
  void submit(EngineTask task, Done done);
  // Blocks until every submitted task has finished.
  void wait_idle();
  int queued() const;

 private:
  struct Job {
    EngineTask task;
    Done done;
  };
  struct LaneState {
    LaneView guarded;
    std::mutex serial_mutex;  // only used when the lane serializes
    // A concurrent lane's GPU calls run on `guarded.slot_threads`, or on these when that is null.
    SlotThreads own_slot_threads;
    SlotThreads& slot_threads() {
      return guarded.slot_threads != nullptr ? *guarded.slot_threads : own_slot_threads;
    }
  };
  struct Admission {
    LaneState* lane = nullptr;
    AdmissionGate::Ticket ticket;
    std::int64_t predicted_bytes = 0;
  };
  void worker_loop();
  // process() with every exception turned into a failed outcome (Note [Exceptions stop at the
  // engine] in engine.cpp).
  TaskOutcome process_guarded(const EngineTask& task);
  TaskOutcome process(const EngineTask& task);
  std::int64_t predict_bytes(const LaneState& lane, const RgbImage& image) const;
  Result<Admission> admit(const RgbImage& image);
  Result<AssetMasks> segment_on(ModelSet& lane, std::mutex* lane_mutex, const RgbImage& image);

  const EngineOptions options_;
  std::vector<std::unique_ptr<LaneState>> lanes_;
  ModelSet* cpu_fallback_;
  std::mutex fallback_mutex_;  // the CPU lane runs one task at a time

  mutable std::mutex queue_mutex_;
  std::condition_variable queue_changed_;
  std::condition_variable idle_;
  std::deque<Job> queue_;
  int running_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace segmentor
