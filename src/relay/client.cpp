// SPDX-License-Identifier: MIT OR Apache-2.0
// client.cpp: relay::Client and probe_latency on real sockets. One run loop per client: connect
// (resolve, TCP, TLS, WebSocket upgrade, challenge / auth / welcome), then a read loop that
// dispatches frames and a ping loop that watches quiet; after any end, a jittered exponential backoff
// (or the server's restart schedule) and again. send() coalesces consecutive datagrams to one node
// into one frame in a bounded queue that an on-demand writer drains, one write in flight (Beast's
// rule). The loops are client_impl.hpp's, written once for real and simulated transports; the
// simulated instantiation is in client_sim.cpp.
// Layer: relay (internal). Everything runs on the client's executor: no locks.
#include "relay/client.hpp"

#include <filesystem>

#include "relay/client_impl.hpp"

namespace moosicbox::p2p::relay {

using namespace detail;

namespace {

P2PResult<std::optional<asio::ssl::context>> make_tls(const RelayUrl& url, const std::optional<std::string>& ca) {
  if (!url.tls) return std::optional<asio::ssl::context>{};
  std::optional<asio::ssl::context> ctx(std::in_place, asio::ssl::context::tls_client);
  boost::system::error_code ec;
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1,
                   ec);
  if (ca) {
    std::error_code fec;
    if (!std::filesystem::is_regular_file(*ca, fec)) {
      return fail(
          P2PError::invalid_configuration(fmt::format("relay: TLS CA file '{}' is missing or unreadable", *ca)));
    }
    ctx->load_verify_file(*ca, ec);
    if (ec) {
      return fail(P2PError::invalid_configuration(fmt::format("relay: bad TLS CA file '{}': {}", *ca, ec.message())));
    }
  } else {
    ctx->set_default_verify_paths(ec);
  }
  ctx->set_verify_mode(asio::ssl::verify_peer);
  return ctx;
}

}  // namespace

// --- Client (the interface) ---

P2PResult<std::shared_ptr<Client>> Client::create(asio::any_io_executor ex, ClientConfig config) {
  auto url = parse_relay_url(config.url);
  if (!url) return std::unexpected(url.error());
  if (config.send_queue_bytes_max < kFrameSizeDefault) {
    return fail(
        P2PError::invalid_configuration(fmt::format("relay client: send_queue_bytes_max {} is below one frame ({})",
                                                    config.send_queue_bytes_max, kFrameSizeDefault)));
  }
  if (config.connect_timeout <= Duration::zero() || config.ping_interval <= Duration::zero() ||
      config.pong_timeout <= Duration::zero() || config.backoff_initial <= Duration::zero() ||
      config.backoff_max < config.backoff_initial) {
    return fail(P2PError::invalid_configuration(
        "relay client: timeouts must be positive and backoff_max at least backoff_initial"));
  }
  if (config.sim_host != nullptr) return create_sim_client(std::move(ex), std::move(config), std::move(*url));
  auto tls = make_tls(*url, config.tls_ca_file);
  if (!tls) return std::unexpected(tls.error());
  RealTransport transport(ex, std::move(*tls));
  return std::shared_ptr<Client>(
      std::make_shared<ClientImpl<RealTransport>>(ex, std::move(config), std::move(*url), std::move(transport)));
}

Client::~Client() = default;

namespace {
// Every Client is a ClientCore: the per-datagram calls reach it without virtual dispatch.
ClientCore& impl(Client* c) { return *static_cast<ClientCore*>(c); }
const ClientCore& impl(const Client* c) { return *static_cast<const ClientCore*>(c); }
}  // namespace

