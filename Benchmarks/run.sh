#!/usr/bin/env bash
# Benchmarks the Swift service's GET /health against a minimal Go net/http server and nginx
# (one process, a fixed answer: the ceiling) with wrk. See Benchmarks/README.md. Settings
# (environment):
#   DURATION=10s  ROUNDS=3  CONNECTIONS="1 64 256"  ACCESS_LOG=true  STARTS=5  WARMUP=2s
#   SCALE=10000       (idle keep-alive connections for the connection-scale step; 0 skips it)
#   SERVICE_BIN=path  (skip the Swift build and use this binary)
#   NGINX=false       (leave nginx out)
#   METRICS_AB=false  (leave out the second Swift instance run with --metrics=false, which
#                      measures what recording metrics costs)
#   BASELINE_BIN=path (add this service binary, another revision, to the same rounds: an A/B)
#   BASELINE2_BIN=path (a second one, *Swift service, baseline 2*)
#   SWIFT_PATH=/health (the path the Swift servers are loaded with, e.g. /hello/Ada for an
#                      app route; Go and nginx always serve /health, so only the Swift rows
#                      compare like with like then)
#   TLS=true          (HTTPS everywhere: the service built with the TLS trait, Go's ServeTLS,
#                      nginx `ssl`, one EC P-256 certificate; adds new-connection and
#                      full-handshake rates; skips the start-up and scale steps)
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-1 64 256}
ACCESS_LOG=${ACCESS_LOG:-true}
STARTS=${STARTS:-5}
WARMUP=${WARMUP:-2s}
SCALE=${SCALE:-10000}
TLS=${TLS:-false}
case $TLS in true | false) ;; *) echo "TLS must be true or false" >&2; exit 2 ;; esac
if [[ $TLS == true ]]; then
    SCALE=0
    METRICS_AB=${METRICS_AB:-false}
fi
SCHEME=http
[[ $TLS == true ]] && SCHEME=https
BIN_DIR=$BENCH_DIR/.bin
WORK=$BENCH_DIR/.work
# One report per access-log setting, so a run with logs off does not replace the one with them on.
RESULTS=$BENCH_DIR/results/latest.md
[[ ${ACCESS_LOG:-true} == false ]] && RESULTS=$BENCH_DIR/results/latest-access-log-off.md
[[ $TLS == true ]] && RESULTS=$BENCH_DIR/results/latest-tls.md
CLK_TCK=$(getconf CLK_TCK)

case $ACCESS_LOG in true | false) ;; *) echo "ACCESS_LOG must be true or false" >&2; exit 2 ;; esac
[[ $SCALE =~ ^[0-9]+$ ]] || { echo "SCALE must be a number of connections (0 skips the step)" >&2; exit 2; }
for tool in wrk go python3 curl; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool is not installed" >&2; exit 1; }
done

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# --- build ---------------------------------------------------------------------------------
mkdir -p "$BIN_DIR"
if [[ -n ${SERVICE_BIN:-} ]]; then
    log "using SERVICE_BIN=$SERVICE_BIN"
else
    if [[ $TLS == true ]]; then
        log "building the Swift service with the TLS trait (release, scratch path .build-bench-tls)"
        (cd "$ROOT" && swift build -c release --product service --traits TLS --scratch-path "$ROOT/.build-bench-tls" >&2)
        SERVICE_BIN=$ROOT/.build-bench-tls/release/service
    else
        log "building the Swift service (release, scratch path .build-bench)"
        (cd "$ROOT" && swift build -c release --product service --scratch-path "$ROOT/.build-bench" >&2)
        SERVICE_BIN=$ROOT/.build-bench/release/service
    fi
fi
log "building the Go reference server"
(cd "$BENCH_DIR/go" && GOFLAGS=-mod=mod GOPROXY=off go build -trimpath -o "$BIN_DIR/benchref" . >&2)
GO_BIN=$BIN_DIR/benchref
declare -A BIN=([swift]=$SERVICE_BIN [go]=$GO_BIN)
SERVERS=(swift go)
# The same binary with metrics off, in the same rounds: the cost of recording them.
if [[ ${METRICS_AB:-true} == true ]]; then
    BIN[swift-nometrics]=$SERVICE_BIN
    SERVERS+=(swift-nometrics)
