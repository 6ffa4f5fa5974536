#!/bin/bash
# Host forms, table-driven (tests/data/hosts/forms.tsv, its format in its
# header), on the real stack (scripts/stack up), each form over three
# transports to the edge: plain HTTP/1.1 to its HTTP port, HTTP/1.1 over TLS
# and HTTP/2 over TLS (ALPN) to its HTTPS port, verified against
# run/tls/ca.crt, SNI the valid host. HTTP/1.1 requests are written byte for
# byte (python3, one Host line per part of the form); HTTP/2 ones by curl,
# the form as :authority.
#
# Per request (a JSON-RPC call: getblockcount, eth_blockNumber to chain 0001):
# - "the node answered": 200 and a JSON-RPC body with a "result";
# - "counted": what the three cc-gateway workers' /metrics (edge, http0,
#   http1) counted for it, read once every line HAProxy logged for it has
#   been counted (below). The sum over the tiers of ccgw_gateway_relays_total
#   and every ccgw_gateway_non_relays_total sample must have grown by exactly
#   1 for a request that got an HTTP answer, by at most 1 for one that got
#   none; and it was a relay if and only if the node answered;
# - the outcome must be the table's for that transport: relay (the node
#   answered, one relay), refused (a 4xx from the gateway, no relay) or
#   uncarried (the transport cannot carry the form: curl does not send it, or
#   the edge's HTTP/2 parser resets the stream or answers 400 itself; no
#   node, no relay, nothing counted by an HTTP tier).
#
# Counted, exactly: after each request a sync request (Upgrade: ccgw-sync/1,
# refused by http0 with 403 and counted there as upgrade_refused) goes through
# the edge to http0. Once its line is in the edge's and http0's request log
# (each HAProxy writes its lines in order, one thread), every line of the
# request under test is too; once each worker has read as many lines as its
# request log holds (ccgw_gateway_lines_read_total = the log's lines but the
# "#ccgw segment" headers), they are all counted. The sync request's own
# upgrade_refused is taken off the difference.
#
# It prints a row per form and transport; HF_EVIDENCE=1 prints every
# request's log lines too (a mismatch's are always printed). HF_FORMS=FILE
# runs another table.
source "$(dirname "$0")/lib.sh"
it_setup
T0=$(date +%s%N)
FORMS=${HF_FORMS:-$CCGW_ROOT/tests/data/hosts/forms.tsv}
[ -r "$FORMS" ] || fail "no table $FORMS"
# the interpreter itself, not a version manager's shim
PY=$(python3 -c 'import sys; print(sys.executable)') && [ -x "$PY" ] || fail "no python3"
H=894334g9f403.0021.chains.local.test
TRANSPORTS=(plain h1-tls h2-tls)
BTC='{"jsonrpc":"2.0","id":1,"method":"getblockcount","params":[]}'
EVM='{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}'

# hf.py table FILE: the table checked, one line per form:
#   <expected per transport, comma-separated, in TRANSPORTS order> TAB
#   <the decoded value, hex, - if empty> TAB <the same, \xHH a byte, for
#   printf %b> TAB <the value as written>
# hf.py serve: one command a line on stdin, one answer a line on stdout:
#   h1 plain|tls PORT PATH HEX BODYFILE OUTFILE ERRFILE: one HTTP/1.1
#     request, one Host line per "\n"-separated part of the value HEX,
#     Connection: close; answers "<status, 000 if none> <local port> <ALPN,
#     - if plain>", the body (de-chunked) into OUTFILE, an error into ERRFILE;
#   node FILE: "yes" when FILE is a JSON-RPC answer with a result, or "no";
#   sync ID: the sync request ID (see above), then polls (every 10 ms, 20 s
#     at most) until it is in the edge's and http0's request log and every
#     worker has read its whole log; answers "ok" and the counts then, as
#     <tier>/lines=N (lines read), <tier>/relays=N, <tier>/nr:<reason>=N,
#     or "fail" and why.
cat >"$IT_DIR/hf.py" <<'PY'
import glob, json, os, re, socket, ssl, sys, time, urllib.request

TRANSPORTS = ["plain", "h1-tls", "h2-tls"]
OUTCOMES = ["relay", "refused", "uncarried"]
TIERS = ["edge", "http0", "http1"]

