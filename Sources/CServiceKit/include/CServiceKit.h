#ifndef CSYSTEM_H
#define CSYSTEM_H

// Linux calls and constants that Swift's Glibc and Musl modules do not import: epoll and
// eventfd live in headers outside those module maps, accept4 needs _GNU_SOURCE, and EPOLLET is
// a macro Swift cannot evaluate. Everything else comes from Platform.swift.

#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

static const uint32_t csystem_EPOLLIN = EPOLLIN;
static const uint32_t csystem_EPOLLOUT = EPOLLOUT;
static const uint32_t csystem_EPOLLERR = EPOLLERR;
static const uint32_t csystem_EPOLLHUP = EPOLLHUP;
static const uint32_t csystem_EPOLLRDHUP = EPOLLRDHUP;
static const uint32_t csystem_EPOLLET = EPOLLET;

int csystem_epoll_create(void);
int csystem_epoll_add(int epfd, int fd, uint32_t events, uint64_t data);
int csystem_epoll_del(int epfd, int fd);
/// Waits for events; writes up to `capacity` (events, data) pairs. Returns the count or -1.
int csystem_epoll_wait(int epfd, uint32_t *events, uint64_t *data, int capacity, int timeout_ms);

int csystem_eventfd(void);
/// accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC: one syscall instead of accept plus two fcntl.
int csystem_accept(int fd, struct sockaddr *address, socklen_t *length);

/// Starts a detached thread running `body(context)`. Returns 0 or an errno value.
int csystem_thread_start(void (*body)(void *), void *context);
/// A per-thread pointer: the event loop the calling thread runs, or NULL.
void *csystem_current_loop(void);
void csystem_set_current_loop(void *loop);

/// Sets the C library allocator up so that freed memory can be given back (glibc: a fixed
/// trim threshold; nothing where the allocator needs no setting, such as musl's). Idempotent.
void csystem_configure_heap(void);

/// Gives free heap pages back to the system (glibc's malloc_trim; a no-op returning 0 where
/// the C library's allocator does that by itself, such as musl's). Returns 1 if any were.
int csystem_release_free_heap(void);

#endif
