// SPDX-License-Identifier: MIT
//
// Boost.Interprocess message_queue for ipc-bench: the peer a C++ user picks
// for messages between processes on one host. A thin shim so that the
// benchmark's C producer and consumer loops drive it like every other
// transport; each call is one message_queue send or receive.
#include "boost_mq.h"

#include <boost/interprocess/ipc/message_queue.hpp>
#include <cstdio>
#include <new>

namespace bip = boost::interprocess;

struct bench_boost_mq {
	bip::message_queue mq;
	explicit bench_boost_mq(const char *name) : mq(bip::open_only, name)
	{
	}
};

extern "C" int bench_boost_create(const char *name, size_t maxmsg,
				  size_t msgsize, char *note, size_t cap)
{
	try {
		bip::message_queue::remove(name);
		bip::message_queue mq(bip::create_only, name, maxmsg, msgsize);
		return 0;
	} catch (const std::exception &e) {
		std::snprintf(note, cap, "boost: %s", e.what());
		return -1;
	}
}

extern "C" struct bench_boost_mq *bench_boost_open(const char *name)
{
	try {
		return new bench_boost_mq(name);
	} catch (...) {
		return nullptr;
	}
}

extern "C" int bench_boost_send(struct bench_boost_mq *q, const void *buf,
				size_t len)
{
	try {
		q->mq.send(buf, len, 0);
		return 0;
	} catch (...) {
		return -1;
	}
}

extern "C" long bench_boost_recv(struct bench_boost_mq *q, void *buf,
				 size_t cap)
{
	try {
		bip::message_queue::size_type got = 0;
		unsigned prio = 0;
		q->mq.receive(buf, cap, got, prio);
		return static_cast<long>(got);
	} catch (...) {
		return -1;
	}
}

extern "C" void bench_boost_close(struct bench_boost_mq *q)
{
	delete q;
}

extern "C" void bench_boost_remove(const char *name)
{
	bip::message_queue::remove(name);
}
