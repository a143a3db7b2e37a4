// Entry points of libfastav_plugins.so, as TensorRT documents them for IPluginV3 libraries:
// IPluginRegistry::loadLibrary (Python: trt.get_plugin_registry().load_library) and
// `trtexec --dynamicPlugins` look up `getCreators` and `setLoggerFinder`, register every
// creator returned under its own namespace ("fastav"), and can record the library in a
// version-compatible engine (IBuilderConfig::setPluginsToSerialize).
//
// There is deliberately no static registration (REGISTER_TENSORRT_PLUGIN) on top: a
// library that registers itself at dlopen and again through getCreators makes
// loadLibrary fail with "plugin creator already exists". So a bare
// ctypes.CDLL(...) does not register anything; fastav_export.trt_backend.plugin_library
// loads the file and then registers it through the registry.

#include "plugin_logging.h"
#include "topk_gather_plugin.h"

#include <atomic>
#include <cstdint>

#define FASTAV_EXPORT extern "C" __attribute__((visibility("default")))

namespace fastav
{
namespace
{
std::atomic<nvinfer1::ILoggerFinder*> gLoggerFinder{nullptr};
} // namespace

void logMessage(nvinfer1::ILogger::Severity severity, char const* message) noexcept
{
    nvinfer1::ILoggerFinder* finder = gLoggerFinder.load();
    nvinfer1::ILogger* logger = finder != nullptr ? finder->findLogger() : nullptr;
    if (logger != nullptr)
    {
        logger->log(severity, message);
    }
}

} // namespace fastav

FASTAV_EXPORT void setLoggerFinder(nvinfer1::ILoggerFinder* finder)
{
    fastav::gLoggerFinder.store(finder);
}

FASTAV_EXPORT nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators)
{
    // Function-local statics: built on first use, alive until the library is unloaded.
    static fastav::TopKGatherPluginCreator topKGatherCreator;
    static nvinfer1::IPluginCreatorInterface* const creators[] = {&topKGatherCreator};
    nbCreators = static_cast<int32_t>(sizeof(creators) / sizeof(creators[0]));
    return creators;
}
