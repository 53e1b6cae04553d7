// SPDX-License-Identifier: MIT OR Apache-2.0
// server_thread.hpp: ServerThread, an io_context running on its own thread until stop(): the
// server side of the benchmarks that put each end on its own thread (router, tunnel).
// Layer: tools. stop() (or the destructor) joins the thread; call it from the owning thread.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <thread>

#include "moosicbox/p2p/core/asio.hpp"

namespace moosicbox::p2p::cli {

/// ServerThread runs an io_context on its own thread until stop().
class ServerThread {
 public:
  ServerThread() : guard_(asio::make_work_guard(io_)), thread_([this] { io_.run(); }) {}
  ServerThread(const ServerThread&) = delete;
  ServerThread& operator=(const ServerThread&) = delete;
  ~ServerThread() { stop(); }
  asio::io_context& io() noexcept { return io_; }
  void stop() {
    if (!thread_.joinable()) return;
    guard_.reset();
    io_.stop();
    thread_.join();
  }

 private:
  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::thread thread_;
};

}  // namespace moosicbox::p2p::cli
