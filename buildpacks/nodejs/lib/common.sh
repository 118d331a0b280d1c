# Shared by the nodejs buildpack's bin/ scripts, which source it after setting
# BP_DIR (the buildpack's directory). POSIX sh and busybox applets only.

# shellcheck disable=SC2034 # used by the scripts that source this file
VERSION=$(cat "$BP_DIR/VERSION")

step() { echo "-----> $*"; }
info() { echo "       $*"; }
warn() { echo "       WARNING: $*"; }
# plural N WORD: "1 WORD", "N WORDs"
plural() { if [ "$1" = 1 ]; then echo "1 $2"; else echo "$1 ${2}s"; fi; }

# fail LINE [LINE...]: print the reason (first line as a step, the others
# indented) on stderr and stop staging. No stack trace, ever.
fail() {
    {
        echo "-----> nodejs: $1"
        shift
        for line in "$@"; do echo "       $line"; done
    } >&2
    exit 1
}

# find_node: set NODE to the stack's node, or fail. The buildpack cannot
# install a node itself: staging has no network.
find_node() {
    NODE=$(command -v node 2>/dev/null) || NODE=$(command -v nodejs 2>/dev/null) ||
        fail "this stack has no node: use a stack with nodejs" \
            "(the nodejs buildpack runs the stack's node; staging has no network to download one)"
}

# js COMMAND ARGS...: the package.json helper (lib/nodejs.js), run with the stack's node.
js() { "$NODE" "$BP_DIR/lib/nodejs.js" "$@"; }
