#!/bin/sh
# Tests for the nodejs buildpack:  sh buildpacks/nodejs/test.sh
#
#  1. static checks: executable bits, shebangs, syntax (sh, busybox sh, node)
#  2. the scripts run directly on the host in temp dirs, under /bin/sh and
#     busybox sh, with hand-made packages (no network): detect, the dependency
#     strategies (vendored, none, missing -> failure), the build cache, the
#     start command choice (scripts.start / main / server.js / none), start.sh,
#     profile.d, engines.node, a stack without node
#  3. npm's offline path, with a real npm cache made on the host by
#     `npm install --cache` of the `ms` package (skipped if the registry or npm
#     is unavailable), staged with npm_config_offline=true
#  4. the real proof: an app with `ms` vendored and a server.js using http + ms,
#     staged, moved where the launcher puts it (a fake /home/vcap), started by
#     the real launcher (src/image/launch.sh, with its /home/vcap paths pointed at
#     the fake one), fetched with HTTP, stopped with SIGTERM sent to node alone
#  5. if bubblewrap works: staging as uid 2000 with no network on this host's
#     root (read-only), npm's offline path included; a busybox-only root (no
#     node); and a launch in the sandbox by the real launcher at /home/vcap
#  6. if the Debian stack's rootfs tarball is here (NODEJS_TEST_STACK_TAR, else
#     $DROPSHIP_TEST_DEBIAN_ROOTFS, else the integration tests' cached one):
#     staging and launch on the real stack (Node 18, no npm) in the sandbox
#
# Exits non-zero if any test failed; the last line is "N passed, N failed".
set -u

case $0 in
    */*) NB=$(cd "${0%/*}" && pwd) ;;
    *) NB=$(pwd) ;;
esac
REPO=$(cd "$NB/../.." && pwd)
LAUNCH_SH=$REPO/src/image/launch.sh

# shellcheck source=SCRIPTDIR/../testlib.sh
. "$NB/../testlib.sh"
make_temp_dir nodejs-bp-test
first_port 19000
PROFILE_DIR=profile.d  # new_dirs: this buildpack's tests stage with tmp/profile.d

# The staging environment has no NODE_ENV; a developer's shell might.
unset NODE_ENV
# npm without the user's settings (e.g. omit-lockfile-registry-resolved, which
# breaks offline installs) and without its update check.
: >"$T/npmrc"
export npm_config_userconfig="$T/npmrc" npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false

# --- helpers ------------------------------------------------------------------------
# next_build W: a new build of the same app: fresh deps and profile.d, the cache kept.
next_build() {
    rm -rf "$1/tmp/deps" "$1/tmp/profile.d" "$1/tmp/app/.nodejs"
    mkdir -p "$1/tmp/deps/0" "$1/tmp/profile.d"
}

# The scripts, run with shell $SH (set by the test functions); output in $out,
# exit status in $st. stage runs supply then finalize, as the lifecycle does.
supply() {
    out=$($SH "$NB/bin/supply" "$1/tmp/app" "$1/tmp/cache" "$1/tmp/deps" 0 2>&1)
    st=$?
}
finalize() {
    out=$($SH "$NB/bin/finalize" "$1/tmp/app" "$1/tmp/cache" "$1/tmp/deps" 0 "$1/tmp/profile.d" 2>&1)
    st=$?
}
stage() {
    supply "$1"
    [ "$st" = 0 ] || return 0
    supplied=$out
    finalize "$1"
    out="$supplied
$out"
}
release() {
    out=$($SH "$NB/bin/release" "$1/tmp/app" 2>&1)
    st=$?
}
# web_of W: the web command bin/release gives ("" if none).
web_of() { $SH "$NB/bin/release" "$1/tmp/app" | sed -n 's/^  web: //p'; }

# fake_pkg APP NAME [VERSION]: a hand-made package in APP/node_modules.
fake_pkg() {
    mkdir -p "$1/node_modules/$2"
    printf '{"name":"%s","version":"%s","main":"index.js"}\n' "$2" "${3:-1.0.0}" >"$1/node_modules/$2/package.json"
    echo "module.exports = () => '$2';" >"$1/node_modules/$2/index.js"
}
# pkg_json APP JSON: write APP/package.json.
pkg_json() { printf '%s\n' "$2" >"$1/package.json"; }

if ! have node; then
    echo "node is not installed on this host: the nodejs buildpack cannot be tested"
    echo "0 passed, 1 failed"
    exit 1
fi

# ==================================================================================
echo "# static checks"
for f in "$NB"/bin/detect "$NB"/bin/supply "$NB"/bin/finalize "$NB"/bin/release; do
    name=${f#"$NB"/}
    if [ -x "$f" ]; then ok "$name is executable"; else not_ok "$name is executable"; fi
    expect_eq "$name starts with #!/bin/sh" "#!/bin/sh" "$(head -n 1 "$f")"
done
for f in "$NB"/bin/* "$NB/lib/common.sh" "$NB/test.sh"; do
    expect_parses "${f#"$NB"/}" "$f"
done
out=$(node --check "$NB/lib/nodejs.js" 2>&1)
expect_status "lib/nodejs.js parses with node" 0 $? "$out"
if grep -n -e '?\.' -e '??' "$NB/lib/nodejs.js" | grep -v '^[0-9]*:[[:space:]]*//' >/dev/null; then
    not_ok "lib/nodejs.js uses no syntax newer than Node 10 (?. ??)" "$(grep -n '?\.\|??' "$NB/lib/nodejs.js")"