def decode(raw, host):
    out, i = bytearray(), 0
    while i < len(raw):
        c = raw[i]
        if c == 0x5C:
            n = raw[i + 1:i + 2]
            if n == b"t": out.append(9); i += 2; continue
            if n == b"n": out.append(10); i += 2; continue
            if n == b"\\": out.append(0x5C); i += 2; continue
            if n == b"x" and re.fullmatch(rb"[0-9A-Fa-f]{2}", raw[i + 2:i + 4]):
                out.append(int(raw[i + 2:i + 4], 16)); i += 4; continue
            raise ValueError("bad escape")
        out.append(c); i += 1
    return re.sub(rb"(?<![A-Za-z0-9-])H(?![A-Za-z0-9-])", host, bytes(out))

def table(path):
    host = os.environb[b"HF_H"]
    for no, line in enumerate(open(path, "rb").read().split(b"\n"), 1):
        line = line.rstrip(b"\r")
        if not line or line.startswith(b"#"):
            continue
        f = line.split(b"\t")
        where = "%s:%d: " % (path, no)
        if len(f) not in (2, 3) or f[0].decode() not in ("relay", "refused"):
            sys.exit(where + "want <relay|refused> TAB <host> [TAB <transport>=<outcome>...]")
        want = {t: f[0].decode() for t in TRANSPORTS}
        for o in (f[2].decode().split() if len(f) == 3 else []):
            t, _, v = o.partition("=")
            if t not in TRANSPORTS or v not in OUTCOMES:
                sys.exit(where + "bad override %r" % o)
            want[t] = v + "*"
        try:
            dec = decode(f[1], host)
        except ValueError:
            sys.exit(where + "bad escape in %r" % f[1])
        sys.stdout.buffer.write(b"%s\t%s\t%s\t%s\n" % (
            ",".join(want[t] for t in TRANSPORTS).encode(), dec.hex().encode() or b"-",
            "".join("\\x%02x" % c for c in dec).encode() or b"-", f[1]))

def exchange(s, req):
    """Send req, read the answer (to EOF, or one whole response)."""
    s.sendall(req)
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            return data
        data += b
        head, sep, rest = data.partition(b"\r\n\r\n")
        m = re.search(rb"(?im)^content-length:[ \t]*(\d+)", head)
        if sep and m and len(rest) >= int(m.group(1)):
            return data

def h1(mode, port, path, hexhost, bodyfile, outfile, errfile):
    body = open(bodyfile, "rb").read()
    hosts = (b"" if hexhost == "-" else bytes.fromhex(hexhost)).split(b"\n")
    req = (b"POST " + path.encode() + b" HTTP/1.1\r\n"
           + b"".join(b"Host: " + h + b"\r\n" for h in hosts)
           + b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
           + b"Connection: close\r\n\r\n" + body)
    status, lport, alpn, data, err = "000", 0, "-", b"", ""
    try:
        s = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
        lport = s.getsockname()[1]
        if mode == "tls":
            ctx = ssl.create_default_context(cafile=os.environ["HF_CA"])
            ctx.set_alpn_protocols(["http/1.1"])
            s = ctx.wrap_socket(s, server_hostname=os.environ["HF_H"])
            alpn = s.selected_alpn_protocol() or "none"
        data = exchange(s, req)
        s.close()
    except Exception as e:  # reported, never fatal: the table shows it
        err = "h1 %s: %s" % (mode, e)
    head, _, rest = data.partition(b"\r\n\r\n")
    m = re.match(rb"HTTP/1\.[01] (\d{3}) ", head)
    if m:
        status = m.group(1).decode()
        if re.search(rb"(?im)^transfer-encoding:[ \t]*chunked", head):
            out = b""
            while rest:
                size, _, rest = rest.partition(b"\r\n")
                n = int(size.split(b";")[0] or b"0", 16)
                if n == 0:
                    break
                out += rest[:n]; rest = rest[n + 2:]
            rest = out
    elif data and not err:
        err = "not an HTTP/1 answer: %r" % data[:100]
    open(outfile, "wb").write(rest)
    open(errfile, "w").write(err)
    return "%s %s %s" % (status, lport, alpn)

def counts():
    c = {}
    for t in TIERS:
        url = "http://127.0.0.1:%s/metrics" % os.environ["HF_M_" + t.upper()]
        for l in urllib.request.urlopen(url, timeout=5).read().decode().splitlines():
            m = re.match(r'(ccgw_gateway_\w+)\{([^}]*)\} (\S+)$', l)
            if not m:
                continue
            lab = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
            v = int(float(m.group(3)))
            if m.group(1) == "ccgw_gateway_lines_read_total":
                c[t + "/lines"] = v
            elif m.group(1) == "ccgw_gateway_relays_total":
                c[t + "/relays"] = v
            elif m.group(1) == "ccgw_gateway_non_relays_total":
                c[t + "/nr:" + lab["reason"]] = v
        if t + "/lines" not in c or t + "/relays" not in c:
            raise ValueError("no lines or relays count on " + url)
    return c

