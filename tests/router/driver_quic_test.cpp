// SPDX-License-Identifier: MIT OR Apache-2.0
// driver_quic_test.cpp: the router driver suite on the QUIC backend over loopback, directly and
// through a relay (real sockets on 127.0.0.1 only, every run bounded in time).
#include "router/driver_suite.hpp"
#include "router/support/quic_backend.hpp"

namespace moosicbox::p2p::testing {

INSTANTIATE_TYPED_TEST_SUITE_P(Quic, RouterDriverSuite, ::testing::Types<QuicBackend>);
INSTANTIATE_TYPED_TEST_SUITE_P(Relay, RouterDriverSuite, ::testing::Types<RelayBackend>);

}  // namespace moosicbox::p2p::testing
