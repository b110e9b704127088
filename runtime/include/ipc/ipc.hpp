/// @file ipc.hpp
/// The whole public API of the ipc runtime.
#pragma once

#include "ipc/channel.hpp"
#include "ipc/communicator.hpp"
#include "ipc/config.hpp"
#include "ipc/errors.hpp"
#include "ipc/farm.hpp"
#include "ipc/request.hpp"
#include "ipc/rpc.hpp"
#include "ipc/runtime.hpp"
#include "ipc/status.hpp"
#include "ipc/sync.hpp"
#include "ipc/value.hpp"
#include "ipc/window.hpp"