else
    ok "lib/nodejs.js uses no syntax newer than Node 10 (?. ??)"
fi
expect_eq "VERSION" "1.0.0" "$(cat "$NB/VERSION")"

# ==================================================================================
# script_tests SH: every script, run with shell SH, on hand-made apps.
script_tests() {
    SH=$1
    echo "# scripts run with $SH"
    W=$T/s
    A=$W/tmp/app

    # --- detect
    new_dirs "$W"
    echo '<h1>hi</h1>' >"$A/index.html"
    out=$($SH "$NB/bin/detect" "$A")
    expect_status "[$SH] detect: no package.json" 1 $?
    expect_eq "[$SH] detect: prints nothing when it fails" "" "$out"
    mkdir -p "$A/sub" && echo '{}' >"$A/sub/package.json"
    $SH "$NB/bin/detect" "$A" >/dev/null
    expect_status "[$SH] detect: package.json in a subfolder is not enough" 1 $?
    echo '{}' >"$A/package.json"
    out=$($SH "$NB/bin/detect" "$A")
    expect_status "[$SH] detect: package.json at the root" 0 $?
    expect_eq "[$SH] detect: prints the name" "nodejs" "$out"

    # --- no dependencies at all
    new_dirs "$W"
    pkg_json "$A" '{"name":"nodeps","version":"0.1.0","dependencies":{}}'
    echo 'require("http")' >"$A/server.js"
    stage "$W"
    expect_status "[$SH] no deps: stages" 0 "$st" "$out"
    expect_in "[$SH] no deps: names the node found" "-----> Node.js v" "$out"
    expect_in "[$SH] no deps: says there is nothing to install" "-----> No dependencies in package.json: nothing to install" "$out"
    expect_eq "[$SH] no deps: config.yml" "name: nodejs
version: $(cat "$NB/VERSION")" "$(cat "$W/tmp/deps/0/config.yml" 2>&1)"
    expect_eq "[$SH] no deps: supply ran once (finalize saw its marker)" 1 "$(echo "$out" | grep -c 'Node.js buildpack')"
    expect_eq "[$SH] no deps: start command" "exec sh .nodejs/start.sh" "$(web_of "$W")"
    expect_in "[$SH] no deps: start command chosen from server.js" "-----> Start command: server.js (package.json has no \"scripts.start\" nor \"main\"): node server.js" "$out"
    expect_in "[$SH] no deps: start.sh execs node server.js" "exec node 'server.js'" "$(cat "$A/.nodejs/start.sh")"
    if [ -x "$A/.nodejs/start.sh" ]; then ok "[$SH] start.sh is executable"; else not_ok "[$SH] start.sh is executable"; fi
    # No "dependencies" key at all: the same.
    next_build "$W"
    pkg_json "$A" '{"name":"nodeps"}'
    supply "$W"
    expect_status "[$SH] no dependencies key: stages" 0 "$st" "$out"
    expect_in "[$SH] no dependencies key: nothing to install" "nothing to install" "$out"

    # --- profile.d
    p=$W/tmp/deps/0/profile.d/nodejs.sh
    expect_file "[$SH] profile.d: deps/0/profile.d/nodejs.sh" "$p"
    # shellcheck disable=SC2016 # expanded by the inner shell
    got=$(HOME=/home/vcap/app PATH=/usr/bin:/bin $SH -c '. "$1"; echo "$NODE_ENV|$PATH"' x "$p")
    expect_eq "[$SH] profile.d: NODE_ENV=production, node_modules/.bin first on PATH" \
        "production|/home/vcap/app/node_modules/.bin:/usr/bin:/bin" "$got"
    # shellcheck disable=SC2016 # expanded by the inner shell
    got=$(NODE_ENV=development HOME=/home/vcap/app $SH -c '. "$1"; echo "$NODE_ENV"' x "$p")
    expect_eq "[$SH] profile.d: keeps a NODE_ENV already set" "development" "$got"
    if grep -r "$W" "$W/tmp/deps" "$A/.nodejs" >/dev/null 2>&1; then
        not_ok "[$SH] no staging path in the generated files" "$(grep -r "$W" "$W/tmp/deps" "$A/.nodejs")"
    else
        ok "[$SH] no staging path in the generated files"
    fi

    # --- dependencies but no node_modules: a clear failure
    new_dirs "$W"
    pkg_json "$A" '{"name":"deps","dependencies":{"express":"^4.0.0","ms":"^2.1.3"}}'
    # PATH without npm, as on the stack: the npm cache is not an option.
    PATH=$T/bin-nonpm
    stage "$W"
    PATH=$SAVED_PATH
    expect_status "[$SH] deps without node_modules: fails" 1 "$st" "$out"
    expect_in "[$SH] ... names the dependencies" "-----> nodejs: this app has dependencies (express, ms) but no node_modules: staging has no network." "$out"
    expect_in "[$SH] ... says how to vendor them" "run \`npm install --omit=dev\` (or \`npm ci --omit=dev\`) in the app directory" "$out"
    expect_in "[$SH] ... mentions .cfignore" "check .cfignore does not exclude it" "$out"
    expect_not_in "[$SH] ... no stack trace" "    at " "$out"
    expect_not_in "[$SH] ... no npm cache advice without npm" "npm cache works too" "$out"
    if [ -f "$W/tmp/deps/0/nodejs.supplied" ]; then not_ok "[$SH] ... no supply marker after a failure"; else ok "[$SH] ... no supply marker after a failure"; fi
    # An empty node_modules is no better.
    mkdir -p "$A/node_modules/.bin"
    PATH=$T/bin-nonpm
    supply "$W"
    PATH=$SAVED_PATH
    expect_status "[$SH] deps with an empty node_modules: fails" 1 "$st" "$out"
    expect_in "[$SH] ... and says it is empty" "but an empty node_modules" "$out"

    # --- invalid package.json: one clear line
    new_dirs "$W"
    printf '{"name": "broken",}\n' >"$A/package.json"
    supply "$W"
    expect_status "[$SH] invalid package.json: fails" 1 "$st" "$out"
    expect_in "[$SH] ... says so" "-----> nodejs: package.json is not valid JSON" "$out"
    expect_not_in "[$SH] ... no stack trace" "    at " "$out"
    pkg_json "$A" '["not", "an", "object"]'
    supply "$W"
    expect_in "[$SH] package.json that is not an object: says so" "package.json must hold a JSON object" "$out"

    # --- vendored node_modules
    new_dirs "$W"
    pkg_json "$A" '{"name":"vend","version":"2.0.0","dependencies":{"ms":"^2.1.3","@acme/util":"1.x"}}'
    fake_pkg "$A" ms 2.1.3
    fake_pkg "$A" @acme/util 1.2.0
    echo 'require("ms")' >"$A/index.js"
    stage "$W"
    expect_status "[$SH] vendored: stages" 0 "$st" "$out"
    expect_in "[$SH] vendored: uses them" "-----> Using the vendored node_modules (2 packages)" "$out"
    expect_not_in "[$SH] vendored: no warning when complete" "WARNING" "$out"
    expect_not_in "[$SH] vendored: first build reuses nothing" "Reusing cached" "$out"
    expect_in "[$SH] vendored: start command from index.js" "-----> Start command: index.js (package.json has no \"scripts.start\" nor \"main\"): node index.js" "$out"
    expect_eq "[$SH] vendored: node_modules left as it is" "ms @acme" "$(cd "$A/node_modules" && printf '%s\n' * | sort -r | tr '\n' ' ' | sed 's/ $//')"
    expect_file "[$SH] vendored: fingerprint in the build cache" "$W/tmp/cache/nodejs/fingerprint"
    # The second build of the unchanged app reuses the cache.
    next_build "$W"
    stage "$W"
    expect_status "[$SH] vendored, second build: stages" 0 "$st" "$out"
    expect_in "[$SH] vendored, second build: reuses the cache" "-----> Reusing cached dependency fingerprint" "$out"
    # A changed dependency is noticed.
    fake_pkg "$A" ms 2.1.4
    next_build "$W"
    stage "$W"
    expect_in "[$SH] vendored, changed: says so" "-----> Build cache: the dependencies changed since the last build" "$out"
    expect_not_in "[$SH] vendored, changed: no reuse" "Reusing cached" "$out"
    # A declared dependency missing from node_modules: a warning, not a failure.
    rm -rf "$A/node_modules/@acme"
    next_build "$W"
    stage "$W"
    expect_status "[$SH] vendored, incomplete: still stages" 0 "$st" "$out"
    expect_in "[$SH] vendored, incomplete: warns" "WARNING: node_modules lacks 1 of package.json's dependencies: @acme/util" "$out"
    # A native addon that does not load with this node: a warning.
    mkdir -p "$A/node_modules/ms/build/Release"
    echo 'not an ELF file' >"$A/node_modules/ms/build/Release/addon.node"
    next_build "$W"
    stage "$W"
    expect_status "[$SH] vendored, bad native addon: still stages" 0 "$st" "$out"
    expect_in "[$SH] vendored, bad native addon: warns" "WARNING: the native addon node_modules/ms/build/Release/addon.node does not load" "$out"

    # --- the start command
    new_dirs "$W"
    echo 'x' >"$A/server.js"
    echo 'x' >"$A/app.js"
    mkdir -p "$A/lib" && echo 'x' >"$A/lib/main.js"
    # shellcheck disable=SC2016 # a literal $PORT
    pkg_json "$A" '{"name":"s","version":"1.0.0","main":"lib/main.js","scripts":{"start":"node server.js --port $PORT"}}'
    stage "$W"
    expect_status "[$SH] start script: stages" 0 "$st" "$out"
    expect_in "[$SH] start script: wins over main" "-----> Start command: package.json \"scripts.start\": node server.js --port \$PORT" "$out"
    expect_eq "[$SH] start script: release" "---
default_process_types:
  web: exec sh .nodejs/start.sh" "$($SH "$NB/bin/release" "$A")"
    expect_eq "[$SH] start script: start.sh execs it as is" "exec node server.js --port \$PORT" "$(tail -n 1 "$A/.nodejs/start.sh")"
    expect_in "[$SH] start script: npm's variables" "export npm_package_name='s' npm_package_version='1.0.0'" "$(cat "$A/.nodejs/start.sh")"

    pkg_json "$A" '{"scripts":{"prestart":"echo it'"'"'s early","start":"NODE_OPTIONS=--max-old-space-size=100 FOO=\"a b\" node app.js"}}'
    next_build "$W"
    stage "$W"
    expect_eq "[$SH] start script with VAR=value: exec after the assignments" \
        "NODE_OPTIONS=--max-old-space-size=100 FOO=\"a b\" exec node app.js" "$(tail -n 1 "$A/.nodejs/start.sh")"
    expect_in "[$SH] prestart: run first" "/bin/sh -c 'echo it'\\''s early' || exit \$?" "$(cat "$A/.nodejs/start.sh")"
    expect_in "[$SH] prestart: reported" "runs \"prestart\" first" "$out"

    pkg_json "$A" '{"scripts":{"start":"cd lib && node main.js | tee log"}}'
    next_build "$W"
    stage "$W"
    expect_eq "[$SH] compound start script: run with sh -c, as npm does" \
        "exec /bin/sh -c 'cd lib && node main.js | tee log'" "$(tail -n 1 "$A/.nodejs/start.sh")"
    expect_in "[$SH] compound start script: advises exec" "put \`exec\` before its last command" "$out"

    pkg_json "$A" '{"scripts":{"start":"nodemon server.js"}}'
    next_build "$W"
    stage "$W"
    expect_in "[$SH] start script with a missing program: warns" "WARNING: the start script runs nodemon, but 'nodemon' is neither in node_modules/.bin nor on this stack" "$out"

    pkg_json "$A" '{"main":"lib/main.js"}'
    next_build "$W"
    stage "$W"
    expect_in "[$SH] main: used without a start script" "-----> Start command: package.json \"main\": node lib/main.js" "$out"
    expect_eq "[$SH] main: start.sh" "exec node 'lib/main.js'" "$(tail -n 1 "$A/.nodejs/start.sh")"
    pkg_json "$A" '{"main":"lib/main"}'
    next_build "$W"
    stage "$W"
    expect_in "[$SH] main without .js: resolved like node does" "package.json \"main\": node lib/main" "$out"

    pkg_json "$A" '{"main":"missing.js"}'
    next_build "$W"
    stage "$W"
    expect_in "[$SH] main missing: says it is ignored" "package.json \"main\" (\"missing.js\") is not a file of the app: ignored" "$out"
    expect_in "[$SH] main missing: falls back to server.js" "-----> Start command: server.js" "$out"

    rm "$A/server.js"
    pkg_json "$A" '{}'
    next_build "$W"
    stage "$W"
    expect_in "[$SH] app.js: when there is no server.js" "-----> Start command: app.js" "$out"

    rm "$A/app.js"
    next_build "$W"
    stage "$W"
    expect_status "[$SH] no start command: still stages" 0 "$st" "$out"
    expect_in "[$SH] no start command: warns" "WARNING: no start command" "$out"
    if [ -e "$A/.nodejs/start.sh" ]; then not_ok "[$SH] no start command: no start.sh"; else ok "[$SH] no start command: no start.sh"; fi
    release "$W"
    expect_eq "[$SH] no start command: empty default_process_types" "---
default_process_types: {}" "$out"
    printf 'web: node lib/main.js\n' >"$A/Procfile"
    next_build "$W"
    stage "$W"
    expect_not_in "[$SH] no start command but a Procfile: no warning" "WARNING" "$out"
    expect_in "[$SH] ... names the Procfile's command" "-----> Start command: the Procfile's web: node lib/main.js" "$out"

    # --- engines.node
    new_dirs "$W"
    pkg_json "$A" '{"engines":{"node":">=999"}}'
    supply "$W"
    expect_in "[$SH] engines.node not satisfied: warns" "WARNING: package.json engines.node asks for >=999, but the stack has v" "$out"
    next_build "$W"
    pkg_json "$A" '{"engines":{"node":"0.10.x || >=1"}}'
    supply "$W"
    expect_in "[$SH] engines.node satisfied: says so" "engines.node: 0.10.x || >=1 (satisfied)" "$out"

    # --- finalize alone runs supply first (a platform may call only finalize)
    new_dirs "$W"
    pkg_json "$A" '{}'
    echo x >"$A/index.js"
    finalize "$W"
    expect_status "[$SH] finalize alone: stages" 0 "$st" "$out"
    expect_in "[$SH] finalize alone: ran supply" "nothing to install" "$out"
    expect_file "[$SH] finalize alone: profile.d written" "$W/tmp/deps/0/profile.d/nodejs.sh"

    # --- a stack without node: a clear message (PATH = this host's tools but node)
    new_dirs "$W"
    pkg_json "$A" '{}'
    out=$(PATH=$T/bin-nonode $SH "$NB/bin/supply" "$A" "$W/tmp/cache" "$W/tmp/deps" 0 2>&1)
    expect_status "[$SH] no node on the stack: supply fails" 1 $? "$out"
    expect_in "[$SH] ... and says why" "-----> nodejs: this stack has no node: use a stack with nodejs" "$out"
    out=$(PATH=$T/bin-nonode $SH "$NB/bin/finalize" "$A" "$W/tmp/cache" "$W/tmp/deps" 0 "$W/tmp/profile.d" 2>&1)
    expect_status "[$SH] no node on the stack: finalize fails" 1 $? "$out"
    out=$(PATH=$T/bin-nonode $SH "$NB/bin/detect" "$A")
    expect_status "[$SH] no node on the stack: detect still works" 0 $?
}

