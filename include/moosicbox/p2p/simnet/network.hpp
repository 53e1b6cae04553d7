// SPDX-License-Identifier: MIT OR Apache-2.0
// network.hpp: the simulated packet network. A Network holds hosts and NAT routers on segments (the
// public internet is the root segment; every router owns one private segment behind it), links
// with latency, jitter, loss, reordering, bandwidth, MTU and a queue, partitions, and routers with
// real NAT behaviour (mapping, port allocation, filtering, timeouts, hairpinning, UDP blocking,
// flushing). On it run datagram sockets (env::DatagramSocket, what the QUIC endpoint uses) and
// reliable byte-stream sockets (what the relay's WebSocket runs on). Everything advances in the
// virtual time of one env::SimRuntime and draws randomness from streams derived from its seed, so a
// run is a pure function of the seed.
// Layer: simnet. Single-threaded: a Network and everything on it belong to the thread that steps
// its runtime.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/system/error_code.hpp>

#include "moosicbox/p2p/core/asio.hpp"
#include "moosicbox/p2p/core/error.hpp"
#include "moosicbox/p2p/core/time.hpp"
#include "moosicbox/p2p/env/datagram.hpp"
#include "moosicbox/p2p/env/sim_env.hpp"
#include "moosicbox/p2p/env/socket_addr.hpp"

