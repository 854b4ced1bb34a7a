"""Reference test of the safetensors container against the format specification.

(a) A file written by finmaas (tests/tools/model_write_demo) is read by an independent NumPy
    parser written here from the specification (and by the safetensors package when it is
    installed), and every value is compared bit for bit with the known values; the finmaas
    checksum is recomputed with hashlib's BLAKE2b.
(b) Files written here from the specification (F32, I64 and other dtypes, tensors listed in the
    header out of data order, the header padded with spaces) are read by finmaas
    (tests/tools/model_safetensors_dump) and must come back identical; damaged variants must be
    refused.

Environment: FM_TOOLS, the directory that holds the tool executables.
"""

import hashlib
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

TOOLS = os.environ.get("FM_TOOLS")
if not TOOLS:
    sys.exit("FM_TOOLS is not set (the directory holding model_write_demo)")
WRITE_DEMO = os.path.join(TOOLS, "model_write_demo")
DUMP = os.path.join(TOOLS, "model_safetensors_dump")

DTYPES = {"F64": "<f8", "F32": "<f4", "I64": "<i8", "I32": "<i4", "U8": "u1"}
CHECKSUM_KEY = "finmaas_checksum"
failures = []


def check(cond, message):
    if not cond:
        failures.append(message)
        print("FAIL:", message)


# The values model_write_demo writes, in its order.
EXPECTED = [
    ("layers.0.weight", "F64", [2, 3],
     [1.0, -2.5, 3.141592653589793, -0.0, 5e-324, 1.7976931348623157e308]),
    ("layers.0.bias", "F32", [3], [0.1, -1e-38, 3.4028235e38]),
    ("counts", "I64", [4], [0, -1, 2**63 - 1, -(2**63)]),
    ("ids", "I32", [2, 2], [7, -7, 2**31 - 1, -(2**31)]),
    ("mask", "U8", [5], [0, 1, 2, 128, 255]),
    ("scalar", "F64", [], [0.1]),
    ("empty", "F32", [0], []),
    ('special "quoted" \u00e9', "F64", [1, 3, 1], [math.inf, -math.inf, math.nan]),
]
EXPECTED_METADATA = {"format": "finmaas-demo", "note": 'h\u00e9llo "quoted"\n\\ {}'}


def expected_array(dtype, shape, values):
    return np.array(values, dtype=DTYPES[dtype]).reshape(shape)


def parse_safetensors(blob):
    """An independent parser of the specification: returns (header dict, metadata, arrays)."""
    assert len(blob) >= 8, "shorter than the length prefix"
    (n,) = struct.unpack("<Q", blob[:8])
    assert 0 < n <= len(blob) - 8, "header length out of range"
    text = blob[8:8 + n].decode("utf-8")
    assert text.startswith("{"), "header must start with '{'"
    header = json.loads(text)
    data = blob[8 + n:]
    metadata = header.pop("__metadata__", {})
    assert all(isinstance(v, str) for v in metadata.values())
    spans = sorted((info["data_offsets"][0], info["data_offsets"][1], name)
                   for name, info in header.items())
    expected = 0
    for begin, end, name in spans:
        assert begin == expected, f"tensor {name}: gap or overlap at {begin}"
        expected = end
    assert expected == len(data), "tensors do not cover the data section"
    arrays = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        dtype = np.dtype(DTYPES[info["dtype"]])
        count = int(np.prod(info["shape"], dtype=np.int64)) if info["shape"] else 1
        assert end - begin == count * dtype.itemsize, f"tensor {name}: span does not match shape"
        arrays[name] = np.frombuffer(data[begin:end], dtype=dtype).reshape(info["shape"])
    return header, metadata, arrays, n, text


