#!/bin/sh
# Tests for the python buildpack:  sh buildpacks/python/test.sh
#
#  1. static checks: executable bits, shebangs, syntax (sh, busybox sh, python)
#  2. bin/detect and bin/release, under /bin/sh and busybox sh
#  3. bin/supply on the host in temp dirs, with wheels that `pip download` fetches
#     once (six, tabulate; skipped without network): install, launch environment
#     files, build cache reuse (timed) and damaged caches, missing vendor/ or
#     wheels, broken wheels, no pip (a python3 that runs with -S: no site-packages,
#     so no pip), no python3 at all, pyproject.toml apps, bin/finalize
#  4. the real proof: stage an app whose app.py (http.server) imports the vendored
#     packages, move the droplet to a fake /home/vcap, start it with dropship's own
#     launcher (src/image/launch.sh with /home/vcap replaced by the fake one), fetch
#     a page, stop it; once as the detected buildpack, once with no pip as a supply
#     buildpack for binary (Procfile)
#  5. if bubblewrap works here: staging as uid 2000 with no network on this host's
#     root (read-only; its /usr/bin/python3 and Debian pip), launch with the real
#     launcher at /home/vcap; and a busybox-only root (no python3)
#
# Missing tools (busybox, bwrap, network) skip their tests, saying so.
# Exits non-zero if any test failed; the last line is "N passed, N failed".
set -u

case $0 in
    */*) BP=$(cd "${0%/*}" && pwd) ;;
    *) BP=$(pwd) ;;
esac
REPO=$(cd "$BP/../.." && pwd)
LAUNCH_SH=$REPO/src/image/launch.sh
BINARY_BP=$REPO/buildpacks/binary

# shellcheck source=SCRIPTDIR/../testlib.sh
. "$BP/../testlib.sh"
make_temp_dir python-bp-test
first_port 19000

# --- assertions (the common ones are in testlib.sh) ---------------------------------
# expect_fail NAME GOT [DETAILS]: a non-zero exit status
expect_fail() {
    if [ "$2" != 0 ]; then ok "$1"; else not_ok "$1 (exit status 0, wanted a failure)" "${3:-}"; fi
}
# expect_exec NAME PATH
expect_exec() { if [ -x "$2" ]; then ok "$1"; else not_ok "$1 ($2 is not executable)"; fi; }

# --- helpers ------------------------------------------------------------------------
# busybox_path: busybox's absolute path (busybox sh's `command -v` may say just "busybox").
busybox_path() {
    for d in $(echo "$PATH" | tr ':' ' '); do
        if [ -x "$d/busybox" ]; then
            echo "$d/busybox"
            return 0
        fi
    done
    return 1
}

# now_ms: milliseconds since the epoch (GNU date; whole seconds elsewhere).
now_ms() {
    ns=$(date +%s%N)
    case $ns in
        *N) echo $(($(date +%s) * 1000)) ;;
        *) echo $((ns / 1000000)) ;;
    esac
}

# supply W [SH]: run bin/supply on $W/tmp with shell SH (default sh), as the
# lifecycle does (DEPS_DIR set). Sets $out (stdout and stderr) and $st.
supply() {
    out=$(DEPS_DIR=$1/tmp/deps ${2:-sh} "$BP/bin/supply" "$1/tmp/app" "$1/tmp/cache/final" "$1/tmp/deps" 0 2>&1)
    st=$?
}
# finalize W: bin/finalize on $W/tmp. Sets $out and $st.
finalize() {
    out=$(DEPS_DIR=$1/tmp/deps sh "$BP/bin/finalize" "$1/tmp/app" "$1/tmp/cache/final" "$1/tmp/deps" 0 "$1/tmp/profile" 2>&1)
    st=$?
}

VERSION=$(cat "$BP/VERSION")
HOST_PY=$(command -v python3 || true)

# ==================================================================================
echo "# static checks"
for f in "$BP"/bin/detect "$BP"/bin/supply "$BP"/bin/finalize "$BP"/bin/release "$BP/test.sh"; do
    name=python/${f#"$BP"/}
    if [ "$f" != "$BP/test.sh" ]; then
        expect_exec "$name is executable" "$f"
        expect_eq "$name starts with #!/bin/sh" "#!/bin/sh" "$(head -n 1 "$f")"
    fi
    expect_parses "$name" "$f"
done
out=$(sh -n "$BP/lib/profile.sh" 2>&1)
expect_status "python/lib/profile.sh parses with sh" 0 $? "$out"
if [ -n "$HOST_PY" ]; then
    out=$(python3 -I -c 'import ast, sys; ast.parse(open(sys.argv[1]).read())' "$BP/lib/helper.py" 2>&1)
    expect_status "python/lib/helper.py parses" 0 $? "$out"
fi
expect_in "VERSION is a version" "." "$VERSION"

# ==================================================================================
# detect_release_tests SH: bin/detect and bin/release run with shell SH.
detect_release_tests() {
    SH=$1
    echo "# detect and release, with $SH"
    W=$T/dr
    new_dirs "$W"
    A=$W/tmp/app
    echo '<h1>hi</h1>' >"$A/index.html"
    echo 'print(1)' >"$A/app.py"
    out=$($SH "$BP/bin/detect" "$A")
    expect_status "[$SH] detect: no requirements.txt, pyproject.toml or setup.py" 1 $?
    expect_eq "[$SH] detect: prints nothing when it fails" "" "$out"
    for f in requirements.txt pyproject.toml setup.py; do
        touch "$A/$f"
        out=$($SH "$BP/bin/detect" "$A")
        expect_status "[$SH] detect: $f" 0 $?
        expect_eq "[$SH] detect: prints python ($f)" "python" "$out"
        rm "$A/$f"
    done

    out=$($SH "$BP/bin/release" "$A")
    expect_status "[$SH] release" 0 $?
    expect_eq "[$SH] release: app.py" "---
default_process_types:
  web: exec python3 app.py" "$out"
    echo 'print(1)' >"$A/main.py"
    expect_eq "[$SH] release: app.py wins over main.py" "---
default_process_types:
  web: exec python3 app.py" "$($SH "$BP/bin/release" "$A")"
    rm "$A/app.py"
    expect_eq "[$SH] release: main.py" "---
default_process_types:
  web: exec python3 main.py" "$($SH "$BP/bin/release" "$A")"
    rm "$A/main.py"
    expect_eq "[$SH] release: no web process without app.py or main.py" "---
default_process_types: {}" "$($SH "$BP/bin/release" "$A")"
}
for_each_shell detect_release_tests

# ==================================================================================
echo "# vendored wheels (pip download, the one step that needs the network)"
VENDOR=$T/vendor
NET=no
PY_MM=""
if [ -z "$HOST_PY" ]; then
    skip "no python3 on this host: the install tests need one"
else
    PY_MM=$(python3 -I -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    PLATFORM=manylinux2014_$(python3 -I -c 'import platform; print(platform.machine())')
    if out=$(python3 -m pip download -q -d "$VENDOR" --timeout 20 --retries 1 --only-binary=:all: \
        --python-version "$PY_MM" --platform "$PLATFORM" six tabulate 2>&1); then
        NET=yes
        ok "pip download six tabulate ($(cd "$VENDOR" && echo *.whl))"
    else
        skip "pip download failed (no network?): skipping the tests that need vendored wheels"
        printf '%s\n' "$out" | tail -n 3 | sed 's/^/         | /'
    fi
fi
SIX_VERSION=$(cd "$VENDOR" 2>/dev/null && echo six-*.whl | sed -n 's/^six-\([^-]*\)-.*/\1/p')

