#define _GNU_SOURCE
#include "CServiceKit.h"
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdlib.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

int csystem_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int csystem_epoll_add(int epfd, int fd, uint32_t events, uint64_t data) {
    struct epoll_event event = {.events = events, .data = {.u64 = data}};
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &event);
}

int csystem_epoll_del(int epfd, int fd) {
    struct epoll_event event = {0};
    return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, &event);
}

int csystem_epoll_wait(int epfd, uint32_t *events, uint64_t *data, int capacity, int timeout_ms) {
    // epoll_event is packed on x86_64; copying out here keeps Swift away from that layout.
    struct epoll_event buffer[256];
    if (capacity > 256) capacity = 256;
    int count = epoll_wait(epfd, buffer, capacity, timeout_ms);
    for (int i = 0; i < count; i++) {
        events[i] = buffer[i].events;
        data[i] = buffer[i].data.u64;
    }
    return count;
}

int csystem_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

int csystem_accept(int fd, struct sockaddr *address, socklen_t *length) {
    return accept4(fd, address, length, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

#include <pthread.h>

struct csystem_thread_start_args {
    void (*body)(void *);
    void *context;
};

static void *csystem_thread_main(void *raw) {
    struct csystem_thread_start_args args = *(struct csystem_thread_start_args *)raw;
    free(raw);
    args.body(args.context);
    return NULL;
}

int csystem_thread_start(void (*body)(void *), void *context) {
    struct csystem_thread_start_args *args = malloc(sizeof *args);
    if (args == NULL) return ENOMEM;
    args->body = body;
    args->context = context;
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    pthread_t thread;
    int result = pthread_create(&thread, &attributes, csystem_thread_main, args);
    pthread_attr_destroy(&attributes);
    if (result != 0) free(args);
    return result;
}

static _Thread_local void *csystem_loop = NULL;
void *csystem_current_loop(void) { return csystem_loop; }
void csystem_set_current_loop(void *loop) { csystem_loop = loop; }

// Runs before main and before the Swift runtime or Dispatch open anything. A parent that starts
// the process with stdin, stdout or stderr closed would otherwise let the first descriptor the
// process opens (Dispatch's epoll, a listener, a client socket) take number 1, and log lines
// meant for stdout would go there. Each closed one is reopened on /dev/null.
__attribute__((constructor)) static void csystem_open_standard_streams(void) {
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
        int opened = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
        if (opened >= 0 && opened != fd) {
            dup2(opened, fd);
            close(opened);
        }
    }
}

void csystem_configure_heap(void) {
#if defined(__GLIBC__)
    // A fixed trim threshold: glibc otherwise raises it (up to 64 MiB) each time a large
    // mmapped block is freed, as the event loops' fd-indexed tables are when they grow, and
    // free memory at the top of a thread's heap stays resident below it, where malloc_trim
    // does not reach (it trims only the main arena's top). 1 MiB keeps free() from giving
    // pages back and taking them again on every small swing. Setting it also fixes the mmap
    // threshold at its default, so blocks of 128 KiB or more (large request bodies) are
    // always mmapped.
    mallopt(M_TRIM_THRESHOLD, 1024 * 1024);
#endif
}

int csystem_release_free_heap(void) {
#if defined(__GLIBC__)
    // glibc keeps freed memory inside its arenas; only malloc_trim returns free pages in the
    // middle of a heap (with madvise), not just at its top.
    return malloc_trim(0);
#else
    return 0;
#endif
}
