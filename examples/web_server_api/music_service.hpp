// SPDX-License-Identifier: MIT OR Apache-2.0
// music_service.hpp: MusicService, the example's P2PService: a small music library whose tracks
// are WAV files generated on disk, served with GET /tracks, GET /tracks/:id, GET /tracks/:id/stream
// (Range requests), POST /play and GET /now-playing.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "moosicbox/p2p/router/router.hpp"

namespace p2p = moosicbox::p2p;

namespace music {

/// Track is one track of the library.
struct Track {
  std::string id;
  std::string title;
  std::string artist;
  std::uint32_t seconds = 0;
  std::filesystem::path file;
  std::uint64_t size = 0;
  std::uint64_t checksum = 0;  ///< fnv1a64 of the file
};

/// fnv1a64 folds `bytes` into a running FNV-1a hash (start with kFnvOffset).
inline constexpr std::uint64_t kFnvOffset = 0xcbf29ce484222325ULL;
std::uint64_t fnv1a64(std::uint64_t hash, p2p::ByteView bytes) noexcept;

/// MusicService serves a library of generated tracks.
class MusicService {
 public:
  /// create writes the library's WAV files (a few MiB each) into `dir`.
  /// Errors: invalid_configuration when a file cannot be written.
  static p2p::P2PResult<MusicService> create(const std::filesystem::path& dir);

  /// register_routes adds the service's routes.
  p2p::P2PResult<void> register_routes(p2p::P2PRouter& router);

  /// tracks returns the library.
  [[nodiscard]] const std::vector<Track>& tracks() const noexcept { return tracks_; }

 private:
  [[nodiscard]] const Track* find(std::string_view id) const;
  std::vector<Track> tracks_;
  std::optional<std::string> playing_;
};

}  // namespace music
