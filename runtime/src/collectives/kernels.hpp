// The library's reduction kernels (kernels.cpp) by instruction set, for the tests
// that hold each against the typed API's element-by-element loop.
#pragma once

#include "collectives/api.hpp"

namespace ipc::detail {

enum class KernelIsa : std::uint8_t { baseline, avx2 };

/// The kernel for op on elements of kind and elem_size bytes built for `isa` (null
/// where there is none, or where this build has no code for `isa`).
ReduceFn reduction_kernel(ReduceOp op, ReduceKind kind, std::size_t elem_size, KernelIsa isa) noexcept;
/// The widest instruction set of this CPU that the kernels are built for.
KernelIsa kernel_isa() noexcept;

}  // namespace ipc::detail
