// SPDX-License-Identifier: MIT OR Apache-2.0
// music_service.cpp: the library, its generated WAV files and its routes. Files are read in 64 KiB
// pieces as the client's flow control allows, so a stream never holds a whole track in memory.
#include "music_service.hpp"

#include <cmath>
#include <fstream>
#include <numbers>

#include <fmt/format.h>
#include <boost/json.hpp>

namespace music {

using namespace moosicbox::p2p::router;  // NOLINT(google-build-using-namespace): the example reads like a web API

std::uint64_t fnv1a64(std::uint64_t hash, moosicbox::p2p::ByteView bytes) noexcept {
  for (const auto b : bytes) {
    hash ^= std::to_integer<std::uint8_t>(b);
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

namespace {
constexpr std::uint32_t kSampleRate = 44100;

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xffu));
}
void put_u16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>(v & 0xffu));
  out.push_back(static_cast<char>(v >> 8));
}

// write_wav writes a mono 16-bit tone of `seconds` at `hz` and returns its size and checksum.
moosicbox::p2p::P2PResult<std::pair<std::uint64_t, std::uint64_t>> write_wav(const std::filesystem::path& path,
                                                                             std::uint32_t seconds, double hz) {
  const std::uint32_t data_bytes = seconds * kSampleRate * 2;
  std::string header;
  header += "RIFF";
  put_u32(header, 36 + data_bytes);
  header += "WAVEfmt ";
  put_u32(header, 16);
  put_u16(header, 1);  // PCM
  put_u16(header, 1);  // mono
  put_u32(header, kSampleRate);
  put_u32(header, kSampleRate * 2);
  put_u16(header, 2);
  put_u16(header, 16);
  header += "data";
  put_u32(header, data_bytes);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out)
    return moosicbox::p2p::fail(
        moosicbox::p2p::P2PError::invalid_configuration(fmt::format("cannot write {}", path.string())));
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  std::uint64_t checksum = fnv1a64(kFnvOffset, moosicbox::p2p::as_bytes(header));
  std::string block;
  const std::uint32_t samples = seconds * kSampleRate;
  for (std::uint32_t i = 0; i < samples; ++i) {
    const double t = static_cast<double>(i) / kSampleRate;
    const auto v = static_cast<std::int16_t>(std::lround(8000.0 * std::sin(2.0 * std::numbers::pi * hz * t)));
    put_u16(block, static_cast<std::uint16_t>(v));
    if (block.size() >= 65536 || i + 1 == samples) {
      out.write(block.data(), static_cast<std::streamsize>(block.size()));
      checksum = fnv1a64(checksum, moosicbox::p2p::as_bytes(block));
      block.clear();
    }
  }
  if (!out)
    return moosicbox::p2p::fail(
        moosicbox::p2p::P2PError::invalid_configuration(fmt::format("cannot write {}", path.string())));
  return std::pair<std::uint64_t, std::uint64_t>{header.size() + data_bytes, checksum};
}

// stream_file writes `length` bytes of `path` from `offset`. A plain coroutine function, so its
// arguments live in its own frame.
moosicbox::p2p::asio::awaitable<moosicbox::p2p::P2PResult<void>> stream_file(std::filesystem::path path,
                                                                             std::uint64_t offset, std::uint64_t length,
                                                                             BodyWriter& writer) {
  std::ifstream in(path, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(offset));
  if (!in)
    co_return moosicbox::p2p::fail(moosicbox::p2p::P2PError::network(fmt::format("cannot read {}", path.string())));
  moosicbox::p2p::Bytes buf(64 * 1024);
  while (length > 0) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), length));
    in.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(n));
    if (static_cast<std::size_t>(in.gcount()) != n) {
      co_return moosicbox::p2p::fail(moosicbox::p2p::P2PError::network(fmt::format("short read in {}", path.string())));
    }
    if (auto w = co_await writer.write(moosicbox::p2p::ByteView(buf).first(n)); !w) co_return w;
    length -= n;
  }
  co_return moosicbox::p2p::P2PResult<void>{};
}

