// TopKGather CUDA kernels: a plain C++ launcher API, independent of TensorRT.
//
// The TensorRT plugin (topk_gather_plugin.cpp) and the PyTorch extension used by the
// GPU tests (torch_ext/) both call these two functions, so the kernels are tested the
// same way they run inside an engine.
//
// Semantics (fastav_export/export/topk_gather.py is the contract): for every row b,
// keep every `protectedTokens[b, :]` plus the k `candidates[b, :]` with the largest
// scores (equal scores: the lower token index wins; -0.0 equals +0.0; NaN ranks below
// every number, -inf included), and write them in ascending token order:
//   keptIndex[b, :]        int64 [B, M + k]
//   keptHiddenStates[b, :] rows of hiddenStates at keptIndex, [B, M + k, D]
//   keptPositionIds[b, :]  positionIds at keptIndex, int64 [B, M + k]
// A token listed twice (in both lists, or twice in one) is written twice, as the
// reference's concatenate-then-sort does. Indices outside [0, N) are a caller bug: they
// are skipped (never read or written out of bounds) and the unfilled tail of the row
// gets index -1, position -1 and a zero hidden row.
//
// The step-by-step numpy twin of this algorithm is
// fastav_export/export/topk_gather_algorithm.py; keep the two in sync.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime_api.h>

namespace fastav
{

//! Element types of scores and hidden states (the int64 tensors are always int64).
enum class TopKGatherDType : int32_t
{
    kFloat32 = 0,
    kFloat16 = 1,
    kBFloat16 = 2,
};

//! Sizes of one call. All tensors are dense, row-major (TensorRT's linear format).
struct TopKGatherShape
{
    int64_t batch{0};          //!< B
    int64_t tokens{0};         //!< N: tokens per row of scores / hidden states / position ids
    int64_t width{0};          //!< D: hidden size
    int64_t candidates{0};     //!< C: length of each candidates row
    int64_t protectedCount{0}; //!< M: length of each protected row
    int64_t keep{0};           //!< k: how many candidates to keep (0 <= k <= C)
};

struct TopKGatherParams
{
    TopKGatherShape shape;
    TopKGatherDType scoreType{TopKGatherDType::kFloat32};
    TopKGatherDType hiddenType{TopKGatherDType::kFloat32};
    void const* scores{nullptr};              //!< [B, N] scoreType
    void const* hiddenStates{nullptr};        //!< [B, N, D] hiddenType
    int64_t const* positionIds{nullptr};      //!< [B, N]
    int64_t const* candidates{nullptr};       //!< [B, C]
    int64_t const* protectedTokens{nullptr};  //!< [B, M]
    int64_t* keptIndex{nullptr};              //!< [B, M + k]
    void* keptHiddenStates{nullptr};          //!< [B, M + k, D] hiddenType
    int64_t* keptPositionIds{nullptr};        //!< [B, M + k]
    void* workspace{nullptr};                 //!< topkGatherWorkspaceSize(shape) bytes of device memory
};

//! Bytes of device workspace launchTopKGather needs (a per-token counter per row).
size_t topkGatherWorkspaceSize(TopKGatherShape const& shape);

//! Bytes of one element of `type`.
size_t topkGatherElementSize(TopKGatherDType type);

//! Enqueue the selection and the gather on `stream`. Returns cudaErrorInvalidValue for
//! inconsistent sizes (k > C, N = 0 with rows to keep, N >= 2^31, null pointers) and the
//! launch error otherwise. Deterministic: the outputs depend only on the inputs.
cudaError_t launchTopKGather(TopKGatherParams const& params, cudaStream_t stream);

} // namespace fastav
