// SPDX-License-Identifier: MIT OR Apache-2.0
// internal.hpp: the shared insides of the simulated network: segments, hosts, links, routers with
// their NAT tables, packets in flight, and the state behind UdpSocket, TcpStream and TcpListener.
// network.cpp moves packets (links, routing, NAT); sockets.cpp implements the socket types on top.
// Layer: simnet (private). Single-threaded: everything belongs to the thread stepping the runtime.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>

#include "moosicbox/p2p/env/rng.hpp"
#include "moosicbox/p2p/simnet/network.hpp"

namespace moosicbox::p2p::simnet::detail {

/// kStreamSegmentMax is the largest stream segment payload (an MSS below every default MTU).
inline constexpr std::size_t kStreamSegmentMax = 1400;
/// kStreamWindow bounds the bytes a stream end has sent that its peer has not read yet.
inline constexpr std::size_t kStreamWindow = 256 * 1024;
/// kEphemeralPortMin and kEphemeralPortMax bound the ports bind(port 0) and connect pick.
inline constexpr std::uint16_t kEphemeralPortMin = 49152;
inline constexpr std::uint16_t kEphemeralPortMax = 65535;
/// kBufferPoolMax bounds the packet buffers kept for reuse.
inline constexpr std::size_t kBufferPoolMax = 4096;

struct HostImpl;
struct RouterImpl;
struct SegmentImpl;

/// Proto separates the NAT port spaces and timeouts of datagrams and stream connections.
enum class Proto : std::uint8_t { udp, stream };
/// StreamKind is what a stream packet carries. syn, syn_ack, data and fin are reliable (they hold a
/// sequence number and are resent when dropped); rst is a single unreliable packet.
enum class StreamKind : std::uint8_t { syn, syn_ack, data, fin, rst };

/// ip_key is the address part of `a` (port 0), the key of a segment's owner table.
[[nodiscard]] inline SocketAddr ip_key(const SocketAddr& a) noexcept { return a.with_port(0); }

/// LinkDir is the state of one direction of a link.
struct LinkDir {
  TimePoint busy_until{};    // serialisation of the last accepted packet ends here
  TimePoint last_arrival{};  // keeps deliveries in order unless a packet is chosen for reordering
};

/// LinkImpl is one link: its parameters (shared by both directions), its random stream, and the
/// state of each direction. `up` leads towards the segment (or the parent segment for a router).
struct LinkImpl {
  LinkImpl(LinkParams p, std::uint64_t seed) : params(p), rng(seed) {}
  LinkParams params;
  env::Rng rng;
  LinkDir up;
  LinkDir down;
};

/// Owner is what owns an address on a segment: a host interface or a router's public address.
struct Owner {
  HostImpl* host = nullptr;
  RouterImpl* router = nullptr;
};

struct SegmentImpl final : Segment {
  SegmentImpl(std::string n, RouterImpl* r) : name_(std::move(n)), router_(r) {}
  [[nodiscard]] const std::string& name() const noexcept override { return name_; }
  [[nodiscard]] Router* router() const noexcept override;

  std::string name_;
  RouterImpl* router_;
  std::unordered_map<SocketAddr, Owner> owners;  // by ip_key; lookups only, never iterated
};

/// Hop is where a packet arrives at the end of its current link crossing.
enum class Hop : std::uint8_t { segment, host, router_in };

/// Flight is one packet in the network. Flights live in a pool and are named by index (the pool may
/// grow while a packet is handled, so references do not outlive a call that can send).
struct Flight {
  SocketAddr src;  // as on the current link (translated by NATs on the way)
  SocketAddr dst;
  std::vector<std::byte> data;  // pooled
  HostImpl* origin = nullptr;   // the sending host (partitions are between hosts)
  void* target = nullptr;       // SegmentImpl, HostImpl or RouterImpl, per hop
  Hop hop = Hop::segment;
  env::Ecn ecn = env::Ecn::not_ect;
  bool stream = false;
  StreamKind kind = StreamKind::data;
  std::uint64_t seq = 0;
  std::shared_ptr<TcpStream::Impl> sender;  // reliable stream packets: told when dropped
  TimePoint sent_at{};
  env::SimRuntime::EventId event = 0;
  bool live = false;
};

/// Binding is one bound address:port and what holds it.
template <class T>
struct Binding {
  SocketAddr addr;
  T* item;
};

/// PortTable holds a host's bindings of one kind (datagram sockets or stream listeners) by port.
template <class T>
struct PortTable {
  std::unordered_map<std::uint16_t, std::vector<Binding<T>>> by_port;

