// SPDX-License-Identifier: MIT OR Apache-2.0
// udp_bench.cpp: loopback throughput of UdpSocket, both ends in one thread: one datagram per system
// call, sendmmsg batches, GSO sends into a plain receiver, and GSO sends into a GRO receiver. Each
// iteration sends one batch of 1200-byte datagrams to 127.0.0.1 and receives all of it.
#include <benchmark/benchmark.h>

#include <vector>

#include "moosicbox/p2p/env/udp_socket.hpp"

namespace moosicbox::p2p::env {
namespace {

constexpr std::size_t kSegmentBytes = 1200;
// Keeps the receiver from spinning forever if the kernel ever dropped a datagram on loopback.
constexpr std::size_t kEmptyPollsMax = 1'000'000;

enum class Mode { single, batch, gso, gso_gro };

void run_udp(benchmark::State& state, Mode mode) {
  const auto datagrams = static_cast<std::size_t>(state.range(0));
  asio::io_context io;
  const bool gso = mode == Mode::gso || mode == Mode::gso_gro;
  auto tx = UdpSocket::bind(io.get_executor(), SocketAddr::v4_loopback(), {.gso = gso});
  auto rx = UdpSocket::bind(io.get_executor(), SocketAddr::v4_loopback(),
                            {.gro = mode == Mode::gso_gro, .receive_buffer_bytes = 4 << 20});
  if (!tx || !rx) {
    state.SkipWithError("bind failed");
    return;
  }
  if (gso && tx->gso_segments_max() <= 1) {
    state.SkipWithError("no UDP GSO on this kernel");
    return;
  }
  const Bytes payload(datagrams * kSegmentBytes, std::byte{0x5a});
  std::vector<Transmit> transmits;
  if (gso) {
    transmits.push_back(Transmit{.destination = rx->local_addr(), .contents = payload, .segment_size = kSegmentBytes});
  } else {
    for (std::size_t i = 0; i < datagrams; ++i) {
      transmits.push_back(Transmit{.destination = rx->local_addr(),
                                   .contents = ByteView(payload).subspan(i * kSegmentBytes, kSegmentBytes)});
    }
  }
  RecvBuffers buffers(UdpSocket::kBatchMax, mode == Mode::gso_gro ? 65536 : 2048);

  for (auto _ : state) {
    if (mode == Mode::single) {
      for (const auto& t : transmits) {
        if (tx->try_send_batch(std::span(&t, 1)).value_or(0) != 1) state.SkipWithError("send would block");
      }
    } else if (tx->try_send_batch(transmits).value_or(0) != transmits.size()) {
      state.SkipWithError("send would block");
    }
    std::size_t received = 0;
    std::size_t empty_polls = 0;
    while (received < datagrams) {
      const auto n = rx->try_receive_batch(buffers.buffers(), buffers.metas()).value_or(0);
      if (n == 0 && ++empty_polls > kEmptyPollsMax) {
        state.SkipWithError("datagrams lost on loopback");
        break;
      }
      for (std::size_t i = 0; i < n; ++i) received += buffers.segments(i).size();
    }
  }
  const auto iterations = static_cast<std::size_t>(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(iterations * payload.size()));
  state.SetItemsProcessed(static_cast<std::int64_t>(iterations * datagrams));
  state.counters["send_calls_per_iter"] =
      static_cast<double>(tx->stats().send_calls) / static_cast<double>(state.iterations());
  state.counters["recv_calls_per_iter"] =
      static_cast<double>(rx->stats().receive_calls) / static_cast<double>(state.iterations());
}

void BM_UdpLoopbackSingle(benchmark::State& state) { run_udp(state, Mode::single); }
void BM_UdpLoopbackSendmmsg(benchmark::State& state) { run_udp(state, Mode::batch); }
void BM_UdpLoopbackGso(benchmark::State& state) { run_udp(state, Mode::gso); }
void BM_UdpLoopbackGsoGro(benchmark::State& state) { run_udp(state, Mode::gso_gro); }

BENCHMARK(BM_UdpLoopbackSingle)->Arg(32);
BENCHMARK(BM_UdpLoopbackSendmmsg)->Arg(32);
BENCHMARK(BM_UdpLoopbackGso)->Arg(32)->Arg(54);
BENCHMARK(BM_UdpLoopbackGsoGro)->Arg(32)->Arg(54);

}  // namespace
}  // namespace moosicbox::p2p::env
