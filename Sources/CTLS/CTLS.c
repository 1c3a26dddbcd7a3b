#include "CTLS.h"

#include <errno.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

/// Describes the first error on OpenSSL's queue (or `fallback`), then clears the queue so no
/// stale error is blamed on a later call.
static void describe(const char *fallback, char *error, size_t error_size) {
    unsigned long code = ERR_get_error();
    if (error && error_size > 0) {
        if (code != 0) {
            char reason[256];
            ERR_error_string_n(code, reason, sizeof reason);
            snprintf(error, error_size, "%s: %s", fallback, reason);
        } else {
            snprintf(error, error_size, "%s", fallback);
        }
    }
    ERR_clear_error();
}

static int select_http11(SSL *ssl, const unsigned char **out, unsigned char *out_length, const unsigned char *in,
                         unsigned int in_length, void *arg) {
    (void)ssl;
    (void)arg;
    static const unsigned char http11[] = "\x08http/1.1";
    unsigned char *selected = NULL;
    if (SSL_select_next_proto(&selected, out_length, http11, sizeof http11 - 1, in, in_length) ==
        OPENSSL_NPN_NEGOTIATED) {
        *out = selected;
        return SSL_TLSEXT_ERR_OK;
    }
    // A client that offers only other protocols (h2) gets no ALPN answer rather than a failed
    // handshake; it will speak HTTP/1.1 or give up.
    return SSL_TLSEXT_ERR_NOACK;
}