fi
# Another revision of the service, in the same rounds: an A/B against the same yardsticks.
if [[ -n ${BASELINE_BIN:-} ]]; then
    [[ -x $BASELINE_BIN ]] || { echo "run.sh: BASELINE_BIN=$BASELINE_BIN is not an executable" >&2; exit 1; }
    BIN[swift-baseline]=$BASELINE_BIN
    SERVERS+=(swift-baseline)
fi
if [[ -n ${BASELINE2_BIN:-} ]]; then
    [[ -x $BASELINE2_BIN ]] || { echo "run.sh: BASELINE2_BIN=$BASELINE2_BIN is not an executable" >&2; exit 1; }
    BIN[swift-baseline2]=$BASELINE2_BIN
    SERVERS+=(swift-baseline2)
fi
# nginx answering /health with a fixed body is the ceiling (Debian's nginx; NGINX=false skips it).
if [[ ${NGINX:-true} == true ]]; then
    command -v nginx >/dev/null || { echo "run.sh: nginx is not installed (apt-get install nginx-light, or NGINX=false)" >&2; exit 1; }
    SERVERS+=(nginx)
fi

rm -rf "$WORK"
mkdir -p "$WORK" "$BENCH_DIR/results"
CERT=$WORK/tls.crt
KEY=$WORK/tls.key
if [[ $TLS == true ]]; then
    command -v openssl >/dev/null || { echo "run.sh: TLS=true needs the openssl command" >&2; exit 1; }
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$KEY" -out "$CERT" \
        -days 1 -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 2>/dev/null
fi