  /// conflicts is true when binding `a` would overlap an existing binding (the same address, or a
  /// wildcard covering the other: a v6 wildcard is dual-stack and covers IPv4 too).
  [[nodiscard]] bool conflicts(const SocketAddr& a) const {
    const auto it = by_port.find(a.port());
    if (it == by_port.end()) return false;
    for (const auto& b : it->second) {
      if (b.addr == a) return true;
      const bool a_any = a.is_unspecified();
      const bool b_any = b.addr.is_unspecified();
      if (a_any && a.is_v6()) return true;
      if (b_any && b.addr.is_v6()) return true;
      if ((a_any || b_any) && a.family() == b.addr.family()) return true;
    }
    return false;
  }
  /// find returns the binding for a packet to `dst`: the exact address first, then the wildcard of
  /// its family, then (for IPv4) the dual-stack v6 wildcard.
  [[nodiscard]] T* find(const SocketAddr& dst) const {
    const auto it = by_port.find(dst.port());
    if (it == by_port.end()) return nullptr;
    T* family_any = nullptr;
    T* v6_any = nullptr;
    for (const auto& b : it->second) {
      if (b.addr == dst) return b.item;
      if (b.addr.is_unspecified()) {
        if (b.addr.family() == dst.family()) family_any = b.item;
        if (b.addr.is_v6()) v6_any = b.item;
      }
    }
    if (family_any != nullptr) return family_any;
    return dst.is_v4() ? v6_any : nullptr;
  }
  [[nodiscard]] bool port_used(std::uint16_t port) const { return by_port.contains(port); }
  void add(const SocketAddr& a, T* item) { by_port[a.port()].push_back(Binding<T>{a, item}); }
  void remove(const SocketAddr& a, T* item) {
    const auto it = by_port.find(a.port());
    if (it == by_port.end()) return;
    std::erase_if(it->second, [&](const Binding<T>& b) { return b.item == item; });
    if (it->second.empty()) by_port.erase(it);
  }
};

/// ConnKey names a stream connection on a host: its local and remote address:port.
struct ConnKey {
  SocketAddr local;
  SocketAddr remote;
  friend bool operator==(const ConnKey&, const ConnKey&) = default;
};
struct ConnKeyHash {
  std::size_t operator()(const ConnKey& k) const noexcept {
    const std::size_t a = std::hash<SocketAddr>{}(k.local);
    const std::size_t b = std::hash<SocketAddr>{}(k.remote);
    return a ^ (b * 0x9e3779b97f4a7c15ULL);
  }
};

struct HostImpl final : Host {
  HostImpl(Network& n, std::string nm, SegmentImpl& s, std::vector<SocketAddr> a, LinkParams l);

  [[nodiscard]] const std::string& name() const noexcept override { return name_; }
  [[nodiscard]] Network& network() const noexcept override { return *net_; }
  [[nodiscard]] Segment& segment() const noexcept override { return *segment_; }
  [[nodiscard]] std::span<const SocketAddr> addresses() const noexcept override { return addrs_; }
  LinkParams& link() noexcept override { return link_.params; }
  env::SimEnv& env() noexcept override { return env_; }
  P2PResult<void> set_addresses(std::vector<SocketAddr> addrs) override;

  /// has_address is true when `a` (port ignored) is one of the host's addresses.
  [[nodiscard]] bool has_address(const SocketAddr& a) const noexcept;
  /// first_address returns the host's first address of `family`, if any.
  [[nodiscard]] std::optional<SocketAddr> first_address(SocketAddr::Family family) const noexcept;