# make_app DIR: the test app: requirements six + tabulate, their wheels in vendor/,
# and an app.py serving a page that says where things come from.
make_app() {
    mkdir -p "$1/vendor"
    cp "$VENDOR"/*.whl "$1/vendor/"
    printf '# the test app\nsix\r\ntabulate  # tables\n' >"$1/requirements.txt"
    cat >"$1/app.py" <<'EOF'
import os
import shutil
from http.server import BaseHTTPRequestHandler, HTTPServer

import six
import tabulate


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = "\n".join([
            "hello from python",
            "six=%s %s" % (six.__version__, six.__file__),
            "tabulate=%s" % tabulate.__file__,
            "tabulate-command=%s" % shutil.which("tabulate"),
            "PYTHONPATH=%s" % os.environ.get("PYTHONPATH", ""),
            "PYTHONUNBUFFERED=%s" % os.environ.get("PYTHONUNBUFFERED", ""),
            "cwd=%s" % os.getcwd(),
        ]).encode() + b"\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


port = int(os.environ.get("PORT", "8080"))
server = HTTPServer(("0.0.0.0", port), Handler)
print("app listening on port %d" % port)  # reaches the log at once only if unbuffered
server.serve_forever()
EOF
}

# ==================================================================================
# install_tests SH: install from vendor/ with bin/supply run by shell SH.
install_tests() {
    SH=$1
    echo "# supply: install from vendor/, with $SH"
    W=$T/inst
    new_dirs "$W"
    make_app "$W/tmp/app"
    supply "$W" "$SH"
    expect_status "[$SH] supply: succeeds" 0 "$st" "$out"
    expect_in "[$SH] supply: names the buildpack" "-----> Python buildpack $VERSION" "$out"
    expect_in "[$SH] supply: prints the stack's Python and pip" "-----> Python $PY_MM." "$out"
    expect_in "[$SH] supply: ... and pip" ", pip " "$out"
    expect_in "[$SH] supply: says it installs with pip" "-----> Installing requirements.txt from vendor/ with pip" "$out"
    expect_in "[$SH] supply: lists what it installed" "-----> Installed 2 packages in deps/0/python:
       six $SIX_VERSION
       tabulate " "$out"
    P=$W/tmp/deps/0/python
    expect_file "[$SH] supply: six.py in deps/0/python" "$P/six.py"
    expect_exec "[$SH] supply: the tabulate command in deps/0/python/bin" "$P/bin/tabulate"
    expect_eq "[$SH] supply: env/PYTHONPATH is the staging path (for later buildpacks)" \
        "$P" "$(cat "$W/tmp/deps/0/env/PYTHONPATH")"
    expect_eq "[$SH] supply: config.yml" "name: python
version: $VERSION" "$(cat "$W/tmp/deps/0/config.yml" 2>&1)"
    prof=$W/tmp/deps/0/profile.d/python.sh
    expect_file "[$SH] supply: profile.d/python.sh" "$prof"
    # shellcheck disable=SC2016 # literal $DEPS_DIR
    expect_in "[$SH] supply: profile.d uses \$DEPS_DIR" '_python_dir=$DEPS_DIR/0/python' "$(cat "$prof")"
    expect_not_in "[$SH] supply: profile.d never names the staging path" "$W" "$(cat "$prof")"
    if [ -e "$W/tmp/app/build" ] || [ -e "$W/tmp/app/.pip.log" ] || [ -e "$W/tmp/deps/0/.pip.log" ]; then
        not_ok "[$SH] supply: leaves no build files behind"
    else
        ok "[$SH] supply: leaves no build files behind"
    fi

    # The profile script at launch: deps moved to a fake /home/vcap/deps; the
    # launcher exported env/PYTHONPATH (the stale staging path) and the user had
    # PYTHONPATH=/user/lib. Sourced twice, as a login shell might.
    D=$W/launch/deps
    mkdir -p "$W/launch"
    cp -Rp "$W/tmp/deps" "$D"
    env_pp=$(cat "$D/0/env/PYTHONPATH")
    # shellcheck disable=SC2016,SC2086 # $SH may be "busybox sh"; $1 is the inner shell's
    res=$(cd "$W" && env -i PATH=/usr/bin:/bin DEPS_DIR="$D" PYTHONPATH="$env_pp:/user/lib" \
        $SH -c '. "$1"; . "$1"; echo "$PYTHONPATH|$PATH|$PYTHONUNBUFFERED|$(set | grep -c "^_python_")"' sh "$D/0/profile.d/python.sh")
    expect_eq "[$SH] profile.d: PYTHONPATH, PATH, PYTHONUNBUFFERED at launch; its variables unset" \
        "$D/0/python:/user/lib|$D/0/python/bin:/usr/bin:/bin|1|0" "$res"
    # shellcheck disable=SC2016,SC2086
    res=$(env -i PATH=/usr/bin:/bin DEPS_DIR="$D" $SH -c '. "$1"; echo "$PYTHONPATH"' sh "$D/0/profile.d/python.sh")
    expect_eq "[$SH] profile.d: PYTHONPATH without an earlier one" "$D/0/python" "$res"
    if [ "$SH" = sh ]; then
        # shellcheck disable=SC2016
        res=$(env -i PATH="$PATH" DEPS_DIR="$D" sh -c '. "$1"; cd / && python3 -c "import six, tabulate; print(six.__file__)" && tabulate --help | head -n 1' sh "$D/0/profile.d/python.sh" 2>&1)
        expect_in "profile.d: python3 imports the packages from deps" "$D/0/python/six.py" "$res"
        expect_in "profile.d: the packages' commands are on PATH" "usage: tabulate" "$(printf '%s' "$res" | tr 'U' 'u')"
    fi
}

# cache_tests: the build cache.
cache_tests() {
    echo "# supply: build cache"
    W=$T/cache
    new_dirs "$W"
    make_app "$W/tmp/app"
    t0=$(now_ms)
    supply "$W"
    t1=$(now_ms)
    expect_status "first build" 0 "$st" "$out"
    expect_not_in "first build: nothing to reuse" "Reusing cached" "$out"
    expect_in "first build: saves the packages in the cache" "Saved the installed packages in the build cache" "$out"
    rm -rf "$W/tmp/deps/0"/*  # as in a new build: the deps dir starts empty
    t2=$(now_ms)
    supply "$W"
    t3=$(now_ms)
    expect_status "second build" 0 "$st" "$out"
    expect_in "second build: reuses the cache" "-----> Reusing cached packages" "$out"
    expect_not_in "second build: pip does not run" "Installing requirements.txt" "$out"
    expect_file "second build: six.py restored" "$W/tmp/deps/0/python/six.py"
    expect_exec "second build: the tabulate command restored, executable" "$W/tmp/deps/0/python/bin/tabulate"
    first=$((t1 - t0)) second=$((t3 - t2))
    echo "     | supply took ${first} ms, then ${second} ms with the cache"
    if [ "$second" -lt "$first" ]; then ok "second build is faster (${first} ms -> ${second} ms)"; else skip "second build was not faster (${first} ms -> ${second} ms): timing is not asserted"; fi

    # Another requirements.txt: the cache is out of date.
    printf 'six\n' >"$W/tmp/app/requirements.txt"
    supply "$W"
    expect_status "changed requirements.txt" 0 "$st" "$out"
    expect_in "changed requirements.txt: cache out of date" "Cached packages are out of date" "$out"
    expect_in "changed requirements.txt: installs afresh" "-----> Installed 1 package in" "$out"
    if [ -e "$W/tmp/deps/0/python/tabulate" ]; then not_ok "changed requirements.txt: tabulate is gone"; else ok "changed requirements.txt: tabulate is gone"; fi
    supply "$W"
    expect_in "changed requirements.txt, second build: reuses the new cache" "Reusing cached" "$out"

    # Damaged caches: a file missing, a file truncated, the manifest gone, a garbage key.
    C=$W/tmp/cache/final/python
    for damage in "rm $C/site/six.py" "truncate $C/site/six.py" "rm $C/manifest" "rm $C/site" "garbage $C/key"; do
        # shellcheck disable=SC2086 # split on purpose
        set -- $damage
        case $1 in
            rm) rm -rf "$2" ;;
            truncate) : >"$2" ;;
            garbage) printf 'not a key\n' >"$2" ;;
        esac
        supply "$W"
        expect_status "cache damaged ($1 ${2##*/}): the build succeeds" 0 "$st" "$out"
        expect_not_in "cache damaged ($1 ${2##*/}): not reused" "Reusing cached" "$out"
        if [ "$1" != garbage ]; then
            expect_in "cache damaged ($1 ${2##*/}): warns" "WARNING: the cached packages are damaged" "$out"
        fi
        if [ -s "$W/tmp/deps/0/python/six.py" ]; then ok "cache damaged ($1 ${2##*/}): six.py installed"; else not_ok "cache damaged ($1 ${2##*/}): six.py installed"; fi
        supply "$W"
        expect_in "cache damaged ($1 ${2##*/}): repaired for the next build" "Reusing cached" "$out"
    done

    # A cache directory that cannot be used (a file in its place).
    new_dirs "$W"
    make_app "$W/tmp/app"
    echo "not a directory" >"$W/tmp/cache/final"
    supply "$W"
    expect_status "unusable cache dir: the build succeeds" 0 "$st" "$out"
    expect_in "unusable cache dir: warns" "WARNING: the build cache" "$out"
    expect_file "unusable cache dir: six.py installed" "$W/tmp/deps/0/python/six.py"
}

