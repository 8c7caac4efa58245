#include "memory/calibration_cache.h"

#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <system_error>

namespace segmentor {

namespace {

constexpr std::uint64_t kFnvOffset = 0xcbf29ce484222325ULL;
constexpr std::uint64_t kFnvPrime = 0x100000001b3ULL;

std::uint64_t fnv1a64(std::uint64_t hash, const char* data, std::size_t size) {
  for (std::size_t i = 0; i < size; ++i) {
    hash ^= static_cast<unsigned char>(data[i]);
    hash *= kFnvPrime;
  }
  return hash;
}

std::string hex16(std::uint64_t value) {
  std::array<char, 17> buffer{};
  std::snprintf(buffer.data(), buffer.size(), "%016llx", static_cast<unsigned long long>(value));
  return buffer.data();
}

nlohmann::ordered_json key_to_json(const CalibrationKey& key) {
  nlohmann::ordered_json j;
  j["card"] = key.card;
  j["driver"] = key.driver;
  j["libtorch"] = key.libtorch;
  j["device"] = key.device;
  j["models"] = key.models;
  j["settings"] = key.settings;
  return j;
}

}  // namespace

std::string CalibrationKey::canonical() const { return key_to_json(*this).dump(); }

Result<std::string> file_fingerprint(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found(path.string() + ": cannot open to fingerprint");
  std::uint64_t hash = kFnvOffset;
  std::uint64_t size = 0;
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const auto got = static_cast<std::size_t>(in.gcount());
    hash = fnv1a64(hash, buffer.data(), got);
    size += got;
  }
  if (in.bad()) return io_error(path.string() + ": read error while fingerprinting");
  return "fnv1a64:" + hex16(hash) + ":" + std::to_string(size);
}

std::string nvidia_driver_version() {
  // "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.159.04  Thu ..."
  std::ifstream in("/proc/driver/nvidia/version");
  std::string line;
  if (!std::getline(in, line)) return "";
  const auto module = line.find("Kernel Module");
  if (module == std::string::npos) return line;
  std::istringstream rest(line.substr(module + 13));
  std::string version;
  rest >> version;
  return version;
}

std::string nvidia_card_name(int index) {
  std::error_code ec;
  const std::filesystem::path gpus = "/proc/driver/nvidia/gpus";
  std::set<std::filesystem::path> entries;  // by PCI address, the order the driver numbers them
  for (const auto& entry : std::filesystem::directory_iterator(gpus, ec)) {
    entries.insert(entry.path());
  }
  if (ec || index < 0 || static_cast<std::size_t>(index) >= entries.size()) return "";
  std::ifstream in(*std::next(entries.begin(), index) / "information");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Model:", 0) != 0) continue;
    const auto start = line.find_first_not_of(" \t", 6);
    return start == std::string::npos ? "" : line.substr(start);
  }
  return "";
}

std::filesystem::path CalibrationCache::path_for(const CalibrationKey& key) const {
  const std::string text = key.canonical();
  return dir_ / ("calibration-" + hex16(fnv1a64(kFnvOffset, text.data(), text.size())) + ".json");
}

std::optional<CachedMeasurements> CalibrationCache::load(const CalibrationKey& key,
                                                         std::string* why_not) const {
  auto say = [why_not](std::string reason) {
    if (why_not != nullptr) *why_not = std::move(reason);
    return std::nullopt;
  };
  const std::filesystem::path path = path_for(key);
  std::ifstream in(path, std::ios::binary);
  if (!in) return say("");  // no file: a plain miss
  std::ostringstream text;
  text << in.rdbuf();
  try {
    const auto j = nlohmann::json::parse(text.str());
    if (nlohmann::json::parse(key_to_json(key).dump()) != j.at("key")) {
      return say(path.string() + " was made for another card, driver, LibTorch, model or setting");
    }
    CachedMeasurements measured;
    auto table = CalibrationTable::from_json(j.at("calibration").dump());
    if (!table.ok()) return say(path.string() + ": " + table.status().message());
    measured.calibration = std::move(*table);
    if (j.contains("load_checks")) {
      for (const auto& [model, checks] : j.at("load_checks").items()) {
        LoadChecks& into = measured.load_checks[model];
        into.frozen = checks.at("frozen").get<bool>();
        into.optimized = checks.at("optimized").get<bool>();
        if (!checks.at("batches").is_null()) into.batches = checks.at("batches").get<bool>();
      }
    }
    return measured;
  } catch (const nlohmann::json::exception& e) {
    return say(path.string() + ": " + e.what());
  }
}

Status CalibrationCache::store(const CalibrationKey& key,
                               const CachedMeasurements& measured) const {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return io_error(dir_.string() + ": cannot create: " + ec.message());
  // Resident bytes are measured at every load (Note [Calibration on disk]); the rest is kept.
  nlohmann::ordered_json j;
  j["key"] = key_to_json(key);
  j["calibration"] =
      nlohmann::ordered_json::parse(measured.calibration.without_resident_bytes().to_json());
  nlohmann::ordered_json checks = nlohmann::ordered_json::object();
  for (const auto& [model, verdicts] : measured.load_checks) {
    checks[model]["frozen"] = verdicts.frozen;
    checks[model]["optimized"] = verdicts.optimized;
    checks[model]["batches"] =
        verdicts.batches ? nlohmann::ordered_json(*verdicts.batches) : nlohmann::ordered_json();
  }
  j["load_checks"] = checks;
  const std::filesystem::path path = path_for(key);
  // Atomic: a temporary name in the same folder, then a rename over the old file.
  const std::filesystem::path temp =
      path.string() + ".tmp" + std::to_string(static_cast<long long>(::getpid()));
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out << j.dump(2) << "\n";
    out.close();
    if (!out) {
      std::filesystem::remove(temp, ec);
      return io_error(temp.string() + ": cannot write");
    }
  }
  std::filesystem::rename(temp, path, ec);
  if (ec) {
    std::filesystem::remove(temp, ec);
    return io_error(path.string() + ": cannot rename into place");
  }
  return Status::Ok();
}

}  // namespace segmentor