namespace moosicbox::p2p::simnet {

using env::SocketAddr;

/// LinkParams describe one link (a host's or a router's attachment to its segment), per direction.
struct LinkParams {
  Duration latency = std::chrono::milliseconds(5);  ///< one-way propagation delay
  Duration jitter{};                                ///< extra delay, uniform in [0, jitter]
  double loss = 0.0;                                ///< probability a packet is dropped
  double reorder = 0.0;  ///< probability a packet is held back by reorder_delay (arrives late)
  Duration reorder_delay = std::chrono::milliseconds(10);  ///< how late a reordered packet arrives
  std::uint64_t bandwidth_bps = 0;       ///< serialisation rate in bits/s of payload + headers; 0 = unlimited
  std::size_t mtu = 1500;                ///< IP MTU: a larger packet (payload + headers) is dropped
  std::size_t queue_bytes = 512 * 1024;  ///< bytes waiting for serialisation; beyond, tail drop
  bool up = true;                        ///< false: every packet is dropped (a cut cable)
};

/// NatMapping says when a NAT reuses an external port (RFC 4787 section 4.1).
enum class NatMapping : std::uint8_t {
  endpoint_independent,       ///< one external port per internal address:port ("easy")
  address_dependent,          ///< one per internal address:port and destination address
  address_and_port_dependent  ///< one per internal address:port and destination address:port (symmetric, "hard")
};
/// NatPorts says how a NAT picks a new external port.
enum class NatPorts : std::uint8_t {
  preserve,    ///< the internal port when free, else sequential from it
  sequential,  ///< the next free port after the last one allocated
  random,      ///< a uniformly random free port in [port_min, port_max]
};
/// NatFiltering says which inbound packets a mapping lets in (RFC 4787 section 5).
enum class NatFiltering : std::uint8_t {
  none,              ///< anyone may send to a mapped port ("full cone")
  address,           ///< only addresses the mapping has sent to
  address_and_port,  ///< only address:port pairs the mapping has sent to
};

/// NatConfig is a router's NAT behaviour.
struct NatConfig {
  NatMapping mapping = NatMapping::endpoint_independent;    ///< when an external port is reused
  NatPorts ports = NatPorts::preserve;                      ///< how a new external port is picked
  NatFiltering filtering = NatFiltering::address_and_port;  ///< which inbound packets a mapping admits
  Duration udp_timeout = std::chrono::seconds(30);          ///< a mapping without outbound traffic this long expires
  Duration stream_timeout = std::chrono::minutes(10);       ///< the same for stream connections
  bool hairpin = false;              ///< inside hosts may reach each other through the public address
  bool udp_blocked = false;          ///< every UDP packet out of (and into) the private segment is dropped
  std::uint16_t port_min = 1024;     ///< lowest external port
  std::uint16_t port_max = 65535;    ///< highest external port
  std::size_t mappings_max = 65536;  ///< beyond, new flows are dropped (and counted)
};

/// NatStats counts what a router did.
struct NatStats {
  std::uint64_t mappings_created = 0;  ///< new mappings (flows given an external port)
  std::uint64_t mappings_expired = 0;  ///< mappings removed after their timeout
  std::uint64_t translated_out = 0;    ///< outbound packets translated
  std::uint64_t translated_in = 0;     ///< inbound packets translated and let in
  std::uint64_t filtered_in = 0;       ///< inbound packets the filter dropped
  std::uint64_t unmapped_in = 0;       ///< inbound packets to a port without a mapping
  std::uint64_t hairpinned = 0;        ///< packets turned around to the inside (hairpinning)
  std::uint64_t blocked_udp = 0;       ///< UDP packets dropped by udp_blocked
  std::uint64_t table_full = 0;        ///< new flows dropped because mappings_max were held
};

/// NetStats counts the whole network.
struct NetStats {
  std::uint64_t packets_sent = 0;           ///< datagrams handed to the network by sockets
  std::uint64_t packets_delivered = 0;      ///< datagrams that reached a socket's receive queue
  std::uint64_t packets_dropped = 0;        ///< by any cause below
  std::uint64_t dropped_loss = 0;           ///< by a link's loss probability
  std::uint64_t dropped_queue = 0;          ///< link queue full
  std::uint64_t dropped_mtu = 0;            ///< larger than a link's MTU
  std::uint64_t dropped_link_down = 0;      ///< a link was down
  std::uint64_t dropped_no_route = 0;       ///< no host or router owns the destination
  std::uint64_t dropped_no_socket = 0;      ///< the host has no socket on the port
  std::uint64_t dropped_receive_queue = 0;  ///< a socket's receive queue was full
  std::uint64_t dropped_nat = 0;            ///< filtered, unmapped, blocked or table full
  std::uint64_t dropped_fault = 0;          ///< by the drop filter (fault injection)
  std::uint64_t dropped_partition = 0;      ///< source and destination host on opposite sides of a partition
  std::uint64_t bytes_delivered = 0;        ///< datagram payload bytes delivered
  std::uint64_t stream_bytes = 0;           ///< bytes delivered on stream connections
  std::uint64_t stream_packets_delivered =
      0;  ///< stream packets (segments, handshakes, acknowledgements) that reached a stream
};

class Network;
class Host;
class Router;

/// Packet is what the drop filter sees: one datagram as it crosses a link.
struct Packet {
  SocketAddr source;       ///< as on this link (after any translation so far)
  SocketAddr destination;  ///< as on this link
  std::size_t size = 0;    ///< UDP payload bytes
  bool stream = false;     ///< a stream segment (never dropped by loss; a drop delays it)
};

/// Segment is a broadcast domain: the internet (Network::internet()) or a router's private side.
/// Addresses on a segment are unique; a packet to an address of the segment goes to its owner, any
/// other goes up through the segment's router (none on the internet: dropped as no_route).
class Segment {
 public:
  virtual ~Segment() = default;
  /// name is the segment's name ("internet" or the router's name + "/lan").
  [[nodiscard]] virtual const std::string& name() const noexcept = 0;
  /// router is the NAT router in front of this segment, null for the internet.
  [[nodiscard]] virtual Router* router() const noexcept = 0;
};

/// Host is one machine: a name, addresses on one segment (its interfaces), a link, sockets.
class Host {
 public:
  virtual ~Host() = default;
  /// name is the host's unique name.
  [[nodiscard]] virtual const std::string& name() const noexcept = 0;
  /// network is the network the host belongs to.
  [[nodiscard]] virtual Network& network() const noexcept = 0;
  /// segment is where the host's addresses are (the internet, or a router's lan).
  [[nodiscard]] virtual Segment& segment() const noexcept = 0;
  /// addresses returns the host's interface addresses (ports are 0), in the order they were given.
  [[nodiscard]] virtual std::span<const SocketAddr> addresses() const noexcept = 0;
  /// link returns (for changing) the host's link to its segment; changes apply to later packets.
  virtual LinkParams& link() noexcept = 0;
  /// env returns the host's environment: the network's clock, its own random stream ("host/NAME").
  virtual env::SimEnv& env() noexcept = 0;
  /// set_addresses replaces the host's addresses (a moved laptop, DHCP). Sockets bound to a
  /// removed specific address stop receiving; wildcard sockets follow.
  virtual P2PResult<void> set_addresses(std::vector<SocketAddr> addrs) = 0;
};

/// Router is a NAT router: one public address on its parent segment, one private segment behind it.
class Router {
 public:
  virtual ~Router() = default;
  /// name is the router's unique name.
  [[nodiscard]] virtual const std::string& name() const noexcept = 0;
  /// public_address is the router's address on its parent segment (port 0).
  [[nodiscard]] virtual SocketAddr public_address() const noexcept = 0;
  /// lan is the private segment behind the router.
  [[nodiscard]] virtual Segment& lan() noexcept = 0;
  /// link is the router's uplink to its parent segment.
  virtual LinkParams& link() noexcept = 0;
  /// nat returns (for changing) the NAT behaviour; changes apply to new mappings.
  virtual NatConfig& nat() noexcept = 0;
  /// flush drops every mapping (a NAT reboot or rebinding): flows get new external ports.
  virtual void flush() = 0;
  /// mapping_count returns the live mappings (UDP and stream).
  [[nodiscard]] virtual std::size_t mapping_count() const noexcept = 0;
  /// stats returns the router's counters.
  [[nodiscard]] virtual const NatStats& stats() const noexcept = 0;
};

/// Network is the simulated network.
class Network {
 public:
  /// Network runs on `rt` (which it does not own; it must outlive the network).
  explicit Network(env::SimRuntime& rt);
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;
  ~Network();

