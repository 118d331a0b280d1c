# Written by the python buildpack @VERSION@ (bin/supply) as deps/@IDX@/profile.d/python.sh:
# the launch environment of the Python packages installed in deps/@IDX@/python. The
# launcher sources it (in its own shell) before it starts the app; DEPS_DIR is then
# /home/vcap/deps. Nothing here names the staging path.
#
#   PYTHONPATH        deps/@IDX@/python first, then what was there before
#   PATH              deps/@IDX@/python/bin first (the packages' commands)
#   PYTHONUNBUFFERED  1: print() reaches the logs at once
#
# deps/@IDX@/env/PYTHONPATH holds the staging path of the packages,
# for the buildpacks that stage after this one. A launcher that exports env files
# too (dropship's does) puts that path, which means nothing at launch, on
# PYTHONPATH: it is dropped here, as is any earlier copy of ours (sourced twice).
# Variables are prefixed with _python_ and unset: this runs in the launcher's shell.

_python_dir=$DEPS_DIR/@IDX@/python
_python_staged=$(cat "$DEPS_DIR/@IDX@/env/PYTHONPATH" 2>/dev/null || :)
_python_rest=
_python_left=${PYTHONPATH:-}:
while [ -n "$_python_left" ]; do
    _python_p=${_python_left%%:*}
    _python_left=${_python_left#*:}
    case $_python_p in
        "" | "$_python_staged" | "$_python_dir") ;;
        *) _python_rest=${_python_rest:+$_python_rest:}$_python_p ;;
    esac
done

export PYTHONPATH="$_python_dir${_python_rest:+:$_python_rest}"
case ":$PATH:" in
    *":$_python_dir/bin:"*) ;;
    *) export PATH="$_python_dir/bin:$PATH" ;;
esac
export PYTHONUNBUFFERED=1

unset _python_dir _python_staged _python_rest _python_left _python_p