def sync(id):
    marker = b"/?hf-sync=%s HTTP/1.1\"" % id.encode()
    req = (b"GET /?hf-sync=%s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: ccgw-sync/1\r\n\r\n"
           % (id.encode(), os.environb[b"HF_H"]))
    try:
        with socket.create_connection(("127.0.0.1", int(os.environ["HF_EDGE"])), timeout=10) as s:
            answer = exchange(s, req)
    except Exception as e:
        return "fail sync request %s: %s" % (id, e)
    if not answer.startswith(b"HTTP/1.1 403 "):
        return "fail sync request %s: not refused with 403: %r" % (id, answer[:100])
    deadline, why = time.time() + 20, "?"
    while time.time() < deadline:
        try:
            c = counts()
        except Exception as e:
            why = "metrics: %s" % e
            time.sleep(0.01)
            continue
        behind = []
        for t in TIERS:
            n, seen = 0, False
            for f in glob.glob("%s/logs/%s/requests.*.log" % (os.environ["HF_RUN"], t)):
                data = open(f, "rb").read()
                seen = seen or marker in data
                n += sum(1 for l in data.split(b"\n")[:-1 if data.endswith(b"\n") else None]
                         if not l.startswith(b"#ccgw segment "))
            if t != "http1" and not seen:
                behind.append("%s: sync request not in its log yet" % t)
            if c[t + "/lines"] != n:
                behind.append("%s: worker read %d lines, its log has %d" % (t, c[t + "/lines"], n))
        if not behind:
            return "ok " + " ".join("%s=%d" % kv for kv in sorted(c.items()))
        why = "; ".join(behind)
        time.sleep(0.01)
    return "fail sync request %s not counted within 20 s: %s" % (id, why)

def node_answered(path):
    try:
        j = json.load(open(path, "rb"))
    except (OSError, ValueError):
        return False
    return isinstance(j, dict) and j.get("jsonrpc") == "2.0" and j.get("result") is not None

def serve():
    for line in sys.stdin:
        a = line.split()
        if a and a[0] == "h1" and len(a) == 8:
            print(h1(*a[1:]), flush=True)
        elif a and a[0] == "node" and len(a) == 2:
            print("yes" if node_answered(a[1]) else "no", flush=True)
        elif a and a[0] == "sync" and len(a) == 2:
            print(sync(a[1]), flush=True)
        else:
            print("fail bad command %r" % line, flush=True)

if sys.argv[1] == "table":
    table(sys.argv[2])
elif sys.argv[1] == "serve":
    serve()
else:
    sys.exit("usage: hf.py table FILE | serve")
PY
export HF_H=$H
"$PY" "$IT_DIR/hf.py" table "$FORMS" >"$IT_DIR/forms" || fail "table $FORMS"
NFORMS=$(wc -l <"$IT_DIR/forms")
[ "$NFORMS" -ge 30 ] || fail "only $NFORMS forms in $FORMS"

stack_start
CA=$RUN/tls/ca.crt
TIERS=(edge http0 http1)
export HF_CA=$CA HF_RUN=$RUN HF_EDGE=$EDGE HF_M_EDGE=$((9100 + OFF)) HF_M_HTTP0=$((9101 + OFF)) \
    HF_M_HTTP1=$((9102 + OFF))
