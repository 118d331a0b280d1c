#!/bin/sh
# dropship launcher, installed at /lifecycle/launch: what Cloud Foundry's launcher does, in
# POSIX sh so that it runs on a busybox-only stack as well as on a full one.
#   /lifecycle/launch                 runs $START_COMMAND
#   /lifecycle/launch 'CMD ARGS'      runs CMD ARGS with /bin/sh -c (the image's Cmd)
#   /lifecycle/launch PROG ARG...     execs PROG ARG... (e.g. `podman run IMAGE ls -la`)
# The environment is the droplet's: deps/*/bin on PATH, deps/*/lib on LD_LIBRARY_PATH,
# deps/*/env/NAME files exported, then profile.d scripts sourced in Cloud Foundry's order.

export HOME=/home/vcap/app
export TMPDIR=/home/vcap/tmp
export DEPS_DIR=/home/vcap/deps
export PORT="${PORT:-8080}"
cd "$HOME" || { echo "launch: $HOME is missing" >&2; exit 1; }

# Supply buildpacks' output, highest index first on the search paths (as libbuildpack does).
for dep in "$DEPS_DIR"/*/; do
    [ -d "${dep}bin" ] && PATH="${dep}bin:$PATH"
    [ -d "${dep}lib" ] && LD_LIBRARY_PATH="${dep}lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
export PATH
[ -n "${LD_LIBRARY_PATH:-}" ] && export LD_LIBRARY_PATH

for env_file in "$DEPS_DIR"/*/env/*; do
    [ -f "$env_file" ] || continue
    name=${env_file##*/}
    case "$name" in '' | [0-9]* | *[!A-Za-z0-9_]*) continue ;; esac
    export "$name=$(cat "$env_file")"
done

for script in /home/vcap/profile.d/* "$DEPS_DIR"/*/profile.d/* "$HOME"/.profile.d/*; do
    [ -f "$script" ] && . "$script"
done
[ -f "$HOME/.profile" ] && . "$HOME/.profile"

if [ $# -eq 0 ]; then
    set -- "${START_COMMAND:-}"
fi
if [ $# -eq 1 ]; then
    if [ -z "$1" ]; then
        echo "launch: no start command (the buildpack gave none and there is no Procfile)" >&2
        exit 1
    fi
    set -- /bin/sh -c "$1"
fi
if [ $$ -ne 1 ]; then
    exec "$@"
fi
# As PID 1 (a container without an init), the kernel gives the app no default signal
# handling, so SIGTERM would be ignored and every stop would wait for SIGKILL. Run the app as a
# child instead, pass stop signals on to the whole process group, and reap orphans.
"$@" &
app=$!
trap 'trap "" TERM INT HUP QUIT; kill -TERM 0 2>/dev/null' TERM INT HUP QUIT
while :; do
    wait "$app"
    status=$?
    kill -0 "$app" 2>/dev/null || exit "$status"
done
