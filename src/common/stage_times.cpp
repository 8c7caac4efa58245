#include "common/stage_times.h"

namespace segmentor {

namespace {
thread_local StageTimes* current_sink = nullptr;  // Note [Where the time goes]
}  // namespace

std::string_view to_string(Stage stage) {
  switch (stage) {
    case Stage::kDecode:
      return "decode";
    case Stage::kUpload:
      return "upload";
    case Stage::kModel:
      return "model";
    case Stage::kPostprocess:
      return "postprocess";
    case Stage::kEncode:
      return "encode";
    case Stage::kWrite:
      return "write";
    case Stage::kGateWait:
      return "gate_wait";
  }
  return "unknown";
}

StageTimes& StageTimes::operator+=(const StageTimes& other) {
  for (std::size_t i = 0; i < kStageCount; ++i) seconds[i] += other.seconds[i];
  return *this;
}

StageSink::StageSink(StageTimes* times) : previous_(current_sink) { current_sink = times; }

StageSink::~StageSink() { current_sink = previous_; }

void add_stage_time(Stage stage, double seconds) {
  if (current_sink != nullptr) (*current_sink)[stage] += seconds;
}

bool stage_sink_installed() { return current_sink != nullptr; }

}  // namespace segmentor