boost::json::object track_json(const Track& t) {
  return {{"id", t.id},           {"title", t.title}, {"artist", t.artist},
          {"seconds", t.seconds}, {"size", t.size},   {"checksum", fmt::format("{:016x}", t.checksum)}};
}
}  // namespace

moosicbox::p2p::P2PResult<MusicService> MusicService::create(const std::filesystem::path& dir) {
  struct Spec {
    const char* title;
    const char* artist;
    std::uint32_t seconds;
    double hz;
  };
  const Spec specs[] = {{"A Four Forty", "The Tuning Forks", 24, 440.0},
                        {"Middle C", "Keys & Co", 30, 261.63},
                        {"Low E", "Bass Section", 40, 82.41}};
  MusicService svc;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  int n = 0;
  for (const auto& s : specs) {
    Track t;
    t.id = std::to_string(++n);
    t.title = s.title;
    t.artist = s.artist;
    t.seconds = s.seconds;
    t.file = dir / fmt::format("track-{}.wav", t.id);
    auto written = write_wav(t.file, s.seconds, s.hz);
    if (!written) return moosicbox::p2p::fail(std::move(written.error()));
    t.size = written->first;
    t.checksum = written->second;
    svc.tracks_.push_back(std::move(t));
  }
  return svc;
}

const Track* MusicService::find(std::string_view id) const {
  for (const auto& t : tracks_) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

moosicbox::p2p::P2PResult<void> MusicService::register_routes(moosicbox::p2p::P2PRouter& router) {
  if (auto r = router.get("/tracks",
                          [this](const P2PRequest&) {
                            boost::json::array list;
                            for (const auto& t : tracks_) list.push_back(track_json(t));
                            return P2PResponse::json(StatusCode::ok, boost::json::serialize(list));
                          });
      !r) {
    return r;
  }
  if (auto r = router.get("/tracks/:id",
                          [this](const P2PRequest& req) {
                            const Track* t = find(*req.param("id"));
                            if (t == nullptr) return P2PResponse::error(StatusCode::not_found, "no such track");
                            return P2PResponse::json(StatusCode::ok, boost::json::serialize(track_json(*t)));
                          });
      !r) {
    return r;
  }
  if (auto r = router.get("/tracks/:id/stream",
                          [this](const P2PRequest& req) {
                            const Track* t = find(*req.param("id"));
                            if (t == nullptr) return P2PResponse::error(StatusCode::not_found, "no such track");
                            return range_response(
                                req, t->size,
                                [path = t->file](std::uint64_t off, std::uint64_t len, BodyWriter& w) {
                                  return stream_file(path, off, len, w);
                                },
                                "audio/wav");
                          });
      !r) {
    return r;
  }
  if (auto r = router.post(
          "/play",
          [this](P2PRequest req) -> moosicbox::p2p::asio::awaitable<P2PResponse> {
            auto body = co_await req.body.read_text(4096);
            if (!body) co_return P2PResponse::error(StatusCode::bad_request, body.error().message());
            boost::system::error_code ec;
            const auto value = boost::json::parse(*body, ec);
            const auto* obj = value.if_object();
            const auto* track = obj != nullptr ? obj->if_contains("track") : nullptr;
            if (ec || track == nullptr || !track->is_string()) {
              co_return P2PResponse::error(StatusCode::bad_request, R"(expected {"track": "<id>"})");
            }
            const std::string id(track->as_string());
            if (find(id) == nullptr) co_return P2PResponse::error(StatusCode::not_found, "no such track");
            playing_ = id;
            co_return P2PResponse::json(StatusCode::ok, boost::json::serialize(boost::json::object{{"playing", id}}));
          });
      !r) {
    return r;
  }
  return router.get("/now-playing", [this](const P2PRequest&) {
    if (!playing_) return P2PResponse(StatusCode::no_content);
    return P2PResponse::json(StatusCode::ok, boost::json::serialize(boost::json::object{{"playing", *playing_}}));
  });
}

}  // namespace music
