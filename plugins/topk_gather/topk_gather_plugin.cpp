// TopKGather IPluginV3: the TensorRT glue around launchTopKGather (topk_gather_kernels.h).
// Everything here is bookkeeping: which types and formats are accepted, output shapes as
// expressions of the input shapes, and a workspace sized from the profile's maximum.

#include "topk_gather_plugin.h"

#include "plugin_logging.h"
#include "topk_gather_kernels.h"

#include <exception>
#include <new>
#include <string>

using nvinfer1::DataType;
using nvinfer1::DimsExprs;
using nvinfer1::DynamicPluginTensorDesc;
using nvinfer1::ILogger;
using nvinfer1::PluginTensorDesc;

namespace fastav
{
namespace
{

// Input and output positions, in the ONNX node's order.
enum Io : int32_t
{
    kScores = 0,
    kHidden = 1,
    kPositions = 2,
    kCandidates = 3,
    kProtected = 4,
    kKeep = 5,
    kNbInputs = 6,
    kKeptIndex = 6,
    kKeptHidden = 7,
    kKeptPositions = 8,
    kNbOutputs = 3,
};

constexpr int32_t kExpectedRanks[kNbInputs] = {2, 3, 2, 2, 2, 1};

void logError(std::string const& message) noexcept
{
    logMessage(ILogger::Severity::kERROR, ("fastav::TopKGather: " + message).c_str());
}

bool isFloatType(DataType type)
{
    return type == DataType::kFLOAT || type == DataType::kHALF || type == DataType::kBF16;
}

TopKGatherDType toKernelType(DataType type)
{
    switch (type)
    {
    case DataType::kHALF: return TopKGatherDType::kFloat16;
    case DataType::kBF16: return TopKGatherDType::kBFloat16;
    default: return TopKGatherDType::kFloat32;
    }
}

// Sizes of one call from concrete input dims; false (and a logged reason) when the
// shapes do not fit the contract.
bool shapeFromDims(nvinfer1::Dims const* dims, TopKGatherShape& shape)
{
    for (int32_t i = 0; i < kNbInputs; ++i)
    {
        if (dims[i].nbDims != kExpectedRanks[i])
        {
            logError("input " + std::to_string(i) + " has rank " + std::to_string(dims[i].nbDims) + ", expected "
                + std::to_string(kExpectedRanks[i]));
            return false;
        }
    }
    shape.batch = dims[kScores].d[0];
    shape.tokens = dims[kScores].d[1];
    shape.width = dims[kHidden].d[2];
    shape.candidates = dims[kCandidates].d[1];
    shape.protectedCount = dims[kProtected].d[1];
    shape.keep = dims[kKeep].d[0];
    bool const consistent = dims[kHidden].d[0] == shape.batch && dims[kHidden].d[1] == shape.tokens
        && dims[kPositions].d[0] == shape.batch && dims[kPositions].d[1] == shape.tokens
        && dims[kCandidates].d[0] == shape.batch && dims[kProtected].d[0] == shape.batch;
    if (!consistent)
    {
        logError("inputs disagree on batch or token count (scores [B, N], hidden_states [B, N, D], "
                 "position_ids [B, N], candidates [B, C], protected [B, M])");
        return false;
    }
    if (shape.keep > shape.candidates)
    {
        logError("keep has length " + std::to_string(shape.keep) + " but there are only "
            + std::to_string(shape.candidates) + " candidates");
        return false;
    }
    return true;
}

} // namespace

// ---------------------------------------------------------------------------------
// IPluginV3

nvinfer1::IPluginCapability* TopKGatherPlugin::getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept
{
    switch (type)
    {
    case nvinfer1::PluginCapabilityType::kCORE: return static_cast<nvinfer1::IPluginV3OneCore*>(this);
    case nvinfer1::PluginCapabilityType::kBUILD: return static_cast<nvinfer1::IPluginV3OneBuild*>(this);
    case nvinfer1::PluginCapabilityType::kRUNTIME: return static_cast<nvinfer1::IPluginV3OneRuntime*>(this);
    default: return nullptr;
    }
}

nvinfer1::IPluginV3* TopKGatherPlugin::clone() noexcept
{
    try
    {
        return new TopKGatherPlugin(*this);
    }
    catch (std::exception const& error)
    {
        logError(std::string("clone failed: ") + error.what());
    }
    return nullptr;
}

// ---------------------------------------------------------------------------------
// IPluginV3OneCore

char const* TopKGatherPlugin::getPluginName() const noexcept
{
    return kTopKGatherName;
}

char const* TopKGatherPlugin::getPluginVersion() const noexcept
{
    return kTopKGatherVersion;
}

char const* TopKGatherPlugin::getPluginNamespace() const noexcept
{
    return kPluginNamespace;
}

// ---------------------------------------------------------------------------------
// IPluginV3OneBuild

int32_t TopKGatherPlugin::getNbOutputs() const noexcept
{
    return kNbOutputs;
}

int32_t TopKGatherPlugin::configurePlugin(
    DynamicPluginTensorDesc const* in, int32_t nbInputs, DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    if (in == nullptr || out == nullptr || nbInputs != kNbInputs || nbOutputs != kNbOutputs)
    {
        logError("expects 6 inputs and 3 outputs");
        return -1;
    }
    // Types and formats were fixed by supportsFormatCombination; shapes are checked per
    // call in onShapeChange, where they are concrete.
    return 0;
}

bool TopKGatherPlugin::supportsFormatCombination(
    int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept
{
    if (inOut == nullptr || nbInputs != kNbInputs || nbOutputs != kNbOutputs || pos < 0
        || pos >= kNbInputs + kNbOutputs)
    {
        return false;
    }
    PluginTensorDesc const& desc = inOut[pos].desc;
    if (desc.format != nvinfer1::TensorFormat::kLINEAR)
    {
        return false;
    }
    switch (pos)
    {
    case kScores:
    case kHidden: return isFloatType(desc.type);
    // TensorRT asks positions in order, so the hidden input's type is already fixed here.
    case kKeptHidden: return desc.type == inOut[kHidden].desc.type;
    default: return desc.type == DataType::kINT64; // indices, position ids, keep, kept index/positions
    }
}

int32_t TopKGatherPlugin::getOutputDataTypes(
    DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes, int32_t nbInputs) const noexcept
{
    if (outputTypes == nullptr || inputTypes == nullptr || nbInputs != kNbInputs || nbOutputs != kNbOutputs)
    {
        return -1;
    }
    outputTypes[0] = DataType::kINT64;
    outputTypes[1] = inputTypes[kHidden];
    outputTypes[2] = DataType::kINT64;
    return 0;
}

int32_t TopKGatherPlugin::getOutputShapes(DimsExprs const* inputs, int32_t nbInputs, DimsExprs const* /*shapeInputs*/,
    int32_t /*nbShapeInputs*/, DimsExprs* outputs, int32_t nbOutputs, nvinfer1::IExprBuilder& exprBuilder) noexcept
{
    if (inputs == nullptr || outputs == nullptr || nbInputs != kNbInputs || nbOutputs != kNbOutputs)
    {
        return -1;
    }
    for (int32_t i = 0; i < kNbInputs; ++i)
    {
        if (inputs[i].nbDims != kExpectedRanks[i])
        {
            logError("input " + std::to_string(i) + " must have rank " + std::to_string(kExpectedRanks[i]));
            return -1;
        }
    }
    // kept = M + k: protected's second dim plus keep's length. A shape expression, never
    // a data-dependent size, so TensorRT plans memory from the profile alone.
    nvinfer1::IDimensionExpr const* kept
        = exprBuilder.operation(nvinfer1::DimensionOperation::kSUM, *inputs[kProtected].d[1], *inputs[kKeep].d[0]);
    nvinfer1::IDimensionExpr const* batch = inputs[kScores].d[0];

    outputs[0].nbDims = 2;
    outputs[0].d[0] = batch;
    outputs[0].d[1] = kept;

    outputs[1].nbDims = 3;
    outputs[1].d[0] = batch;
    outputs[1].d[1] = kept;
    outputs[1].d[2] = inputs[kHidden].d[2];

    outputs[2].nbDims = 2;
    outputs[2].d[0] = batch;
    outputs[2].d[1] = kept;
    return 0;
}

size_t TopKGatherPlugin::getWorkspaceSize(DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
    DynamicPluginTensorDesc const* /*outputs*/, int32_t /*nbOutputs*/) const noexcept
{
    if (inputs == nullptr || nbInputs != kNbInputs || inputs[kScores].max.nbDims != 2)
    {
        return 0;
    }
    // One uint32 counter per token and row, for the largest shape of the profile.
    TopKGatherShape shape;
    shape.batch = inputs[kScores].max.d[0];
    shape.tokens = inputs[kScores].max.d[1];
    return topkGatherWorkspaceSize(shape);
}

// ---------------------------------------------------------------------------------
// IPluginV3OneRuntime

int32_t TopKGatherPlugin::onShapeChange(
    PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* out, int32_t nbOutputs) noexcept
{
    if (in == nullptr || out == nullptr || nbInputs != kNbInputs || nbOutputs != kNbOutputs)
    {
        return -1;
    }
    nvinfer1::Dims dims[kNbInputs];
    for (int32_t i = 0; i < kNbInputs; ++i)
    {
        dims[i] = in[i].dims;
    }
    TopKGatherShape shape;
    return shapeFromDims(dims, shape) ? 0 : -1;
}

int32_t TopKGatherPlugin::enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* outputDesc,
    void const* const* inputs, void* const* outputs, void* workspace, cudaStream_t stream) noexcept
{
    if (inputDesc == nullptr || outputDesc == nullptr || inputs == nullptr || outputs == nullptr)
    {
        return -1;
    }
    nvinfer1::Dims dims[kNbInputs];
    for (int32_t i = 0; i < kNbInputs; ++i)
    {
        dims[i] = inputDesc[i].dims;
    }
    TopKGatherParams params;
    if (!shapeFromDims(dims, params.shape))
    {
        return -1;
    }
    params.scoreType = toKernelType(inputDesc[kScores].type);
    params.hiddenType = toKernelType(inputDesc[kHidden].type);
    params.scores = inputs[kScores];
    params.hiddenStates = inputs[kHidden];
    params.positionIds = static_cast<int64_t const*>(inputs[kPositions]);
    params.candidates = static_cast<int64_t const*>(inputs[kCandidates]);
    params.protectedTokens = static_cast<int64_t const*>(inputs[kProtected]);
    params.keptIndex = static_cast<int64_t*>(outputs[0]);
    params.keptHiddenStates = outputs[1];
    params.keptPositionIds = static_cast<int64_t*>(outputs[2]);
    params.workspace = workspace;
    cudaError_t const status = launchTopKGather(params, stream);
    if (status != cudaSuccess)
    {
        logError(std::string("kernel launch failed: ") + cudaGetErrorString(status));
        return -1;
    }
    return 0;
}

nvinfer1::IPluginV3* TopKGatherPlugin::attachToContext(nvinfer1::IPluginResourceContext* /*context*/) noexcept
{
    // No per-context resources (the workspace comes from TensorRT), so a copy will do.
    return clone();
}

nvinfer1::PluginFieldCollection const* TopKGatherPlugin::getFieldsToSerialize() noexcept
{
    return &mFieldsToSerialize;
}

// ---------------------------------------------------------------------------------
// Creator

char const* TopKGatherPluginCreator::getPluginName() const noexcept
{
    return kTopKGatherName;
}

char const* TopKGatherPluginCreator::getPluginVersion() const noexcept
{
    return kTopKGatherVersion;
}

char const* TopKGatherPluginCreator::getPluginNamespace() const noexcept
{
    return kPluginNamespace;
}

nvinfer1::PluginFieldCollection const* TopKGatherPluginCreator::getFieldNames() noexcept
{
    return &mFieldNames;
}

nvinfer1::IPluginV3* TopKGatherPluginCreator::createPlugin(
    char const* /*name*/, nvinfer1::PluginFieldCollection const* /*fc*/, nvinfer1::TensorRTPhase /*phase*/) noexcept
{
    // Same object for both phases: no fields to read at build time, none to restore
    // from a serialised engine at runtime.
    try
    {
        return new TopKGatherPlugin();
    }
    catch (std::exception const& error)
    {
        logError(std::string("createPlugin failed: ") + error.what());
    }
    return nullptr;
}

} // namespace fastav
