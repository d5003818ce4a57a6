#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ for every fuzz target from the test fixtures (tests/fixtures) and the
# literal examples in the library's and the integration tests' sources, plus a few hand-written
# answers shaped like the Hub's. Generated, not committed; safe to run again (files are named by
# content, so a seed is written once). Prints how many seeds each target has.
#
#   fuzz/seed.sh
set -euo pipefail
cd "$(dirname "$0")"

python3 - <<'PY'
import glob, hashlib, json, os, re, struct, zlib

ROOT = ".."
CORPUS = "corpus"
PARTIAL_LEN = 200_000  # fuzz_targets/common/mod.rs: the partial is bytes i % 251
SEGMENTS_TAIL = 64 << 10  # src/transfer/segments.rs TAIL
CHECKPOINT_TAIL = 1 << 20  # src/transfer/checkpoint.rs TAIL
NOW_1994 = 784_111_777  # src/net/retry.rs tests: Sun, 06 Nov 1994 08:49:37 GMT
EXTRAS = ["config.json", "tokenizer.json", "tokenizer_config.json", "tokenizer.model"]

seeds = {t: set() for t in ["manifest", "hub_listing", "hub_tree", "modelscope_listing", "content_range",
                            "retry_after", "repo_path", "select", "segments", "checkpoint"]}

def add(target, data):
    seeds[target].add(data if isinstance(data, bytes) else data.encode())

# ---- string literals of Rust sources -------------------------------------------------------

ESC = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", "0": "\0", "'": "'", '"': '"'}

def unescape(body, is_bytes):
    out, i = bytearray(), 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out += c.encode()
            i += 1
            continue
        n = body[i + 1]
        if n in ESC:
            out += ESC[n].encode()
            i += 2
        elif n == "x":
            v = int(body[i + 2:i + 4], 16)
            out += bytes([v]) if is_bytes else chr(v).encode()
            i += 4
        elif n == "u":
            end = body.index("}", i)
            out += chr(int(body[i + 3:end], 16)).encode("utf-8", "surrogatepass")
            i = end + 1
        elif n == "\n":  # line continuation
            i += 2
            while i < len(body) and body[i] in " \t\n":
                i += 1
        else:
            out += body[i:i + 2].encode()
            i += 2
    return bytes(out)

RAW = re.compile(r'b?r(#*)"(.*?)"\1', re.S)
CHAR = re.compile(r"'(\\u\{[0-9a-fA-F]+\}|\\x[0-9a-fA-F]{2}|\\.|[^\\'])'")

