"""Python buildpack helper: the parts of staging that are easier in Python than in sh.

Run by bin/supply with the stack's interpreter, always as `python3 -I helper.py ...`
(isolated: neither the app's files nor PYTHONPATH can shadow the standard library).
Standard library only: it must work on a stack without pip.

    facts                        "VERSION MAJOR.MINOR PLATFORM", e.g. "3.11.2 3.11 manylinux2014_x86_64"
    key BUILD MODE EXTRA...      the build-cache key of an install (a sha256, hex)
    manifest DIR                 every file under DIR with its size (to check a cached copy)
    verify DIR MANIFEST          exit 0 if DIR matches MANIFEST (a file written by `manifest`)
    installed DIR                "name version" of every distribution installed in DIR
    build-requires BUILD         the app's build backend requirements (pyproject.toml), one a line
    unpack VENDOR TARGET [REQS]  install the wheels of VENDOR into TARGET without pip

Exit status 3 from `unpack` means "a wheel is missing": bin/supply then prints how to vendor.
Messages are one line each, meant for the staging log; no tracebacks for expected errors.
"""

import configparser
import email.parser
import hashlib
import os
import platform
import re
import stat
import sys
import zipfile

MISSING = 3  # exit status: a wheel is missing from vendor/


def fail(msg, status=1):
    print(msg, file=sys.stderr)
    sys.exit(status)


def normalize(name):
    """PEP 503 normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


# --- facts ---------------------------------------------------------------------------


def manylinux_platform():
    """The --platform to give `pip download` for this interpreter's machine."""
    machine = platform.machine() or "x86_64"
    return "manylinux2014_" + machine


def cmd_facts():
    v = sys.version_info
    print("%d.%d.%d %d.%d %s" % (v[0], v[1], v[2], v[0], v[1], manylinux_platform()))


# --- cache key -----------------------------------------------------------------------


def hash_file(h, path):
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)


def hash_tree(h, root, skip_top=()):
    """Every file name and content under root, in a stable order (symlinks by target)."""
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        if rel_dir == ".":
            dirnames[:] = [d for d in dirnames if d not in skip_top]
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            h.update(b"\0F" + rel.encode("utf-8", "surrogateescape") + b"\0")
            if os.path.islink(path):
                h.update(b"L" + os.readlink(path).encode("utf-8", "surrogateescape"))
            elif os.path.isfile(path):
                hash_file(h, path)


# Requirement lines that point into the app (-e ., ./lib, -r other.txt, file:...): then the
# installed packages depend on the app's files, and the whole app is part of the cache key.
LOCAL_REF = re.compile(r"^\s*(-e\b|--editable\b|-r\b|--requirement\b|-c\b|--constraint\b|[./~]|\S*file:)")