# PATHs made of this host's tools minus some: without npm (like the stack), and
# without node either (a stack without nodejs).
mkdir -p "$T/bin-nonpm" "$T/bin-nonode"
for f in /usr/local/bin/* /usr/bin/* /bin/*; do
    b=${f##*/}
    case $b in npm | npx | corepack | pnpm | yarn) continue ;; esac
    [ -e "$T/bin-nonpm/$b" ] || ln -s "$f" "$T/bin-nonpm/$b"
    case $b in node | nodejs) continue ;; esac
    [ -e "$T/bin-nonode/$b" ] || ln -s "$f" "$T/bin-nonode/$b"
done
SAVED_PATH=$PATH
for_each_shell script_tests

# ==================================================================================
echo "# engines.node ranges (lib/nodejs.js), against this host's node $(node --version)"
W=$T/engines
mkdir -p "$W"
for case in ">=1|ok" "<1|no" "*|ok" "0.10.x|no" "^0.1|no" ">=1 <2|no" "1 - 2|no" "x || >=1|ok" \
    "~1.2|no" ">= 1|ok" "$(node -p 'process.versions.node')|ok" "^$(node -p 'process.versions.node.split(".")[0]')|ok" \
    "latest|unknown"; do
    range=${case%|*} want=${case##*|}
    printf '{"engines":{"node":"%s"}}\n' "$range" >"$W/package.json"
    expect_eq "engines.node '$range'" "$want $range" "$(node "$NB/lib/nodejs.js" engines "$W")"
done

# ==================================================================================
echo "# npm's offline path (host npm, real npm cache)"
npm_ok=no
if ! have npm; then
    skip "npm path: npm is not installed on this host"
else
    W=$T/npm
    new_dirs "$W"
    A=$W/tmp/app
    pkg_json "$A" '{"name":"npmapp","version":"1.0.0","dependencies":{"ms":"^2.1.3"}}'
    # Online, once: fill the app's npm cache (and write package-lock.json).
    if out=$(cd "$A" && npm install --cache "$A/.npm-cache" 2>&1); then
        npm_ok=yes
        # A pristine copy, for the sections below.
        cp -R "$A/.npm-cache" "$T/npm-cache"
        rm -rf "$T/npm-cache/_logs"
    else
        skip "npm path: \`npm install ms\` failed (no registry?)" && echo "$out" | tail -n 3 | sed 's/^/         | /'
    fi
fi
if [ "$npm_ok" = yes ]; then
    SH="sh"
    rm -rf "$A/node_modules"
    export npm_config_offline=true  # any request to the registry fails
    stage "$W"
    expect_status "npm: stages offline from the app's .npm-cache" 0 "$st" "$out"
    expect_in "npm: says how" "-----> Installing dependencies offline from the app's .npm-cache: npm ci --omit=dev --offline" "$out"
    expect_in "npm: installed" "-----> Installed 1 package with npm, offline" "$out"
    expect_file "npm: node_modules/ms is there" "$A/node_modules/ms/package.json"
    expect_eq "npm: ms works" "2d" "$(cd "$A" && node -e 'console.log(require("ms")(172800000))')"
    if [ -d "$W/tmp/cache/nodejs/npm-cache/_cacache" ]; then ok "npm: the npm cache is kept in the build cache"; else not_ok "npm: the npm cache is kept in the build cache"; fi

    # The second build of the unchanged app.
    rm -rf "$A/node_modules"
    next_build "$W"
    stage "$W"
    expect_status "npm, second build: stages" 0 "$st" "$out"
    expect_in "npm, second build: reuses the npm cache" "-----> Reusing cached npm cache from the previous build" "$out"
    expect_in "npm, second build: reuses the fingerprint" "-----> Reusing cached dependency fingerprint" "$out"

    # The app no longer ships its cache: the previous build's is used.
    mv "$A/.npm-cache" "$W/saved-npm-cache"
    rm -rf "$A/node_modules"
    next_build "$W"
    stage "$W"
    expect_status "npm, no app cache: stages from the build cache" 0 "$st" "$out"
    expect_in "npm, no app cache: says so" "offline from the previous build's npm cache" "$out"

    # .npmrc `cache=` names the app's cache folder.
    mv "$W/saved-npm-cache" "$A/offline-cache"
    printf 'cache = ./offline-cache\n' >"$A/.npmrc"
    rm -rf "$A/node_modules" "$W/tmp/cache"/*
    next_build "$W"
    stage "$W"
    expect_status "npm, .npmrc cache=: stages" 0 "$st" "$out"
    expect_in "npm, .npmrc cache=: uses it" "offline from the app's offline-cache" "$out"
    expect_file "npm, .npmrc cache=: node_modules/ms is there" "$A/node_modules/ms/package.json"

    # No package-lock.json: npm install --offline.
    rm -rf "$A/node_modules" "$A/package-lock.json" "$W/tmp/cache"/*
    next_build "$W"
    stage "$W"
    expect_status "npm, no lockfile: stages" 0 "$st" "$out"
    expect_in "npm, no lockfile: npm install" "npm install --no-package-lock --omit=dev --offline" "$out"

    # A cache that lacks the packages: a clear failure.
    rm -rf "$A/node_modules" "$A/offline-cache" "$A/.npmrc" "$W/tmp/cache"/*
    mkdir -p "$A/.npm-cache/_cacache"
    next_build "$W"
    stage "$W"
    expect_status "npm, empty cache: fails" 1 "$st" "$out"
    expect_in "npm, empty cache: says how to refresh it" "run \`npm ci --cache .npm-cache\`" "$out"
    expect_in "npm, empty cache: or to vendor" "run \`npm install --omit=dev\`" "$out"
    unset npm_config_offline
fi

# ==================================================================================
echo "# launch on the host, with the real launcher"
# The app: server.js answers with what it sees; `ms` is a real dependency.
make_app() {
    mkdir -p "$1"
    cat >"$1/server.js" <<'EOF'
const http = require('http');
const ms = require('ms');
const server = http.createServer((req, res) => {
    res.end([
        'hello from node ' + process.version,
        'ms=' + ms(2 * 24 * 3600 * 1000) + ' ' + ms('1h'),
        'NODE_ENV=' + process.env.NODE_ENV,
        'cwd=' + process.cwd(),
        'PATH=' + process.env.PATH,
        'npm_package_name=' + (process.env.npm_package_name || ''),
    ].join('\n') + '\n');
});
server.listen(Number(process.env.PORT || 8080), () => console.log('listening on ' + process.env.PORT));
EOF
    pkg_json "$1" '{"name":"hello-node","version":"1.0.0","dependencies":{"ms":"^2.1.3"}}'
    # Vendor ms the way the user would (npm install), or hand-make a stand-in.
    rm -rf "$T/npm-cache-copy"
    if [ "$npm_ok" = yes ] && cp -R "$T/npm-cache" "$T/npm-cache-copy" &&
        (cd "$1" && npm install --cache "$T/npm-cache-copy" --offline >/dev/null 2>&1); then
        vendored_by=npm
    elif have npm && (cd "$1" && npm install >/dev/null 2>&1); then
        vendored_by=npm
    else
        vendored_by=hand
        mkdir -p "$1/node_modules/ms"
        printf '{"name":"ms","version":"2.1.3"}\n' >"$1/node_modules/ms/package.json"
        cat >"$1/node_modules/ms/index.js" <<'EOF'
module.exports = (v) => typeof v === 'number' ? Math.round(v / 86400000) + 'd' : 3600000;
EOF
    fi
}

# launch_on_host LABEL PACKAGE_JSON: stage make_app's app (with PACKAGE_JSON if
# not empty), move the droplet to a fake /home/vcap, start it with the launcher,
# fetch it, stop it with SIGTERM sent to the app's process alone.
launch_on_host() {
    label=$1
    SH="sh"
    W=$T/launch
    new_dirs "$W"
    make_app "$W/tmp/app"
    if [ -n "$2" ]; then pkg_json "$W/tmp/app" "$2"; fi
    stage "$W"
    expect_status "$label: staging" 0 "$st" "$out"
    expect_in "$label: vendored ms ($vendored_by)" "-----> Using the vendored node_modules (1 package)" "$out"
    start=$(web_of "$W")
    expect_eq "$label: start command" "exec sh .nodejs/start.sh" "$start"

    # The droplet as the launcher sees it; the staging dir is gone.
    H=$W/home/vcap
    move_droplet "$W" "$H"
    # The real launcher with its /home/vcap paths pointed at the fake one.
    launcher=$H/../launch.sh
    make_launcher "$H" "$launcher"

    next_port
    (PORT=$port START_COMMAND=$start exec $SETSID /bin/sh "$launcher") >"$W/launch.log" 2>&1 &
    RUNNING=$!
    if ! expect_listening "$label: listens on port $port" "$W/launch.log"; then
        stop_server
        return
    fi
    body=$(fetch "http://127.0.0.1:$port/" 2>&1)
    expect_in "$label: node answers" "hello from node v" "$body"
    expect_in "$label: the vendored ms works" "ms=2d 3600000" "$body"
    expect_in "$label: NODE_ENV from profile.d" "NODE_ENV=production" "$body"
    expect_in "$label: runs in the app directory" "cwd=$H/app
" "$body"
    expect_in "$label: node_modules/.bin on PATH" "PATH=$H/app/node_modules/.bin:" "$body"
    expect_eq "$label: ... once" 1 "$(echo "$body" | grep '^PATH=' | tr ':' '\n' | grep -c node_modules)"
    # Every step execs the next: the launcher's process is node itself...
    exe=$(readlink "/proc/$RUNNING/exe" 2>/dev/null)
    expect_in "$label: node replaced the launcher's shells (exec)" "node" "${exe##*/}"
    # ... so SIGTERM to that process alone (not its group) stops the app.
    kill -TERM "$RUNNING" 2>/dev/null
    i=0
    while kill -0 "$RUNNING" 2>/dev/null && [ $i -lt 50 ]; do
        # a zombie until waited for: check its state
        case $(cut -d' ' -f3 "/proc/$RUNNING/stat" 2>/dev/null) in Z | "") break ;; esac
        sleep 0.1
        i=$((i + 1))
    done
    if [ $i -lt 50 ]; then ok "$label: SIGTERM to the app's process stops it"; else not_ok "$label: SIGTERM to the app's process stops it"; fi
    stop_server
    if wait_port_closed "$port"; then ok "$label: the port is free again"; else not_ok "$label: the port is free again"; fi
    body_of_last_launch=$body
}

