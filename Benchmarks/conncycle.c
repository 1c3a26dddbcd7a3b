/*
 * conncycle: opens and closes many short HTTP/1.1 connections, as fast as it can, for
 * Benchmarks/memory-check.py (phase b: a per-connection leak shows up as RSS growth).
 *
 *     cc -O2 -pthread -o conncycle Benchmarks/conncycle.c
 *     conncycle PORT CYCLES [THREADS] [FIRST]
 *
 * Every cycle is: connect to 127.0.0.1:PORT, send one `GET /health HTTP/1.1`, read the whole
 * response (status line, headers, Content-Length body), close. Cycle number i (counted from
 * FIRST, so a run split into chunks keeps the rotation) ends its connection one of three
 * ways, so that each of the server's teardown paths runs a third of the time:
 *
 *   i % 3 == 0  "Connection: close": the server closes first; the client reads to EOF, then
 *               closes with SO_LINGER 0. The server's fd is already closed by then, so the
 *               server sees a normal close; the RST only frees the kernel state of both ends
 *               (the client's CLOSE_WAIT socket, the server's orphaned FIN_WAIT2 one) instead
 *               of leaving the server side in TIME_WAIT.
 *   i % 3 == 1  keep-alive: the client closes first with a FIN after reading the response; the
 *               server reads EOF on an idle connection and closes.
 *   i % 3 == 2  keep-alive: the client closes first with SO_LINGER 0, i.e. a RST; the server
 *               gets ECONNRESET (or EOF) on an idle connection: the abortive path.
 *
 * TIME_WAIT and ephemeral ports: case 1 leaves a client-side TIME_WAIT socket behind, which
 * pins its 4-tuple for 60 s (cases 0 and 2 end with a RST and leave none; SO_LINGER 0 on
 * every close would avoid it too, but then the server would never see a peer's FIN on an
 * idle connection, a path worth covering). With one source address, 100,000 cycles in well
 * under a minute (a third of them in TIME_WAIT) can need more 4-tuples than the ~28,000 ephemeral
 * ports of the default range, and connect() would fail with EADDRNOTAVAIL (unless
 * net.ipv4.tcp_tw_reuse happens to allow reuse, which is a sysctl we do not want to depend on
 * or change). So each cycle binds its source address to one of 127.0.0.2 .. 127.0.0.254 in
 * turn, with IP_BIND_ADDRESS_NO_PORT so that the kernel still picks the port at connect()
 * time by the full 4-tuple: 253 addresses x ~28,000 ports is ~7 million 4-tuples, far more
 * than any run uses. The whole of 127.0.0.0/8 is routed to `lo` on Linux by default, so
 * this needs no root, no sysctl and no set-up on a fresh machine.
 *
 * Prints one JSON line: {"cycles":N,"ok":N,"errors":N,"seconds":S,"first_error":"..."}; exits
 * 0 when every cycle got a complete 200 response, 1 otherwise, 2 on bad arguments.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

static const char REQUEST_CLOSE[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
static const char REQUEST_KEEP[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

static int port;
static long first, total;
static atomic_long next_cycle;
static atomic_long ok_count, error_count;
static pthread_mutex_t error_lock = PTHREAD_MUTEX_INITIALIZER;
static char first_error[256];

static void record_error(long cycle, const char *what, int err) {
    atomic_fetch_add(&error_count, 1);
    pthread_mutex_lock(&error_lock);
    if (first_error[0] == 0)
        snprintf(first_error, sizeof first_error, "cycle %ld: %s%s%s", cycle, what, err ? ": " : "",
                 err ? strerror(err) : "");
    pthread_mutex_unlock(&error_lock);
}

/* Finds the end of the header section and the Content-Length; returns the header length or 0. */
static size_t header_end(const char *buf, size_t len, long *content_length) {
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (!end) return 0;
    *content_length = -1;
    for (const char *line = buf; line < end;) {
        const char *eol = memmem(line, (size_t)(end - line) + 2, "\r\n", 2);
        if (!eol) break;
        if ((size_t)(eol - line) > 15 && strncasecmp(line, "content-length:", 15) == 0)
            *content_length = strtol(line + 15, NULL, 10);
        line = eol + 2;
    }
    return (size_t)(end - buf) + 4;
}

