// A small C face over OpenSSL (libssl-dev) for ServiceKit's TLS: the calls it needs, with the
// macros Swift cannot import turned into functions, and results reduced to a few codes.
#ifndef CTLS_H
#define CTLS_H

#include <stddef.h>
#include <sys/types.h>

typedef struct ssl_ctx_st ctls_context;
typedef struct ssl_st ctls_session;

enum {
    CTLS_OK = 1,
    /// Nothing more can be done until the socket is readable.
    CTLS_WANT_READ = -1,
    /// Nothing more can be done until the socket is writable.
    CTLS_WANT_WRITE = -2,
    /// The peer closed the TLS session (close_notify) or the connection.
    CTLS_CLOSED = 0,
    /// A protocol or system error; ctls_error describes it.
    CTLS_ERROR = -3,
    /// The handshake found a plaintext HTTP request instead of a TLS client hello.
    CTLS_PLAINTEXT_HTTP = -4,
};

/// A server context: TLS 1.2 minimum, OpenSSL's default ciphers, no renegotiation, ALPN
/// `http/1.1`, the certificate chain and key from PEM files, checked against each other.
/// NULL on failure, with the reason in `error`.
ctls_context *ctls_server_context(const char *certificate_file, const char *key_file, char *error, size_t error_size);

/// A client context for probing a server of ours: TLS 1.2 minimum; when `ca_file` is given the
/// server's certificate must chain to it, otherwise it is not verified.
ctls_context *ctls_client_context(const char *ca_file, char *error, size_t error_size);

void ctls_context_free(ctls_context *context);

/// A session on a connected, non-blocking socket, as the server (accept) or the client.
ctls_session *ctls_session_new(ctls_context *context, int fd, int server);
void ctls_session_free(ctls_session *session);

/// Continues the handshake: CTLS_OK when done, CTLS_WANT_*, CTLS_CLOSED or CTLS_ERROR.
int ctls_handshake(ctls_session *session, char *error, size_t error_size);

/// Reads decrypted bytes: a count > 0, or CTLS_CLOSED, CTLS_WANT_*, CTLS_ERROR.
ssize_t ctls_read(ctls_session *session, void *buffer, size_t count);

/// Writes: a count > 0 (possibly partial), or CTLS_WANT_*, CTLS_ERROR.
ssize_t ctls_write(ctls_session *session, const void *buffer, size_t count);

/// Whether the session holds bytes (decrypted or not) that a read would return without the
/// socket becoming readable.
int ctls_has_pending(ctls_session *session);

/// Sends close_notify, without waiting for the peer's.
void ctls_shutdown(ctls_session *session);

/// The negotiated protocol version as text ("TLSv1.3"), and the ALPN protocol or "".
const char *ctls_version(ctls_session *session);
void ctls_alpn(ctls_session *session, char *out, size_t out_size);

/// Caps a context at TLS 1.1 (tests: a client the server must refuse).
void ctls_context_limit_to_tls11(ctls_context *context);

/// The subject of the peer's certificate, one line ("CN=…"), or "" without one.
void ctls_peer_subject(ctls_session *session, char *out, size_t out_size);

/// The OpenSSL version this binary links.
const char *ctls_library_version(void);

#endif