  std::string name_;
  Network* net_;
  SegmentImpl* segment_;
  std::vector<SocketAddr> addrs_;
  LinkImpl link_;
  env::SimEnv env_;
  PortTable<UdpSocket::Impl> udp;
  PortTable<TcpListener::Impl> listeners;
  std::unordered_map<ConnKey, std::shared_ptr<TcpStream::Impl>, ConnKeyHash> conns;
  std::unordered_map<std::uint16_t, int> conn_ports;  // local ports held by connections (counts)
};

/// MapKey names a NAT mapping: the protocol, the internal address:port and the part of the
/// destination that the mapping behaviour distinguishes (nothing, the address, or address:port).
struct MapKey {
  Proto proto;
  SocketAddr internal;
  SocketAddr dest;
  friend bool operator==(const MapKey&, const MapKey&) = default;
};
struct MapKeyHash {
  std::size_t operator()(const MapKey& k) const noexcept {
    std::size_t h = std::hash<SocketAddr>{}(k.internal);
    h ^= std::hash<SocketAddr>{}(k.dest) * 0x9e3779b97f4a7c15ULL;
    return h ^ static_cast<std::size_t>(k.proto);
  }
};

struct Mapping {
  MapKey key;
  std::uint16_t external = 0;
  TimePoint last_out{};
  std::unordered_set<SocketAddr> peers;     // address:port pairs sent to (address_and_port filter)
  std::unordered_set<SocketAddr> peer_ips;  // addresses sent to (address filter), by ip_key
  bool live = false;
};

struct RouterImpl final : Router {
  RouterImpl(Network::Impl& n, std::string nm, SegmentImpl& parent, SocketAddr pub, NatConfig c, LinkParams l);

  [[nodiscard]] const std::string& name() const noexcept override { return name_; }
  [[nodiscard]] SocketAddr public_address() const noexcept override { return public_; }
  [[nodiscard]] Segment& lan() noexcept override { return lan_; }
  LinkParams& link() noexcept override { return link_.params; }
  NatConfig& nat() noexcept override { return nat_; }
  void flush() override;
  [[nodiscard]] std::size_t mapping_count() const noexcept override;
  [[nodiscard]] const NatStats& stats() const noexcept override { return stats_; }

  [[nodiscard]] Duration timeout(Proto p) const noexcept {
    return p == Proto::udp ? nat_.udp_timeout : nat_.stream_timeout;
  }
  [[nodiscard]] bool expired(const Mapping& m) const noexcept;
  /// outbound finds or creates the mapping for a packet from `src` to `dst`, refreshes it and
  /// returns its external port; nullopt when the table is full.
  std::optional<std::uint16_t> outbound(Proto p, const SocketAddr& src, const SocketAddr& dst);
  /// inbound finds the live mapping of external port `port`, or null.
  Mapping* inbound(Proto p, std::uint16_t port);
  void remove(std::uint32_t index);
  std::size_t purge_expired();
  std::optional<std::uint16_t> allocate_port(Proto p, std::uint16_t internal_port);
  [[nodiscard]] bool port_taken(Proto p, std::uint16_t port) const;

  Network::Impl* net_;
  std::string name_;
  SegmentImpl* parent_;
  SocketAddr public_;
  SegmentImpl lan_;
  LinkImpl link_;
  NatConfig nat_;
  NatStats stats_;
  env::Rng rng_;
  std::vector<Mapping> maps_;
  std::vector<std::uint32_t> free_maps_;
  std::unordered_map<MapKey, std::uint32_t, MapKeyHash> by_key_;
  std::unordered_map<std::uint32_t, std::uint32_t> by_port_;  // (proto << 16 | port) -> mapping
  std::unordered_set<std::uint32_t> retired_;                 // ports given up by flush()
  std::uint16_t last_port_ = 0;
};

/// StreamPacket is a stream packet taken out of its flight at the destination host.
struct StreamPacket {
  SocketAddr src;
  SocketAddr dst;
  StreamKind kind;
  std::uint64_t seq;
  std::vector<std::byte> data;
  std::shared_ptr<TcpStream::Impl> sender;
  TimePoint sent_at;
};

}  // namespace moosicbox::p2p::simnet::detail

