// Registration of libfastav_plugins.so's creators with TensorRT.
//
// The creators register themselves when the library is loaded (a static object below),
// so every way of loading it works: ctypes.CDLL (fastav_export.engine.trt.plugin_library),
// Polygraphy's `--plugins` and LoadPlugins loader (ctypes.CDLL), `trtexec --staticPlugins`
// (dlopen) and IPluginRegistry::loadLibrary / `trtexec --dynamicPlugins`.
//
// loadLibrary also calls the documented entry points `setLoggerFinder` and `getCreators`
// and registers whatever getCreators returns. The library is already registered by then
// (loadLibrary dlopens it first), and registering a creator twice fails ("plugin creator
// already exists"), so getCreators returns none: it exists so that loadLibrary accepts
// the library and hands over TensorRT's logger.

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

namespace
{
//! Registers every creator of the library when it is loaded (before dlopen returns).
struct RegisterAtLoad
{
    RegisterAtLoad()
    {
        // Function-local static: alive until the library is unloaded.
        static fastav::TopKGatherPluginCreator topKGatherCreator;
        nvinfer1::IPluginRegistry* registry = getPluginRegistry();
        if (registry == nullptr
            || !registry->registerCreator(topKGatherCreator, topKGatherCreator.getPluginNamespace()))
        {
            fastav::logMessage(nvinfer1::ILogger::Severity::kERROR,
                "libfastav_plugins.so: could not register fastav::TopKGather with TensorRT's plugin registry");
        }
    }
};
RegisterAtLoad const gRegisterAtLoad;
} // namespace

FASTAV_EXPORT nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators)
{
    nbCreators = 0; // already registered at load time (see the top of this file)
    return nullptr;
}
