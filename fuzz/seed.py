"""Seeds fuzz/corpus/ from the repository's own tests and docs: the byte streams of the
protocol tests (parser_splits), the CONNECT JSON in them (connect_json), subject triples
(subjects), and the configuration files and TOML blocks of the docs (config).

    python3 fuzz/seed.py        (from the repository root; idempotent)
"""

import glob
import hashlib
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")

BYTES = re.compile(rb'b"((?:[^"\\]|\\.)*)"')


def unescape(lit):
    out = bytearray()
    i = 0
    while i < len(lit):
        c = lit[i]
        if c != 0x5C:  # backslash
            out.append(c)
            i += 1
            continue
        n = lit[i + 1 : i + 2]
        simple = {b"r": 13, b"n": 10, b"t": 9, b"\\": 92, b'"': 34, b"0": 0, b"'": 39}
        if n in simple:
            out.append(simple[n])
            i += 2
        elif n == b"x":
            out.append(int(lit[i + 2 : i + 4], 16))
            i += 4
        elif n == b"\n":  # line continuation
            i += 2
            while i < len(lit) and lit[i] in b" \t\n":
                i += 1
        else:
            out += lit[i : i + 2]
            i += 2
    return bytes(out)


def put(target, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    sources = glob.glob(os.path.join(ROOT, "shards/src/protocol/**/*.rs"), recursive=True)
    sources += [os.path.join(ROOT, "tests", n) for n in ("protocol.rs", "auth.rs", "operations.rs")]
    streams = []
    for path in sources:
        if not os.path.exists(path):
            continue
        with open(path, "rb") as f:
            text = f.read()
        for m in BYTES.finditer(text):
            data = unescape(m.group(1))
            if b"\n" in data and len(data) < 4096:
                streams.append(data)
    for data in streams:
        put("parser_splits", bytes([7]) + data)
        for line in data.split(b"\n"):
            if line.upper().startswith(b"CONNECT "):
                put("connect_json", line[8:].strip())
    put("parser_splits", bytes([63]) + b"".join(streams[:40]))
    for triple in [
        (b"foo.*", b"foo.bar", b"q"),
        (b">", b"a.b.c", b"workers"),
        (b"orders.>", b"orders.new", b"v1.*"),
        (b"a.*.c", b"a.b.c", b""),
        (b"_INBOX.>", b"_INBOX.abc.1", b"g"),
        (b"foo.>.bar", b"foo..bar", b"bad queue"),
    ]:
        put("subjects", b"\xff".join(triple))
    configs = [os.path.join(ROOT, "tuning", "shardcast.toml")]
    for path in configs:
        with open(path, "rb") as f:
            put("config", f.read())
    for path in glob.glob(os.path.join(ROOT, "docs", "*.md")):
        with open(path, "rb") as f:
            text = f.read()
        for block in re.findall(rb"```toml\n(.*?)```", text, re.S):
            put("config", block)


if __name__ == "__main__":
    main()
