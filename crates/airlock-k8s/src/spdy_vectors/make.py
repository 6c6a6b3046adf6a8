"""Writes first.hex and second.hex: two SPDY header blocks compressed in one
zlib stream by Python's zlib (level 9, SPDY/3's dictionary, sync flush), as
a Go peer's compressor writes them. The dictionary is rebuilt here from the
SPDY/3 draft's word list, independently of the Rust code."""
import struct, zlib, pathlib, re

src = pathlib.Path(__file__).parent.parent / "spdy.rs"
text = src.read_text()
words = re.search(r"const WORDS: &\[&str\] = &\[(.*?)\];", text, re.S).group(1)
words = re.findall(r'"([^"]*)"', words)
tail = re.search(r"const TAIL: &str = concat!\((.*?)\);", text, re.S).group(1)
tail = "".join(re.findall(r'"([^"]*)"', tail))
dictionary = b"".join(struct.pack(">I", len(w)) + w.encode() for w in words) + tail.encode()
assert len(dictionary) == 1423, len(dictionary)

def block(pairs):
    out = struct.pack(">I", len(pairs))
    for name, value in pairs:
        out += struct.pack(">I", len(name)) + name + struct.pack(">I", len(value)) + value
    return out

c = zlib.compressobj(9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, dictionary)
for name, kind in [("first", b"error"), ("second", b"data")]:
    pairs = [(b"streamtype", kind), (b"port", b"8080"), (b"requestid", b"0")]
    data = c.compress(block(pairs)) + c.flush(zlib.Z_SYNC_FLUSH)
    (pathlib.Path(__file__).parent / f"{name}.hex").write_text(data.hex() + "\n")
print("adler32", hex(zlib.adler32(dictionary)))