if [ ! -f "$LAUNCH_SH" ]; then
    skip "launch: $LAUNCH_SH is missing"
else
    launch_on_host "host, server.js" ""
    expect_eq "host, server.js: no npm variables without a start script" "npm_package_name=" \
        "$(echo "$body_of_last_launch" | grep '^npm_package_name=')"
    launch_on_host "host, scripts.start" \
        '{"name":"hello-node","version":"1.0.0","dependencies":{"ms":"^2.1.3"},"scripts":{"start":"node server.js"}}'
    expect_in "host, scripts.start: npm's variables" "npm_package_name=hello-node" "$body_of_last_launch"
fi

# ==================================================================================
# In a bubblewrap sandbox as uid 2000, as dropship runs it: staging with no
# network and the app at /tmp/app, launch with it at /home/vcap/app.
if bwrap_works; then sandbox_ok=yes; else sandbox_ok=no; fi

# sbx_stage ROOT W SCRIPT ARGS...: run a buildpack script as uid 2000 without
# network, with ROOT as /, $W/stage at /tmp and the buildpack at /tmp/buildpacks/nodejs.
sbx_stage() {
    root=$1 w=$2
    shift 2
    bwrap --unshare-all --uid 2000 --gid 2000 --die-with-parent --clearenv \
        --ro-bind "$root" / --dev /dev --proc /proc --tmpfs /home --dir /home/vcap \
        --bind "$w/stage" /tmp --ro-bind "$NB" /tmp/buildpacks/nodejs \
        --setenv PATH /usr/local/bin:/usr/bin:/bin --setenv HOME /home/vcap \
        --setenv TMPDIR /tmp --setenv DEPS_DIR /tmp/deps \
        --setenv npm_config_update_notifier false \
        --chdir /tmp/app "$@"
}
# sbx_stage_all ROOT W: supply, finalize (release output in $start).
sbx_stage_all() {
    out=$(sbx_stage "$1" "$2" /tmp/buildpacks/nodejs/bin/supply /tmp/app /tmp/cache/final /tmp/deps 0 2>&1)
    st=$?
    [ "$st" = 0 ] || return 0
    o=$out
    out=$(sbx_stage "$1" "$2" /tmp/buildpacks/nodejs/bin/finalize /tmp/app /tmp/cache/final /tmp/deps 0 /tmp/profile.d 2>&1)
    st=$?
    out="$o
$out"
    start=$(sbx_stage "$1" "$2" /tmp/buildpacks/nodejs/bin/release /tmp/app | sed -n 's/^  web: //p')
}
sbx_dirs() {
    rm -rf "$1"
    mkdir -p "$1/stage/app" "$1/stage/cache/final" "$1/stage/deps/0" "$1/stage/profile.d" "$1/home"
}