def requirements_refer_to_app(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return any(LOCAL_REF.match(line) for line in f)
    except OSError:
        return False


def cmd_key(build, mode, *extra):
    """Everything the installed tree depends on: the interpreter, the buildpack and pip
    versions (EXTRA), the install mode, requirements.txt, the vendored files (by content),
    and the app's own files when the app itself (or a part of it) gets installed."""
    h = hashlib.sha256()
    h.update(b"dropship-python-cache-v1\0")
    h.update(("%s\0%s\0%s\0" % (sys.version, sys.executable, mode)).encode())
    for e in extra:
        h.update(e.encode() + b"\0")
    reqs = os.path.join(build, "requirements.txt")
    if mode == "requirements" and os.path.isfile(reqs):
        h.update(b"\0requirements.txt\0")
        hash_file(h, reqs)
    vendor = os.path.join(build, "vendor")
    if os.path.isdir(vendor):
        h.update(b"\0vendor\0")
        hash_tree(h, vendor)
    if mode == "project" or (mode == "requirements" and requirements_refer_to_app(reqs)):
        h.update(b"\0app\0")
        hash_tree(h, build, skip_top=("vendor",))
    print(h.hexdigest())


# --- manifest of an installed tree -------------------------------------------------------


def manifest_lines(root):
    lines = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                lines.append("%s -> %s" % (rel, os.readlink(path)))
            elif stat.S_ISDIR(st.st_mode):
                lines.append("%s/" % rel)
            else:
                lines.append("%s %d %o" % (rel, st.st_size, stat.S_IMODE(st.st_mode) & 0o111))
    lines.sort()
    return lines


def cmd_manifest(root):
    if not os.path.isdir(root):
        fail("%s is not a directory" % root)
    for line in manifest_lines(root):
        print(line)


def cmd_verify(root, manifest):
    try:
        with open(manifest, encoding="utf-8", errors="surrogateescape") as f:
            want = f.read().splitlines()
    except OSError as e:
        fail("cannot read the manifest: %s" % e.strerror)
    if not os.path.isdir(root):
        fail("%s is missing" % root)
    got = manifest_lines(root)
    if got != want:
        missing = sorted(set(want) - set(got))
        extra = sorted(set(got) - set(want))
        detail = (missing or extra or ["(order)"])[0]
        fail("%d entries differ from the manifest (e.g. %s)" % (len(missing) + len(extra), detail))


# --- installed distributions ----------------------------------------------------------


def cmd_installed(root):
    found = []
    if os.path.isdir(root):
        for name in os.listdir(root):
            meta = os.path.join(root, name, "METADATA")
            if name.endswith(".dist-info") and os.path.isfile(meta):
                with open(meta, encoding="utf-8", errors="replace") as f:
                    msg = email.parser.Parser().parse(f, headersonly=True)
                found.append((msg.get("Name", name), msg.get("Version", "?")))
    for n, v in sorted(found, key=lambda nv: normalize(nv[0])):
        print("%s %s" % (n, v))


# --- build backend of a pyproject.toml app ------------------------------------------------


def cmd_build_requires(build):
    # pip's default when pyproject.toml has no [build-system] (or there is only setup.py).
    requires = ["setuptools>=40.8.0", "wheel"]
    path = os.path.join(build, "pyproject.toml")
    if os.path.isfile(path):
        try:
            import tomllib  # Python 3.11+

            with open(path, "rb") as f:
                data = tomllib.load(f)
            requires = data.get("build-system", {}).get("requires", requires)
        except Exception:  # no tomllib, or a broken file: keep pip's default
            pass
    for r in requires:
        print(r)


# --- install without pip ------------------------------------------------------------------
#
# `pip download` resolved the dependencies already, so installing is unpacking every
# vendored wheel that fits this interpreter and platform (wheels are zip files laid out
# as they are installed; see the wheel spec, PEP 427 / the binary distribution format).


def glibc_version():
    try:
        name, version = os.confstr("CS_GNU_LIBC_VERSION").split()
        return tuple(int(x) for x in version.split(".")[:2]) if name == "glibc" else None
    except (AttributeError, ValueError, OSError):
        return None


LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


def platform_ok(tag):
    if tag == "any":
        return True
    machine = platform.machine()
    if sys.platform != "linux" or not tag.endswith("_" + machine):
        return False
    base = tag[: -len(machine) - 1]
    if base == "linux":
        return True
    glibc = glibc_version()
    if base in LEGACY_MANYLINUX:
        return glibc is not None and LEGACY_MANYLINUX[base] <= glibc
    m = re.fullmatch(r"manylinux_(\d+)_(\d+)", base)
    if m:
        return glibc is not None and (int(m.group(1)), int(m.group(2))) <= glibc
    if base.startswith("musllinux_"):
        return glibc is None  # a musl stack (no glibc)
    return False


def python_abi_ok(py, abi):
    major, minor = sys.version_info[:2]
    cp = "cp%d%d" % (major, minor)
    m = re.fullmatch(r"(py|cp)(\d)(\d*)", py)
    if not m or int(m.group(2)) != major:
        return False
    impl, py_minor = m.group(1), (int(m.group(3)) if m.group(3) else None)
    if abi == "none":
        return (impl == "py" and (py_minor is None or py_minor <= minor)) or py == cp
    if abi == "abi3":
        return impl == "cp" and py_minor is not None and py_minor <= minor
    return abi == cp and py == cp


def wheel_fits(filename):
    """(name, version, fits) for a wheel file name: name-ver(-build)?-py-abi-plat.whl"""
    parts = filename[: -len(".whl")].split("-")
    if len(parts) not in (5, 6):
        return None, None, False
    name, version = parts[0], parts[1]
    pys, abis, plats = (p.split(".") for p in parts[-3:])
    fits = any(python_abi_ok(p, a) for p in pys for a in abis) and any(platform_ok(p) for p in plats)
    return name, version, fits


def requirement_names(path, notes):
    """The project names requirements.txt asks for, as far as that is possible without pip;
    names with an environment marker are optional (the marker is not evaluated)."""
    required, optional = set(), set()
    with open(path, encoding="utf-8", errors="replace") as f:
        for raw in f:
            line = re.sub(r"(^|\s)#.*", "", raw).strip()
            if not line:
                continue
            if line.startswith("-"):
                notes.append("ignored without pip: %s" % line)
                continue
            m = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$", line)
            if not m or m.group(3).startswith("@") or "/" in m.group(1):
                fail("requirements.txt: '%s' needs pip to install (this stack has none): "
                     "vendor it as a wheel and name it by project name" % line)
            (optional if ";" in m.group(3) else required).add(normalize(m.group(1)))
    return required, optional


def safe_join(root, member):
    """root/member, refusing absolute names and '..' (a wheel must stay in its target)."""
    norm = os.path.normpath(member)
    if os.path.isabs(member) or norm == ".." or norm.startswith(".." + os.sep):
        raise ValueError("unsafe path in wheel: %s" % member)
    return os.path.join(root, norm)


CONSOLE_SCRIPT = """#!{python}
# -*- coding: utf-8 -*-
# Written by the dropship python buildpack (installed without pip).
import re
import sys
from {module} import {top}
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
    sys.exit({call}())
"""


def write_console_scripts(target, dist_info):
    path = os.path.join(target, dist_info, "entry_points.txt")
    if not os.path.isfile(path):
        return []
    cp = configparser.ConfigParser(delimiters=("=",), interpolation=None)
    cp.optionxform = str  # keep the scripts' names as they are
    cp.read(path, encoding="utf-8")
    written = []
    if cp.has_section("console_scripts"):
        for name, ref in cp.items("console_scripts"):
            ref = re.sub(r"\[.*\]", "", ref).strip()  # drop extras
            module, _, attrs = ref.partition(":")
            if not attrs or not module.strip():
                continue
            attrs = attrs.strip()
            text = CONSOLE_SCRIPT.format(python=sys.executable, module=module.strip(),
                                         top=attrs.split(".")[0], call=attrs)
            dest = safe_join(os.path.join(target, "bin"), name)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "w", encoding="utf-8") as f:
                f.write(text)
            os.chmod(dest, 0o755)
            written.append(name)
    return written