# failure_tests: what users get wrong.
failure_tests() {
    echo "# supply: failures"
    W=$T/fail
    new_dirs "$W"
    printf 'six\ntabulate\n' >"$W/tmp/app/requirements.txt"
    supply "$W"
    expect_fail "no vendor/: fails" "$st" "$out"
    expect_in "no vendor/: says so" "The app has no vendor/ folder" "$out"
    expect_in "no vendor/: shows pip's reason" "No matching distribution found for six" "$out"
    expect_in "no vendor/: tells how to vendor" "-----> python: staging has no network; vendor your dependencies: run \`pip download -d vendor -r requirements.txt --only-binary=:all: --python-version $PY_MM --platform manylinux2014_" "$out"
    expect_not_in "no vendor/: no Python traceback" "Traceback" "$out"

    mkdir -p "$W/tmp/app/vendor"
    cp "$VENDOR"/six-*.whl "$W/tmp/app/vendor/"
    supply "$W"
    expect_fail "a wheel missing: fails" "$st" "$out"
    expect_in "a wheel missing: names it" "No matching distribution found for tabulate" "$out"
    expect_in "a wheel missing: tells how to vendor" "pip download -d vendor -r requirements.txt" "$out"

    echo "this is not a zip file" >"$W/tmp/app/vendor/tabulate-9.9.9-py3-none-any.whl"
    supply "$W"
    expect_fail "a broken wheel: fails" "$st" "$out"
    expect_in "a broken wheel: says pip failed" "-----> python: pip install failed:" "$out"
    expect_not_in "a broken wheel: no Python traceback" "Traceback" "$out"

    # Nothing to install: no vendor/ needed, the launch environment is still set up.
    new_dirs "$W"
    printf '# nothing yet\n\n' >"$W/tmp/app/requirements.txt"
    supply "$W"
    expect_status "empty requirements.txt: succeeds without vendor/" 0 "$st" "$out"
    expect_in "empty requirements.txt: says so" "requirements.txt lists no packages: nothing to install" "$out"
    expect_file "empty requirements.txt: profile.d written" "$W/tmp/deps/0/profile.d/python.sh"
    new_dirs "$W"
    echo 'print(1)' >"$W/tmp/app/server.py"
    supply "$W"
    expect_status "no requirements at all (a supply for another buildpack): succeeds" 0 "$st" "$out"
    expect_file "no requirements at all: profile.d written" "$W/tmp/deps/0/profile.d/python.sh"
    expect_file "no requirements at all: config.yml written" "$W/tmp/deps/0/config.yml"

    # The app asks for another Python than the stack's.
    new_dirs "$W"
    printf 'python-2.7.18\n' >"$W/tmp/app/runtime.txt"
    supply "$W"
    expect_in "runtime.txt for another Python: warns" "WARNING: runtime.txt asks for Python 2.7.18" "$out"
}