# sbx_launch ROOT W LABEL: move the droplet staged in $W/stage to $W/home and
# start it with the real launcher, in a sandbox whose root is ROOT, at the real
# /home/vcap; fetch / into $body; stop it.
sbx_launch() {
    root=$1 w=$2 label=$3
    body=""
    mv "$w/stage/app" "$w/home/app"
    mv "$w/stage/deps" "$w/home/deps"
    mv "$w/stage/profile.d" "$w/home/profile.d"
    mkdir -p "$w/home/tmp"
    if [ ! -f "$LAUNCH_SH" ]; then
        skip "$label: launch ($LAUNCH_SH is missing)"
        return
    fi
    next_port
    (exec $SETSID bwrap --unshare-user --uid 2000 --gid 2000 --die-with-parent --clearenv \
        --ro-bind "$root" / --dev /dev --proc /proc --tmpfs /home --tmpfs /tmp \
        --bind "$w/home" /home/vcap --ro-bind "$LAUNCH_SH" /tmp/launch \
        --setenv PATH /usr/local/bin:/usr/bin:/bin --setenv PORT "$port" \
        --setenv START_COMMAND "$start" /bin/sh /tmp/launch) >"$w/launch.log" 2>&1 &
    RUNNING=$!
    if expect_listening "$label: the app listens on port $port" "$w/launch.log"; then
        body=$(fetch "http://127.0.0.1:$port/" 2>&1)
        expect_in "$label: the vendored ms works" "ms=2d" "$body"
        expect_in "$label: NODE_ENV from profile.d" "NODE_ENV=production" "$body"
        expect_in "$label: runs in /home/vcap/app" "cwd=/home/vcap/app
" "$body"
    fi
    stop_server
}

