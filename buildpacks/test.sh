#!/bin/sh
# Tests for the shipped buildpacks (staticfile, binary, then each buildpack's own test.sh):  sh buildpacks/test.sh
#
#  1. static checks: executable bits, shebangs, syntax under each shell, order file
#  2. bin/detect, bin/supply, bin/finalize, bin/release of each buildpack, run
#     directly on the host in temp dirs, under /bin/sh and under busybox sh
#  3. the real proof: stage a site, move the droplet where the launcher puts it
#     (a fake /home/vcap in a temp dir), start it the way the launcher does
#     (cwd = app, HOME, PORT, DEPS_DIR, TMPDIR set, profile.d sourced, then
#     `/bin/sh -c START_COMMAND`), fetch pages, stop it; once per web server
#  4. if bubblewrap works here: the same inside a sandbox as uid 2000, on a
#     busybox-only root filesystem and on this host's root (read-only)
#
# Missing tools (nginx, busybox, bwrap) skip their tests, saying so.
# Exits non-zero if any test failed; the last line is "N passed, N failed".
set -u

case $0 in
    */*) BP_ROOT=$(cd "${0%/*}" && pwd) ;;
    *) BP_ROOT=$(pwd) ;;
esac
SF=$BP_ROOT/staticfile
BIN=$BP_ROOT/binary

# shellcheck source=SCRIPTDIR/testlib.sh
. "$BP_ROOT/testlib.sh"
make_temp_dir buildpacks-test
first_port 18000

# --- helpers ------------------------------------------------------------------------
# The site used by the launch tests: Staticfile with root: public.
make_site() {
    mkdir -p "$1/public/sub" "$1/public/docs"
    printf 'root: public\ndirectory: visible\n' >"$1/Staticfile"
    echo '<h1>hello from dropship</h1>' >"$1/public/index.html"
    echo 'a sub page' >"$1/public/sub/page.txt"
    echo 'a doc' >"$1/public/docs/listed-file.txt"
    echo 'dot file' >"$1/public/.hidden"
    echo 'not public' >"$1/secret.txt"
}

# ==================================================================================
echo "# static checks"
for f in "$SF"/bin/* "$SF/lib/serve.sh" "$BIN"/bin/*; do
    name=${f#"$BP_ROOT"/}
    if [ -x "$f" ]; then ok "$name is executable"; else not_ok "$name is executable"; fi
    expect_eq "$name starts with #!/bin/sh" "#!/bin/sh" "$(head -n 1 "$f")"
    expect_parses "$name" "$f"
done
for f in "$SF/bin/detect" "$SF/bin/finalize" "$SF/bin/release" \
    "$BIN/bin/detect" "$BIN/bin/supply" "$BIN/bin/finalize" "$BIN/bin/release"; do
    [ -f "$f" ] || not_ok "${f#"$BP_ROOT"/} exists"
done
order=$(sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$BP_ROOT/order" | tr '\n' ' ')
expect_eq "order lists the language buildpacks before staticfile, binary last" "nodejs python staticfile binary " "$order"
for bp in $order; do
    if [ -x "$BP_ROOT/$bp/bin/detect" ]; then ok "order: $bp has bin/detect"; else not_ok "order: $bp has bin/detect"; fi
done

# ==================================================================================
# staticfile_tests SH: bin/detect, bin/finalize, bin/release run with shell SH.
staticfile_tests() {
    SH=$1
    echo "# staticfile, scripts run with $SH"
    W=$T/sf

    # detect
    new_dirs "$W"
    out=$($SH "$SF/bin/detect" "$W/tmp/app")
    expect_status "[$SH] detect: empty app is not static" 1 $?
    expect_eq "[$SH] detect: prints nothing when it fails" "" "$out"
    mkdir -p "$W/tmp/app/public" && echo hi >"$W/tmp/app/public/index.html"
    $SH "$SF/bin/detect" "$W/tmp/app" >/dev/null
    expect_status "[$SH] detect: public/index.html alone is not enough" 1 $?
    touch "$W/tmp/app/Staticfile"
    out=$($SH "$SF/bin/detect" "$W/tmp/app")
    expect_status "[$SH] detect: empty Staticfile" 0 $?
    expect_eq "[$SH] detect: prints the name" "staticfile" "$out"
    new_dirs "$W"
    echo hi >"$W/tmp/app/index.html"
    out=$($SH "$SF/bin/detect" "$W/tmp/app")
    expect_status "[$SH] detect: index.html at the root" 0 $?
    expect_eq "[$SH] detect: prints the name (index.html)" "staticfile" "$out"

    # finalize + release, default root
    out=$($SH "$SF/bin/finalize" "$W/tmp/app" "$W/tmp/cache" "$W/tmp/deps" 0 "$W/tmp/profile" 2>&1)
    expect_status "[$SH] finalize: index.html app" 0 $? "$out"
    expect_in "[$SH] finalize: says what it serves" "-----> Staticfile buildpack: serving /home/vcap/app
" "$out
"
    expect_eq "[$SH] finalize: config.yml" "name: staticfile
version: $(cat "$SF/VERSION")" "$(cat "$W/tmp/deps/0/config.yml" 2>&1)"
    if [ -x "$W/tmp/app/.staticfile/serve.sh" ]; then ok "[$SH] finalize: writes an executable .staticfile/serve.sh"; else not_ok "[$SH] finalize: writes an executable .staticfile/serve.sh"; fi
    expect_in "[$SH] finalize: root defaults to the app" "STATICFILE_ROOT='.'" "$(cat "$W/tmp/app/.staticfile/settings")"
    expect_in "[$SH] finalize: listing off by default" "STATICFILE_DIRECTORY_LISTING=off" "$(cat "$W/tmp/app/.staticfile/settings")"
    if grep -r "$W" "$W/tmp/app/.staticfile" >/dev/null; then
        not_ok "[$SH] finalize: no staging path in the generated files" "$(grep -r "$W" "$W/tmp/app/.staticfile")"
    else
        ok "[$SH] finalize: no staging path in the generated files"
    fi
    out=$($SH "$SF/bin/release" "$W/tmp/app")
    expect_status "[$SH] release" 0 $?
    expect_eq "[$SH] release: start command" "---
default_process_types:
  web: exec sh .staticfile/serve.sh" "$out"

    # Staticfile options: root, directory, quotes, comments, CRLF, unknown keys
    new_dirs "$W"
    mkdir -p "$W/tmp/app/public"
    echo hi >"$W/tmp/app/public/index.html"
    printf 'root: public\n' >"$W/tmp/app/Staticfile"
    out=$($SH "$SF/bin/finalize" "$W/tmp/app" "$W/tmp/cache" "$W/tmp/deps" 0 "$W/tmp/profile" 2>&1)
    expect_status "[$SH] finalize: root: public" 0 $? "$out"
    expect_in "[$SH] finalize: serves public" "-----> Staticfile buildpack: serving /home/vcap/app/public" "$out"
    expect_in "[$SH] finalize: settings root public" "STATICFILE_ROOT='public'" "$(cat "$W/tmp/app/.staticfile/settings")"

    printf 'pushstate: enabled\r\nroot: "./public/"  # the site\r\ndirectory: visible\r\n' >"$W/tmp/app/Staticfile"
    out=$($SH "$SF/bin/finalize" "$W/tmp/app" "$W/tmp/cache" "$W/tmp/deps" 0 "$W/tmp/profile" 2>&1)
    expect_status "[$SH] finalize: quoted root, comment, CRLF, unknown key" 0 $? "$out"
    expect_in "[$SH] finalize: ... root is public" "STATICFILE_ROOT='public'" "$(cat "$W/tmp/app/.staticfile/settings")"
    expect_in "[$SH] finalize: directory: visible" "STATICFILE_DIRECTORY_LISTING=on" "$(cat "$W/tmp/app/.staticfile/settings")"
    expect_in "[$SH] finalize: reports the listing" "-----> Directory listing: enabled" "$out"

    for bad in "missing" "../outside" "/etc" "a'b"; do
        printf 'root: %s\n' "$bad" >"$W/tmp/app/Staticfile"
        out=$($SH "$SF/bin/finalize" "$W/tmp/app" "$W/tmp/cache" "$W/tmp/deps" 0 "$W/tmp/profile" 2>&1)
        st=$?
        if [ $st -ne 0 ]; then
            expect_in "[$SH] finalize: rejects root: $bad" "ERROR: Staticfile: 'root: $bad'" "$out"
        else
            not_ok "[$SH] finalize: rejects root: $bad" "$out"
        fi
    done
}

for_each_shell staticfile_tests

# ==================================================================================
# binary_tests SH: the binary buildpack's scripts run with shell SH.
binary_tests() {
    SH=$1
    echo "# binary, scripts run with $SH"
    W=$T/bin
    new_dirs "$W"
    printf 'web: ./my-server\n' >"$W/tmp/app/Procfile"
    out=$($SH "$BIN/bin/detect" "$W/tmp/app")
    expect_status "[$SH] detect: never (even with a Procfile)" 1 $?
    expect_eq "[$SH] detect: prints nothing" "" "$out"

    out=$($SH "$BIN/bin/supply" "$W/tmp/app" "$W/tmp/cache" "$W/tmp/deps" 0 2>&1)
    expect_status "[$SH] supply: succeeds" 0 $? "$out"
    expect_in "[$SH] supply: config.yml" "name: binary" "$(cat "$W/tmp/deps/0/config.yml" 2>&1)"

    rm -f "$W/tmp/app/Procfile"
    out=$($SH "$BIN/bin/finalize" "$W/tmp/app" "$W/tmp/cache" "$W/tmp/deps" 0 "$W/tmp/profile" 2>&1)
    expect_status "[$SH] finalize: fails without a Procfile" 1 $? "$out"
    expect_in "[$SH] finalize: tells to add a Procfile" "Procfile" "$out"
    expect_in "[$SH] finalize: shows an example" "web: ./my-server" "$out"

    printf 'worker: ./my-worker\n' >"$W/tmp/app/Procfile"
    out=$($SH "$BIN/bin/finalize" "$W/tmp/app" "$W/tmp/cache" "$W/tmp/deps" 0 "$W/tmp/profile" 2>&1)
    expect_status "[$SH] finalize: fails with a Procfile without web" 1 $? "$out"

    # shellcheck disable=SC2016 # a literal $PORT
    printf 'worker: ./my-worker\r\nweb: ./my-server --port $PORT\r\n' >"$W/tmp/app/Procfile"
    printf '#!/bin/sh\n' >"$W/tmp/app/my-server"
    chmod +x "$W/tmp/app/my-server"
    rm -f "$W/tmp/deps/0/config.yml"
    out=$($SH "$BIN/bin/finalize" "$W/tmp/app" "$W/tmp/cache" "$W/tmp/deps" 0 "$W/tmp/profile" 2>&1)
    expect_status "[$SH] finalize: Procfile with web" 0 $? "$out"
    expect_in "[$SH] finalize: shows the start command" "-----> Start command (from Procfile): ./my-server --port \$PORT" "$out"
    expect_not_in "[$SH] finalize: no warning for an executable ./my-server" "WARNING" "$out"
    expect_eq "[$SH] finalize: config.yml" "name: binary
version: $(cat "$BIN/VERSION")" "$(cat "$W/tmp/deps/0/config.yml" 2>&1)"
    chmod -x "$W/tmp/app/my-server"
    out=$($SH "$BIN/bin/finalize" "$W/tmp/app" "$W/tmp/cache" "$W/tmp/deps" 0 "$W/tmp/profile" 2>&1)
    expect_in "[$SH] finalize: warns when ./my-server is not executable" "WARNING: ./my-server is not executable" "$out"

    out=$($SH "$BIN/bin/release" "$W/tmp/app")
    expect_status "[$SH] release" 0 $?
    expect_eq "[$SH] release: empty default_process_types" "---
default_process_types: {}" "$out"
}

for_each_shell binary_tests

# ==================================================================================
# check_site LABEL SERVER LOGFILE: the site of make_site answers on $port as it should.
check_site() {
    label=$1 server=$2 log=$3
    expect_listening "$label: listens on port $port" "$log" || return
    out=$(fetch "http://127.0.0.1:$port/" 2>&1)
    expect_in "$label: GET / serves public/index.html" "hello from dropship" "$out"
    out=$(fetch "http://127.0.0.1:$port/sub/page.txt" 2>&1)
    expect_eq "$label: GET /sub/page.txt" "a sub page" "$out"
    if fetch "http://127.0.0.1:$port/secret.txt" >/dev/null 2>&1; then
        not_ok "$label: files outside root: public are not served"
    else
        ok "$label: files outside root: public are not served"
    fi
    if [ "$server" = busybox ]; then
        skip "$label: directory listing (busybox httpd has none)"
    else
        out=$(fetch "http://127.0.0.1:$port/docs/" 2>&1)
        expect_in "$label: directory: visible lists /docs/" "listed-file.txt" "$out"
    fi
    if [ "$server" = nginx ]; then
        if fetch "http://127.0.0.1:$port/.hidden" >/dev/null 2>&1; then
            not_ok "$label: nginx hides dotfiles"
        else
            ok "$label: nginx hides dotfiles"
        fi
    fi
    expect_in "$label: logs what it serves" "/home/vcap/app/public on port $port with $server" "$(cat "$log")"
}

# expect_stopped LABEL: after stop_server, nothing listens on $port any more.
expect_stopped() {
    if wait_port_closed "$port"; then ok "$1: stops"; else not_ok "$1: stops"; fi
}

# What the launcher does: source profile.d, then run the start command with
# /bin/sh -c (it execs it). $1 is the start command.
# shellcheck disable=SC2016 # expanded by the launcher's shell
LAUNCHER='for f in "$HOME"/../profile.d/*.sh; do [ -f "$f" ] && . "$f"; done; exec /bin/sh -c "$1"'

# Servers on this host, best first (the serve script's own discovery).
HOST_SERVERS=$(sh "$SF/lib/serve.sh" --servers | tr '\n' ' ')
echo "# launch on the host (servers found: ${HOST_SERVERS:-none})"

# launch_on_host SERVER: stage the site, move the droplet to a fake /home/vcap
# and start it there with STATICFILE_SERVER=SERVER ("" = let it choose).
launch_on_host() {
    server=$1
    label="host ${server:-auto}"
    W=$T/host-${server:-auto}
    new_dirs "$W"
    make_site "$W/tmp/app"
    out=$("$SF/bin/finalize" "$W/tmp/app" "$W/tmp/cache" "$W/tmp/deps" 0 "$W/tmp/profile" 2>&1)
    expect_status "$label: staging" 0 $? "$out"
    start=$("$SF/bin/release" "$W/tmp/app" | sed -n 's/^  web: //p')

    # The droplet as the launcher sees it; the staging dir is gone.
    H=$W/home/vcap
    move_droplet "$W" "$H"

    next_port
    (
        cd "$H/app" &&
            HOME=$H/app PORT=$port DEPS_DIR=$H/deps TMPDIR=$H/tmp STATICFILE_SERVER=$server \
                exec $SETSID /bin/sh -c "$LAUNCHER" launcher "$start"
    ) >"$W/launch.log" 2>&1 &
    RUNNING=$!

    want=${server:-${HOST_SERVERS%% *}}
    check_site "$label" "$want" "$W/launch.log"
    # Every step execs the next one: the launcher's process is the server.
    exe=$(readlink "/proc/$RUNNING/exe" 2>/dev/null)
    expect_in "$label: the server replaced the launcher's shell (exec)" "$want" "${exe##*/}"
    stop_server
    expect_stopped "$label"
}

