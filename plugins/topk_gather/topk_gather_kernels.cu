// TopKGather kernels: per-row radix select of the k best candidates, an
// order-preserving compaction, then a vectorised gather of hidden-state rows.
//
// Why this shape:
// - TensorRT's ITopKLayer stops at K = 3840 and returns value order; FastAV keeps
//   thousands of tokens (up to ~32k) in their original order.
// - Selection never sorts. Every candidate gets a 64-bit composite key
//   u = (~orderedKey(score) << tokenBits) | token, so "smaller u" means "larger score,
//   then lower token index" (the contract's tie rule). The k smallest u are found by
//   an MSD radix select over 8-bit digits: at most ceil((32 + tokenBits) / 8) passes
//   over the row's candidates, each a 256-bin shared-memory histogram.
// - Kept tokens are marked in a per-row counter array (workspace) and compacted by
//   a block-wide prefix sum over token positions, which yields ascending order for free.
//   Counters (not a 0/1 mask) make a token listed twice come out twice, exactly as the
//   reference's concatenate-then-sort does.
// - The gather moves D-element rows with the widest aligned vector (up to 16 bytes): it
//   is the only bandwidth-heavy step and is a plain copy.
//
// fastav_export/export/topk_gather_algorithm.py follows these steps one by one in numpy.