if [ "$sandbox_ok" = yes ]; then
    echo "# sandbox: this host's root filesystem read-only, uid 2000, no network"
    W=$T/sbx
    sbx_dirs "$W"
    make_app "$W/stage/app"
    out=$(sbx_stage / "$W" /tmp/buildpacks/nodejs/bin/detect /tmp/app 2>&1)
    expect_status "sandbox: detect" 0 $? "$out"
    sbx_stage_all / "$W"
    expect_status "sandbox: staging (vendored)" 0 "$st" "$out"
    expect_eq "sandbox: start command" "exec sh .nodejs/start.sh" "$start"
    sbx_stage_all / "$W"
    expect_in "sandbox: second build reuses the cache" "-----> Reusing cached dependency fingerprint" "$out"

    sbx_launch / "$W" sandbox
    expect_in "sandbox: node_modules/.bin on PATH" "PATH=/home/vcap/app/node_modules/.bin:" "$body"

    # npm's offline path with no network at all.
    if [ "$npm_ok" = yes ]; then
        W=$T/sbx-npm
        sbx_dirs "$W"
        pkg_json "$W/stage/app" '{"name":"npmapp","version":"1.0.0","dependencies":{"ms":"^2.1.3"}}'
        cp -R "$T/npm-cache" "$W/stage/app/.npm-cache"
        (cd "$W/stage/app" && npm install --package-lock-only --offline --cache "$W/stage/app/.npm-cache" >/dev/null 2>&1)
        rm -rf "$W/stage/app/.npm-cache/_logs"
        sbx_stage_all / "$W"
        expect_status "sandbox: npm ci --offline without network" 0 "$st" "$out"
        expect_file "sandbox: ... node_modules/ms is there" "$W/stage/app/node_modules/ms/package.json"
    else
        skip "sandbox: npm's offline path (no npm cache was made)"
    fi

    # A busybox-only root: no node.
    if have busybox && bwrap --unshare-user --ro-bind / / /bin/true 2>/dev/null; then
        R=$T/bbroot
        make_busybox_root "$R" "$(command -v busybox)"
        if bwrap --unshare-user --ro-bind "$R" / /bin/sh -c true 2>/dev/null; then
            echo "# sandbox: busybox-only root, uid 2000"
            W=$T/sbx-bb
            sbx_dirs "$W"
            pkg_json "$W/stage/app" '{}'
            out=$(sbx_stage "$R" "$W" /tmp/buildpacks/nodejs/bin/detect /tmp/app 2>&1)
            expect_status "busybox stack: detect" 0 $? "$out"
            out=$(sbx_stage "$R" "$W" /tmp/buildpacks/nodejs/bin/supply /tmp/app /tmp/cache/final /tmp/deps 0 2>&1)
            expect_status "busybox stack: supply fails" 1 $? "$out"
            expect_in "busybox stack: ... no node" "this stack has no node: use a stack with nodejs" "$out"
        else
            skip "busybox stack: this busybox is not static"
        fi
    fi
