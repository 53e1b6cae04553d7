// SPDX-License-Identifier: MIT OR Apache-2.0
// pch.hpp: the heavy headers most translation units include, precompiled once.
#pragma once
#include <fmt/format.h>
#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <expected>
#include <functional>
#include <memory>
#include <string>
#include <vector>
