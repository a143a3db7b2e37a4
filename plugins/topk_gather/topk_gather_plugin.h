// TopKGather as a TensorRT IPluginV3 (name "TopKGather", version "1", namespace "fastav").
//
// The exporter emits a node of domain `fastav`, op `TopKGather`, with the attributes
// plugin_namespace="fastav" and plugin_version="1" (fastav_export/export/topk_gather.py).
// TensorRT's ONNX parser sees `plugin_namespace`, finds this creator in the plugin
// registry under (TopKGather, 1, fastav) and imports the node as this plugin instead of
// inlining the node's model-local ONNX function.
//
// Inputs : scores [B, N] (fp32/fp16/bf16), hidden_states [B, N, D] (fp32/fp16/bf16),
//          position_ids [B, N], candidates [B, C], protected [B, M], keep [k] (int64)
// Outputs: kept_index [B, M + k], kept_hidden_states [B, M + k, D], kept_position_ids [B, M + k]
// k is the length of `keep`; every output shape is a shape expression of the inputs.
#pragma once

#include <NvInferRuntime.h>

#include <cstdint>

namespace fastav
{

constexpr char const* kPluginNamespace = "fastav";
constexpr char const* kTopKGatherName = "TopKGather";
constexpr char const* kTopKGatherVersion = "1";

class TopKGatherPlugin final : public nvinfer1::IPluginV3,
                               public nvinfer1::IPluginV3OneCore,
                               public nvinfer1::IPluginV3OneBuild,
                               public nvinfer1::IPluginV3OneRuntime
{
public:
    TopKGatherPlugin() = default;
    TopKGatherPlugin(TopKGatherPlugin const&) = default;
    ~TopKGatherPlugin() override = default;

    // IPluginV3
    nvinfer1::IPluginCapability* getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override;
    nvinfer1::IPluginV3* clone() noexcept override;

    // IPluginV3OneCore
    char const* getPluginName() const noexcept override;
    char const* getPluginVersion() const noexcept override;
    char const* getPluginNamespace() const noexcept override;

    // IPluginV3OneBuild
    int32_t getNbOutputs() const noexcept override;
    int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept override;
    bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut, int32_t nbInputs,
        int32_t nbOutputs) noexcept override;
    int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs,
        nvinfer1::DataType const* inputTypes, int32_t nbInputs) const noexcept override;
    int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs, nvinfer1::DimsExprs const* shapeInputs,
        int32_t nbShapeInputs, nvinfer1::DimsExprs* outputs, int32_t nbOutputs,
        nvinfer1::IExprBuilder& exprBuilder) noexcept override;
    size_t getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* outputs, int32_t nbOutputs) const noexcept override;

    // IPluginV3OneRuntime
    int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs, nvinfer1::PluginTensorDesc const* out,
        int32_t nbOutputs) noexcept override;
    int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
        void const* const* inputs, void* const* outputs, void* workspace, cudaStream_t stream) noexcept override;
    nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext* context) noexcept override;
    nvinfer1::PluginFieldCollection const* getFieldsToSerialize() noexcept override;

private:
    // The plugin has no attributes: k and every size come from the input shapes, so
    // there is nothing to serialise beyond what TensorRT records itself (name, version,
    // namespace). The collection stays empty but valid.
    nvinfer1::PluginFieldCollection mFieldsToSerialize{0, nullptr};
};

class TopKGatherPluginCreator final : public nvinfer1::IPluginCreatorV3One
{
public:
    TopKGatherPluginCreator() = default;
    ~TopKGatherPluginCreator() override = default;

    char const* getPluginName() const noexcept override;
    char const* getPluginVersion() const noexcept override;
    char const* getPluginNamespace() const noexcept override;
    nvinfer1::PluginFieldCollection const* getFieldNames() noexcept override;
    nvinfer1::IPluginV3* createPlugin(
        char const* name, nvinfer1::PluginFieldCollection const* fc, nvinfer1::TensorRTPhase phase) noexcept override;

private:
    // No fields: the ONNX parser passes only the attributes a creator declares, and the
    // node's plugin_namespace / plugin_version attributes are consumed by the lookup.
    nvinfer1::PluginFieldCollection mFieldNames{0, nullptr};
};

} // namespace fastav