# --- helpers -------------------------------------------------------------------------------
declare -A PID PORT
cleanup() {
    local name
    for name in "${!PID[@]}"; do
        if kill -0 "${PID[$name]}" 2>/dev/null; then
            kill -TERM "${PID[$name]}" 2>/dev/null || true
            wait "${PID[$name]}" 2>/dev/null || true
        fi
    done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# utime + stime of the whole process (all threads), in clock ticks. Fields 14 and 15 of
# /proc/PID/stat, counted after the ")" that ends the command name (which may hold spaces).
cpu_ticks() {
    local stat fields
    stat=$(<"/proc/$1/stat")
    stat=${stat##*) }
    read -r -a fields <<<"$stat"
    echo $((fields[11] + fields[12]))
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# Waits (polling, bounded) until the CPU counter of PID stops moving, so work the server does
# after wrk stops (closing connections, flushing logs) is counted in the run it belongs to.
settle() {
    local pid=$1 last now i
    last=$(cpu_ticks "$pid")
    for ((i = 0; i < 30; i++)); do
        sleep 0.1
        now=$(cpu_ticks "$pid")
        [[ $now == "$last" ]] && return 0
        last=$now
    done
}

start_server() {
    local name=$1 i
    PORT[$name]=$(free_port)
    if [[ $name == nginx ]]; then
        local prefix=$WORK/nginx access='access_log off;' ssl='' ssl_config=''
        mkdir -p "$prefix/tmp"
        [[ $ACCESS_LOG == true ]] && access="access_log $WORK/nginx.log json buffer=64k flush=1s;"
        if [[ $TLS == true ]]; then
            ssl=' ssl'
            ssl_config="ssl_certificate $CERT; ssl_certificate_key $KEY; ssl_protocols TLSv1.2 TLSv1.3;"
        fi
        sed -e "s|@PREFIX@|$prefix|g" -e "s|@PORT@|${PORT[$name]}|g" -e "s|@ACCESS_LOG@|$access|" \
            -e "s|@SSL@|$ssl|" -e "s|@SSL_CONFIG@|$ssl_config|" \
            "$BENCH_DIR/nginx/nginx.conf.in" >"$prefix/nginx.conf"
        : >"$WORK/nginx.log"
        nginx -p "$prefix" -c "$prefix/nginx.conf" 2>>"$WORK/$name.stderr" &
    else
        local extra=()
        [[ $name == swift-nometrics ]] && extra=(--metrics=false)
        [[ $TLS == true ]] && extra+=(--tls-cert-file="$CERT" --tls-key-file="$KEY")
        "${BIN[$name]}" --host=127.0.0.1 --port="${PORT[$name]}" --access-log="$ACCESS_LOG" "${extra[@]}" \
            >>"$WORK/$name.log" 2>>"$WORK/$name.stderr" &
    fi
    PID[$name]=$!
    for ((i = 0; i < 500; i++)); do
        if curl -kfsS --max-time 1 -o /dev/null "$SCHEME://127.0.0.1:${PORT[$name]}/health" 2>/dev/null; then
            log "$name is up: pid ${PID[$name]}, port ${PORT[$name]}"
            return 0
        fi
        kill -0 "${PID[$name]}" 2>/dev/null || break
        sleep 0.02
    done
    echo "run.sh: $name did not answer /health; its output:" >&2
    cat "$WORK/$name.log" "$WORK/$name.stderr" >&2
    exit 1
}

run_wrk() {
    local name=$1 conns=$2 duration=$3 out=$4 threads=2
    if ((conns < threads)); then threads=$conns; fi # wrk needs a connection per thread
    local path=/health
    [[ $name == swift* ]] && path=${SWIFT_PATH:-/health}
    wrk -t"$threads" -c"$conns" -d"$duration" --latency "$SCHEME://127.0.0.1:${PORT[$name]}$path" >"$out"
}

# --- start to first 200, idle RSS, SIGTERM to exit (before anything else runs) -------------
LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "start to first 200, idle RSS, SIGTERM to exit: $STARTS starts of each server"
if [[ $TLS == true ]]; then
    : >"$WORK/startup.tsv"
    : >"$WORK/footprint.tsv"
else
    python3 "$BENCH_DIR/startup.py" --starts "$STARTS" --access-log "$ACCESS_LOG" --logdir "$WORK" \
        --out "$WORK/startup.tsv" --footprint "$WORK/footprint.tsv" swift="${BIN[swift]}" go="${BIN[go]}"
fi

# --- load ----------------------------------------------------------------------------------
for name in "${SERVERS[@]}"; do start_server "$name"; done

if [[ $WARMUP != 0 && $WARMUP != 0s ]]; then
    max_conns=$(tr ' ' '\n' <<<"$CONNECTIONS" | sort -n | tail -1)
    for name in "${SERVERS[@]}"; do
        log "warm-up: $name, $max_conns connections, $WARMUP"
        run_wrk "$name" "$max_conns" "$WARMUP" "$WORK/warmup-$name.txt"
    done
fi

RUNS=$WORK/runs.tsv
printf 'server\tconns\tround\twrk_output\tcpu_ticks_before\tcpu_ticks_after\trss_kb_before\trss_kb_after\tlog_lines\tother_ticks\twindow_ms\n' >"$RUNS"
for conns in $CONNECTIONS; do
    for ((round = 1; round <= ROUNDS; round++)); do
        # Alternate servers, and rotate which goes first every round.
        order=("${SERVERS[@]:round % ${#SERVERS[@]}}" "${SERVERS[@]:0:round % ${#SERVERS[@]}}")
        for name in "${order[@]}"; do
            pid=${PID[$name]}
            out=$WORK/wrk-$name-c$conns-r$round.txt
            settle "$pid"
            : >"$WORK/$name.log" # opened with >>, so truncating keeps it tidy
            rss_before=$(rss_kb "$pid")
            cpu_before=$(cpu_ticks "$pid")
            log "$name: $conns connections, round $round/$ROUNDS, $DURATION"
            python3 "$BENCH_DIR/procstat.py" snapshot "$WORK/procstat.json"
            window_start=${EPOCHREALTIME/./}
            run_wrk "$name" "$conns" "$DURATION" "$out"
            window_us=$((${EPOCHREALTIME/./} - window_start))
            other=$(python3 "$BENCH_DIR/procstat.py" other "$WORK/procstat.json" --exclude "$$" "$pid")
            rss_after=$(rss_kb "$pid")
            settle "$pid"
            cpu_after=$(cpu_ticks "$pid")
            lines=$(wc -l <"$WORK/$name.log")
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$conns" "$round" "$out" \
                "$cpu_before" "$cpu_after" "$rss_before" "$rss_after" "$lines" "$other" "$((window_us / 1000))" >>"$RUNS"
        done
    done
done

# --- new TLS connections ---------------------------------------------------------------------
# Two rates per server, rounds alternating: wrk with `Connection: close` (a new connection per
# request; wrk resumes the TLS session it had, as most clients do), and full handshakes from two
# `openssl s_time -new` clients (no resumption). Both report the server's CPU per connection.
HANDSHAKES=$WORK/handshakes.tsv
printf 'server\tkind\tround\tconnections\tseconds\tcpu_ticks\n' >"$HANDSHAKES"
if [[ $TLS == true ]]; then
    seconds=${DURATION%s}
    for ((round = 1; round <= ROUNDS; round++)); do
        order=("${SERVERS[@]:round % ${#SERVERS[@]}}" "${SERVERS[@]:0:round % ${#SERVERS[@]}}")
        for name in "${order[@]}"; do
            pid=${PID[$name]}
            settle "$pid"
            log "$name: new connections (wrk, Connection: close), round $round/$ROUNDS"
            before=$(cpu_ticks "$pid")
            out=$WORK/wrk-close-$name-r$round.txt
            wrk -t2 -c16 -d"$DURATION" -H 'Connection: close' "https://127.0.0.1:${PORT[$name]}/health" >"$out"
            settle "$pid"
            requests=$(awk '/requests in/ { print $1 }' "$out")
            printf '%s\tresumed\t%s\t%s\t%s\t%s\n' "$name" "$round" "$requests" "$seconds" \
                $(($(cpu_ticks "$pid") - before)) >>"$HANDSHAKES"
            log "$name: full handshakes (2 x openssl s_time -new), round $round/$ROUNDS"
            before=$(cpu_ticks "$pid")
            clients=()
            for client in 1 2; do
                openssl s_time -connect "127.0.0.1:${PORT[$name]}" -new -time "$seconds" -www /health \
                    >"$WORK/s_time-$name-r$round-$client.txt" 2>&1 &
                clients+=($!)
            done
            wait "${clients[@]}" # not a bare `wait`: the servers are children of this shell too
            settle "$pid"
            connections=$(cat "$WORK"/s_time-"$name"-r"$round"-*.txt | awk '/connections in [0-9.]+ real seconds/ { n += $1 } END { print n + 0 }')
            printf '%s\tfull\t%s\t%s\t%s\t%s\n' "$name" "$round" "$connections" "$seconds" \
                $(($(cpu_ticks "$pid") - before)) >>"$HANDSHAKES"
        done
    done
fi

# --- connection scale -----------------------------------------------------------------------
# scale.py starts each server afresh (access log off) while holding $SCALE idle connections;
# the load servers are stopped first so they do not share the machine with it.
for name in "${SERVERS[@]}"; do
    kill -TERM "${PID[$name]}" 2>/dev/null || true
    wait "${PID[$name]}" 2>/dev/null || true
    unset "PID[$name]"
done
: >"$WORK/scale.md"
if ((SCALE > 0)); then
    log "connection scale: $SCALE idle keep-alive connections per server"
    scale_args=(--idle "$SCALE" --binary swift="${BIN[swift]}" --binary go="${BIN[go]}")
    [[ " ${SERVERS[*]} " == *" nginx "* ]] && scale_args+=(--nginx)
    # The last line of its output is the same figures as JSON; keep the Markdown.
    python3 "$BENCH_DIR/scale.py" "${scale_args[@]}" | grep -v '^\[{' >"$WORK/scale.md"
fi

# --- report --------------------------------------------------------------------------------
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
swift_version=$(swift --version 2>&1 | grep -m1 -o 'Swift version [^ ]*' || echo unknown)
go_version=$(go version)
revision=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$ROOT" status --porcelain -- Sources Package.swift 2>/dev/null) ]]; then
    revision+=" with uncommitted changes in Sources/"
fi
wrk_version=$(wrk -v 2>&1 | head -1 | awk '{ print $1, $2 }' || true)
{
    if [[ $TLS == true ]]; then
        echo "# Benchmark: Swift service vs Go net/http and nginx, GET /health over HTTPS"
        echo
        echo "TLS on every server: one EC P-256 certificate, TLS 1.3 negotiated (wrk and openssl offer it), the service built with the TLS trait (OpenSSL $(openssl version | cut -d' ' -f2)), Go's \`ServeTLS\` (crypto/tls), nginx \`listen ... ssl\` (OpenSSL)."
    else
        echo "# Benchmark: Swift service vs Go net/http and nginx, GET /health"
    fi
    [[ " ${SERVERS[*]} " == *" swift-nometrics "* ]] && echo && echo "The Swift service runs with its defaults (metrics on: every request counted and timed); *Swift service, metrics off* is the same binary with \`--metrics=false\`, in the same rounds."
    [[ ${SWIFT_PATH:-/health} != /health ]] && echo && echo "The Swift rows load \`GET ${SWIFT_PATH}\`; Go and nginx serve \`/health\`."
    [[ -n ${BASELINE_BIN:-} ]] && echo && echo "*Swift service, baseline* is \`$BASELINE_BIN\`$( [[ -n ${BASELINE_LABEL:-} ]] && echo " ($BASELINE_LABEL)"), with its defaults, in the same rounds."
    [[ -n ${BASELINE2_BIN:-} ]] && echo && echo "*Swift service, baseline 2* is \`$BASELINE2_BIN\`$( [[ -n ${BASELINE2_LABEL:-} ]] && echo " ($BASELINE2_LABEL)"), with its defaults, in the same rounds."
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- machine: $(nproc) CPUs, $cpu_model, Linux $(uname -r)"
    echo "- service: ${SERVICE_BIN#"$ROOT"/} built from $revision"
    echo "- toolchains: $swift_version; ${go_version#go version }"
    echo "- load: $wrk_version, -t2 (-t1 at 1 connection), -d$DURATION --latency; $ROUNDS round(s), servers alternating; warm-up $WARMUP"
    echo "- access log: $ACCESS_LOG (every server; the service and Go write stdout to a file, nginx its buffered JSON access_log)"
    [[ " ${SERVERS[*]} " == *" nginx "* ]] && echo "- nginx: $(nginx -v 2>&1 | cut -d/ -f2), one process (master_process off), \`return 200\` with the same body (Benchmarks/nginx/nginx.conf.in)"
    echo "- load average before the run: $LOADAVG_START"
    echo "- wrk, both servers and this script share the same $(nproc) CPUs: compare rows of this run, not across machines or runs"
    echo
    python3 "$BENCH_DIR/summarize.py" --runs "$RUNS" --startup "$WORK/startup.tsv" --clk-tck "$CLK_TCK" --cpus "$(nproc)" \
        --handshakes "$HANDSHAKES"
    [[ $TLS == true ]] || python3 "$BENCH_DIR/startup.py" --report --out "$WORK/startup.tsv" --footprint "$WORK/footprint.tsv"
    if [[ -s $WORK/scale.md ]]; then
        echo
        cat "$WORK/scale.md"
    fi
} >"$RESULTS"
echo
cat "$RESULTS"
echo
log "wrote ${RESULTS#"$ROOT"/}; raw wrk output and server logs in ${WORK#"$ROOT"/}/"
