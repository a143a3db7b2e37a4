// Logging from inside the plugin library through the logger TensorRT hands over
// (setLoggerFinder, called when the library is loaded by IPluginRegistry::loadLibrary).
#pragma once

#include <NvInferRuntime.h>

namespace fastav
{

//! Log `message` at `severity` through TensorRT's logger; a no-op before setLoggerFinder.
void logMessage(nvinfer1::ILogger::Severity severity, char const* message) noexcept;

} // namespace fastav
