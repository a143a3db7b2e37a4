// PyTorch binding of the TopKGather launcher API (topk_gather_kernels.h), used by the GPU
// tests and benchmarks/topk_gather_kernel.py: the kernels run exactly as inside the
// TensorRT plugin, with torch tensors in place of TensorRT's bindings.
#include <torch/extension.h>

#include <c10/cuda/CUDAStream.h>

#include "topk_gather_kernels.h"

namespace
{

fastav::TopKGatherDType kernelType(at::ScalarType type)
{
    switch (type)
    {
    case at::kFloat: return fastav::TopKGatherDType::kFloat32;
    case at::kHalf: return fastav::TopKGatherDType::kFloat16;
    case at::kBFloat16: return fastav::TopKGatherDType::kBFloat16;
    default: TORCH_CHECK(false, "scores and hidden_states must be float32, float16 or bfloat16");
    }
    return fastav::TopKGatherDType::kFloat32;
}

std::vector<torch::Tensor> topkGather(torch::Tensor scores, torch::Tensor hidden, torch::Tensor positions,
    torch::Tensor candidates, torch::Tensor protectedTokens, int64_t keep)
{
    for (auto const* t : {&scores, &hidden, &positions, &candidates, &protectedTokens})
    {
        TORCH_CHECK(t->is_cuda() && t->is_contiguous(), "inputs must be contiguous CUDA tensors");
    }
    for (auto const* t : {&positions, &candidates, &protectedTokens})
    {
        TORCH_CHECK(t->scalar_type() == at::kLong, "position_ids, candidates and protected must be int64");
    }
    TORCH_CHECK(scores.dim() == 2 && hidden.dim() == 3 && positions.dim() == 2 && candidates.dim() == 2
            && protectedTokens.dim() == 2,
        "expected scores [B, N], hidden_states [B, N, D], position_ids [B, N], candidates [B, C], protected [B, M]");

    fastav::TopKGatherParams p;
    p.shape.batch = scores.size(0);
    p.shape.tokens = scores.size(1);
    p.shape.width = hidden.size(2);
    p.shape.candidates = candidates.size(1);
    p.shape.protectedCount = protectedTokens.size(1);
    p.shape.keep = keep;
    int64_t const kept = p.shape.protectedCount + keep;
    auto longOptions = positions.options();
    torch::Tensor keptIndex = torch::empty({p.shape.batch, kept}, longOptions);
    torch::Tensor keptHidden = torch::empty({p.shape.batch, kept, p.shape.width}, hidden.options());
    torch::Tensor keptPositions = torch::empty({p.shape.batch, kept}, longOptions);
    torch::Tensor workspace = torch::empty(
        {static_cast<int64_t>(fastav::topkGatherWorkspaceSize(p.shape))}, scores.options().dtype(at::kByte));

    p.scoreType = kernelType(scores.scalar_type());
    p.hiddenType = kernelType(hidden.scalar_type());
    p.scores = scores.data_ptr();
    p.hiddenStates = hidden.data_ptr();
    p.positionIds = positions.data_ptr<int64_t>();
    p.candidates = candidates.data_ptr<int64_t>();
    p.protectedTokens = protectedTokens.data_ptr<int64_t>();
    p.keptIndex = keptIndex.data_ptr<int64_t>();
    p.keptHiddenStates = keptHidden.data_ptr();
    p.keptPositionIds = keptPositions.data_ptr<int64_t>();
    p.workspace = workspace.numel() > 0 ? workspace.data_ptr() : nullptr;
    cudaError_t const status = fastav::launchTopKGather(p, c10::cuda::getCurrentCUDAStream().stream());
    TORCH_CHECK(status == cudaSuccess, "launchTopKGather failed: ", cudaGetErrorString(status));
    return {keptIndex, keptHidden, keptPositions};
}

} // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m)
{
    m.def("topk_gather", &topkGather, "TopKGather kernels (scores, hidden, positions, candidates, protected, k)");
}