for server in nginx busybox python3; do
    case " $HOST_SERVERS " in
        *" $server "*) launch_on_host "$server" ;;
        *) skip "host $server: $server is not installed on this host" ;;
    esac
done
if [ -n "$HOST_SERVERS" ]; then launch_on_host ""; fi

# The serve script's errors.
W=$T/host-errors
new_dirs "$W"
make_site "$W/tmp/app"
"$SF/bin/finalize" "$W/tmp/app" "$W/tmp/cache" "$W/tmp/deps" 0 "$W/tmp/profile" >/dev/null 2>&1
out=$(cd "$W/tmp/app" && STATICFILE_SERVER=apache sh .staticfile/serve.sh 2>&1)
expect_status "serve: unknown STATICFILE_SERVER fails" 1 $? "$out"
expect_in "serve: ... and says why" "STATICFILE_SERVER must be nginx, busybox or python3" "$out"
mkdir "$W/nobin"
out=$(cd "$W/tmp/app" && PATH=$W/nobin STATICFILE_SERVER=python3 /bin/sh .staticfile/serve.sh 2>&1)
expect_status "serve: a forced server that is missing fails" 1 $? "$out"
expect_in "serve: ... and says why" "python3 is not available on this stack" "$out"
rm "$W/tmp/app/.staticfile/settings"
out=$(cd "$W/tmp/app" && sh .staticfile/serve.sh 2>&1)
expect_status "serve: fails without its settings" 1 $? "$out"