# nopip_tests: a python3 without pip (run with -S: no site-packages).
NOPIP=$T/nopip
nopip_tests() {
    echo "# supply: a stack whose python3 has no pip"
    mkdir -p "$NOPIP"
    real=$(python3 -I -c 'import sys; print(sys.executable)')
    printf '#!/bin/sh\n# python3 without site-packages, so without pip\nexec %s -S "$@"\n' "$real" >"$NOPIP/python3"
    chmod +x "$NOPIP/python3"
    if PATH=$NOPIP:$PATH python3 -m pip --version >/dev/null 2>&1; then
        skip "no pip: python3 -S still finds pip on this host"
        return
    fi
    W=$T/np
    new_dirs "$W"
    make_app "$W/tmp/app"
    # Wheels that do not fit: another Python, another platform; and an sdist.
    : >"$W/tmp/app/vendor/other-1.0-cp39-cp39-manylinux2014_x86_64.whl"
    : >"$W/tmp/app/vendor/winonly-1.0-py3-none-win_amd64.whl"
    : >"$W/tmp/app/vendor/sourceonly-1.0.tar.gz"
    PATH=$NOPIP:$PATH supply "$W"
    expect_status "no pip: succeeds" 0 "$st" "$out"
    expect_in "no pip: prints the Python, no pip" "-----> Python $PY_MM." "$out"
    expect_in "no pip: says how it installs" "No pip on this stack: installing the vendored wheels by unpacking them (python3's zipfile module)" "$out"
    expect_in "no pip: unpacks six" "unpacked six-" "$out"
    expect_in "no pip: writes tabulate's command" "(commands: tabulate)" "$out"
    expect_in "no pip: skips a wheel for another Python" "skipped other-1.0-cp39-cp39-manylinux2014_x86_64.whl: built for another Python or platform" "$out"
    expect_in "no pip: skips a wheel for another platform" "skipped winonly-1.0-py3-none-win_amd64.whl" "$out"
    expect_in "no pip: skips an sdist" "skipped sourceonly-1.0.tar.gz: a source distribution needs pip" "$out"
    expect_in "no pip: lists what it installed" "       six $SIX_VERSION" "$out"
    P=$W/tmp/deps/0/python
    res=$(cd / && PYTHONPATH=$P PATH=$NOPIP:$PATH python3 -c 'import six, tabulate; print(six.__file__); print(tabulate.tabulate([[1, 2]]))' 2>&1)
    expect_in "no pip: six imports from deps" "$P/six.py" "$res"
    res=$(cd / && PYTHONPATH=$P "$P/bin/tabulate" --help 2>&1 | head -n 1)
    expect_in "no pip: the tabulate command runs" "tabulate" "$res"
    if ls "$P"/__pycache__/six.*.pyc >/dev/null 2>&1; then ok "no pip: precompiled"; else not_ok "no pip: precompiled"; fi
    expect_file "no pip: profile.d written" "$W/tmp/deps/0/profile.d/python.sh"
    PATH=$NOPIP:$PATH supply "$W"
    expect_in "no pip: the cache works too" "Reusing cached packages" "$out"

    printf 'six\nrequests>=2\n' >"$W/tmp/app/requirements.txt"
    PATH=$NOPIP:$PATH supply "$W"
    expect_fail "no pip, a wheel missing: fails" "$st" "$out"
    expect_in "no pip, a wheel missing: names it" "No matching distribution found for requests" "$out"
    expect_in "no pip, a wheel missing: tells how to vendor" "pip download -d vendor -r requirements.txt" "$out"
    expect_not_in "no pip, a wheel missing: no traceback" "Traceback" "$out"

    printf 'six\n' >"$W/tmp/app/requirements.txt"
    cp "$W/tmp/app/vendor"/six-*.whl "$W/tmp/app/vendor/six-0.1-py3-none-any.whl"
    PATH=$NOPIP:$PATH supply "$W"
    expect_fail "no pip, two wheels for one project: fails" "$st" "$out"
    expect_in "no pip, two wheels for one project: says so" "vendor/ has 2 wheels for six" "$out"
}