  /// runtime is the simulation the network runs in.
  [[nodiscard]] env::SimRuntime& runtime() const noexcept;
  /// internet is the root segment (public addresses).
  [[nodiscard]] Segment& internet() noexcept;

  /// add_host adds a host with `addrs` (ports ignored) on `where`. Errors: for a
  /// duplicate name, an address already used on that segment, or no address (invalid_configuration).
  P2PResult<Host*> add_host(std::string name, Segment& where, std::vector<SocketAddr> addrs, LinkParams link = {});
  /// add_router adds a NAT router with public address `public_addr` on `where` (the internet, or
  /// another router's lan for nested NAT) and an empty private segment. Same errors as add_host.
  P2PResult<Router*> add_router(std::string name, Segment& where, SocketAddr public_addr, NatConfig nat = {},
                                LinkParams link = {});
  /// host returns the host named `name`, null when there is none.
  [[nodiscard]] Host* host(std::string_view name) const noexcept;
  /// router returns the router named `name`, null when there is none.
  [[nodiscard]] Router* router(std::string_view name) const noexcept;

  /// set_drop_filter installs a fault-injection hook: a packet for which it returns true is dropped
  /// (counted as dropped_fault). Empty to remove. It runs at every link crossing.
  void set_drop_filter(std::function<bool(const Packet&)> filter);
  /// partition cuts every path between hosts in `a` and hosts in `b` (both directions) until heal().
  /// It is decided where a packet reaches its final host (counted as dropped_partition); streams
  /// resend what it drops and reset after TcpStream::kResetAfterDefault.
  void partition(std::vector<Host*> a, std::vector<Host*> b);
  /// heal removes every partition.
  void heal();

  /// add_name makes `name` resolve to `addr` for stream connects by name (a tiny static DNS).
  void add_name(std::string name, SocketAddr addr);
  /// resolve returns the address add_name gave `name`, nullopt for an unknown name.
  [[nodiscard]] std::optional<SocketAddr> resolve(std::string_view name) const;

  /// stats returns the network's counters.
  [[nodiscard]] const NetStats& stats() const noexcept;
  /// set_trace_packets: every delivered datagram mixes (time, source, destination, size, a hash of
  /// its bytes) into the runtime's trace hash, every stream packet (time, source, destination, size,
  /// sequence number). On by default.
  void set_trace_packets(bool on) noexcept;