static void one_cycle(long i) {
    int kind = (int)(i % 3);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) { record_error(i, "socket", errno); return; }
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    struct sockaddr_in src = {.sin_family = AF_INET, .sin_port = 0};
    src.sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)(2 + i % 253)); /* 127.0.0.2 .. .254 */
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) { record_error(i, "bind", errno); close(fd); return; }
    if (connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0) { record_error(i, "connect", errno); close(fd); return; }

    const char *req = kind == 0 ? REQUEST_CLOSE : REQUEST_KEEP;
    size_t req_len = kind == 0 ? sizeof REQUEST_CLOSE - 1 : sizeof REQUEST_KEEP - 1;
    if (send(fd, req, req_len, MSG_NOSIGNAL) != (ssize_t)req_len) {
        record_error(i, "send", errno);
        close(fd);
        return;
    }

    char buf[4096];
    size_t have = 0, head = 0;
    long content_length = -1;
    int complete = 0, eof = 0;
    while (!eof && !(complete && kind != 0)) {
        if (have == sizeof buf) { record_error(i, "response larger than 4 KiB", 0); close(fd); return; }
        ssize_t n = recv(fd, buf + have, sizeof buf - have, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) { record_error(i, "recv", errno); close(fd); return; }
        if (n == 0) { eof = 1; break; }
        have += (size_t)n;
        if (!head) head = header_end(buf, have, &content_length);
        if (head && content_length >= 0 && have >= head + (size_t)content_length) complete = 1;
    }
    if (!complete) {
        record_error(i, eof ? "connection closed before a complete response" : "incomplete response", 0);
    } else if (have < 12 || memcmp(buf, "HTTP/1.1 200", 12) != 0) {
        record_error(i, "status is not 200", 0);
    } else {
        atomic_fetch_add(&ok_count, 1);
    }
    if (kind == 2 || kind == 0) {
        /* Case 0: the server's FIN has arrived and its fd is closed, so the RST only frees
         * kernel state on both ends (no TIME_WAIT). Case 2: the abortive close. */
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    close(fd);
}

static void *worker(void *arg) {
    (void)arg;
    for (;;) {
        long i = atomic_fetch_add(&next_cycle, 1);
        if (i >= first + total) return NULL;
        one_cycle(i);
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s PORT CYCLES [THREADS] [FIRST]\n", argv[0]);
        return 2;
    }
    port = atoi(argv[1]);
    total = atol(argv[2]);
    int threads = argc > 3 ? atoi(argv[3]) : 8;
    first = argc > 4 ? atol(argv[4]) : 0;
    if (port <= 0 || port > 65535 || total < 0 || threads <= 0 || threads > 1024 || first < 0) {
        fprintf(stderr, "conncycle: bad arguments\n");
        return 2;
    }
    atomic_store(&next_cycle, first);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_t *ids = calloc((size_t)threads, sizeof *ids);
    for (int t = 0; t < threads; t++) {
        if (pthread_create(&ids[t], NULL, worker, NULL) != 0) { perror("pthread_create"); return 2; }
    }
    for (int t = 0; t < threads; t++) pthread_join(ids[t], NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;

    long ok = atomic_load(&ok_count), errors = atomic_load(&error_count);
    printf("{\"cycles\":%ld,\"ok\":%ld,\"errors\":%ld,\"seconds\":%.3f,\"first_error\":\"", total, ok, errors, seconds);
    for (const char *p = first_error; *p; p++) putchar(*p == '"' || *p == '\\' ? '\'' : *p);
    printf("\"}\n");
    return errors == 0 && ok == total ? 0 : 1;
}