# nopython_tests: a stack without python3 at all.
nopython_tests() {
    echo "# supply: a stack without python3"
    NOPY=$T/nopy
    mkdir -p "$NOPY"
    # Every command of this host but python: busybox's applets, else links to a list.
    if have busybox; then
        bb=$(busybox_path)
        for a in $(busybox --list); do ln -s "$bb" "$NOPY/$a"; done
    else
        for c in sh cat sed grep mkdir rm cp mv tr head tail mktemp; do ln -s "$(command -v $c)" "$NOPY/$c"; done
    fi
    rm -f "$NOPY"/python*
    W=$T/nopy-app
    new_dirs "$W"
    printf 'six\n' >"$W/tmp/app/requirements.txt"
    out=$(PATH=$NOPY DEPS_DIR=$W/tmp/deps "$NOPY/sh" "$BP/bin/supply" "$W/tmp/app" "$W/tmp/cache" "$W/tmp/deps" 0 2>&1)
    expect_fail "no python3: fails" $? "$out"
    expect_in "no python3: says to use a stack with python3" "-----> python: this stack has no python3: use a stack with python3" "$out"
    out=$(PATH=$NOPY "$NOPY/sh" "$BP/bin/detect" "$W/tmp/app")
    expect_eq "no python3: detect still works" "python" "$out"
}

