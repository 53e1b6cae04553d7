// SPDX-License-Identifier: MIT OR Apache-2.0
// driver_simnet_test.cpp: the router driver suite on the real QUIC backend on the simulated packet
// network (clients behind NATs), in virtual time.
#include "router/driver_suite.hpp"
#include "router/support/simnet_backend.hpp"

namespace moosicbox::p2p::testing {

INSTANTIATE_TYPED_TEST_SUITE_P(Simnet, RouterDriverSuite, ::testing::Types<SimnetBackend>);

}  // namespace moosicbox::p2p::testing