fi

# ==================================================================================
# The real Debian stack (bookworm, Node 18, no npm), if its root filesystem
# tarball is here (the integration tests build it with mmdebstrap).
STACK_TAR=${NODEJS_TEST_STACK_TAR:-${DROPSHIP_TEST_DEBIAN_ROOTFS:-/var/tmp/dropship-test/debian-bookworm-v2.tar}}
if [ "$sandbox_ok" != yes ]; then
    skip "debian stack: no sandbox"
elif [ ! -f "$STACK_TAR" ]; then
    skip "debian stack: no root filesystem tarball at $STACK_TAR (set NODEJS_TEST_STACK_TAR)"
else
    echo "# sandbox: the Debian stack ($STACK_TAR), uid 2000, no network"
    R=$T/debian
    mkdir -p "$R"
    tar -xf "$STACK_TAR" -C "$R" --exclude='./dev/*' 2>/dev/null
    W=$T/deb
    sbx_dirs "$W"
    make_app "$W/stage/app"
    pkg_json "$W/stage/app" '{"name":"hello-node","dependencies":{"ms":"^2.1.3"},"scripts":{"start":"node server.js"}}'
    sbx_stage_all "$R" "$W"
    expect_status "debian stack: staging" 0 "$st" "$out"
    expect_in "debian stack: the stack's node" "-----> Node.js v" "$out"
    expect_in "debian stack: vendored ms" "-----> Using the vendored node_modules (1 package)" "$out"
    sbx_stage_all "$R" "$W"
    expect_in "debian stack: second build reuses the cache" "-----> Reusing cached dependency fingerprint" "$out"
    stack_node=$(bwrap --unshare-all --ro-bind "$R" / --dev /dev --proc /proc /usr/bin/node --version 2>&1)
    sbx_launch "$R" "$W" "debian stack"
    expect_in "debian stack: served by the stack's node ($stack_node)" "hello from node $stack_node" "$body"

    # No npm on this stack: an app without node_modules gets the vendoring advice.
    W=$T/deb-nonm
    sbx_dirs "$W"
    pkg_json "$W/stage/app" '{"dependencies":{"ms":"^2.1.3"}}'
    mkdir -p "$W/stage/app/.npm-cache"
    sbx_stage_all "$R" "$W"
    expect_status "debian stack: deps without node_modules fail" 1 "$st" "$out"
    expect_in "debian stack: ... with the vendoring advice" "Vendor them: run \`npm install --omit=dev\`" "$out"
fi

summary