void Client::on_receive(ReceiveFn fn) { impl(this).on_receive_ = std::move(fn); }
void Client::on_peer_gone(PeerGoneFn fn) { impl(this).on_peer_gone_ = std::move(fn); }
void Client::on_state(StateFn fn) { impl(this).on_state_ = std::move(fn); }
void Client::on_stun(StunFn fn) { impl(this).on_stun_ = std::move(fn); }
void Client::on_drain(std::function<void()> fn) { impl(this).on_drain_ = std::move(fn); }
bool Client::writable() { return impl(this).writable(); }
void Client::start() { impl(this).do_start(); }
bool Client::send(const NodeId& to, ByteView datagram) { return impl(this).send(to, datagram); }
asio::awaitable<P2PResult<Duration>> Client::ping() {
  auto self = shared_from_this();
  co_return co_await impl(this).do_ping();
}
asio::awaitable<P2PResult<void>> Client::wait_connected(TimePoint deadline) {
  auto self = shared_from_this();
  co_return co_await impl(this).do_wait_connected(deadline);
}
void Client::close() { impl(this).do_close(); }
const std::string& Client::url() const noexcept { return impl(this).url(); }
ClientState Client::state() const noexcept { return impl(this).state(); }
std::optional<Duration> Client::rtt() const noexcept { return impl(this).rtt(); }
std::optional<SocketAddr> Client::observed_addr() const noexcept { return impl(this).observed_addr(); }
std::vector<std::uint16_t> Client::stun_ports() const { return impl(this).stun_ports(); }
std::vector<env::SocketAddr> Client::stun_addrs() const { return impl(this).stun_addrs(); }
std::optional<P2PError> Client::last_error() const { return impl(this).last_error(); }
ClientStats Client::stats() const noexcept { return impl(this).stats(); }
std::size_t Client::queued_bytes() const noexcept { return impl(this).queued_bytes(); }

// --- probe_latency, probe_relay ---

asio::awaitable<P2PResult<Duration>> probe_latency(asio::any_io_executor ex, std::string url, Duration timeout,
                                                   std::optional<std::string> tls_ca_file) {
  auto p = co_await probe_relay(std::move(ex), std::move(url), timeout, std::move(tls_ca_file));
  co_return check_probe(p);
}

asio::awaitable<P2PResult<RelayProbe>> probe_relay(asio::any_io_executor ex, std::string url, Duration timeout,
                                                   std::optional<std::string> tls_ca_file) {
  auto u = parse_relay_url(url);
  if (!u) co_return fail(u.error());
  auto tls = make_tls(*u, tls_ca_file);
  if (!tls) co_return fail(tls.error());
  env::AsioEnv env(ex);
  tcp::resolver resolver(ex);
  auto [rec, results] = co_await resolver.async_resolve(u->host, std::to_string(u->port), kUse);
  if (rec)
    co_return fail(P2PError::network(fmt::format("relay probe: cannot resolve '{}': {}", u->host, describe(rec))));
  beast::tcp_stream stream(ex);
  stream.expires_after(timeout);
  auto [cec, ep] = co_await stream.async_connect(results, kUse);
  (void)ep;
  if (cec == beast::error::timeout) co_return fail(P2PError::timeout(timeout));
  if (cec) co_return fail(P2PError::network(fmt::format("relay probe: cannot connect to {}: {}", url, describe(cec))));
  if (!*tls) {
    stream.expires_after(timeout);
    co_return co_await probe_request(stream, env, *u, timeout, nullptr);
  }
  beast::ssl_stream<beast::tcp_stream> s(std::move(stream), **tls);
  if (!u->ipv6_literal && u->host.find_first_not_of("0123456789.") != std::string::npos) {
    SSL_ctrl(s.native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>(u->host.c_str()));
  }
  s.set_verify_callback(asio::ssl::host_name_verification(u->host));
  auto [tec] = co_await s.async_handshake(asio::ssl::stream_base::client, kUse);
  if (tec == beast::error::timeout) co_return fail(P2PError::timeout(timeout));
  if (tec) co_return fail(P2PError::network(fmt::format("relay probe: TLS: {}", describe(tec))));
  beast::get_lowest_layer(s).expires_after(timeout);
  co_return co_await probe_request(s, env, *u, timeout, nullptr);
}

}  // namespace moosicbox::p2p::relay