def literals(text):
    """(offset, bytes) of every string literal in Rust source `text`."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            i = text.find("\n", i)
            i = n if i < 0 else i
        elif text.startswith("/*", i):
            j = text.find("*/", i)
            i = n if j < 0 else j + 2
        elif c in "rb" and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")) and RAW.match(text, i):
            m = RAW.match(text, i)
            out.append((i, m.group(2).encode()))
            i = m.end()
        elif c == '"' or (c == "b" and text.startswith('b"', i) and not (text[i - 1].isalnum() or text[i - 1] == "_")):
            is_bytes = c == "b"
            j = i + 1 + is_bytes
            start = j
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                break
            try:
                out.append((i, unescape(text[start:j], is_bytes)))
            except (ValueError, IndexError):
                pass
            i = j + 1
        elif c == "'":
            m = CHAR.match(text, i)
            i = m.end() if m else i + 1
        else:
            i += 1
    return out

def rust_files(*patterns):
    for p in patterns:
        yield from sorted(glob.glob(os.path.join(ROOT, p), recursive=True))

def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()

all_literals = {}
for path in rust_files("src/**/*.rs", "tests/**/*.rs"):
    if path.endswith("src/fuzzing.rs"):
        continue
    all_literals[os.path.relpath(path, ROOT)] = [b for _, b in literals(read(path))]

def as_json(b):
    try:
        return json.loads(b)
    except (ValueError, UnicodeDecodeError):
        return None

# ---- manifest: every literal of src/manifest.rs, and manifest-shaped JSON anywhere ----------

MANIFEST_KEYS = {"repo_id", "commit_hash", "download_path", "files", "files_count"}
for path, lits in all_literals.items():
    for b in lits:
        v = as_json(b)
        if path == "src/manifest.rs" or (isinstance(v, dict) and MANIFEST_KEYS & set(v)):
            add("manifest", b)

# ---- listings from tests/fixtures (ModelScope vectors give real paths, sizes and hashes) -----

def fake_oid(s):
    return hashlib.sha1(s.encode()).hexdigest()

listings = []  # (paths, entries)
for fixture in sorted(glob.glob(os.path.join(ROOT, "tests/fixtures/*.json"))):
    data = json.loads(read(fixture))
    for vec in data.get("vectors", []):
        entries = vec.get("entries", [])
        files = [e for e in entries if not e.get("is_directory")]
        listings.append(([e["path"] for e in files], entries))
        sha = fake_oid(json.dumps(vec, sort_keys=True))
        siblings, tree = [], []
        for e in entries:
            if e.get("is_directory"):
                tree.append({"type": "directory", "oid": fake_oid(e["path"]), "size": 0, "path": e["path"]})
                continue
            lfs = len(e.get("hash", "")) == 64
            s = {"rfilename": e["path"], "size": e["size"], "blobId": fake_oid(e["path"])}
            t = {"type": "file", "oid": fake_oid(e["path"]), "size": e["size"], "path": e["path"]}
            if lfs:
                s["lfs"] = {"sha256": e["hash"], "size": e["size"], "pointerSize": 134}
                t["lfs"] = {"oid": e["hash"], "size": e["size"], "pointerSize": 134}
            siblings.append(s)
            tree.append(t)
        add("hub_listing", json.dumps({"_id": "x", "id": "org/repo", "sha": sha, "siblings": siblings}))
        # Without sizes: the answer that sends a pull to the tree API.
        add("hub_listing", json.dumps({"sha": sha, "siblings": [{"rfilename": s["rfilename"]} for s in siblings]}))
        add("hub_tree", "\n" + json.dumps(tree))
        # ModelScope: the revision on the first line, then the listing in each body shape.
        ms = [{"Name": os.path.basename(e["path"]), "Path": e["path"],
               "Type": "tree" if e.get("is_directory") else "blob",
               "Size": e["size"], "Sha256": e.get("hash", "")} for e in entries]
        rev = vec.get("revision", "master")
        add("modelscope_listing", rev + "\n" + json.dumps(ms))
        add("modelscope_listing", rev + "\n" + json.dumps({"Code": 200, "Success": True, "Data": {"Files": ms}}))
        add("modelscope_listing", rev + "\n" + json.dumps({"Data": ms}))
        lower = [{k.lower(): v for k, v in m.items()} for m in ms]
        add("modelscope_listing", rev + "\n" + json.dumps({"Data": {"files": lower}}))
        link = f'<https://huggingface.co/api/models/org/repo/tree/{sha}?recursive=true&cursor=Mg%3D%3D>; rel="next"'
        add("hub_tree", link + "\n" + json.dumps(tree))
        for p in [e["path"] for e in entries]:
            add("repo_path", p)
        add("repo_path", "\n".join(e["path"] for e in entries))

# Hand-written: the Hub's answers in their usual shape.
add("hub_listing", json.dumps({
    "_id": "6624", "id": "org/repo", "sha": "0123456789abcdef0123456789abcdef01234567",
    "siblings": [
        {"rfilename": ".gitattributes", "size": 1519, "blobId": "a6344aac8c09253b3b630fb776ae94478aa0275b"},
        {"rfilename": "config.json", "size": 661, "blobId": "e1e4b7d8f0a2c3b4d5e6f708192a3b4c5d6e7f80"},
        {"rfilename": "Q4_K_M/m-Q4_K_M-00001-of-00002.gguf", "size": 4000000000,
         "blobId": "b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5",
         "lfs": {"sha256": "9b74c9897bac770ffc029102a200c5de4f2b6d1e0e1f2a3b4c5d6e7f8091a2b3",
                 "size": 4000000000, "pointerSize": 135}}],
    "createdAt": "2024-04-20T00:00:00.000Z", "usedStorage": 4000002180}))
add("hub_listing", '{"sha":"0123456789ABCDEF0123456789abcdef01234567","siblings":[]}')
add("hub_listing", '{"error":"Repository not found"}')
add("hub_tree", '<https://h/api/models/o/n/tree/main?cursor=2>; rel="prev", <https://h/api/models/o/n/tree/main?cursor=3>; rel=next\n[]')
add("hub_tree", '\n[{"type":"directory","oid":"b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5","size":0,"path":"Q4_K_M"}]')

for path, lits in all_literals.items():
    for b in lits:
        v = as_json(b)
        if isinstance(v, dict) and ("siblings" in v or "sha" in v):
            add("hub_listing", b)
        if isinstance(v, list) and any(isinstance(e, dict) and "type" in e for e in v):
            add("hub_tree", b"\n" + b)
        if b"rel=" in b and b.count(b"\n") == 0:
            add("hub_tree", b + b"\n[]")

# ---- headers -----------------------------------------------------------------------------

for path, lits in all_literals.items():
    for b in lits:
        if b.lstrip().startswith(b"bytes") and b"{" not in b and len(b) < 100:
            add("content_range", b)
        if (b.endswith(b" GMT") or path == "src/net/retry.rs") and b"{" not in b and len(b) < 100:
            for now in (0, NOW_1994):
                add("retry_after", struct.pack("<Q", now) + b)
for v in (b"0", b"120", b"18446744073709551615"):
    add("retry_after", struct.pack("<Q", NOW_1994) + v)

# ---- repo paths, ids and revisions: the literals of their tests ---------------------------

for path in ("src/repo_path.rs", "tests/hostile.rs", "src/cache.rs"):
    for b in all_literals.get(path, []):
        if 0 < len(b) <= 1100:
            add("repo_path", b)

# ---- GGUF variants and globs: the listings, variants and globs of src/select's tests -------

sel_src = read(os.path.join(ROOT, "src/select/mod.rs"))
ARRAY = re.compile(r'(?:const|let)\s+(\w+)\s*(?::[^=]*?)?=\s*\[')
def bracketed(text, i):
    """The text of the `[...]` opening at `i`, strings skipped."""
    depth, j = 0, i
    while j < len(text):
        c = text[j]
        if c == '"':
            j += 1
            while j < len(text) and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
        elif c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
            if depth == 0:
                return text[i:j + 1]
        j += 1
    return text[i:]
def str_list(text):
    return [b.decode() for _, b in literals(text)]
def arrays(text):
    return {m.group(1): str_list(bracketed(text, m.end() - 1)) for m in ARRAY.finditer(text)}
consts = arrays(sel_src)

def select_seed(variant, include, exclude, paths):
    return "\n".join([variant, "\t".join(include), "\t".join(exclude)] + list(paths))

for fn in re.split(r"\n\s*fn ", sel_src):
    local = dict(consts)
    local.update(arrays(fn))
    for m in re.finditer(r'variant\(\s*&(\w+)\s*,\s*("(?:[^"\\]|\\.)*")', fn):
        if m.group(1) in local:
            add("select", select_seed(str_list(m.group(2))[0], [], [], local[m.group(1)]))
    for m in re.finditer(r'globs\(\s*&(\w+)\s*,\s*&', fn):
        include = bracketed(fn, m.end())
        rest = fn[m.end() + len(include):]
        k = rest.find("[")
        if m.group(1) in local and k >= 0:
            exclude = str_list(bracketed(rest, k))
            add("select", select_seed("", str_list(include), exclude, local[m.group(1)]))
for paths, _ in listings:
    for variant in ("Q4_K_M", "*", "", "model-Q4_K_M.gguf"):
        add("select", select_seed(variant, [], [], paths + EXTRAS[:1]))
    add("select", select_seed("", ["*.gguf"], ["*mmproj*"], paths))

# ---- segments sidecar and checkpoints: records of the fuzz targets' partial ----------------

data = bytes(i % 251 for i in range(PARTIAL_LEN))
def crc(a, b):
    return zlib.crc32(data[a:b])
def seg(size, ranges):
    done = [{"start": a, "end": b, "tail_crc32": crc(max(a, b - SEGMENTS_TAIL), b)} for a, b in ranges]
    return json.dumps({"size": size, "done": done})
add("segments", seg(PARTIAL_LEN, [(0, 1000)]))
add("segments", seg(PARTIAL_LEN * 4, [(0, 100_000), (120_000, 190_000)]))
add("segments", seg(PARTIAL_LEN, [(150_000, PARTIAL_LEN)]))
add("segments", seg(PARTIAL_LEN, []))
add("segments", '{"size":200000,"done":[{"start":5,"end":5,"tail_crc32":0},{"start":0,"end":18446744073709551615,"tail_crc32":1}]}')
add("segments", "{not json")
for n in (0, 1, 100_000, PARTIAL_LEN):
    add("checkpoint", json.dumps({"len": n, "crc32": crc(max(0, n - CHECKPOINT_TAIL), n)}))
add("checkpoint", '{"len":300000,"crc32":0}')
add("checkpoint", '{"len":5}')

for target, items in sorted(seeds.items()):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    for b in items:
        with open(os.path.join(d, hashlib.sha1(b).hexdigest()), "wb") as f:
            f.write(b)
    print(f"seed: {target:14} {len(items):4} seeds")
PY