namespace moosicbox::p2p::simnet {

struct Network::Impl {
  explicit Impl(env::SimRuntime& r, Network& n);
  ~Impl();

  // ---- packets (network.cpp) ----
  std::uint32_t new_flight();
  void release(std::uint32_t f);
  std::vector<std::byte> take_buffer();
  void give_buffer(std::vector<std::byte>&& b);
  /// send_udp puts one datagram from `host` on its link.
  void send_udp(detail::HostImpl& host, const SocketAddr& src, const SocketAddr& dst, ByteView payload, env::Ecn ecn);
  /// send_stream puts one stream packet from `host` on its link; `sender` (reliable kinds) is told
  /// when the packet is dropped.
  void send_stream(detail::HostImpl& host, const SocketAddr& src, const SocketAddr& dst, detail::StreamKind kind,
                   std::uint64_t seq, ByteView payload, std::shared_ptr<TcpStream::Impl> sender);
  void cross(std::uint32_t f, detail::LinkImpl& link, detail::LinkDir& dir, detail::Hop hop, void* target);
  void arrive(std::uint32_t f);
  void route(detail::SegmentImpl& seg, std::uint32_t f);
  void router_out(detail::RouterImpl& r, std::uint32_t f);
  void router_in(detail::RouterImpl& r, std::uint32_t f);
  void hairpin(detail::RouterImpl& r, std::uint32_t f);
  void deliver(detail::HostImpl& h, std::uint32_t f);
  void drop(std::uint32_t f, std::uint64_t NetStats::*counter);
  [[nodiscard]] bool partitioned(const Host* a, const Host* b) const;
  void trace_delivery(const SocketAddr& src, const SocketAddr& dst, std::size_t size, std::uint64_t extra);

  // ---- sockets (sockets.cpp) ----
  void udp_arrive(UdpSocket::Impl& s, std::uint32_t f);
  void stream_arrive(detail::HostImpl& h, detail::StreamPacket p);
  void stream_dropped(std::shared_ptr<TcpStream::Impl> sender, std::uint64_t seq);

  env::SimRuntime* rt;
  Network* self;
  detail::SegmentImpl internet;
  std::vector<std::unique_ptr<detail::HostImpl>> hosts;
  std::vector<std::unique_ptr<detail::RouterImpl>> routers;
  std::map<std::string, detail::HostImpl*, std::less<>> host_by_name;
  std::map<std::string, detail::RouterImpl*, std::less<>> router_by_name;
  std::function<bool(const Packet&)> drop_filter;
  struct Partition {
    std::unordered_set<const Host*> a;
    std::unordered_set<const Host*> b;
  };
  std::vector<Partition> partitions;
  std::map<std::string, SocketAddr, std::less<>> names;
  NetStats stats;
  bool trace = true;
  std::vector<detail::Flight> flights;
  std::vector<std::uint32_t> free_flights;
  std::vector<std::vector<std::byte>> buffer_pool;
  // Sockets and streams may outlive the network (a coroutine frame destroyed with the runtime); they
  // hold a weak reference to this token and leave the network alone once it is gone.
  std::shared_ptr<Impl*> alive;
};

struct UdpSocket::Impl {
  struct Datagram {
    std::vector<std::byte> data;
    SocketAddr src;
    SocketAddr dst;
    env::Ecn ecn;
  };
  [[nodiscard]] bool net_alive() const noexcept { return !alive.expired(); }
  void wake(boost::system::error_code ec);
  void unbind() noexcept;

  env::SimRuntime* runtime = nullptr;
  Network::Impl* net = nullptr;
  std::weak_ptr<Network::Impl*> alive;
  detail::HostImpl* host = nullptr;
  SocketAddr local;
  bool open = false;
  std::deque<Datagram> queue;
  std::vector<env::SimRuntime::ParkId> waiters;
};

struct TcpListener::Impl {
  [[nodiscard]] bool net_alive() const noexcept { return !alive.expired(); }
  void unbind() noexcept;

