"""Fails when two source files of one crate refer to each other (through `crate::`/`super::` paths, `use`
groups included, or a module's own `child::` paths): the rooms of a crate depend one way, as its crates do.
Comments and test modules are not read. Usage: python3 scripts/import_cycles.py [crates-dir]"""
import os, re, sys
root = sys.argv[1] if len(sys.argv) > 1 else 'crates'
pairs = []
for crate in sorted(os.listdir(root)):
    src = os.path.join(root, crate, 'src')
    if not os.path.isdir(src):
        continue
    files = {}
    for d, _, fs in os.walk(src):
        for f in fs:
            if f.endswith('.rs'):
                p = os.path.join(d, f)
                rel = os.path.relpath(p, src)[:-3]
                parts = rel.split(os.sep)
                if parts[-1] in ('mod', 'lib', 'main'):
                    parts = parts[:-1]
                files[tuple(parts)] = p
    def resolve(mod_path):
        # longest prefix that is a file
        for n in range(len(mod_path), -1, -1):
            if tuple(mod_path[:n]) in files:
                return tuple(mod_path[:n])
        return None
    refs = {k: set() for k in files}
    for key, p in files.items():
        text = open(p).read()
        # drop test modules
        text = re.split(r'#\[cfg\(test\)\]\s*mod tests', text)[0]
        text = re.sub(r'//[^\n]*', '', text)
        for m in re.finditer(r'\bcrate((?:::\w+)+)', text):
            path = m.group(1).split('::')[1:]
            t = resolve(path)
            if t is not None and t != key:
                refs[key].add(t)
        for m in re.finditer(r'\bcrate::\{([^}]*)\}', text):
            for item in m.group(1).split(','):
                item = item.strip()
                if not item:
                    continue
                t = resolve(item.split('::')) if item[0].islower() else ()
                t = t if t is not None else ()
                if t != key:
                    refs[key].add(t)
        for m in re.finditer(r'\bsuper((?:::\w+)+)', text):
            base = list(key[:-1])
            path = base + m.group(1).split('::')[1:]
            t = resolve(path)
            if t is not None and t != key:
                refs[key].add(t)
        # lib.rs / mod.rs: `pub use child::x` and `child::f(...)` at top level refer to children
        for m in re.finditer(r'(?<![:\w])(\w+)::', text):
            child = key + (m.group(1),)
            if child in files and child != key:
                refs[key].add(child)
    for a in refs:
        for b in refs[a]:
            if a < b and a in refs.get(b, ()):
                pairs.append((crate, files[a], files[b]))
for c, a, b in pairs:
    print(f"{a} <-> {b}")
if pairs:
    print(f"{len(pairs)} pairs of files refer to each other", file=sys.stderr)
    sys.exit(1)
print("no two source files of a crate refer to each other")
