# shellcheck shell=sh
# The harness shared by the buildpacks' test scripts (buildpacks/test.sh,
# buildpacks/*/test.sh), sourced by each:  . "$BP_ROOT/testlib.sh"
# POSIX sh: it runs under sh (dash) and busybox sh.
#
# What a script gets:
#   make_temp_dir NAME  $T, a temp dir removed on exit (with the server stopped)
#   stop_server         stop the server under test ($RUNNING, a process group)
#   ok, not_ok, skip    report a test; counted in $passed, $failed, $skipped
#   expect_*            assertions that report through ok and not_ok
#   summary             the count lines; its status is the script's (0: none failed)
#   have, fetch, first_port, next_port, port_listening, wait_for_port,
#   expect_listening, wait_port_closed, new_dirs, for_each_shell, move_droplet,
#   make_launcher, $SETSID, bwrap_works, make_busybox_root
# Requests go to 127.0.0.1 only: sourcing this unsets the proxy variables.

# --- the temp dir and the server under test -----------------------------------------
RUNNING=""  # process group of the server under test, if any

# stop_server: stop the server under test, if any.
stop_server() {
    if [ -n "$RUNNING" ]; then
        # The whole process group (setsid made the server a group leader).
        kill -TERM "-$RUNNING" 2>/dev/null || kill -TERM "$RUNNING" 2>/dev/null
        wait "$RUNNING" 2>/dev/null
        RUNNING=""
    fi
}
cleanup() {
    stop_server
    rm -rf "$T"
}
# make_temp_dir NAME: set $T to a new temp dir ${TMPDIR:-/tmp}/NAME.XXXXXX, removed
# (after stop_server) when the script exits.
make_temp_dir() {
    T=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    trap cleanup EXIT
    trap 'exit 130' INT TERM HUP
}

# Requests go to 127.0.0.1 only: never through a proxy.
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

# --- reporting ----------------------------------------------------------------------
passed=0
failed=0
skipped=0
ok() {
    passed=$((passed + 1))
    echo "ok   - $1"
}
not_ok() {
    failed=$((failed + 1))
    echo "FAIL - $1"
    if [ -n "${2:-}" ]; then printf '%s\n' "$2" | sed 's/^/         | /'; fi
}
skip() {
    skipped=$((skipped + 1))
    echo "skip - $1"
}
# summary: the last lines ("N skipped", then "N passed, N failed"); fails if a test failed.
summary() {
    echo "$skipped skipped"
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

# expect_status NAME WANT GOT [DETAILS]
expect_status() {
    if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1 (exit status $3, wanted $2)" "${4:-}"; fi
}
# expect_eq NAME WANT GOT
expect_eq() {
    if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "wanted:
$2
got:
$3"; fi
}
# expect_in NAME NEEDLE TEXT: TEXT contains NEEDLE
expect_in() {
    case $3 in
        *"$2"*) ok "$1" ;;
        *) not_ok "$1 (no '$2' in:)" "$3" ;;
    esac
}
# expect_not_in NAME NEEDLE TEXT
expect_not_in() {
    case $3 in
        *"$2"*) not_ok "$1 (unexpected '$2' in:)" "$3" ;;
        *) ok "$1" ;;
    esac
}
# expect_file NAME PATH: PATH is a regular file
expect_file() { if [ -f "$2" ]; then ok "$1"; else not_ok "$1 ($2 is missing)"; fi; }
# expect_parses NAME FILE: two tests, "NAME parses with sh" and (if there is a
# busybox) "NAME parses with busybox sh".
expect_parses() {
    out=$(sh -n "$2" 2>&1)
    expect_status "$1 parses with sh" 0 $? "$out"
    if have busybox; then
        out=$(busybox sh -n "$2" 2>&1)
        expect_status "$1 parses with busybox sh" 0 $? "$out"
    fi
}

# --- helpers ------------------------------------------------------------------------
have() { command -v "$1" >/dev/null 2>&1; }

# fetch URL: print the body; fail on HTTP errors.
# (busybox 1.35's wget crashes with -T, hence timeout(1) around it.)
if have curl; then
    fetch() { curl -fsS --max-time 10 "$1"; }
elif have busybox; then
    fetch() { timeout 10 busybox wget -q -O- "$1"; }
