# Sourced by the browser tests (run.sh, soak.sh): serves web/dist on 127.0.0.1 at a random
# port, `$port`, until the sourcing script exits.
port=$((20000 + RANDOM % 20000))
python3 -m http.server --bind 127.0.0.1 --directory web/dist "$port" >/dev/null 2>&1 &
server=$!
trap 'kill $server' EXIT
for _ in $(seq 50); do
    python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/')" 2>/dev/null && break
    sleep 0.1
done