#include "topk_gather_kernels.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace fastav
{
namespace
{

constexpr int kSelectThreads = 512; // one block per row: select + compact
constexpr int kWarps = kSelectThreads / 32;
constexpr int kDigitBits = 8;
constexpr int kBins = 1 << kDigitBits;
constexpr int kGatherThreads = 128; // one block per kept row
constexpr size_t kWorkspaceAlignment = 256;

// ---------------------------------------------------------------------------------
// Scores -> order-preserving unsigned keys.

__device__ __forceinline__ float toFloat(float x)
{
    return x;
}
__device__ __forceinline__ float toFloat(__half x)
{
    return __half2float(x);
}
__device__ __forceinline__ float toFloat(__nv_bfloat16 x)
{
    return __bfloat162float(x);
}

// Larger score -> larger key, as an unsigned comparison. fp16/bf16 widen to fp32
// exactly, so one mapping serves all three types.
__device__ __forceinline__ uint32_t orderedKey(float score)
{
    if (score != score)
    {
        return 0U; // NaN ranks below every number (below -inf's key 0x007FFFFF)
    }
    uint32_t bits = __float_as_uint(score);
    if (score == 0.0F)
    {
        bits = 0U; // -0.0 and +0.0 are equal scores: the token index decides
    }
    // Negative floats: flip all bits (larger magnitude -> smaller key);
    // positive floats: set the sign bit so they sort above every negative one.
    return (bits & 0x80000000U) ? ~bits : (bits | 0x80000000U);
}

// `value >> shift` that is defined for shift == 64 (all bits shifted out).
__device__ __forceinline__ uint64_t highBits(uint64_t value, int shift)
{
    return shift >= 64 ? 0ULL : value >> shift;
}

// ---------------------------------------------------------------------------------
// Inclusive prefix sum across the 32 lanes of a warp (all lanes must call it).

__device__ __forceinline__ uint32_t warpInclusiveSum(uint32_t value)
{
    int const lane = threadIdx.x % 32;
    for (int offset = 1; offset < 32; offset *= 2)
    {
        uint32_t const other = __shfl_up_sync(0xFFFFFFFFU, value, offset);
        if (lane >= offset)
        {
            value += other;
        }
    }
    return value;
}

// ---------------------------------------------------------------------------------
// Block-wide exclusive prefix sum of one uint32 per thread (warp shuffles + one
// shared array of warp totals). Every thread of the block must call it.

__device__ uint32_t blockExclusiveSum(uint32_t value, uint32_t& total, uint32_t* warpTotals)
{
    int const lane = threadIdx.x % 32;
    int const warp = threadIdx.x / 32;
    uint32_t const inclusive = warpInclusiveSum(value);
    if (lane == 31)
    {
        warpTotals[warp] = inclusive;
    }
    __syncthreads();
    if (warp == 0)
    {
        uint32_t const mine = lane < kWarps ? warpTotals[lane] : 0U;
        uint32_t const scanned = warpInclusiveSum(mine);
        if (lane < kWarps)
        {
            warpTotals[lane] = scanned - mine; // exclusive prefix of warp totals
        }
        if (lane == kWarps - 1)
        {
            warpTotals[kWarps] = scanned; // block total
        }
    }
    __syncthreads();
    uint32_t const exclusive = warpTotals[warp] + inclusive - value;
    total = warpTotals[kWarps];
    __syncthreads(); // warpTotals is reused by the next call
    return exclusive;
}

// ---------------------------------------------------------------------------------
// Kernel 1: one block per row. Count protected tokens, radix-select the k best
// candidates, then compact the counters into ascending kept_index / kept_position_ids.

template <typename ScoreT>
__global__ void __launch_bounds__(kSelectThreads) selectAndCompactKernel(ScoreT const* __restrict__ scores,
    int64_t const* __restrict__ positionIds, int64_t const* __restrict__ candidates,
    int64_t const* __restrict__ protectedTokens, uint32_t* __restrict__ counters, int64_t* __restrict__ keptIndex,
    int64_t* __restrict__ keptPositionIds, int64_t tokens, int64_t candidateCount, int64_t protectedCount,
    int64_t keep, int tokenBits)
{
    __shared__ uint32_t histogram[kBins];
    __shared__ uint32_t warpTotals[kWarps + 1];
    __shared__ uint32_t chosenDigit;
    __shared__ uint32_t countBelow;
    __shared__ uint32_t countInDigit;
    __shared__ uint32_t validCount;

    int64_t const row = blockIdx.x;
    int64_t const kept = protectedCount + keep;
    ScoreT const* rowScores = scores + row * tokens;
    int64_t const* rowCandidates = candidates + row * candidateCount;
    int64_t const* rowProtected = protectedTokens + row * protectedCount;
    uint32_t* rowCounters = counters + row * tokens;

    for (int64_t i = threadIdx.x; i < tokens; i += blockDim.x)
    {
        rowCounters[i] = 0U;
    }
    __syncthreads();

    for (int64_t s = threadIdx.x; s < protectedCount; s += blockDim.x)
    {
        int64_t const token = rowProtected[s];
        if (token >= 0 && token < tokens)
        {
            atomicAdd(&rowCounters[token], 1U);
        }
    }

    // The composite key of candidate slot s; false for an out-of-range token.
    auto compositeKey = [&](int64_t s, uint64_t& key, int64_t& token) -> bool {
        token = rowCandidates[s];
        if (token < 0 || token >= tokens)
        {
            return false;
        }
        uint32_t const descending = ~orderedKey(toFloat(rowScores[token]));
        key = (static_cast<uint64_t>(descending) << tokenBits) | static_cast<uint64_t>(token);
        return true;
    };

    // MSD radix select: after processing the digit at `shift`, the selected set is
    // {u : u >> shift < prefix >> shift} plus `remaining` elements of the bucket
    // {u : u >> shift == prefix >> shift}.
    int const totalBits = 32 + tokenBits;
    int shift = ((totalBits + kDigitBits - 1) / kDigitBits) * kDigitBits;
    uint64_t prefix = 0;
    uint32_t remaining = static_cast<uint32_t>(keep);
    bool wholeBucket = false; // the final bucket is selected entirely
    bool selectAll = false;   // k >= number of valid candidates
    bool const selecting = keep > 0;
    while (selecting && shift > 0)
    {
        int const upperShift = shift; // bits already fixed in `prefix`
        shift -= kDigitBits;
        for (int i = threadIdx.x; i < kBins; i += blockDim.x)
        {
            histogram[i] = 0U;
        }
        __syncthreads();
        for (int64_t s = threadIdx.x; s < candidateCount; s += blockDim.x)
        {
            uint64_t key;
            int64_t token;
            if (compositeKey(s, key, token) && highBits(key, upperShift) == highBits(prefix, upperShift))
            {
                atomicAdd(&histogram[(key >> shift) & (kBins - 1)], 1U);
            }
        }
        __syncthreads();
        if (threadIdx.x < 32)
        {
            // Warp 0 finds the digit where the running count first reaches `remaining`:
            // lane l owns bins 8l .. 8l + 7.
            int const lane = threadIdx.x;
            int const perLane = kBins / 32;
            uint32_t laneSum = 0;
            for (int j = 0; j < perLane; ++j)
            {
                laneSum += histogram[lane * perLane + j];
            }
            uint32_t const inclusive = warpInclusiveSum(laneSum);
            if (lane == 31)
            {
                validCount = inclusive; // elements inside the current bucket
            }
            uint32_t running = inclusive - laneSum;
            if (running < remaining && remaining <= inclusive)
            {
                for (int j = 0; j < perLane; ++j)
                {
                    uint32_t const inBin = histogram[lane * perLane + j];
                    if (running + inBin >= remaining)
                    {
                        chosenDigit = static_cast<uint32_t>(lane * perLane + j);
                        countBelow = running;
                        countInDigit = inBin;
                        break;
                    }
                    running += inBin;
                }
            }
        }
        __syncthreads();
        if (validCount <= remaining)
        {
            // Only possible on the first pass (later buckets hold >= remaining
            // elements): fewer valid candidates than k, keep them all.
            selectAll = true;
            break;
        }
        remaining -= countBelow;
        prefix |= static_cast<uint64_t>(chosenDigit) << shift;
        if (remaining == countInDigit)
        {
            wholeBucket = true;
            break;
        }
        // Everyone has read the shared results before the next pass overwrites them.
        __syncthreads();
    }

    if (selecting)
    {
        for (int64_t s = threadIdx.x; s < candidateCount; s += blockDim.x)
        {
            uint64_t key;
            int64_t token;
            if (!compositeKey(s, key, token))
            {
                continue;
            }
            uint64_t const mine = highBits(key, shift);
            uint64_t const bound = highBits(prefix, shift);
            if (selectAll || mine < bound || (wholeBucket && mine == bound))
            {
                atomicAdd(&rowCounters[token], 1U);
            }
        }
        if (!selectAll && !wholeBucket && threadIdx.x == 0)
        {
            // All digits fixed (shift == 0): the bucket is one composite key, i.e. one
            // token listed several times among the candidates; keep `remaining` copies.
            int64_t const token = static_cast<int64_t>(prefix & ((1ULL << tokenBits) - 1ULL));
            atomicAdd(&rowCounters[token], remaining);
        }
    }
    __syncthreads();

    // Compaction: token i is written counters[i] times, at the running count of
    // everything before it, so kept_index comes out ascending.
    int64_t written = 0;
    for (int64_t base = 0; base < tokens; base += blockDim.x)
    {
        int64_t const i = base + threadIdx.x;
        // __ldcg: read the counters from L2, where the atomics landed.
        uint32_t const count = i < tokens ? __ldcg(&rowCounters[i]) : 0U;
        uint32_t tileTotal;
        uint32_t const offset = blockExclusiveSum(count, tileTotal, warpTotals);
        for (uint32_t j = 0; j < count; ++j)
        {
            int64_t const slot = written + offset + j;
            if (slot < kept)
            {
                keptIndex[row * kept + slot] = i;
                keptPositionIds[row * kept + slot] = positionIds[row * tokens + i];
            }
        }
        written += tileTotal;
    }
    for (int64_t slot = written + threadIdx.x; slot < kept; slot += blockDim.x)
    {
        keptIndex[row * kept + slot] = -1; // only reachable with out-of-range inputs
        keptPositionIds[row * kept + slot] = -1;
    }
}

// ---------------------------------------------------------------------------------
// Kernel 2: one block per kept row; copies D elements as `vectorsPerRow` vectors.

template <typename VectorT>
__global__ void __launch_bounds__(kGatherThreads) gatherRowsKernel(VectorT const* __restrict__ hidden,
    int64_t const* __restrict__ keptIndex, VectorT* __restrict__ keptHidden, int64_t tokens, int64_t kept,
    int64_t vectorsPerRow)
{
    int64_t const outRow = blockIdx.x; // b * kept + slot
    int64_t const batchRow = outRow / kept;
    int64_t const token = keptIndex[outRow];
    VectorT* dst = keptHidden + outRow * vectorsPerRow;
    if (token < 0 || token >= tokens)
    {
        for (int64_t v = threadIdx.x; v < vectorsPerRow; v += blockDim.x)
        {
            dst[v] = VectorT{};
        }
        return;
    }
    VectorT const* src = hidden + (batchRow * tokens + token) * vectorsPerRow;
    for (int64_t v = threadIdx.x; v < vectorsPerRow; v += blockDim.x)
    {
        dst[v] = __ldg(src + v); // read-only path: each source row is read once
    }
}

// ---------------------------------------------------------------------------------
// Host side.

int bitsFor(int64_t tokens)
{
    // Bits to hold any token index in [0, tokens): at least 1 keeps the shifts simple.
    int bits = 1;
    while (bits < 31 && (int64_t{1} << bits) < tokens)
    {
        ++bits;
    }
    return bits;
}

template <typename ScoreT>
void launchSelect(TopKGatherParams const& p, int tokenBits, cudaStream_t stream)
{
    TopKGatherShape const& s = p.shape;
    selectAndCompactKernel<ScoreT><<<static_cast<unsigned>(s.batch), kSelectThreads, 0, stream>>>(
        static_cast<ScoreT const*>(p.scores), p.positionIds, p.candidates, p.protectedTokens,
        static_cast<uint32_t*>(p.workspace), p.keptIndex, p.keptPositionIds, s.tokens, s.candidates,
        s.protectedCount, s.keep, tokenBits);
}

template <typename VectorT>
void launchGather(TopKGatherParams const& p, size_t rowBytes, cudaStream_t stream)
{
    TopKGatherShape const& s = p.shape;
    int64_t const kept = s.protectedCount + s.keep;
    gatherRowsKernel<VectorT><<<static_cast<unsigned>(s.batch * kept), kGatherThreads, 0, stream>>>(
        static_cast<VectorT const*>(p.hiddenStates), p.keptIndex, static_cast<VectorT*>(p.keptHiddenStates),
        s.tokens, kept, static_cast<int64_t>(rowBytes / sizeof(VectorT)));
}

bool aligned(void const* pointer, size_t bytes)
{
    return reinterpret_cast<uintptr_t>(pointer) % bytes == 0;
}

} // namespace

size_t topkGatherElementSize(TopKGatherDType type)
{
    return type == TopKGatherDType::kFloat32 ? 4 : 2;
}

size_t topkGatherWorkspaceSize(TopKGatherShape const& shape)
{
    size_t const bytes = static_cast<size_t>(shape.batch) * static_cast<size_t>(shape.tokens) * sizeof(uint32_t);
    return (bytes + kWorkspaceAlignment - 1) / kWorkspaceAlignment * kWorkspaceAlignment;
}

cudaError_t launchTopKGather(TopKGatherParams const& p, cudaStream_t stream)
{
    TopKGatherShape const& s = p.shape;
    int64_t const kept = s.protectedCount + s.keep;
    bool const sizesValid = s.batch >= 0 && s.tokens >= 0 && s.width >= 0 && s.candidates >= 0
        && s.protectedCount >= 0 && s.keep >= 0 && s.keep <= s.candidates && s.tokens < (int64_t{1} << 31)
        && s.batch < (int64_t{1} << 31) && s.batch * kept < (int64_t{1} << 31);
    if (!sizesValid)
    {
        return cudaErrorInvalidValue;
    }
    if (s.batch == 0 || kept == 0)
    {
        return cudaSuccess; // empty outputs: nothing to write
    }
    if (s.tokens == 0 || !p.scores || !p.hiddenStates || !p.positionIds || !p.keptIndex || !p.keptHiddenStates
        || !p.keptPositionIds || !p.workspace || (s.candidates > 0 && !p.candidates)
        || (s.protectedCount > 0 && !p.protectedTokens))
    {
        return cudaErrorInvalidValue;
    }

    int const tokenBits = bitsFor(s.tokens);
    switch (p.scoreType)
    {
    case TopKGatherDType::kFloat32: launchSelect<float>(p, tokenBits, stream); break;
    case TopKGatherDType::kFloat16: launchSelect<__half>(p, tokenBits, stream); break;
    case TopKGatherDType::kBFloat16: launchSelect<__nv_bfloat16>(p, tokenBits, stream); break;
    default: return cudaErrorInvalidValue;
    }
    cudaError_t status = cudaGetLastError();
    if (status != cudaSuccess || s.width == 0)
    {
        return status;
    }

    // The widest vector that divides the row and matches both base pointers.
    size_t const rowBytes = static_cast<size_t>(s.width) * topkGatherElementSize(p.hiddenType);
    auto fits = [&](size_t bytes) {
        return rowBytes % bytes == 0 && aligned(p.hiddenStates, bytes) && aligned(p.keptHiddenStates, bytes);
    };
    if (fits(16))
    {
        launchGather<uint4>(p, rowBytes, stream);
    }
    else if (fits(8))
    {
        launchGather<uint2>(p, rowBytes, stream);
    }
    else if (fits(4))
    {
        launchGather<uint32_t>(p, rowBytes, stream);
    }
    else
    {
        launchGather<uint16_t>(p, rowBytes, stream);
    }
    return cudaGetLastError();
}

} // namespace fastav