# ==================================================================================
# The same in a bubblewrap sandbox as uid 2000, as dropship runs it: staging
# with the app at /tmp/app, launch with it at /home/vcap/app.
#   busybox: a root filesystem holding only /bin/busybox and its applet links
#   debian:  this host's root filesystem, read-only
if bwrap_works; then sandbox_ok=yes; else sandbox_ok=no; fi

# sbx_run STACK W SERVER BWRAP-ARGS... COMMAND...: run COMMAND as uid 2000 in a
# sandbox whose root is STACK, with $W/stage at /tmp (the buildpacks at
# /tmp/buildpacks) and $W/home at /home/vcap, and the launcher's environment.
# With SBX_BG=yes it execs bwrap in a new session (to be run in the background).
SBX_BG=no
sbx_run() {
    stack=$1 w=$2 server=$3
    shift 3
    case $stack in
        busybox) root=$T/bbroot path=/bin ;;
        *) root=/ path=/usr/local/bin:/usr/bin:/bin ;;
    esac
    set -- --unshare-user --uid 2000 --gid 2000 --die-with-parent --clearenv \
        --ro-bind "$root" / --dev /dev --proc /proc --tmpfs /home \
        --bind "$w/stage" /tmp --ro-bind "$BP_ROOT" /tmp/buildpacks \
        --bind "$w/home" /home/vcap \
        --setenv PATH "$path" --setenv HOME /home/vcap/app --setenv PORT "$port" \
        --setenv DEPS_DIR /home/vcap/deps --setenv TMPDIR /home/vcap/tmp \
        --setenv STATICFILE_SERVER "$server" \
        "$@"
    if [ "$SBX_BG" = yes ]; then exec $SETSID bwrap "$@"; fi
    bwrap "$@"
}