  env::SimRuntime* runtime = nullptr;
  Network::Impl* net = nullptr;
  std::weak_ptr<Network::Impl*> alive;
  detail::HostImpl* host = nullptr;
  SocketAddr local;
  std::size_t backlog_max = 128;
  bool open = false;
  std::deque<std::shared_ptr<TcpStream::Impl>> backlog;
  std::vector<env::SimRuntime::ParkId> waiters;
};

struct TcpStream::Impl : std::enable_shared_from_this<TcpStream::Impl> {
  enum class State : std::uint8_t { syn_sent, established, refused, reset, closed };
  struct Seg {
    detail::StreamKind kind;
    std::vector<std::byte> data;
    std::optional<TimePoint> first_failure;
  };
  // A pending operation's handler is parked in the runtime (which owns it, so a coroutine waiting on
  // a stream it owns is freed with the runtime instead of leaking in a cycle); `n` carries the byte
  // count to the handler.
  struct PendingRead {
    env::SimRuntime::ParkId park;
    std::vector<asio::mutable_buffer> buffers;
    std::shared_ptr<std::size_t> n;
  };
  struct PendingWrite {
    env::SimRuntime::ParkId park;
    std::vector<asio::const_buffer> buffers;
    std::shared_ptr<std::size_t> n;
  };

  [[nodiscard]] bool net_alive() const noexcept { return !alive.expired(); }
  [[nodiscard]] env::SimRuntime& rt() const noexcept { return *runtime; }
  [[nodiscard]] Duration rto() const noexcept;
  [[nodiscard]] std::size_t window_free() const noexcept;
  [[nodiscard]] std::size_t rx_buffered() const noexcept { return rx.size() - rx_off + ooo_bytes; }

  void register_conn();
  void unregister_conn() noexcept;
  /// send_reliable queues a reliable packet (next sequence number) and sends it.
  void send_reliable(detail::StreamKind kind, ByteView data);
  void transmit(std::uint64_t seq);
  void on_dropped(std::uint64_t seq);
  void on_delivered(std::uint64_t seq);
  void on_packet(detail::StreamPacket& p);
  void apply(detail::StreamKind kind, std::vector<std::byte>& data);
  void do_reset(bool send_rst);
  void maybe_finish();
  void try_complete_read();
  void try_complete_write();
  void complete_read(boost::system::error_code ec, std::size_t n);
  void complete_write(boost::system::error_code ec, std::size_t n);
  void abort_ops();

  env::SimRuntime* runtime = nullptr;
  Network::Impl* net = nullptr;
  std::weak_ptr<Network::Impl*> alive;
  detail::HostImpl* host = nullptr;
  SocketAddr local;
  SocketAddr remote;
  State state = State::syn_sent;
  bool registered = false;
  bool app_closed = false;
  bool fin_sent = false;
  bool fin_acked = false;
  bool peer_fin = false;
  Duration rtt{};
  TimePoint syn_sent_at{};
  Duration reset_after = kResetAfterDefault;
  // Sending: every reliable packet has a sequence number; unacked holds those not delivered yet.
  std::uint64_t next_seq = 0;
  std::map<std::uint64_t, Seg> unacked;
  std::size_t unacked_bytes = 0;
  // Receiving: in-order bytes in rx from rx_off; packets ahead of rx_next wait in ooo.
  std::uint64_t rx_next = 0;
  std::map<std::uint64_t, std::pair<detail::StreamKind, std::vector<std::byte>>> ooo;
  std::size_t ooo_bytes = 0;
  std::vector<std::byte> rx;
  std::size_t rx_off = 0;
  std::weak_ptr<TcpStream::Impl> peer;  // the other end, for window updates (no ACK packets are modelled)
  std::optional<PendingRead> read;
  std::optional<PendingWrite> write;
  std::optional<env::SimRuntime::ParkId> connect_park;
};

}  // namespace moosicbox::p2p::simnet