def same_bits(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def part_a(tmp):
    path = os.path.join(tmp, "demo.safetensors")
    subprocess.run([WRITE_DEMO, path], check=True)
    blob = open(path, "rb").read()
    header, metadata, arrays, n, text = parse_safetensors(blob)

    check(n % 8 == 0, f"header length {n} is not a multiple of 8")
    check(set(text[text.rindex("}") + 1:]) <= {" "}, "header padding is not spaces")
    check(list(header) == [name for name, _, _, _ in EXPECTED], f"tensor order {list(header)}")
    for name, dtype, shape, values in EXPECTED:
        want = expected_array(dtype, shape, values)
        got = arrays.get(name)
        check(got is not None and same_bits(got, want), f"(a) tensor {name}: {got} != {want}")
        check(header[name]["dtype"] == dtype, f"(a) tensor {name}: dtype {header[name]['dtype']}")
    for key, value in EXPECTED_METADATA.items():
        check(metadata.get(key) == value, f"(a) metadata {key}: {metadata.get(key)!r}")

    # The checksum: BLAKE2b-256 of the file with its own 64 hex characters read as '0'.
    digest = metadata.get(CHECKSUM_KEY, "")
    check(len(digest) == 64, f"checksum {digest!r}")
    zeroed = blob.replace(digest.encode(), b"0" * 64, 1)
    check(hashlib.blake2b(zeroed, digest_size=32).hexdigest() == digest, "checksum mismatch")

    # The safetensors package, when installed, must read the file the same way.
    try:
        from safetensors.numpy import load_file
    except ImportError:
        print("safetensors package not installed: skipping its check")
    else:
        loaded = load_file(path)
        for name, dtype, shape, values in EXPECTED:
            check(same_bits(loaded[name], expected_array(dtype, shape, values)),
                  f"(a) safetensors.numpy: tensor {name} differs")

    # finmaas reads back its own file, checksum required.
    dumped = run_dump(path, require_checksum=True)
    compare_dump(dumped, [(name, dtype, expected_array(dtype, shape, values))
                          for name, dtype, shape, values in EXPECTED], "(a) dump")
    print(f"(a) {len(EXPECTED)} tensors read identically; checksum verified")


def run_dump(path, require_checksum=False):
    args = [DUMP] + (["--require-checksum"] if require_checksum else []) + [path]
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode != 0:
        failures.append(f"dump of {path} failed: {result.stderr.strip()}")
        print("FAIL:", failures[-1])
        return None
    return json.loads(result.stdout)


def dump_value(v):
    return {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}.get(v, v) if isinstance(v, str) else v


def compare_dump(dumped, tensors, label):
    if dumped is None:
        return
    got = dumped["tensors"]
    check([t["name"] for t in got] == [name for name, _, _ in tensors],
          f"{label}: names {[t['name'] for t in got]}")
    by_name = {t["name"]: t for t in got}
    for name, dtype, want in tensors:
        t = by_name.get(name)
        if t is None:
            check(False, f"{label}: tensor {name} missing")
            continue
        check(t["dtype"] == dtype, f"{label}: tensor {name}: dtype {t['dtype']} != {dtype}")
        check(t["shape"] == list(want.shape), f"{label}: tensor {name}: shape {t['shape']}")
        values = [dump_value(v) for v in t["values"]]
        arr = np.array(values, dtype=DTYPES[dtype]).reshape(want.shape)
        check(same_bits(arr, want), f"{label}: tensor {name}: {arr} != {want}")


def write_safetensors(path, tensors, metadata, header_order, extra_padding):
    """Writes a file from the specification: tensors in data order, the header keys in
    header_order, the header padded with spaces to a multiple of 8 plus extra_padding."""
    header, offset, chunks = {}, 0, []
    for name, dtype, array in tensors:
        raw = np.ascontiguousarray(array, dtype=DTYPES[dtype]).tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        chunks.append(raw)
    ordered = {"__metadata__": metadata} if metadata is not None else {}
    for name in header_order:
        ordered[name] = header[name]
    text = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8 + extra_padding)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def part_b(tmp):
    rng = np.random.default_rng(7)
    tensors = [
        ("embedding.weight", "F32", rng.standard_normal((3, 5)).astype("<f4")),
        ("positions", "I64", np.array([0, 1, -5, 2**62, -(2**63)], dtype="<i8")),
        ("dense.kernel", "F64", rng.standard_normal((4, 2))),
        ("labels", "I32", np.array([[1, -2], [3, 2**31 - 1]], dtype="<i4")),
        ("flags", "U8", np.array([1, 0, 255], dtype="u1")),
        ("f32 specials", "F32", np.array([np.inf, -np.inf, -0.0, 1e-45], dtype="<f4")),
        ("nothing", "F64", np.zeros((2, 0), dtype="<f8")),
    ]
    header_order = ["dense.kernel", "flags", "embedding.weight", "nothing", "positions",
                    "labels", "f32 specials"]
    metadata = {"source": "python", "text": "caf\u00e9 \"x\""}
    path = os.path.join(tmp, "python.safetensors")
    write_safetensors(path, tensors, metadata, header_order, extra_padding=16)

    # Independent parser agrees with what was written (guards the writer itself).
    _, meta, arrays, _, _ = parse_safetensors(open(path, "rb").read())
    for name, dtype, array in tensors:
        check(same_bits(arrays[name], np.asarray(array, dtype=DTYPES[dtype])),
              f"(b) python parser: {name}")
    check(meta == metadata, "(b) python parser: metadata")

    dumped = run_dump(path)
    want = [(name, dtype, np.asarray(a, dtype=DTYPES[dtype])) for name, dtype, a in tensors]
    want.sort(key=lambda t: header_order.index(t[0]))
    compare_dump(dumped, want, "(b) dump")
    if dumped is not None:
        check(dumped["metadata"] == metadata, f"(b) metadata {dumped['metadata']}")

    # Without a finmaas checksum, requiring one must fail.
    result = subprocess.run([DUMP, "--require-checksum", path], capture_output=True, text=True)
    check(result.returncode != 0 and "checksum" in result.stderr,
          f"(b) missing checksum accepted: {result.stderr}")

    # No metadata at all, unpadded header: still a valid file.
    bare = os.path.join(tmp, "bare.safetensors")
    write_safetensors(bare, tensors[:2], None, ["positions", "embedding.weight"], 0)
    compare_dump(run_dump(bare), [want_item for want_item in
                                  [(n, d, np.asarray(a, dtype=DTYPES[d]))
                                   for n, d, a in reversed(tensors[:2])]], "(b) bare dump")

    # Damaged files are refused with an error naming the file.
    blob = open(path, "rb").read()
    (n,) = struct.unpack("<Q", blob[:8])
    damaged = {
        "truncated": blob[:-3],
        "extra byte": blob + b"\0",
        "header too long": struct.pack("<Q", len(blob)) + blob[8:],
        "not json": blob[:8] + b"{" + b"x" * (n - 1) + blob[8 + n:],
        "wrong dtype": blob.replace(b'"dtype":"I64"', b'"dtype":"I65"', 1),
        "bf16": blob.replace(b'"dtype":"I64"', b'"dtype":"BF16"', 1),
    }
    for label, data in damaged.items():
        bad = os.path.join(tmp, "damaged.safetensors")
        open(bad, "wb").write(data)
        result = subprocess.run([DUMP, bad], capture_output=True, text=True)
        check(result.returncode == 1 and bad in result.stderr,
              f"(b) damaged file '{label}' not refused cleanly: rc {result.returncode} "
              f"{result.stderr.strip()}")
    print(f"(b) {len(tensors)} Python-written tensors read identically; "
          f"{len(damaged)} damaged files refused")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        part_a(tmp)
        part_b(tmp)
    if failures:
        print(f"{len(failures)} failure(s)")
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
