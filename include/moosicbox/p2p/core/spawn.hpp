// SPDX-License-Identifier: MIT OR Apache-2.0
// spawn.hpp: spawn_logged, the one way the library starts a background coroutine. Unlike
// co_spawn(..., detached) it never drops a failure: an escaped exception is logged with the task name.
// Layer: core. Call from the executor's thread.
#pragma once

#include <exception>
#include <string>
#include <string_view>
#include <utility>

#include <boost/asio/co_spawn.hpp>

#include "moosicbox/p2p/core/asio.hpp"

namespace moosicbox::p2p {

/// log_task_failure logs that the background task `name` ended with `what` (at error level).
void log_task_failure(std::string_view name, std::string_view what) noexcept;
/// log_task_failure logs the exception `e` escaped from the background task `name` (nothing when
/// `e` is null).
void log_task_failure(std::string_view name, std::exception_ptr e) noexcept;

/// spawn_logged starts `task` on `ex`; an exception escaping it is logged as a failure of `name`.
template <class Executor>
void spawn_logged(const Executor& ex, asio::awaitable<void> task, std::string_view name) {
  asio::co_spawn(ex, std::move(task),
                 [task_name = std::string(name)](std::exception_ptr e) { log_task_failure(task_name, e); });
}

}  // namespace moosicbox::p2p
