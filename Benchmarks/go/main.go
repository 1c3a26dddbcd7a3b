// Command benchref is the reference server for Benchmarks/run.sh: the smallest idiomatic
// Go net/http equivalent of the Swift service's GET /health, including (by default) one JSON
// access-log line per request written straight to stdout, so the two are compared like for like.
// On SIGTERM or SIGINT it drains with http.Server.Shutdown, as the seed article's Go example
// does, so the shutdown drill can run against it too.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
)

var healthBody = []byte(`{"status":"ok"}`)

// accessEntry mirrors the fields of the Swift service's access-log line.
type accessEntry struct {
	Time       string  `json:"time"`
	Level      string  `json:"level"`
	Msg        string  `json:"msg"`
	Logger     string  `json:"logger"`
	Bytes      int     `json:"bytes"`
	DurationMS float64 `json:"duration_ms"`
	Method     string  `json:"method"`
	Path       string  `json:"path"`
	Remote     string  `json:"remote"`
	RequestID  string  `json:"request_id"`
	Status     int     `json:"status"`
	UserAgent  string  `json:"user_agent"`
}

// jsonLog writes one JSON object per line to stdout, unbuffered; the mutex keeps lines whole
// (json.Encoder is not safe for concurrent use).
type jsonLog struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (l *jsonLog) write(v any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.enc.Encode(v); err != nil {
		log.Printf("access log: %v", err)
	}
}

func main() {
	host := flag.String("host", "127.0.0.1", "address to listen on")
	port := flag.Int("port", 8080, "TCP port to listen on; 0 picks a free one")
	accessLog := flag.Bool("access-log", true, "log every request as a JSON line on stdout")
	certFile := flag.String("tls-cert-file", "", "PEM certificate; with -tls-key-file, serve HTTPS")
	keyFile := flag.String("tls-key-file", "", "PEM private key of -tls-cert-file")
	flag.Parse()

	out := &jsonLog{enc: json.NewEncoder(os.Stdout)}
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		started := time.Now()
		id := fmt.Sprintf("%016x", rand.Uint64())
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-ID", id)
		w.Write(healthBody)
		if !*accessLog {
			return
		}
		remote, _, _ := net.SplitHostPort(r.RemoteAddr)
		out.write(accessEntry{
			Time:       started.UTC().Format("2006-01-02T15:04:05.000Z"),
			Level:      "info",
			Msg:        "request",
			Logger:     "access",
			Bytes:      len(healthBody),
			DurationMS: float64(time.Since(started).Microseconds()) / 1000,
			Method:     r.Method,
			Path:       r.URL.Path,
			Remote:     remote,
			RequestID:  id,
			Status:     http.StatusOK,
			UserAgent:  r.UserAgent(),
		})
	})

	ln, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		log.Fatal(err)
	}
	out.write(map[string]any{
		"time": time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), "level": "info",
		"msg": "service started", "logger": "service", "port": ln.Addr().(*net.TCPAddr).Port,
	})
	srv := &http.Server{Handler: mux}
	go func() {
		serve := func() error { return srv.Serve(ln) }
		if *certFile != "" {
			serve = func() error { return srv.ServeTLS(ln, *certFile, *keyFile) }
		}
		if err := serve(); err != nil && err != http.ErrServerClosed {
			log.Fatal(err)
		}
	}()

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Printf("shutdown: %v", err)
		os.Exit(1)
	}
}
