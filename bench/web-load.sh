#!/usr/bin/env bash
# The classroom load benchmark (issue #15): starts the web app on a loopback port, then drives N browser tabs at
# once (Playwright in Debian's Chromium), each tracing a fact and then editing it. The clients run at the lowest
# CPU priority, so the server has the machine's cores. Run it alone: other libtorch work skews every number.
#   bench/web-load.sh [--tabs 1,5,10,30] [--settle 15] [--max-trace 50]   (other options go to the app, e.g. --Rome:Workers=2)
#   bench/web-load.sh --class 30 [--rounds 3]   a class room: a teacher and 30 followers (README "Serving a class")
# --max-trace S ends with one trace of the longest prompt at S samples, and the memory it leaves.
# APP_DIR=/other/checkout serves another checkout's app (to compare two versions with one driver).
set -euo pipefail
cd "$(dirname "$0")/.."
port=${PORT:-5080}
app_dir=$(realpath "${APP_DIR:-.}")
bench_args=() app_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --tabs|--settle|--timeout|--max-trace|--class|--rounds) bench_args+=("$1" "$2"); shift 2 ;;
    *) app_args+=("$1"); shift ;;
  esac
done
export CHROMIUM_PATH=${CHROMIUM_PATH:-$(command -v chromium || true)}
if [ ! -x "$CHROMIUM_PATH" ]; then
  echo "No Chromium: install Debian's (apt-get install chromium) or set CHROMIUM_PATH." >&2; exit 1
fi
mkdir -p artifacts
dotnet publish "$app_dir/src/Rome.Web" -c Release -v q -o "$app_dir/artifacts/bench-web" >/dev/null
dotnet build bench/Rome.Bench.Web -c Release -v q -o artifacts/bench-driver >/dev/null
# The published folder is the content root (its wwwroot has the static assets); the app finds the checkout's
# appsettings.json above it, and resolves the models' paths there.
dotnet "$app_dir/artifacts/bench-web/Rome.Web.dll" --contentRoot "$app_dir/artifacts/bench-web" --urls "http://127.0.0.1:$port" "${app_args[@]}" > artifacts/bench-web.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 120); do curl -fs "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.5; done
# The clients run at nice 19. Chromium resets its own processes' priorities (to nice 0, and -8 for its main
# processes) where it may, that is as root: there, the clients run as nobody, who cannot raise a priority.
clients=(nice -n 19)
if [ "$(id -u)" = 0 ]; then
  home=$(mktemp -d); chmod 777 "$home"; trap 'kill $server 2>/dev/null || true; rm -rf "$home"' EXIT
  clients=(setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME="$home" DOTNET_CLI_HOME="$home" nice -n 19)
fi
echo "server pid $server, $(nproc) cores; clients at nice 19"
"${clients[@]}" dotnet artifacts/bench-driver/Rome.Bench.Web.dll --url "http://127.0.0.1:$port" --pid "$server" --model "$app_dir/models/rome-knowing" --log "$PWD/artifacts/bench-web.log" "${bench_args[@]}"