# project_tests: pyproject.toml / setup.py apps (pip install .).
project_tests() {
    echo "# supply: pyproject.toml app"
    W=$T/proj
    new_dirs "$W"
    A=$W/tmp/app
    cat >"$A/pyproject.toml" <<'EOF'
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "demo-app"
version = "0.1"
dependencies = ["six"]

[project.scripts]
demo-hello = "demo_app:hello"

[tool.setuptools]
py-modules = ["demo_app"]
EOF
    printf 'def hello():\n    print("hello from demo-app")\n' >"$A/demo_app.py"
    mkdir -p "$A/vendor"
    cp "$VENDOR"/six-*.whl "$A/vendor/"
    supply "$W"
    expect_fail "pyproject.toml, build backend not vendored: fails" "$st" "$out"
    expect_in "pyproject.toml, build backend not vendored: says which" "No matching distribution found for setuptools>=61" "$out"
    expect_in "pyproject.toml, build backend not vendored: tells how to vendor it" "pip download -d vendor . 'setuptools>=61' --only-binary=:all:" "$out"

    if python3 -m pip download -q -d "$T/setuptools" --timeout 20 --retries 1 --only-binary=:all: \
        --python-version "$PY_MM" --platform "$PLATFORM" 'setuptools>=61' >/dev/null 2>&1; then
        cp "$T"/setuptools/*.whl "$A/vendor/"
        supply "$W"
        expect_status "pyproject.toml, backend vendored: succeeds" 0 "$st" "$out"
        expect_in "pyproject.toml: installs the app itself" "-----> Installing the app (pip install .)" "$out"
        expect_in "pyproject.toml: ... and its dependencies" "       six $SIX_VERSION" "$out"
        expect_in "pyproject.toml: lists the app" "       demo-app 0.1" "$out"
        expect_exec "pyproject.toml: the app's command" "$W/tmp/deps/0/python/bin/demo-hello"
        res=$(PYTHONPATH=$W/tmp/deps/0/python "$W/tmp/deps/0/python/bin/demo-hello" 2>&1)
        expect_eq "pyproject.toml: the app's command runs" "hello from demo-app" "$res"
        if [ -e "$A/build" ] || ls "$A"/*.egg-info >/dev/null 2>&1; then
            not_ok "pyproject.toml: no build files left in the app" "$(ls "$A")"
        else
            ok "pyproject.toml: no build files left in the app"
        fi
        supply "$W"
        expect_in "pyproject.toml: unchanged app reuses the cache" "Reusing cached" "$out"
        echo "# changed" >>"$A/demo_app.py"
        supply "$W"
        expect_in "pyproject.toml: a changed app is installed afresh" "Cached packages are out of date (the app" "$out"
    else
        skip "pyproject.toml with a vendored backend: cannot download setuptools"
    fi

    echo "# supply: setup.py app"
    new_dirs "$W"
    A=$W/tmp/app
    printf 'from setuptools import setup\nsetup(name="legacy", version="1.0", py_modules=["legacy"])\n' >"$A/setup.py"
    echo 'X = 1' >"$A/legacy.py"
    supply "$W"
    expect_fail "setup.py, no vendor/: fails" "$st" "$out"
    expect_in "setup.py: tells to vendor setuptools" "pip download -d vendor . 'setuptools>=40.8.0' 'wheel'" "$out"
}

# finalize_tests: bin/finalize when python is the last buildpack.
finalize_tests() {
    echo "# finalize"
    W=$T/fin
    new_dirs "$W"
    make_app "$W/tmp/app"
    finalize "$W"
    expect_status "finalize without supply: succeeds" 0 "$st" "$out"
    expect_in "finalize without supply: runs it" "bin/supply has not run for this app: running it now" "$out"
    expect_file "finalize without supply: packages installed" "$W/tmp/deps/0/python/six.py"
    expect_in "finalize: reports the start command" "-----> Start command: exec python3 app.py" "$out"
    rm "$W/tmp/deps/0/config.yml"
    finalize "$W"
    expect_not_in "finalize after supply: does not run it again" "running it now" "$out"
    expect_file "finalize: writes a missing config.yml" "$W/tmp/deps/0/config.yml"
    # shellcheck disable=SC2016 # a literal $PORT
    printf 'web: python3 -m http.server $PORT\n' >"$W/tmp/app/Procfile"
    finalize "$W"
    expect_in "finalize: reports the Procfile's command" "-----> Start command (from Procfile): python3 -m http.server \$PORT" "$out"
    rm "$W/tmp/app/Procfile" "$W/tmp/app/app.py"
    finalize "$W"
    expect_status "finalize: no start command is not an error" 0 "$st" "$out"
    expect_in "finalize: but warns" "WARNING: this app has no start command" "$out"
    expect_in "finalize: ... and tells what to do" "web: python3 server.py" "$out"
}

if [ "$NET" = yes ]; then
    for_each_shell install_tests
    cache_tests
    failure_tests
    nopip_tests
    project_tests
    finalize_tests
else
    skip "install, cache, failure, no-pip, pyproject and finalize tests: no vendored wheels"
fi
if [ -n "$HOST_PY" ]; then nopython_tests; fi

# ==================================================================================
# check_app LABEL H LOG: the test app answers on $port, from the droplet in $H.
check_app() {
    label=$1 H=$2 log=$3
    expect_listening "$label: listens on port $port" "$log" || return 1
    page=$(fetch "http://127.0.0.1:$port/" 2>&1)
    expect_in "$label: GET /" "hello from python" "$page"
    expect_in "$label: six comes from the droplet's deps" "six=$SIX_VERSION $H/deps/0/python/six.py" "$page"
    expect_in "$label: PYTHONPATH is the launch path only (no staging path)" "PYTHONPATH=$H/deps/0/python
" "$page"
    expect_in "$label: tabulate's command is on PATH" "tabulate-command=$H/deps/0/python/bin/tabulate" "$page"
    expect_in "$label: PYTHONUNBUFFERED=1" "PYTHONUNBUFFERED=1" "$page"
    expect_in "$label: runs in the app directory" "cwd=$H/app" "$page"
    expect_in "$label: its output reaches the log at once (unbuffered)" "app listening on port $port" "$(cat "$log")"
}

# stop_check LABEL: SIGTERM to the launcher's pid alone stops the app: python replaced
# the shells (exec) and receives the signal itself.
stop_check() {
    exe=$(readlink "/proc/$RUNNING/exe" 2>/dev/null)
    expect_in "$1: the app replaced the launcher's shells (exec)" "python" "${exe##*/}"
    kill -TERM "$RUNNING" 2>/dev/null
    if wait_port_closed "$port"; then ok "$1: SIGTERM to the app's pid stops it"; else not_ok "$1: SIGTERM to the app's pid stops it"; fi
    stop_server
}