static void common_settings(SSL_CTX *context) {
    SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
    // A peer that closes without close_notify ends the stream like one that sends it (HTTP/1.1
    // frames its own messages, so a truncation is seen there).
    SSL_CTX_set_options(context, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    // Partial writes and a buffer that may move between retries (a Swift array), and the
    // session's buffers freed while idle (they are about 34 KiB per connection otherwise).
    SSL_CTX_set_mode(context, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                  SSL_MODE_RELEASE_BUFFERS);
}

ctls_context *ctls_server_context(const char *certificate_file, const char *key_file, char *error, size_t error_size) {
    ERR_clear_error();
    SSL_CTX *context = SSL_CTX_new(TLS_server_method());
    if (!context) {
        describe("cannot create a TLS context", error, error_size);
        return NULL;
    }
    common_settings(context);
    SSL_CTX_set_session_cache_mode(context, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_alpn_select_cb(context, select_http11, NULL);
    if (SSL_CTX_use_certificate_chain_file(context, certificate_file) != 1) {
        describe("cannot load the certificate", error, error_size);
        SSL_CTX_free(context);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(context, key_file, SSL_FILETYPE_PEM) != 1) {
        if (ERR_GET_REASON(ERR_peek_error()) == X509_R_KEY_VALUES_MISMATCH) {
            ERR_clear_error();
            describe("the private key does not match the certificate", error, error_size);
        } else {
            describe("cannot load the private key", error, error_size);
        }
        SSL_CTX_free(context);
        return NULL;
    }
    if (SSL_CTX_check_private_key(context) != 1) {
        ERR_clear_error();
        describe("the private key does not match the certificate", error, error_size);
        SSL_CTX_free(context);
        return NULL;
    }
    return context;
}

ctls_context *ctls_client_context(const char *ca_file, char *error, size_t error_size) {
    ERR_clear_error();
    SSL_CTX *context = SSL_CTX_new(TLS_client_method());
    if (!context) {
        describe("cannot create a TLS context", error, error_size);
        return NULL;
    }
    common_settings(context);
    static const unsigned char http11[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(context, http11, sizeof http11 - 1);
    if (ca_file) {
        if (SSL_CTX_load_verify_locations(context, ca_file, NULL) != 1) {
            describe("cannot load the CA certificate", error, error_size);
            SSL_CTX_free(context);
            return NULL;
        }
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, NULL);
        // A certificate in `ca_file` is trusted as it is: the server's own leaf certificate
        // (its chain file) is enough, with no need for the root that issued it.
        X509_STORE_set_flags(SSL_CTX_get_cert_store(context), X509_V_FLAG_PARTIAL_CHAIN);
    } else {
        SSL_CTX_set_verify(context, SSL_VERIFY_NONE, NULL);
    }
    return context;
}

void ctls_context_free(ctls_context *context) { SSL_CTX_free(context); }

ctls_session *ctls_session_new(ctls_context *context, int fd, int server) {
    SSL *ssl = SSL_new(context);
    if (!ssl) {
        ERR_clear_error();
        return NULL;
    }
    if (SSL_set_fd(ssl, fd) != 1) {
        ERR_clear_error();
        SSL_free(ssl);
        return NULL;
    }
    if (server) {
        SSL_set_accept_state(ssl);
    } else {
        SSL_set_connect_state(ssl);
    }
    return ssl;
}

void ctls_session_free(ctls_session *session) { SSL_free(session); }

/// Maps SSL_get_error for a call that returned `result`.
static int outcome(SSL *ssl, int result) {
    int code = SSL_get_error(ssl, result);
    switch (code) {
    case SSL_ERROR_WANT_READ:
        return CTLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return CTLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        return CTLS_CLOSED;
    case SSL_ERROR_SYSCALL:
        // EOF without close_notify, or a reset: the connection is over either way.
        ERR_clear_error();
        return errno == 0 || errno == ECONNRESET || errno == EPIPE ? CTLS_CLOSED : CTLS_ERROR;
    default:
        return CTLS_ERROR;
    }
}

int ctls_handshake(ctls_session *session, char *error, size_t error_size) {
    ERR_clear_error();
    errno = 0;
    int result = SSL_do_handshake(session);
    if (result == 1) return CTLS_OK;
    int code = outcome(session, result);
    if (code == CTLS_ERROR && ERR_GET_REASON(ERR_peek_error()) == SSL_R_HTTP_REQUEST) {
        ERR_clear_error();
        return CTLS_PLAINTEXT_HTTP;
    }
    if (code == CTLS_ERROR || code == CTLS_CLOSED) {
        describe(code == CTLS_CLOSED ? "the client closed the connection during the handshake" : "handshake failed",
                 error, error_size);
    }
    return code;
}

ssize_t ctls_read(ctls_session *session, void *buffer, size_t count) {
    ERR_clear_error();
    errno = 0;
    size_t read = 0;
    if (SSL_read_ex(session, buffer, count, &read) == 1) return (ssize_t)read;
    int code = outcome(session, 0);
    if (code == CTLS_ERROR) ERR_clear_error();
    return code;
}

ssize_t ctls_write(ctls_session *session, const void *buffer, size_t count) {
    ERR_clear_error();
    errno = 0;
    size_t written = 0;
    if (SSL_write_ex(session, buffer, count, &written) == 1) return (ssize_t)written;
    int code = outcome(session, 0);
    if (code == CTLS_ERROR || code == CTLS_CLOSED) {
        ERR_clear_error();
        return CTLS_ERROR;
    }
    return code;
}

int ctls_has_pending(ctls_session *session) { return SSL_has_pending(session); }

void ctls_shutdown(ctls_session *session) {
    // Only after a completed handshake; one call sends our close_notify and does not wait.
    if (SSL_is_init_finished(session)) SSL_shutdown(session);
    ERR_clear_error();
}

const char *ctls_version(ctls_session *session) { return SSL_get_version(session); }

void ctls_alpn(ctls_session *session, char *out, size_t out_size) {
    const unsigned char *data = NULL;
    unsigned int length = 0;
    SSL_get0_alpn_selected(session, &data, &length);
    if (out_size == 0) return;
    size_t n = length < out_size - 1 ? length : out_size - 1;
    if (data && n) memcpy(out, data, n);
    out[n] = 0;
}

const char *ctls_library_version(void) { return OpenSSL_version(OPENSSL_VERSION); }

void ctls_context_limit_to_tls11(ctls_context *context) {
    SSL_CTX_set_min_proto_version(context, TLS1_VERSION);
    SSL_CTX_set_max_proto_version(context, TLS1_1_VERSION);
    // OpenSSL 3 refuses TLS 1.1 at its default security level on its own side too.
    SSL_CTX_set_security_level(context, 0);
}

void ctls_peer_subject(ctls_session *session, char *out, size_t out_size) {
    if (out_size == 0) return;
    out[0] = 0;
    X509 *peer = SSL_get1_peer_certificate(session);
    if (!peer) return;
    X509_NAME_oneline(X509_get_subject_name(peer), out, (int)out_size);
    X509_free(peer);
}
