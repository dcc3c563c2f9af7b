#include "control/monitor/gpu_usage.h"

#include <dlfcn.h>

#include <vector>

namespace triplane::control {
namespace {

// The few NVML declarations used here (nvml.h, stable ABI since the _v2/_v3 entry points).
using NvmlReturn = int;  // nvmlReturn_t; 0 is NVML_SUCCESS
constexpr NvmlReturn kNvmlSuccess = 0;
constexpr NvmlReturn kNvmlInsufficientSize = 7;
using NvmlDevice = struct NvmlDeviceOpaque*;
struct NvmlUtilization {  // nvmlUtilization_t
  unsigned int gpu;
  unsigned int memory;
};
struct NvmlProcessInfo {  // nvmlProcessInfo_t of the _v2/_v3 calls
  unsigned int pid;
  unsigned long long used_gpu_memory;  // NVML_VALUE_NOT_AVAILABLE (all ones) when unknown
  unsigned int gpu_instance_id;
  unsigned int compute_instance_id;
};
constexpr unsigned long long kNvmlValueNotAvailable = ~0ull;

}  // namespace

struct GpuUsageReader::Api {
  void* library = nullptr;
  NvmlReturn (*init)() = nullptr;
  NvmlReturn (*shutdown)() = nullptr;
  NvmlReturn (*device_count)(unsigned int*) = nullptr;
  NvmlReturn (*device_by_index)(unsigned int, NvmlDevice*) = nullptr;
  NvmlReturn (*utilization)(NvmlDevice, NvmlUtilization*) = nullptr;
  NvmlReturn (*processes)(NvmlDevice, unsigned int*, NvmlProcessInfo*) = nullptr;
  unsigned int devices = 0;
};

namespace {

template <typename Fn>
bool Resolve(void* library, const char* name, Fn*& out) {
  out = reinterpret_cast<Fn*>(::dlsym(library, name));
  return out != nullptr;
}

}  // namespace

std::unique_ptr<GpuUsageReader> GpuUsageReader::Open() {
  auto api = std::make_unique<Api>();
  api->library = ::dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (api->library == nullptr) return nullptr;
  void* lib = api->library;
  const bool resolved =
      Resolve(lib, "nvmlInit_v2", api->init) && Resolve(lib, "nvmlShutdown", api->shutdown) &&
      Resolve(lib, "nvmlDeviceGetCount_v2", api->device_count) &&
      Resolve(lib, "nvmlDeviceGetHandleByIndex_v2", api->device_by_index) &&
      Resolve(lib, "nvmlDeviceGetUtilizationRates", api->utilization) &&
      (Resolve(lib, "nvmlDeviceGetComputeRunningProcesses_v3", api->processes) ||
       Resolve(lib, "nvmlDeviceGetComputeRunningProcesses_v2", api->processes));
  if (!resolved || api->init() != kNvmlSuccess) {
    ::dlclose(lib);
    return nullptr;
  }
  if (api->device_count(&api->devices) != kNvmlSuccess || api->devices == 0) {
    api->shutdown();
    ::dlclose(lib);
    return nullptr;
  }
  return std::unique_ptr<GpuUsageReader>(new GpuUsageReader(std::move(api)));
}

GpuUsageReader::GpuUsageReader(std::unique_ptr<Api> api) : api_(std::move(api)) {}

GpuUsageReader::~GpuUsageReader() {
  api_->shutdown();
  ::dlclose(api_->library);
}

int GpuUsageReader::device_count() const { return static_cast<int>(api_->devices); }

std::map<int64_t, GpuUsage> GpuUsageReader::Read() {
  struct Sum {
    double utilization = 0;
    int devices = 0;
    double memory = 0;
    bool memory_known = false;
  };
  std::map<int64_t, Sum> sums;
  std::vector<NvmlProcessInfo> infos(64);
  for (unsigned int index = 0; index < api_->devices; ++index) {
    NvmlDevice device = nullptr;
    if (api_->device_by_index(index, &device) != kNvmlSuccess) continue;
    NvmlUtilization utilization{};
    const bool have_utilization = api_->utilization(device, &utilization) == kNvmlSuccess;
    unsigned int count = static_cast<unsigned int>(infos.size());
    NvmlReturn result = api_->processes(device, &count, infos.data());
    if (result == kNvmlInsufficientSize) {  // `count` now says how many there are
      infos.resize(count + 16);
      count = static_cast<unsigned int>(infos.size());
      result = api_->processes(device, &count, infos.data());
    }
    if (result != kNvmlSuccess) continue;
    for (unsigned int i = 0; i < count && i < infos.size(); ++i) {
      Sum& sum = sums[infos[i].pid];
      if (have_utilization) {
        sum.utilization += utilization.gpu;
        ++sum.devices;
      }
      if (infos[i].used_gpu_memory != kNvmlValueNotAvailable) {
        sum.memory += static_cast<double>(infos[i].used_gpu_memory);
        sum.memory_known = true;
      }
    }
  }
  std::map<int64_t, GpuUsage> out;
  for (const auto& [pid, sum] : sums) {
    GpuUsage& usage = out[pid];
    if (sum.devices > 0) usage.utilization_percent = sum.utilization / sum.devices;
    if (sum.memory_known) usage.memory_bytes = sum.memory;
  }
  return out;
}

}  // namespace triplane::control
