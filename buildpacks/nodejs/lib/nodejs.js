'use strict';
// The nodejs buildpack's helper: everything that reads package.json (the stack
// has node but no jq), run by bin/supply and bin/finalize with the stack's node:
//
//   node nodejs.js COMMAND APP_DIR [ARGS...]
//
//   check APP                  fail (exit 1, one clear message) if package.json is unusable
//   deps APP                   the names in "dependencies", one per line
//   count APP                  how many packages node_modules holds (top level, scopes expanded)
//   check-vendored APP         warning lines about a vendored node_modules (missing
//                              dependencies, native addons that do not load on this node)
//   fingerprint APP            sha256 of what decides the installed dependencies
//   engines APP                "<ok|no|unknown> <engines.node>", nothing if there is none
//   npmrc-cache APP            the app folder named by `cache=` in the app's .npmrc, if valid
//   start-sh APP OUT VERSION   choose the start command the way `npm start` would, write the
//                              launch script OUT, print what was chosen (exit 2: none found)
//
// Plain CommonJS with no dependencies, and no syntax newer than Node 10, so it
// runs on whatever node the stack has. Errors are one line, never a stack trace.

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');

const INDENT = '       ';

class Fail extends Error {}

function fail(msg) {
    throw new Fail(msg);
}

function readText(file) {
    try {
        return fs.readFileSync(file, 'utf8');
    } catch (e) {
        return null;
    }
}

function isDir(p) {
    try {
        return fs.statSync(p).isDirectory();
    } catch (e) {
        return false;
    }
}

function isFile(p) {
    try {
        return fs.statSync(p).isFile();
    } catch (e) {
        return false;
    }
}

// readPkg APP: package.json as an object (a BOM is allowed, as npm allows it).
function readPkg(app) {
    const text = readText(path.join(app, 'package.json'));
    if (text === null) fail('the app has no readable package.json');
    let pkg;
    try {
        pkg = JSON.parse(text.replace(/^\uFEFF/, ''));
    } catch (e) {
        fail(`package.json is not valid JSON: ${e.message}`);
    }
    if (pkg === null || typeof pkg !== 'object' || Array.isArray(pkg)) {
        fail('package.json must hold a JSON object ({ "name": ..., "dependencies": {...} })');
    }
    return pkg;
}

function objectKeys(v) {
    return v && typeof v === 'object' && !Array.isArray(v) ? Object.keys(v) : [];
}

// topLevelPackages APP: the package folders directly in node_modules ("@scope/name" for scoped ones).
function topLevelPackages(app) {
    const nm = path.join(app, 'node_modules');
    const out = [];
    let entries;
    try {
        entries = fs.readdirSync(nm);
    } catch (e) {
        return out;
    }
    for (const name of entries.sort()) {
        if (name.startsWith('.')) continue; // .bin, .package-lock.json, .cache
        if (name.startsWith('@')) {
            let scoped = [];
            try {
                scoped = fs.readdirSync(path.join(nm, name)).sort();
            } catch (e) {
                continue;
            }
            for (const s of scoped) {
                if (!s.startsWith('.') && isDir(path.join(nm, name, s))) out.push(`${name}/${s}`);
            }
        } else if (isDir(path.join(nm, name))) {
            out.push(name);
        }
    }
    return out;
}

// --- engines.node: a small semver range check (no npm, no semver package) ---------

