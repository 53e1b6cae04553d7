// driver_sim_test.cpp: the router driver suite on the simulator backend (SimulatorP2P streams).
#include "router/driver_suite.hpp"
#include "router/support/sim_backend.hpp"

namespace p2p::testing {

INSTANTIATE_TYPED_TEST_SUITE_P(Sim, RouterDriverSuite, ::testing::Types<SimBackend>);

}  // namespace p2p::testing
