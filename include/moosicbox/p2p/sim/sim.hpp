// SPDX-License-Identifier: MIT OR Apache-2.0
// sim.hpp: everything of the simulator backend in one include: World, NetworkGraph, SimulatorP2P and
// its connections, listeners and streams.
// Layer: sim. See world.hpp for the threading rule.
#pragma once

#include "moosicbox/p2p/sim/network_graph.hpp"
#include "moosicbox/p2p/sim/simulator.hpp"
#include "moosicbox/p2p/sim/world.hpp"
