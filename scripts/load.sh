#!/usr/bin/env bash
# Loopback load test of the layer with wrk: the server (examples/load_server.rs) pinned to
# core 0, wrk pinned to core 1, one scenario after the other; prints requests/s of each
# and its ratio to /public (the same handler without the layer).
#
# The *-valid scenarios send one token over and over, as one client does: with the layer's
# verified-token cache they measure cache hits. The *-rotating scenarios cycle through
# ROTATE distinct valid tokens (20000, more than the cache's default 10000 entries, oldest
# evicted first), so every request misses and pays for a full verification.
#
#   scripts/load.sh                  # 10 s per scenario
#   DURATION=3 scripts/load.sh       # a quick run
#   ROUNDS=3 scripts/load.sh         # every scenario 3 times, interleaved; medians
#
# Environment:
#   DURATION     seconds per scenario (10)
#   CONNECTIONS  wrk connections (16); THREADS: wrk threads (1)
#   ROTATE       tokens of the *-rotating scenarios (20000; 0 leaves those out)
#   ROUNDS       how often the whole list is run (1); the table shows each scenario's
#                median round and the spread of its rounds
#   MAX_OTHER    a scenario during which other work took more than this % of either core
#   RETRIES      (10) is run again, up to RETRIES times (2), and marked `!` if it still was
#   LOAD_ADDR    the server's address (127.0.0.1:3100; loopback only)
#   SERVER_CPU, WRK_CPU   the cores of the server (0) and of wrk (1)
#   LOAD_LOG_EVERY=1      the layer logs every rejection (flood control off)
#   KEEP=1       keep wrk's raw output and the server's log, in a directory named at the end
# Needs wrk (apt-get install wrk), curl and taskset. Traffic goes to loopback only.
set -euo pipefail

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-1}
ROTATE=${ROTATE:-20000}
MAX_OTHER=${MAX_OTHER:-10}
RETRIES=${RETRIES:-2}
ROUNDS=${ROUNDS:-1}
SERVER_CPU=${SERVER_CPU:-0}
WRK_CPU=${WRK_CPU:-1}
LOAD_ADDR=${LOAD_ADDR:-127.0.0.1:3100}
export LOAD_ADDR

case $LOAD_ADDR in
  127.*:* | localhost:* | \[::1\]:*) ;;
  *) echo "LOAD_ADDR must be a loopback address, not $LOAD_ADDR" >&2; exit 2 ;;
esac

for tool in wrk curl taskset cargo; do
  if ! command -v "$tool" >/dev/null; then
    echo "missing $tool (wrk: apt-get install -y wrk)" >&2
    exit 2
  fi
done
for var in DURATION ROUNDS; do
  if ! [[ ${!var} =~ ^[1-9][0-9]*$ ]]; then
    echo "$var is a whole number above 0, not ${!var}" >&2
    exit 2
  fi
done
for var in ROTATE MAX_OTHER RETRIES; do
  if ! [[ ${!var} =~ ^[0-9]+$ ]]; then
    echo "$var is a whole number, not ${!var}" >&2
    exit 2
  fi
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BASE="http://$LOAD_ADDR"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/auth-load.XXXXXX")
SERVER_PID=
WRK_PID=

cleanup() {
  local status=$? pid
  for pid in $WRK_PID $SERVER_PID; do
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  if [[ ${KEEP:-0} == 1 ]]; then
    echo "raw output kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Build -------------------------------------------------------------------------------------
echo "building examples/load_server (release)..." >&2
(cd "$ROOT" && cargo build --release --quiet --example load_server)
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/load_server"
[[ -x $BIN ]] || { echo "no binary at $BIN" >&2; exit 1; }

# Server ------------------------------------------------------------------------------------
if curl -s -o /dev/null --max-time 1 "$BASE/" 2>/dev/null; then
  echo "something already answers on $LOAD_ADDR; set LOAD_ADDR" >&2
  exit 1
fi
taskset -c "$SERVER_CPU" "$BIN" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  grep -q '^listening on http://' "$WORK/server.log" && break
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "the server exited before listening:" >&2
    cat "$WORK/server.log" >&2
    exit 1
  fi
  sleep 0.1
done
if ! grep -q '^listening on http://' "$WORK/server.log"; then
  echo "the server did not listen within 10 s:" >&2
  cat "$WORK/server.log" >&2
  exit 1
fi

# Tokens: minted by the example itself, valid for an hour.
HS256=$("$BIN" --mint hs256)
ES256=$("$BIN" --mint es256)
EXPIRED=$("$BIN" --mint expired)

# Scenarios: name, path, expected status, Authorization value (empty: none; @FILE: a
# Bearer token per request, cycling through the lines of FILE).
NAMES=(public hs256-valid no-credentials not-a-jwt hs256-expired es256-valid)
PATHS=(/public /me /me /me /me /es)
STATUS=(200 200 401 401 401 200)
AUTHS=("" "Bearer $HS256" "" "Bearer not-a-jwt" "Bearer $EXPIRED" "Bearer $ES256")
if ((ROTATE > 0)); then
  "$BIN" --mint hs256 "$ROTATE" >"$WORK/hs256.tokens"
  "$BIN" --mint es256 "$ROTATE" >"$WORK/es256.tokens"
  NAMES+=(hs256-rotating es256-rotating)
  PATHS+=(/me /es)
  STATUS+=(200 200)
  AUTHS+=("@$WORK/hs256.tokens" "@$WORK/es256.tokens")
fi
# wrk's per-request hook for @FILE: the next token of TOKENS_FILE, round robin.
cat >"$WORK/rotate.lua" <<'LUA'
local tokens = {}
for line in io.lines(os.getenv("TOKENS_FILE")) do tokens[#tokens + 1] = line end
local i = 0
request = function()
  i = i % #tokens + 1
  return wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. tokens[i] })