# host_launch LABEL W START [PATH]: move the droplet staged in $W/tmp to $W/home/vcap
# and start it with the launcher; PATH: the one the app gets (default: this one).
host_launch() {
    label=$1 W=$2 start=$3 lpath=${4:-$PATH}
    H=$W/home/vcap
    move_droplet "$W" "$H"
    make_launcher "$H" "$W/launch"
    next_port
    # shellcheck disable=SC2086 # $SETSID: empty without setsid
    env -i PATH="$lpath" PORT="$port" START_COMMAND="$start" $SETSID sh "$W/launch" >"$W/launch.log" 2>&1 &
    RUNNING=$!
    if check_app "$label" "$H" "$W/launch.log"; then stop_check "$label"; else stop_server; fi
}

if [ "$NET" = yes ] && [ -f "$LAUNCH_SH" ]; then
    echo "# launch on the host (dropship's launcher, a fake /home/vcap)"
    # 1. python detected: detect, supply, finalize, release, as the lifecycle does.
    W=$T/launch1
    new_dirs "$W"
    make_app "$W/tmp/app"
    name=$(sh "$BP/bin/detect" "$W/tmp/app")
    expect_eq "launch (detected): detect" "python" "$name"
    supply "$W"
    expect_status "launch (detected): supply" 0 "$st" "$out"
    finalize "$W"
    expect_status "launch (detected): finalize" 0 "$st" "$out"
    start=$(sh "$BP/bin/release" "$W/tmp/app" | sed -n 's/^  web: //p')
    expect_eq "launch (detected): start command" "exec python3 app.py" "$start"
    host_launch "launch (detected)" "$W" "$start"

    # 2. no pip, python as a supply buildpack (deps 0) for binary (deps 1, Procfile).
    if [ -x "$NOPIP/python3" ] && [ -x "$BINARY_BP/bin/finalize" ]; then
        W=$T/launch2
        new_dirs "$W"
        make_app "$W/tmp/app"
        mkdir -p "$W/tmp/deps/1"
        printf 'web: exec python3 app.py\n' >"$W/tmp/app/Procfile"
        PATH=$NOPIP:$PATH supply "$W"
        expect_status "launch (no pip, supply for binary): python supply" 0 "$st" "$out"
        out=$(PATH=$NOPIP:$PATH DEPS_DIR=$W/tmp/deps sh "$BINARY_BP/bin/finalize" "$W/tmp/app" "$W/tmp/cache/final" "$W/tmp/deps" 1 "$W/tmp/profile" 2>&1)
        expect_status "launch (no pip, supply for binary): binary finalize" 0 $? "$out"
        host_launch "launch (no pip, supply for binary)" "$W" "exec python3 app.py" "$NOPIP:$PATH"
    else
        skip "launch (no pip, supply for binary): no pip-less python3 or no binary buildpack"
    fi
else
    skip "launch on the host: no vendored wheels or no $LAUNCH_SH"
fi

# ==================================================================================
# In a bubblewrap sandbox as uid 2000, as dropship runs it: staging with no network,
# on this host's root filesystem read-only (its /usr/bin/python3: Debian's, with pip).
sandbox_ok=no
if [ "$NET" != yes ]; then
    skip "sandbox: no vendored wheels"
elif ! have bwrap; then
    skip "sandbox: bwrap is not installed"
elif ! bwrap --unshare-all --uid 2000 --gid 2000 --ro-bind / / --dev /dev --proc /proc /bin/true 2>/dev/null; then
    skip "sandbox: bwrap cannot create namespaces here"
elif [ ! -x /usr/bin/python3 ]; then
    skip "sandbox: this host has no /usr/bin/python3 to stage with"
else
    sandbox_ok=yes
fi

# sbx_stage ROOT W SCRIPT ARGS...: run /tmp/buildpacks/SCRIPT ARGS as uid 2000, with no
# network, root filesystem ROOT, $W/stage/* at /tmp/*, the staging environment.
sbx_stage() {
    root=$1 w=$2 script=$3
    shift 3
    bwrap --unshare-all --uid 2000 --gid 2000 --die-with-parent --new-session --clearenv \
        --ro-bind "$root" / --dev /dev --proc /proc --tmpfs /tmp --tmpfs /home --dir /home/vcap \
        --bind "$w/stage/app" /tmp/app --bind "$w/stage/cache" /tmp/cache \
        --bind "$w/stage/deps" /tmp/deps --bind "$w/stage/profile.d" /tmp/profile.d \
        --ro-bind "$BP" /tmp/buildpacks/python --ro-bind "$BINARY_BP" /tmp/buildpacks/binary \
        --chdir /tmp/app --setenv PATH /usr/local/bin:/usr/bin:/bin --setenv HOME /home/vcap \
        --setenv TMPDIR /tmp --setenv DEPS_DIR /tmp/deps --setenv LANG C.UTF-8 \
        "/tmp/buildpacks/$script" "$@"
}
# sbx_new W: fresh staging dirs for the sandbox.
sbx_new() {
    rm -rf "$1"
    mkdir -p "$1/stage/app" "$1/stage/cache/supply-python" "$1/stage/cache/final" \
        "$1/stage/deps/0" "$1/stage/deps/1" "$1/stage/profile.d" "$1/home"
}