// partial "18", "18.2", "v18.2.1", "18.x", "*": the numeric parts given, or null.
function parsePartial(s) {
    s = s.replace(/^[=v]+/, '');
    if (s === '' || s === '*' || s === 'x' || s === 'X') return [];
    const m = /^(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?(?:[-+][0-9A-Za-z.+-]*)?$/.exec(s);
    if (!m) return null;
    const parts = [];
    for (const x of [m[1], m[2], m[3]]) {
        if (x === undefined || /^[xX*]$/.test(x)) break;
        parts.push(Number(x));
    }
    return parts;
}

function cmp(a, b) {
    for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
    return 0;
}
const low = (p) => [p[0] || 0, p[1] || 0, p[2] || 0];
// The first version after every version matching the partial P ([] = no limit).
function after(p) {
    if (p.length === 0) return null;
    const v = low(p);
    v[p.length - 1] += 1;
    for (let i = p.length; i < 3; i++) v[i] = 0;
    return v;
}

// comparator TOKEN: a predicate on [major, minor, patch], or null if not understood.
function comparator(tok) {
    const m = /^(>=|<=|>|<|=|~>|~|\^)?(.*)$/.exec(tok);
    const op = m[1] || '';
    const p = parsePartial(m[2]);
    if (p === null) return null;
    const full = p.length === 3;
    const lo = low(p);
    const hi = after(p);
    switch (op) {
        case '>=':
            return (v) => cmp(v, lo) >= 0;
        case '>':
            if (!hi) return () => false;
            return full ? (v) => cmp(v, lo) > 0 : (v) => cmp(v, hi) >= 0;
        case '<':
            return (v) => cmp(v, lo) < 0;
        case '<=':
            if (!hi) return () => true;
            return full ? (v) => cmp(v, lo) <= 0 : (v) => cmp(v, hi) < 0;
        case '':
        case '=':
            if (!hi) return () => true;
            return (v) => cmp(v, lo) >= 0 && cmp(v, hi) < 0;
        case '~':
        case '~>': {
            if (!hi) return () => true;
            const top = p.length >= 2 ? [p[0], p[1] + 1, 0] : [p[0] + 1, 0, 0];
            return (v) => cmp(v, lo) >= 0 && cmp(v, top) < 0;
        }
        case '^': {
            if (!hi) return () => true;
            let top;
            if (p[0] > 0 || p.length === 1) top = [p[0] + 1, 0, 0];
            else if (p[1] > 0 || p.length === 2) top = [0, p[1] + 1, 0];
            else top = [0, 0, p[2] + 1];
            return (v) => cmp(v, lo) >= 0 && cmp(v, top) < 0;
        }
    }
    return null;
}

// satisfies VERSION RANGE: true, false, or null when the range is not understood.
function satisfies(version, range) {
    const v = low(parsePartial(version) || []);
    let understood = true;
    for (let alt of range.split('||')) {
        alt = alt.trim().replace(/(>=|<=|>|<|=|~>|~|\^)\s+/g, '$1');
        let preds = [];
        const hyphen = /^(\S+)\s+-\s+(\S+)$/.exec(alt);
        if (hyphen) {
            const a = parsePartial(hyphen[1]);
            const b = parsePartial(hyphen[2]);
            if (a === null || b === null) {
                understood = false;
                continue;
            }
            preds = [comparator(`>=${hyphen[1]}`), comparator(`<=${hyphen[2]}`)];
        } else {
            preds = alt === '' ? [] : alt.split(/\s+/).map(comparator);
        }
        if (preds.some((f) => f === null)) {
            understood = false;
            continue;
        }
        if (preds.every((f) => f(v))) return true;
    }
    return understood ? false : null;
}

// --- the start command ------------------------------------------------------------

// Words that cannot follow `exec`: reserved words and shell built-ins with no program.
const SHELL_ONLY = new Set(
    ('if then else elif fi case esac for while until do done in { } ! ' +
        'cd . source eval export set unset alias unalias read readonly shift trap ' +
        'ulimit umask wait exit return break continue local').split(' ')
);

// simpleCommand SCRIPT: the words of SCRIPT ({raw, value, start}) if it is one simple
// command (words, quotes, $VAR), else null: lists, pipes, redirections, subshells,
// command substitutions, comments and newlines all make it "not simple".
function simpleCommand(s) {
    const words = [];
    const n = s.length;
    let i = 0;
    for (;;) {
        while (i < n && (s[i] === ' ' || s[i] === '\t')) i++;
        if (i >= n) break;
        const start = i;
        let value = '';
        if (s[i] === '#') return null;
        while (i < n && s[i] !== ' ' && s[i] !== '\t') {
            const c = s[i];
            if (c === "'") {
                const j = s.indexOf("'", i + 1);
                if (j < 0) return null;
                value += s.slice(i + 1, j);
                i = j + 1;
            } else if (c === '"') {
                let j = i + 1;
                while (j < n && s[j] !== '"') {
                    if (s[j] === '`' || (s[j] === '$' && s[j + 1] === '(')) return null;
                    if (s[j] === '\\' && j + 1 < n) {
                        value += s[j + 1];
                        j += 2;
                    } else {
                        value += s[j];
                        j += 1;
                    }
                }
                if (j >= n) return null;
                i = j + 1;
            } else if (c === '\\') {
                if (i + 1 >= n || s[i + 1] === '\n') return null;
                value += s[i + 1];
                i += 2;
            } else if (';&|()<>`\n\r'.includes(c) || (c === '$' && s[i + 1] === '(')) {
                return null;
            } else {
                value += c;
                i += 1;
            }
        }
        words.push({ raw: s.slice(start, i), value, start });
    }
    return words.length ? words : null;
}

// shq S: S quoted for sh.
const shq = (s) => `'${String(s).replace(/'/g, "'\\''")}'`;

// onPath NAME APP: where NAME would be found at launch: node_modules/.bin, then PATH.
function onPath(name, app) {
    const dirs = [path.join(app, 'node_modules', '.bin')].concat(
        (process.env.PATH || '').split(':').filter(Boolean)
    );
    for (const d of dirs) {
        const p = path.join(d, name);
        try {
            fs.accessSync(p, fs.constants.X_OK);
            if (isFile(p)) return p;
        } catch (e) {
            // not there
        }
    }
    return null;
}

// runnableFile APP FILE: FILE (relative to the app) as `node FILE` would find it
// (FILE, FILE.js, FILE/index.js, ...), or null.
function runnableFile(app, file) {
    if (typeof file !== 'string' || file.trim() === '') return null;
    const rel = path.posix.normalize(file.trim());
    if (path.isAbsolute(rel) || rel === '..' || rel.startsWith('../')) return null;
    try {
        const found = require.resolve(path.resolve(app, rel));
        if (!found.startsWith(path.resolve(app) + path.sep)) return null;
    } catch (e) {
        return null;
    }
    return rel.startsWith('-') ? `./${rel}` : rel;
}

// startScript APP PKG: {how, command, lines, notes} for the app, or null if it has no
// start command. `lines` are the script lines that run it; `command` is shown in the log.
function startScript(app, pkg) {
    const scripts = pkg.scripts && typeof pkg.scripts === 'object' ? pkg.scripts : {};
    const notes = [];
    const start = typeof scripts.start === 'string' ? scripts.start.trim() : '';
    if (start !== '') {
        const lines = [
            '# npm\'s variables for lifecycle scripts (the ones apps read).',
            `export npm_package_name=${shq(pkg.name || '')} npm_package_version=${shq(pkg.version || '')}`,
            'export npm_package_json="$APP_DIR/package.json"',
        ];
        if (typeof scripts.prestart === 'string' && scripts.prestart.trim() !== '') {
            lines.push(
                '# package.json "prestart", which `npm start` runs first:',
                `npm_lifecycle_event=prestart npm_lifecycle_script=${shq(scripts.prestart)} \\`,
                `    /bin/sh -c ${shq(scripts.prestart)} || exit $?`
            );
            notes.push(`runs "prestart" first: ${scripts.prestart}`);
        }
        if (typeof scripts.poststart === 'string' && scripts.poststart.trim() !== '') {
            notes.push('"poststart" is not run: the start script replaces the launch script (exec)');
        }
        lines.push(
            `export npm_lifecycle_event=start npm_lifecycle_script=${shq(start)}`,
            '# package.json "start":'
        );
        const words = simpleCommand(start);
        let k = 0;
        while (words && k < words.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[k].raw)) k++;
        const cmdWord = words && k < words.length ? words[k] : null;
        if (cmdWord && !SHELL_ONLY.has(cmdWord.value)) {
            // One simple command: run it with exec, so that its program (node) replaces
            // the shell and gets the launcher's signals. Leading VAR=value words stay in
            // front of exec, which passes them to the program.
            const assigns = start.slice(0, cmdWord.start).trim();
            const rest = start.slice(cmdWord.start).trim();
            lines.push(cmdWord.value === 'exec' ? start : `${assigns ? assigns + ' ' : ''}exec ${rest}`);
            const prog = cmdWord.value === 'exec' ? (words[k + 1] || {}).value : cmdWord.value;
            if (prog && !prog.includes('$')) {
                if (prog.includes('/')) {
                    if (!isFile(path.resolve(app, prog))) {
                        notes.push(`WARNING: the start script runs ${prog}, which is not in the app`);
                    }
                } else if (!onPath(prog, app)) {
                    const why = ['npm', 'npx', 'yarn', 'pnpm'].includes(prog)
                        ? 'this stack has no ' + prog
                        : `'${prog}' is neither in node_modules/.bin nor on this stack (a devDependency?)`;
                    notes.push(`WARNING: the start script runs ${prog}, but ${why}: the app will not start`);
                }
            }
        } else {
            // Lists, pipes, redirections...: npm runs it with `sh -c`, so do we. The shell
            // stays the parent of node unless the script execs it itself.
            lines.push(`exec /bin/sh -c ${shq(start)}`);
            if (!/(^|[\s;&|(])exec\s/.test(start)) {
                notes.push(
                    'the start script is not a single command, so node runs under a shell that ' +
                        'does not pass it SIGTERM; put `exec` before its last command ' +
                        '(e.g. "cd dist && exec node server.js") to let node stop gracefully'
                );
            }
            const tools = start.match(/(^|[\s;&|(])(npm|npx|yarn|pnpm)(?=\s|$)/g) || [];
            for (const t of new Set(tools.map((x) => x.replace(/^[\s;&|(]/, '')))) {
                if (!onPath(t, app)) {
                    notes.push(`WARNING: the start script runs ${t}, but this stack has no ${t}: the app will not start`);
                }
            }
        }
        return { how: 'package.json "scripts.start"', command: start, lines, notes };
    }
    // No start script: node MAIN, then the usual file names (npm itself only knows server.js).
    let file = null;
    let how = '';
    if (pkg.main !== undefined) {
        file = runnableFile(app, pkg.main);
        if (file) how = 'package.json "main"';
        else notes.push(`package.json "main" (${JSON.stringify(pkg.main)}) is not a file of the app: ignored`);
    }
    if (!file) {
        for (const f of ['server.js', 'app.js', 'index.js']) {
            if (isFile(path.join(app, f))) {
                file = f;
                how = `${f} (package.json has no "scripts.start"${pkg.main !== undefined ? '' : ' nor "main"'})`;
                break;
            }
        }
    }
    if (!file) return notes.length ? { notes } : null;
    return { how, command: `node ${file}`, lines: [`exec node ${shq(file)}`], notes };
}

function writeStartSh(app, out, version) {
    const pkg = readPkg(app);
    const s = startScript(app, pkg);
    const notes = (s && s.notes) || [];
    const print = () => notes.forEach((n) => console.log(INDENT + n));
    if (!s || !s.lines) {
        print();
        return 2;
    }
    const text = [
        '#!/bin/sh',
        `# Written by the nodejs buildpack ${version} at staging: the app's start command,`,
        `# from ${s.how}.`,
        '# Like `npm start` (without npm): run from the app directory (the parent of this',
        '# script\'s folder) with node_modules/.bin first on PATH. The command is exec\'d, so',
        '# that node replaces this shell and receives the launcher\'s signals.',
        'case $0 in',
        '    */*) cd "${0%/*}/.." || exit 1 ;;',
        '    *) cd .. || exit 1 ;;',
        'esac',
        'APP_DIR=$(pwd)',
        'case ":$PATH:" in',
        '    *":$APP_DIR/node_modules/.bin:"*) ;; # profile.d put it there already',
        '    *) PATH="$APP_DIR/node_modules/.bin:$PATH" && export PATH ;;',
        'esac',
        'if ! command -v node >/dev/null 2>&1; then',
        '    echo "nodejs: this stack has no node (PATH=$PATH): use a stack with nodejs" >&2',
        '    exit 127',
        'fi',
    ]
        .concat(s.lines)
        .join('\n');
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, text + '\n', { mode: 0o755 });
    fs.chmodSync(out, 0o755);
    console.log(`${s.how}: ${s.command}`);
    print();
    return 0;
}

// --- vendored node_modules --------------------------------------------------------

// Native addons compiled on the developer's machine (node-gyp's build/Release) must
// match this stack's node ABI, CPU and libc. Load each in a child node to find out.
function checkAddons(app) {
    const nm = path.join(app, 'node_modules');
    const found = [];
    const walk = (dir, depth) => {
        if (depth > 12 || found.length >= 50) return;
        let entries;
        try {
            entries = fs.readdirSync(dir, { withFileTypes: true });
        } catch (e) {
            return;
        }
        for (const e of entries) {
            const p = path.join(dir, e.name);
            if (e.isDirectory()) walk(p, depth + 1);
            else if (e.isFile() && e.name.endsWith('.node') && /[/\\]build[/\\]Release[/\\]/.test(p)) found.push(p);
        }
    };
    walk(nm, 0);
    const { spawnSync } = require('child_process');
    const lines = [];
    const deadline = Date.now() + 60000; // the whole check; each addon has 20 s
    for (const f of found) {
        if (Date.now() > deadline) {
            lines.push(`(native addons not checked after 60 s: ${path.relative(app, f)} and the rest)`);
            break;
        }
        const r = spawnSync(process.execPath, ['-e', 'require(process.argv[1])', f], {
            encoding: 'utf8',
            timeout: 20000,
        });
        if (r.status === 0) continue;
        const err = `${r.stderr || ''}`.split('\n').find((l) => /Error/.test(l)) || `exit status ${r.status}`;
        lines.push(
            `WARNING: the native addon ${path.relative(app, f)} does not load with this stack's node ` +
                `${process.version}: ${err.trim().slice(0, 300)}`
        );
    }
    if (lines.length) {
        lines.push(
            `Rebuild native addons for Node ${process.versions.node.split('.')[0]} on Linux ` +
                `${process.arch} (glibc), e.g. run \`npm ci --omit=dev\` in a node:${process.versions.node.split('.')[0]}-bookworm container, then push again`
        );
    }
    return lines;
}

function checkVendored(app) {
    const pkg = readPkg(app);
    const have = new Set(topLevelPackages(app));
    const missing = objectKeys(pkg.dependencies).filter((d) => !have.has(d));
    const lines = [];
    if (missing.length) {
        lines.push(
            `WARNING: node_modules lacks ${missing.length} of package.json's dependencies: ` +
                `${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', ...' : ''} ` +
                '(requiring them will fail; run `npm install --omit=dev` and push again)'
        );
    }
    return lines.concat(checkAddons(app));
}

// --- the rest ------------------------------------------------------------------------

function fingerprint(app) {
    const h = crypto.createHash('sha256');
    for (const f of ['package.json', 'package-lock.json', 'npm-shrinkwrap.json', 'node_modules/.package-lock.json']) {
        const t = readText(path.join(app, f));
        h.update(`${f}\0${t === null ? '-' : t}\0`);
    }
    // What is installed, even without npm's hidden lockfile: name@version of each package.
    for (const name of topLevelPackages(app)) {
        let v = '?';
        try {
            v = JSON.parse(fs.readFileSync(path.join(app, 'node_modules', name, 'package.json'), 'utf8')).version;
        } catch (e) {
            // unreadable: counted as '?'
        }
        h.update(`${name}@${v}\n`);
    }
    return h.digest('hex');
}

// The app's .npmrc `cache=DIR`, if DIR is a folder inside the app (relative).
function npmrcCache(app) {
    const text = readText(path.join(app, '.npmrc'));
    if (text === null) return null;
    let dir = null;
    for (const line of text.split(/\r?\n/)) {
        const m = /^\s*cache\s*=\s*(.*?)\s*$/.exec(line);
        if (m) dir = m[1].replace(/^(["'])(.*)\1$/, '$2');
    }
    if (dir === null || dir === '') return null;
    const rel = path.posix.normalize(dir.replace(/^\$\{?PWD\}?\//, ''));
    if (path.isAbsolute(rel) || rel.startsWith('~') || rel === '..' || rel.startsWith('../') || rel.includes('$')) {
        console.error(`${INDENT}Ignoring cache=${dir} in .npmrc: not a folder inside the app`);
        return null;
    }
    if (!isDir(path.join(app, rel))) {
        console.error(`${INDENT}Ignoring cache=${dir} in .npmrc: the app has no folder ${rel}`);
        return null;
    }
    return rel.replace(/\/$/, '');
}

function main(argv) {
    const [cmd, app] = argv;
    if (!app) fail(`usage: nodejs.js COMMAND APP_DIR (command: ${cmd})`);
    switch (cmd) {
        case 'check':
            readPkg(app);
            return 0;
        case 'deps':
            objectKeys(readPkg(app).dependencies).forEach((d) => console.log(d));
            return 0;
        case 'count':
            console.log(topLevelPackages(app).length);
            return 0;
        case 'check-vendored':
            checkVendored(app).forEach((l) => console.log(INDENT + l));
            return 0;
        case 'fingerprint':
            console.log(fingerprint(app));
            return 0;
        case 'engines': {
            const e = readPkg(app).engines;
            const range = e && typeof e === 'object' && typeof e.node === 'string' ? e.node.trim() : '';
            if (range === '') return 0;
            const ok = satisfies(process.versions.node, range);
            console.log(`${ok === null ? 'unknown' : ok ? 'ok' : 'no'} ${range}`);
            return 0;
        }
        case 'npmrc-cache': {
            const dir = npmrcCache(app);
            if (dir) console.log(dir);
            return 0;
        }
        case 'start-sh':
            return writeStartSh(app, argv[2], argv[3] || '');
        default:
            fail(`unknown command ${cmd}`);
    }
    return 1;
}

try {
    process.exitCode = main(process.argv.slice(2));
} catch (e) {
    const msg = e instanceof Fail ? e.message : `internal error: ${e && e.message}`;
    process.stderr.write(`-----> nodejs: ${msg}\n`);
    process.exitCode = 1;
}