end
LUA

# Each scenario's status, once, before anything is loaded.
for i in "${!NAMES[@]}"; do
  args=(-s -o /dev/null -w '%{http_code}' --max-time 5)
  case ${AUTHS[$i]} in
    "") ;;
    @*) args+=(-H "Authorization: Bearer $(head -n1 "${AUTHS[$i]#@}")") ;;
    *) args+=(-H "Authorization: ${AUTHS[$i]}") ;;
  esac
  got=$(curl "${args[@]}" "$BASE${PATHS[$i]}" || true)
  if [[ $got != "${STATUS[$i]}" ]]; then
    echo "${NAMES[$i]}: GET ${PATHS[$i]} answered $got, expected ${STATUS[$i]}" >&2
    exit 1
  fi
done

# Load --------------------------------------------------------------------------------------
# Other work on the machine skews the numbers. For each scenario the table shows how much
# of its core the server used ("srv", near 100% when the server is the bottleneck) and wrk
# used ("wrk"), and how much of each of the two cores went to anything else ("other0",
# "other1": other processes and interrupts; a few % is normal, more makes the row suspect,
# see MAX_OTHER).
# The load average before the run is printed too.
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
TICKS=$(getconf CLK_TCK)

# One line: busy and total ticks of the server's CPU and of wrk's CPU, the server's own
# ticks, and the seconds of CPU this shell's finished children used (`times`, run in this
# shell itself: a subshell's count starts at zero).
cpu_snapshot() {
  local server children
  # After the parenthesised command name, utime and stime are the 12th and 13th fields.
  server=$(sed 's/^.*) //' "/proc/$SERVER_PID/stat" | awk '{ print $12 + $13 }')
  times >"$WORK/times"
  children=$(awk 'NR == 2 {
    n = split($1 " " $2, t, " "); s = 0
    for (k = 1; k <= n; k++) { split(t[k], ms, "m"); sub("s", "", ms[2]); s += ms[1] * 60 + ms[2] }
    print s
  }' "$WORK/times")
  awk -v c0="cpu$SERVER_CPU" -v c1="cpu$WRK_CPU" -v server="$server" -v children="$children" '
    $1 == c0 || $1 == c1 { busy[$1] = $2 + $3 + $4 + $7 + $8 + $9; all[$1] = busy[$1] + $5 + $6 }
    END { print busy[c0], all[c0], busy[c1], all[c1], server, children }' /proc/stat
}
# Loads scenario $1 once: wrk's output in $WORK/NAME.txt, CPU shares in srv_cpu, wrk_cpu,
# other0 and other1 (whole percent).
load_once() {
  local i=$1 tokens=
  local args=(-t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency)
  case ${AUTHS[$i]} in
    "") ;;
    @*) tokens=${AUTHS[$i]#@}; args+=(-s "$WORK/rotate.lua") ;;
    *) args+=(-H "Authorization: ${AUTHS[$i]}") ;;
  esac
  cpu_snapshot >"$WORK/before"
  # In the background and waited for, so that a signal stops the run at once.
  TOKENS_FILE=$tokens taskset -c "$WRK_CPU" wrk "${args[@]}" "$BASE${PATHS[$i]}" \
    >"$WORK/${NAMES[$i]}.txt" &
  WRK_PID=$!
  wait "$WRK_PID"
  WRK_PID=
  cpu_snapshot >"$WORK/after"
  read -r srv_cpu wrk_cpu other0 other1 < <(awk -v hz="$TICKS" '
    NR == 1 { split($0, x, " ") }
    NR == 2 { split($0, y, " ") }
    END {
      t0 = y[2] - x[2]; t1 = y[4] - x[4]
      if (t0 <= 0 || t1 <= 0) { print 0, 0, 100, 100; exit }
      server = y[5] - x[5]; wrk = (y[6] - x[6]) * hz
      o0 = (y[1] - x[1] - server) / t0 * 100; o1 = (y[3] - x[3] - wrk) / t1 * 100
      printf "%.0f %.0f %.0f %.0f\n", server / t0 * 100, wrk / t1 * 100, (o0 < 0 ? 0 : o0), (o1 < 0 ? 0 : o1)
    }' "$WORK/before" "$WORK/after")
}

echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s per scenario, $ROUNDS round(s); server on CPU $SERVER_CPU, wrk on CPU $WRK_CPU" >&2
SUSPECT=0
: >"$WORK/results.tsv"
for round in $(seq 1 "$ROUNDS"); do
  for i in "${!NAMES[@]}"; do
    for attempt in $(seq 0 "$RETRIES"); do
      if ((attempt == 0)); then
        echo "  ${NAMES[$i]} (round $round)..." >&2
      else
        echo "  ${NAMES[$i]} again: other work took ${other0}% of CPU $SERVER_CPU, ${other1}% of CPU $WRK_CPU" >&2
        sleep 5
      fi
      load_once "$i"
      if ((other0 <= MAX_OTHER && other1 <= MAX_OTHER)); then
        break
      fi
    done
    out="$WORK/${NAMES[$i]}.txt"
    cp "$out" "$WORK/${NAMES[$i]}.round$round.txt"
    mark=
    if ((other0 > MAX_OTHER || other1 > MAX_OTHER)); then
      mark='!'
      SUSPECT=1
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "the server died during ${NAMES[$i]}:" >&2
      cat "$WORK/server.log" >&2
      exit 1
    fi
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    total=$(awk '/ requests in / { print $1 }' "$out")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")
    non2xx=${non2xx:-0}
    if [[ -z $rps || -z $total ]]; then
      echo "cannot read wrk's output for ${NAMES[$i]}:" >&2
      cat "$out" >&2
      exit 1
    fi
    # Every loaded response must have had the expected status class.
    if [[ ${STATUS[$i]} == 200 && $non2xx != 0 ]] || [[ ${STATUS[$i]} != 200 && $non2xx != "$total" ]]; then
      echo "${NAMES[$i]}: $non2xx of $total responses were not 2xx (expected ${STATUS[$i]})" >&2
      cat "$out" >&2
      exit 1
    fi
    if grep -q '^  Socket errors:' "$out"; then
      echo "${NAMES[$i]}: $(grep '^  Socket errors:' "$out" | sed 's/^ *//')" >&2
    fi
    p50=$(awk '$1 == "50%" { print $2 }' "$out")
    p99=$(awk '$1 == "99%" { print $2 }' "$out")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$i" "${NAMES[$i]}" "${PATHS[$i]}" \
      "${STATUS[$i]}" "$rps" "$total" "$p50" "$p99" "$srv_cpu%" "$wrk_cpu%" "$other0%$mark" \
      "$other1%$mark" >>"$WORK/results.tsv"
  done
done

# Table -------------------------------------------------------------------------------------
# Per scenario its median round (the lower middle one of an even count), with that round's
# latencies and CPU shares; "spread" is (max - min) / median of req/s over the rounds.
sort -t"$(printf '\t')" -k1,1n -k5,5g "$WORK/results.tsv" | awk -F'\t' -v OFS='\t' '
  function flush() {
    if (n == 0) return
    split(rows[int((n + 1) / 2)], m, "\t")
    print m[2], m[3], m[4], m[5], (m[5] > 0 ? (max - min) / m[5] * 100 : 0), m[7], m[8], m[9], m[10], m[11], m[12]
    n = 0
  }
  NR == 1 || $1 != idx { flush(); idx = $1; min = $5; max = $5 }
  { rows[++n] = $0; if ($5 < min) min = $5; if ($5 > max) max = $5 }
  END { flush() }' >"$WORK/table.tsv"
echo
printf '%-15s %-7s %6s %8s %10s %6s %9s %9s %5s %5s %6s %6s\n' scenario path status 'req/s' \
  'vs public' spread p50 p99 srv wrk other0 other1
awk -F'\t' -v rounds="$ROUNDS" 'NR == 1 { base = $4 } {
  spread = rounds > 1 ? sprintf("%.0f%%", $5) : "-"
  printf "%-15s %-7s %6s %8.0f %9.2fx %6s %9s %9s %5s %5s %6s %6s\n", $1, $2, $3, $4, $4 / base, spread, $6, $7, $8, $9, $10, $11
}' "$WORK/table.tsv"
echo
echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency (CPU $WRK_CPU) against load_server (CPU $SERVER_CPU), $(nproc) CPUs; median of $ROUNDS round(s); LOAD_LOG_EVERY=${LOAD_LOG_EVERY:-0}; load average before: $LOADAVG"
if ((SUSPECT)); then
  echo "!: other work took more than $MAX_OTHER% of a core during that row (after $RETRIES retries); its numbers are suspect"
fi