coproc HFC { exec "$PY" "$IT_DIR/hf.py" serve 2>"$IT_DIR/hf.log"; }
IT_PIDS[hf]=$HFC_PID
# hfc CMD ARGS...: one command to hf.py serve; its answer in REPLY
hfc() {
    echo "$*" >&"${HFC[1]}" || fail "hf.py serve is gone: $(cat "$IT_DIR/hf.log")"
    read -r -t 60 -u "${HFC[0]}" REPLY || fail "hf.py serve: no answer to $1: $(cat "$IT_DIR/hf.log")"
}
# count_sync ID ARRAY: the sync request ID, then wait until everything before it
# is counted; ARRAY gets the counts then.
count_sync() {
    local -n _b=$2
    local kv
    hfc sync "$1"
    [[ $REPLY == ok\ * ]] || fail "${REPLY#fail }"
    _b=()
    for kv in ${REPLY#ok }; do _b[${kv%%=*}]=${kv#*=}; done
}

# evidence PORT: the request log lines (every tier) of client port PORT
# (the HTTP tiers log the client's address, from the PROXY protocol)
evidence() {
    local t
    [ "${1:-0}" != 0 ] || { echo "      (no connection)"; return; }
    for t in "${TIERS[@]}"; do
        grep -ahE "^<[0-9]+>127\.0\.0\.1:$1 \[" "$RUN/logs/$t"/requests.*.log 2>/dev/null | sed "s/^/      $t: /"
    done
}

declare -A S0 S1
count_sync 0 S0
note "in sync: the workers read lines edge=${S0[edge/lines]} http0=${S0[http0/lines]} http1=${S0[http1/lines]}"
REASONS=$(for k in "${!S0[@]}"; do [[ $k == */nr:* ]] && echo "${k#*/nr:}"; done | sort -u)
T1=$(date +%s%N)
[ -n "$REASONS" ] || fail "no ccgw_gateway_non_relays_total sample on /metrics"
echo "$REASONS" | grep -qx upgrade_refused || fail "no upgrade_refused reason on /metrics"

FMT='%-3s %-44s %-8s %-10s %-6s %-8s %-8s %-9s %-20s %s'
ROWS=() BAD=() n=0 nform=0 nbad=0
while IFS=$'\t' read -r -u 3 wants hex esc raw; do
    nform=$((nform + 1))
    IFS=, read -r -a want <<<"$wants"
    if [ "$hex" = - ]; then dec=""; else printf -v dec '%b' "$esc"; fi
    body=$BTC; shopt -s nocasematch; [[ $dec == *.0001.* ]] && body=$EVM; shopt -u nocasematch
    printf '%s' "$body" >"$IT_DIR/req.json"
    for ti in "${!TRANSPORTS[@]}"; do
        tr=${TRANSPORTS[$ti]} exp=${want[$ti]}
        n=$((n + 1)); id="F$nform-$tr"; path="/?hf=$id"
        : >"$IT_DIR/resp"; : >"$IT_DIR/err"
        status=000 lport=0 ver=- sent=yes
        case $tr in
        plain | h1-tls)
            if [ $tr = plain ]; then mode=plain port=$EDGE; else mode=tls port=$HTTPS; fi
            hfc h1 $mode "$port" "$path" "$hex" "$IT_DIR/req.json" "$IT_DIR/resp" "$IT_DIR/err"
            read -r status lport ver <<<"$REPLY"
            [ $mode = tls ] && [ "$status" != 000 ] && [ "$ver" != http/1.1 ] \
                && fail "$id: ALPN chose '$ver', not http/1.1"
            ;;
        h2-tls)
            if [[ $dec == *$'\n'* ]]; then
                # curl makes one :authority of the first Host: not this form
                sent=no
                echo "not sent: curl carries one Host (:authority) over HTTP/2" >"$IT_DIR/err"
            else
                if [ -z "$dec" ]; then hdr=(-H "Host;"); else hdr=(-H "Host: $dec"); fi
                read -r status lport ver < <(curl -sS --max-time 10 --http2 --cacert "$CA" \
                    --resolve "$H:$HTTPS:127.0.0.1" "${hdr[@]}" -H 'Content-Type: application/json' \
                    --data-binary @"$IT_DIR/req.json" -o "$IT_DIR/resp" \
                    -w '%{http_code} %{local_port} %{http_version}' "https://$H:$HTTPS$path" 2>"$IT_DIR/err")
                [ "$status" != 000 ] && [ "$ver" != 2 ] && fail "$id: HTTP version '$ver', not 2"
            fi
            ;;
        esac
        status=${status:-000}
        count_sync "$n" S1
        # what this request added: the difference, less the sync request's
        # upgrade_refused at http0
        drel=0 dtot=0 reasons="" tiers="" errs=()
        for t in "${TIERS[@]}"; do
            d=$(( ${S1[$t/relays]} - ${S0[$t/relays]} ))
            drel=$((drel + d)) dtot=$((dtot + d))
            [ $d != 0 ] && tiers+=" $t"
            for r in $REASONS; do
                d=$(( ${S1[$t/nr:$r]:-0} - ${S0[$t/nr:$r]:-0} ))
                if [ "$t/$r" = http0/upgrade_refused ]; then
                    d=$((d - 1))
                    [ $d = 0 ] || errs+=("the sync request was counted $((d + 1)) times as upgrade_refused, not once")
                fi
                if [ $d != 0 ]; then
                    reasons+="${reasons:+,}$r@$t"; tiers+=" $t"
                    [ $d != 1 ] && reasons+="($d)"
                fi
                dtot=$((dtot + d))
            done
        done
        for k in "${!S1[@]}"; do S0[$k]=${S1[$k]}; done
        node=no
        if [ "$status" = 200 ]; then hfc node "$IT_DIR/resp"; node=$REPLY; fi
        if [ $sent = no ]; then answer="not sent"; elif [ "$status" = 000 ]; then answer=none
        elif [ $node = yes ]; then answer=node; else answer=gateway; fi
        case $drel in 0) counted=no ;; 1) counted=relay ;; *) counted="relays:$drel" ;; esac
        [ $drel = 0 ] && [ -n "$reasons" ] && counted=non-relay

        # the counting rule, whatever the table says
        [ $node = yes ] && [ $drel != 1 ] && errs+=("the node answered, relays counted: $drel")
        [ $node = no ] && [ $drel != 0 ] && errs+=("the node did not answer, relays counted: $drel")
        if [ "$status" != 000 ]; then
            [ $dtot = 1 ] || errs+=("answered $status, counted $dtot times over the tiers, not once")
        else
            [ $dtot -ge 0 ] && [ $dtot -le 1 ] || errs+=("no answer, counted $dtot times over the tiers")
        fi
        # the table's outcome for this transport
        case ${exp%\*} in
        relay)
            [ "$status" = 200 ] && [ $node = yes ] && [ $drel = 1 ] \
                || errs+=("expected relay: status $status, node answered $node, relays $drel") ;;
        refused)
            [[ $status == 4[0-9][0-9] ]] && [ $node = no ] && [ $drel = 0 ] \
                || errs+=("expected refused (a 4xx, no node, no relay): status $status, node answered $node, relays $drel") ;;
        uncarried)
            [[ $status == 000 || $status == 400 ]] && [ $node = no ] && [ $drel = 0 ] && [[ $tiers != *http* ]] \
                || errs+=("expected uncarried (reset or the edge's own 400, no node, nothing counted by an HTTP tier): status $status, node answered $node, counted by:${tiers:- none}") ;;
        esac
        [ $sent = no ] && [ "${exp%\*}" != uncarried ] && errs+=("not sent over $tr, the table expects $exp")
        [ $sent = no ] && [ $dtot != 0 ] && errs+=("not sent, yet counted $dtot times")
        verdict=ok
        if [ ${#errs[@]} -gt 0 ]; then
            verdict=MISMATCH nbad=$((nbad + 1))
            for e in "${errs[@]}"; do BAD+=("$id '$raw' over $tr: $e"); done
            BAD+=("$(evidence "$lport")")
            [ -s "$IT_DIR/err" ] && BAD+=("      client: $(head -c 300 "$IT_DIR/err" | tr '\n' ' ')")
        elif [ -n "${HF_EVIDENCE:-}" ]; then
            echo "$id '$raw' over $tr: status $status, $counted ${reasons:--}"; evidence "$lport"
            [ -s "$IT_DIR/err" ] && echo "      client: $(head -c 300 "$IT_DIR/err" | tr '\n' ' ')"
        fi
        printf -v row "$FMT" "$nform" "'$raw'" "$tr" "$exp" "$status" "$answer" "$counted" \
            "${reasons:--}" "$verdict"
        ROWS+=("$row")
    done
done 3<"$IT_DIR/forms"

printf "$FMT\n" "#" "form (as written in the table)" "via" "expected" "status" "answered" "counted" \
    "non-relay reason" "verdict"
printf '%s\n' "${ROWS[@]}"
note "expected: the table's outcome, * where the table names one for this transport"
note "$nform forms x ${#TRANSPORTS[@]} transports = $n requests in $(( ($(date +%s%N) - T1) / 1000000 )) ms ($(( (T1 - T0) / 1000000 )) ms before: stack up)"
assert_eq "$nform" "$NFORMS" "every form of the table run"
assert_eq "${#ROWS[@]}" "$((NFORMS * ${#TRANSPORTS[@]}))" "every form x transport checked"
if [ $nbad -gt 0 ]; then
    printf '%s\n' "${BAD[@]}" >&2
    fail "$nbad of $n requests do not match the table or the counting rule"
fi
echo "PASS"