# launch_in_sandbox STACK SERVER WANT: stage the site in the sandbox, then
# launch it there with STATICFILE_SERVER=SERVER; WANT: the server expected.
launch_in_sandbox() {
    stack=$1 server=$2 want=$3
    label="sandbox $stack ${server:-auto}"
    W=$T/sbx
    rm -rf "$W"
    mkdir -p "$W/stage/app" "$W/stage/cache" "$W/stage/deps/0" "$W/stage/profile" "$W/home"
    make_site "$W/stage/app"
    out=$(sbx_run "$stack" "$W" "" /tmp/buildpacks/staticfile/bin/detect /tmp/app 2>&1)
    expect_status "$label: detect" 0 $? "$out"
    out=$(sbx_run "$stack" "$W" "" /tmp/buildpacks/staticfile/bin/finalize \
        /tmp/app /tmp/cache /tmp/deps 0 /tmp/profile 2>&1)
    expect_status "$label: finalize" 0 $? "$out"
    expect_in "$label: finalize finds the server" " $want " "$(echo "$out" | grep 'this stack has:') "
    start=$(sbx_run "$stack" "$W" "" /tmp/buildpacks/staticfile/bin/release /tmp/app | sed -n 's/^  web: //p')
    expect_eq "$label: start command" "exec sh .staticfile/serve.sh" "$start"

    # The droplet, where the launcher puts it.
    mv "$W/stage/app" "$W/home/app"
    mv "$W/stage/deps" "$W/home/deps"
    mv "$W/stage/profile" "$W/home/profile.d"
    mkdir -p "$W/home/tmp"
    rm -rf "$W/stage"/*
    next_port
    (
        SBX_BG=yes
        sbx_run "$stack" "$W" "$server" --chdir /home/vcap/app /bin/sh -c "$LAUNCHER" launcher "$start"
    ) >"$W/launch.log" 2>&1 &
    RUNNING=$!
    check_site "$label" "$want" "$W/launch.log"
    stop_server
    expect_stopped "$label"
}

if [ "$sandbox_ok" = yes ]; then
    # A busybox-only root filesystem: /bin/busybox (a static binary) and its applets.
    if have busybox; then make_busybox_root "$T/bbroot" "$(command -v busybox)"; fi
    if ! bwrap --unshare-user --uid 2000 --gid 2000 --ro-bind "$T/bbroot" / /bin/sh -c true 2>/dev/null; then
        skip "sandbox busybox: no static busybox to build a busybox-only root with"
    else
        echo "# sandbox: busybox-only stack, uid 2000"
        launch_in_sandbox busybox "" busybox
        W=$T/sbx
        out=$(sbx_run busybox "$W" python3 --chdir /home/vcap/app /bin/sh -c 'exec sh .staticfile/serve.sh' 2>&1)
        expect_in "sandbox busybox: forcing python3 fails clearly" "python3 is not available on this stack" "$out"
    fi

    echo "# sandbox: this host's root filesystem read-only (debian stack), uid 2000"
    for server in nginx busybox python3; do
        case " $HOST_SERVERS " in
            *" $server "*) launch_in_sandbox debian "$server" "$server" ;;
            *) skip "sandbox debian $server: $server is not installed on this host" ;;
        esac
    done
fi

# ==================================================================================
# The language buildpacks have test scripts of their own: run them, add up their counts.
for own in "$BP_ROOT"/*/test.sh; do
    [ -f "$own" ] || continue
    echo "# ${own#"$BP_ROOT"/}"
    out=$(sh "$own" 2>&1)
    status=$?
    printf '%s\n' "$out" | sed 's/^/    /'
    counts=$(printf '%s\n' "$out" | tail -n 1)
    case "$counts" in
        *" passed, "*" failed")
            p=${counts%% passed*}; f=${counts#*passed, }; f=${f%% failed*}
            passed=$((passed + p)); failed=$((failed + f))
            [ "$status" -eq 0 ] || [ "$f" -gt 0 ] || not_ok "${own#"$BP_ROOT"/} exited $status"
            ;;
        *) not_ok "${own#"$BP_ROOT"/} ended without a count line" "$counts" ;;
    esac
done

summary
