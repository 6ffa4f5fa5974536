# Helpers for the cc-routes integration tests; sourced after lib.sh and
# it_setup. Every HAProxy runs in the foreground with TZ=UTC, its stdout
# (the log) in $IT_DIR/<name>.log.

ROUTES_DATA="$CCGW_ROOT/tests/data/routes"
CC_ROUTES="$CCGW_BIN/cc-routes"
export CCGW_TEMPLATES="$CCGW_ROOT/haproxy/templates"

# backend_start NAME PORT: a stand-in chain server answering with tag NAME.
backend_start() {
    bg "$1" python3 "$ROUTES_DATA/backend.py" "$2" "$1"
}

# haproxy_start NAME CFG: run one tier.
haproxy_start() {
    bg "$1" env TZ=UTC haproxy -db -f "$2"
}

# hapi SOCK CMD...: one runtime API command.
hapi() {
    local sock=$1; shift
    echo "$*" | socat -t 5 - "UNIX-CONNECT:$sock"
}

# srv_status SOCK BACKEND SERVER: the `status` column of show stat.
srv_status() {
    hapi "$1" "show stat $2 4 -1" | awk -F, -v b="$2" -v s="$3" '$1 == b && $2 == s { print $18 }'
}

# wait_status SOCK BACKEND SERVER PREFIX [SECS]
wait_status() {
    local i st
    for i in $(seq $(( ${5:-20} * 10 ))); do
        st=$(srv_status "$1" "$2" "$3" 2>/dev/null)
        case "$st" in "$4"*) return 0 ;; esac
        sleep 0.1
    done
    fail "$2/$3 on $1 is '$st', not $4 after ${5:-20}s"
}

# http_code PORT HOST [PATH]: the status of one GET through 127.0.0.1:PORT.
http_code() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H "Host: $2" "http://127.0.0.1:$1${3:-/}"
}

# http_tag PORT HOST: which backend served one GET ("-" if none).
http_tag() {
    curl -s --max-time 5 -H "Host: $2" "http://127.0.0.1:$1/" |
        python3 -c 'import json,sys
try: print(json.load(sys.stdin)["tag"])
except Exception: print("-")'
}