if [ "$sandbox_ok" = yes ]; then
    echo "# sandbox: uid 2000, no network, this host's root read-only (python3 $(/usr/bin/python3 -c 'import sys; print(sys.version.split()[0])'))"
    W=$T/sbx
    sbx_new "$W"
    make_app "$W/stage/app"
    printf 'web: exec python3 app.py\n' >"$W/stage/app/Procfile"
    # python supplies (deps 0), binary finalizes (deps 1): --buildpack python --buildpack binary
    t0=$(now_ms)
    out=$(sbx_stage / "$W" python/bin/supply /tmp/app /tmp/cache/supply-python /tmp/deps 0 2>&1)
    expect_status "sandbox: python supply (offline, pip)" 0 $? "$out"
    t1=$(now_ms)
    expect_in "sandbox: installs with the stack's pip" "-----> Installing requirements.txt from vendor/ with pip" "$out"
    expect_in "sandbox: prints the stack's Python" "(/usr/bin/python3), pip" "$out"
    out=$(sbx_stage / "$W" binary/bin/finalize /tmp/app /tmp/cache/final /tmp/deps 1 /tmp/profile.d 2>&1)
    expect_status "sandbox: binary finalize" 0 $? "$out"
    expect_eq "sandbox: env/PYTHONPATH is the staging path" "/tmp/deps/0/python" "$(cat "$W/stage/deps/0/env/PYTHONPATH")"
    if grep -r -l /tmp/deps "$W/stage/deps/0/profile.d" >/dev/null; then
        not_ok "sandbox: profile.d has no staging path"
    else
        ok "sandbox: profile.d has no staging path"
    fi
    # A later buildpack's staging sees the packages (env/PYTHONPATH).
    out=$(bwrap --unshare-all --uid 2000 --gid 2000 --clearenv --ro-bind / / --dev /dev --proc /proc \
        --tmpfs /tmp --bind "$W/stage/deps" /tmp/deps --setenv PATH /usr/bin:/bin \
        --setenv PYTHONPATH "$(cat "$W/stage/deps/0/env/PYTHONPATH")" \
        /usr/bin/python3 -c 'import six; print(six.__file__)' 2>&1)
    expect_eq "sandbox: a later buildpack's staging imports the packages" "/tmp/deps/0/python/six.py" "$out"

    # The same build again: the cache is reused, as uid 2000 too.
    rm -rf "$W/stage/deps/0"/* "$W/stage/deps/1"/*
    t2=$(now_ms)
    out=$(sbx_stage / "$W" python/bin/supply /tmp/app /tmp/cache/supply-python /tmp/deps 0 2>&1)
    expect_status "sandbox: second build" 0 $? "$out"
    t3=$(now_ms)
    echo "     | sandbox supply took $((t1 - t0)) ms, then $((t3 - t2)) ms with the cache"
    expect_in "sandbox: second build reuses the cache" "Reusing cached packages" "$out"
    sbx_stage / "$W" binary/bin/finalize /tmp/app /tmp/cache/final /tmp/deps 1 /tmp/profile.d >/dev/null 2>&1

    # Launch: the droplet at /home/vcap, dropship's launcher, as uid 2000.
    H=$W/home
    mv "$W/stage/app" "$H/app"
    mv "$W/stage/deps" "$H/deps"
    mv "$W/stage/profile.d" "$H/profile.d"
    mkdir -p "$H/tmp"
    next_port
    $SETSID bwrap --unshare-user --uid 2000 --gid 2000 --die-with-parent --clearenv \
        --ro-bind / / --dev /dev --proc /proc --tmpfs /tmp --tmpfs /home --bind "$H" /home/vcap \
        --ro-bind "$LAUNCH_SH" /tmp/launch --setenv PATH /usr/local/bin:/usr/bin:/bin \
        --setenv PORT "$port" --setenv START_COMMAND "exec python3 app.py" \
        /bin/sh /tmp/launch >"$W/launch.log" 2>&1 &
    RUNNING=$!
    check_app "sandbox launch" /home/vcap "$W/launch.log"
    stop_server
    if wait_port_closed "$port"; then ok "sandbox launch: stops"; else not_ok "sandbox launch: stops"; fi

    # A busybox-only root: no python3.
    if have busybox && ldd "$(busybox_path)" 2>&1 | grep -q -E 'not a dynamic|statically'; then
        R=$T/bbroot
        make_busybox_root "$R" "$(busybox_path)"
        sbx_new "$W"
        printf 'six\n' >"$W/stage/app/requirements.txt"
        out=$(sbx_stage "$R" "$W" python/bin/detect /tmp/app 2>&1)
        expect_eq "sandbox busybox-only stack: detect" "python" "$out"
        out=$(sbx_stage "$R" "$W" python/bin/supply /tmp/app /tmp/cache/final /tmp/deps 0 2>&1)
        expect_fail "sandbox busybox-only stack: supply fails" $? "$out"
        expect_in "sandbox busybox-only stack: says why" "this stack has no python3: use a stack with python3" "$out"
    else
        skip "sandbox busybox-only stack: no static busybox"
    fi
fi

summary