else
    fetch() { timeout 10 wget -q -O- "$1"; }
fi

# first_port BASE: start the ports at BASE + $$ % 1000 (next_port gives the next free one).
first_port() { port=$(($1 + $$ % 1000)); }
# next_port: set $port to a free TCP port (after the last one, upwards).
next_port() {
    port=$((port + 1))
    while port_listening "$port"; do port=$((port + 1)); done
}
# port_listening PORT: something listens on TCP port PORT.
port_listening() {
    hex=$(printf ':%04X' "$1")
    cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
        awk -v p="$hex" '$2 ~ p"$" && $4 == "0A" { f = 1 } END { exit !f }'
}
# wait_for_port PORT: wait (up to 10 s) until something listens on PORT.
wait_for_port() {
    i=0
    while [ $i -lt 100 ]; do
        port_listening "$1" && return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}
# expect_listening NAME LOG: the test NAME: something listens on $port within 10 s;
# if not, it fails showing the server's LOG (a file), and so does this function.
expect_listening() {
    if wait_for_port "$port"; then
        ok "$1"
    else
        not_ok "$1" "$(cat "$2")"
        return 1
    fi
}
# wait_port_closed PORT: wait (up to 5 s) until nothing listens on PORT.
wait_port_closed() {
    i=0
    while port_listening "$1" && [ $i -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    ! port_listening "$1"
}

# new_dirs W: fresh staging dirs $W/tmp/{app,cache,deps/0,$PROFILE_DIR}, like the
# stager's. PROFILE_DIR: profile, unless the script sets it after sourcing this.
PROFILE_DIR=profile
new_dirs() {
    rm -rf "$1"
    mkdir -p "$1/tmp/app" "$1/tmp/cache" "$1/tmp/deps/0" "$1/tmp/$PROFILE_DIR"
}

# for_each_shell FUNCTION: call `FUNCTION SH` with SH = sh (/bin/sh: dash on
# Debian), then SH = busybox sh, if there is a busybox.
for_each_shell() {
    "$1" sh
    if have busybox; then "$1" "busybox sh"; else skip "$1 with busybox sh: busybox is not installed"; fi
}

# move_droplet W H: move the droplet staged in $W/tmp to where the launcher finds it,
# H (a fake /home/vcap): H/app, H/deps, H/profile.d (from $PROFILE_DIR) and an
# empty H/tmp. The staging dir $W/tmp is gone.
move_droplet() {
    mkdir -p "$2/tmp"
    mv "$1/tmp/app" "$2/app"
    mv "$1/tmp/deps" "$2/deps"
    mv "$1/tmp/$PROFILE_DIR" "$2/profile.d"
    rm -rf "$1/tmp"
}

# make_launcher H OUT: write to OUT dropship's launcher ($LAUNCH_SH, as the image
# runs it) with its /home/vcap paths pointed at H (a fake one on the host).
make_launcher() {
    sed "s#/home/vcap#$1#g" "$LAUNCH_SH" >"$2"
}
# To start a server in a new session (process group): "" without setsid.
# shellcheck disable=SC2034 # used by the scripts that source this file
SETSID=$(command -v setsid || true)

# --- bubblewrap sandboxes -----------------------------------------------------------
# bwrap_works: bwrap can run a command as uid 2000 in a user namespace here; if
# not, a skip says why.
bwrap_works() {
    if ! have bwrap; then
        skip "sandbox: bwrap is not installed"
        return 1
    fi
    if ! bwrap --unshare-user --uid 2000 --gid 2000 --ro-bind / / --dev /dev --proc /proc /bin/true 2>/dev/null; then
        skip "sandbox: bwrap cannot create a user namespace here"
        return 1
    fi
}

# make_busybox_root DIR BUSYBOX: a root filesystem in DIR holding only the busybox
# binary BUSYBOX (a path) as /bin/busybox, the links for its applets, and empty
# /tmp, /home, /dev, /proc (usable only if BUSYBOX is a static binary).
make_busybox_root() {
    mkdir -p "$1/bin" "$1/tmp" "$1/home" "$1/dev" "$1/proc"
    cp "$2" "$1/bin/busybox"
    for applet in $(busybox --list); do
        [ -e "$1/bin/$applet" ] || ln -s busybox "$1/bin/$applet"
    done
}