def unpack_wheel(path, target):
    """Installs one wheel into target; returns (dist-info dir, skipped .data kinds, scripts)."""
    skipped, dist_info = set(), None
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            name = info.filename
            if name.endswith("/"):
                continue
            top, _, rest = name.partition("/")
            is_script = False
            if top.endswith(".dist-info") and rest == "METADATA":
                dist_info = top
            if top.endswith(".data") and rest:
                kind, _, sub = rest.partition("/")
                if kind in ("purelib", "platlib"):
                    dest = safe_join(target, sub)
                elif kind == "scripts":
                    dest, is_script = safe_join(os.path.join(target, "bin"), sub), True
                else:  # headers, data: nothing at launch needs them
                    skipped.add(kind)
                    continue
            else:
                dest = safe_join(target, name)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            data = z.read(info)
            if is_script and re.match(rb"#!pythonw?\b", data):
                data = b"#!" + sys.executable.encode() + data[data.index(b"\n"):] if b"\n" in data \
                    else b"#!" + sys.executable.encode() + b"\n"
            with open(dest, "wb") as f:
                f.write(data)
            mode = (info.external_attr >> 16) & 0o777
            os.chmod(dest, 0o755 if is_script or mode & 0o111 else 0o644)
    if dist_info is None:
        raise ValueError("no .dist-info/METADATA in it")
    with open(os.path.join(target, dist_info, "INSTALLER"), "w") as f:
        f.write("dropship-python-buildpack\n")
    return dist_info, skipped, write_console_scripts(target, dist_info)


def cmd_unpack(vendor, target, reqs=None):
    wheels = sorted(f for f in os.listdir(vendor) if f.endswith(".whl")) if os.path.isdir(vendor) else []
    others = sorted(f for f in os.listdir(vendor) if not f.endswith(".whl")
                    and not f.startswith(".")) if os.path.isdir(vendor) else []
    chosen, by_name = [], {}
    for w in wheels:
        name, version, fits = wheel_fits(w)
        if name is None:
            print("skipped %s: not a wheel file name" % w)
        elif not fits:
            print("skipped %s: built for another Python or platform" % w)
        else:
            by_name.setdefault(normalize(name), []).append((w, version))
    for name, ws in sorted(by_name.items()):
        if len(ws) > 1:
            fail("vendor/ has %d wheels for %s (%s): without pip one cannot choose; keep one"
                 % (len(ws), name, ", ".join(w for w, _ in ws)))
        chosen.append(ws[0][0])
    for o in others:
        if re.search(r"\.(tar\.gz|zip|tar\.bz2)$", o):
            print("skipped %s: a source distribution needs pip to build" % o)

    if reqs:
        notes = []
        required, optional = requirement_names(reqs, notes)
        for n in notes:
            print(n)
        missing = sorted(required - set(by_name))
        for n in sorted(optional - set(by_name)):
            print("no wheel for %s (a requirement with an environment marker): skipped" % n)
        if missing:
            for n in missing:
                print("No matching distribution found for %s (no wheel for it in vendor/)" % n)
            sys.exit(MISSING)

    os.makedirs(target, exist_ok=True)
    for w in chosen:
        try:
            dist_info, skipped, scripts = unpack_wheel(os.path.join(vendor, w), target)
        except (zipfile.BadZipFile, ValueError, OSError, KeyError) as e:
            fail("cannot install %s: %s" % (w, e))
        line = "unpacked %s" % w
        if scripts:
            line += " (commands: %s)" % ", ".join(scripts)
        if skipped:
            line += " (not installed: its %s files)" % ", ".join(sorted(skipped))
        print(line)


COMMANDS = {
    "facts": (cmd_facts, 0, 0),
    "key": (cmd_key, 2, 99),
    "manifest": (cmd_manifest, 1, 1),
    "verify": (cmd_verify, 2, 2),
    "installed": (cmd_installed, 1, 1),
    "build-requires": (cmd_build_requires, 1, 1),
    "unpack": (cmd_unpack, 2, 3),
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        fail("usage: helper.py %s ..." % "|".join(COMMANDS))
    fn, lo, hi = COMMANDS[sys.argv[1]]
    args = sys.argv[2:]
    if not lo <= len(args) <= hi:
        fail("helper.py %s: wrong number of arguments" % sys.argv[1])
    fn(*args)