  /// Impl is the implementation (opaque; the sockets reach it).
  struct Impl;
  /// impl returns the implementation.
  [[nodiscard]] Impl& impl() noexcept { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

/// UdpSocket is a datagram socket on a simulated host. It satisfies env::DatagramSocket.
/// Sends never block (a full link queue drops, as a router would); the receive queue holds
/// recv_queue_max datagrams, beyond which arrivals are dropped.
class UdpSocket {
 public:
  /// kRecvQueueMax is how many datagrams wait in a socket's receive queue at most.
  static constexpr std::size_t kRecvQueueMax = 1024;
  /// bind binds on `host` at `addr`: one of the host's addresses or the wildcard of a family (v6
  /// wildcard is dual-stack), port 0 for an ephemeral port. Errors: network_error ("address in use",
  /// "address not available" for an address the host does not have), invalid_configuration.
  static P2PResult<UdpSocket> bind(Host& host, const SocketAddr& addr);

  /// UdpSocket() is a closed socket (bind() makes open ones).
  UdpSocket() noexcept;
  /// Move-only; a moved-from socket is closed.
  ///@{
  UdpSocket(UdpSocket&&) noexcept;
  UdpSocket& operator=(UdpSocket&&) noexcept;
  ///@}
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;
  ~UdpSocket();

  /// local_addr is the bound address (the port chosen for port 0).
  [[nodiscard]] SocketAddr local_addr() const;
  /// gso_segments_max is 64: a transmit with segment_size is split into datagrams here.
  [[nodiscard]] std::size_t gso_segments_max() const;
  /// is_dual_stack is true for a socket bound to the IPv6 wildcard (it also carries IPv4).
  [[nodiscard]] bool is_dual_stack() const;
  /// try_send_batch sends every transmit (returns out.size()); a datagram too large for the
  /// sender's link MTU is dropped as the kernel would (EMSGSIZE is not reported, like a lost one).
  P2PResult<std::size_t> try_send_batch(std::span<const env::Transmit> out);
  /// try_receive_batch moves queued datagrams into `buffers` (one per buffer, no GRO); 0 when none.
  P2PResult<std::size_t> try_receive_batch(std::span<const std::span<std::byte>> buffers,
                                           std::span<env::RecvMeta> metas);
  /// wait_readable completes when a datagram is queued (or at once if one is). Errors: cancelled
  /// (cancel(), close(), or cancellation of the awaiting operation).
  asio::awaitable<P2PResult<void>> wait_readable();
  /// wait_writable completes at once (sends never block).
  asio::awaitable<P2PResult<void>> wait_writable();
  /// cancel ends pending waits with cancelled.
  void cancel() noexcept;
  /// close unbinds the port; later calls fail with network_error "closed" (waits with cancelled).
  void close() noexcept;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

/// TcpStream is a reliable, ordered byte stream between two hosts (TCP-like): segments cross the
/// same links and NATs as datagrams (a stream flow takes a NAT mapping like a UDP flow, with its own
/// timeout), are never reordered and never lost (a dropped segment is resent after an RTO, so loss
/// shows as delay); a path that stays cut for `reset_after` resets the connection. It models asio's
/// AsyncReadStream and AsyncWriteStream (any completion token, per-operation terminal cancellation),
/// so Beast's HTTP and WebSocket run on it (the teardown hooks are in simnet/beast.hpp).
class TcpStream {
 public:
  /// executor_type is the runtime's executor type (asio's stream requirements).
  using executor_type = asio::any_io_executor;
  /// kResetAfterDefault is how long a segment may fail to get through before the stream resets.
  static constexpr Duration kResetAfterDefault = std::chrono::seconds(15);

  /// TcpStream() is a closed stream (connect() and TcpListener::accept() make open ones).
  TcpStream() noexcept;
  /// Move-only; a moved-from stream is closed.
  ///@{
  TcpStream(TcpStream&&) noexcept;
  TcpStream& operator=(TcpStream&&) noexcept;
  ///@}
  TcpStream(const TcpStream&) = delete;
  TcpStream& operator=(const TcpStream&) = delete;
  ~TcpStream();  // closes (the peer reads end of file)

  /// connect opens a stream from `host` (an ephemeral port on its first address of the family) to
  /// `to`. Errors: connection_failed ("refused": nothing listens; an RST came back), timeout (no answer in
  /// `timeout`: the path is cut, or the destination is behind a NAT without a mapping).
  static asio::awaitable<P2PResult<TcpStream>> connect(Host& host, SocketAddr to, Duration timeout);

  /// get_executor returns the runtime's executor (completions run there).
  [[nodiscard]] executor_type get_executor() const noexcept;
  /// local_addr is this end's address (before NAT).
  [[nodiscard]] SocketAddr local_addr() const;
  /// remote_addr is the peer's address as this side sees it (after NAT: a server sees the client's
  /// public mapping).
  [[nodiscard]] SocketAddr remote_addr() const;
  /// is_open is true from connect or accept until close (or a reset).
  [[nodiscard]] bool is_open() const noexcept;
  /// close sends end of file to the peer; pending operations complete with operation_aborted.
  void close() noexcept;
  /// shutdown_send sends end of file; reading continues.
  void shutdown_send() noexcept;
  /// cancel completes pending operations with operation_aborted.
  void cancel() noexcept;

  /// async_read_some reads at least one byte (asio::error::eof at end of file,
  /// connection_reset after a reset, operation_aborted when cancelled).
  template <class MutableBufferSequence, class Token>
  auto async_read_some(const MutableBufferSequence& buffers, Token&& token);
  /// async_write_some queues bytes (up to the send window, 256 KiB) and completes when at least one
  /// byte is queued.
  template <class ConstBufferSequence, class Token>
  auto async_write_some(const ConstBufferSequence& buffers, Token&& token);

  /// Impl is the implementation (opaque).
  struct Impl;
  /// TcpStream wraps an implementation (connect and accept build streams this way).
  explicit TcpStream(std::shared_ptr<Impl> impl) noexcept;

  /// IoHandler is the type-erased completion handler of a read or a write.
  using IoHandler = asio::any_completion_handler<void(boost::system::error_code, std::size_t)>;
  /// start_read and start_write are the type-erased halves of async_read_some and
  /// async_write_some (in sockets.cpp).
  ///@{
  void start_read(std::vector<asio::mutable_buffer> buffers, IoHandler handler);
  void start_write(std::vector<asio::const_buffer> buffers, IoHandler handler);
  ///@}

 private:
  std::shared_ptr<Impl> impl_;
};

/// TcpListener accepts streams on a host's address:port.
class TcpListener {
 public:
  /// listen binds `addr` on `host` (wildcard allowed, port 0 for ephemeral). Errors as UdpSocket.
  static P2PResult<TcpListener> listen(Host& host, const SocketAddr& addr, std::size_t backlog = 128);
  /// TcpListener() is a closed listener.
  TcpListener() noexcept;
  /// Move-only.
  ///@{
  TcpListener(TcpListener&&) noexcept;
  TcpListener& operator=(TcpListener&&) noexcept;
  ///@}
  ~TcpListener();
  /// local_addr is the bound address (the port chosen for port 0).
  [[nodiscard]] SocketAddr local_addr() const;
  /// accept waits for the next connection. Errors: cancelled (close(), cancellation).
  asio::awaitable<P2PResult<TcpStream>> accept();
  /// close stops listening; connects are refused from now on.
  void close() noexcept;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

template <class MutableBufferSequence, class Token>
auto TcpStream::async_read_some(const MutableBufferSequence& buffers, Token&& token) {
  std::vector<asio::mutable_buffer> bufs(asio::buffer_sequence_begin(buffers), asio::buffer_sequence_end(buffers));
  return asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
      [this](auto handler, std::vector<asio::mutable_buffer> b) { start_read(std::move(b), std::move(handler)); },
      token, std::move(bufs));
}

template <class ConstBufferSequence, class Token>
auto TcpStream::async_write_some(const ConstBufferSequence& buffers, Token&& token) {
  std::vector<asio::const_buffer> bufs(asio::buffer_sequence_begin(buffers), asio::buffer_sequence_end(buffers));
  return asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
      [this](auto handler, std::vector<asio::const_buffer> b) { start_write(std::move(b), std::move(handler)); }, token,
      std::move(bufs));
}

}  // namespace moosicbox::p2p::simnet
