#!/usr/bin/python3
"""Independent reader of the dd protocol golden vectors.

Decodes every <name>.bin listed in vectors.json from the wire format alone (framing, frame 0,
placeholders, sub-headers, lz4, split frames, the "dd" and "msgpack" families), turns the
value into the tagged JSON form of vectors.json and compares. Exits 1 on any mismatch.

Needs python3-msgpack and python3-lz4:  /usr/bin/python3 read_vectors.py [vectors-dir]
"""

import json
import math
import os
import struct
import sys

import lz4.block
import msgpack

PLACEHOLDER = "__Serialized__"

# dd binary types: struct format of one element (None: compared by bytes only).
ELEMENT_FORMATS = {
    "Buffer": None, "Uint8Array": None, "DataView": None, "ArrayBuffer": None,
    "Int8Array": "b", "Uint8ClampedArray": "B", "Int16Array": "h", "Uint16Array": "H",
    "Int32Array": "i", "Uint32Array": "I", "Float16Array": "e", "Float32Array": "f",
    "Float64Array": "d", "BigInt64Array": "q", "BigUint64Array": "Q",
}


class WireError(Exception):
    pass


def unpack_frames(data):
    if len(data) < 8:
        raise WireError("no prelude")
    (count,) = struct.unpack_from("<Q", data, 0)
    lengths = struct.unpack_from("<%dQ" % count, data, 8)
    offset = 8 * (count + 1)
    frames = []
    for length in lengths:
        frames.append(data[offset:offset + length])
        offset += length
    if offset != len(data):
        raise WireError("frame lengths do not add up to the message size")
    return frames


def unpackb(data):
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def payload_frames(frames, index, header):
    """Sub-frames of the payload at `index`: decompressed, then joined per `splits`."""
    count = header["count"]
    compression = header["compression"]
    lengths = header.get("lengths")
    out = []
    for i in range(count):
        raw = frames[index + 1 + i]
        if compression[i] is None:
            out.append(raw)
        elif compression[i] == "lz4":
            # uint32 LE uncompressed size + LZ4 block: python-lz4's store_size format.
            (size,) = struct.unpack_from("<I", raw, 0)
            if size != lengths[i]:
                raise WireError("lz4 size prefix disagrees with the sub-header")
            data = lz4.block.decompress(raw)
            if len(data) != lengths[i]:
                raise WireError("lz4 frame decompressed to the wrong size")
            out.append(data)
        else:
            raise WireError("unknown compression %r" % compression[i])
    splits = header.get("splits")
    if splits is None:
        return out
    joined, at = [], 0
    for n in splits:
        joined.append(b"".join(out[at:at + n]))
        at += n
    return joined


def decode_message(frames):
    """The tagged JSON form of the message in `frames`."""
    headers = {}
    index = 1
    while index < len(frames):
        header = unpackb(frames[index])
        headers[index] = header
        index += 1 + header["count"]
    if index != len(frames):
        raise WireError("sub-headers do not cover the frames")
    used = set()

    def resolve(value):
        if isinstance(value, dict):
            if PLACEHOLDER in value:
                at = value[PLACEHOLDER]
                if len(value) != 1 or at not in headers or at in used:
                    raise WireError("bad placeholder %r" % value)
                used.add(at)
                return deserialize(headers[at], payload_frames(frames, at, headers[at]))
            return {k: resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v) for v in value]
        return tag_plain(value)

    result = resolve(unpackb(frames[0]))
    if used != set(headers):
        raise WireError("unreferenced payloads")
    return result


def tag_plain(value):
    if isinstance(value, bytes):
        # msgpack bin in frame 0: a small Uint8Array sent inline (PROTOCOL.md section 2).
        return {"$type": "Uint8Array", "hex": value.hex()}
    if isinstance(value, float):
        if math.isnan(value):
            return {"$type": "number", "value": "NaN"}
        if math.isinf(value):
            return {"$type": "number", "value": "Infinity" if value > 0 else "-Infinity"}
        if value == 0 and math.copysign(1, value) < 0:
            return {"$type": "number", "value": "-0"}
    return value


def deserialize(header, frames):
    serializer = header["serializer"]
    if serializer == "msgpack":
        # Plain data: nothing inside is out of band.
        def plain(v):
            if isinstance(v, dict):
                return {k: plain(x) for k, x in v.items()}
            if isinstance(v, list):
                return [plain(x) for x in v]
            return tag_plain(v)
        return plain(unpackb(frames[0]))
    if serializer != "dd":
        raise WireError("unknown serializer %r" % serializer)
    kind = header["type"]
    if kind == "undefined":
        return {"$type": "undefined"}
    if kind == "BigInt":
        return {"$type": "bigint", "value": str(int(header["value"]))}
    if kind == "Date":
        v = header["value"]
        return {"$type": "Date", "value": "NaN" if isinstance(v, float) and math.isnan(v) else v}
    if kind == "Map":
        flat = decode_message(frames)
        return {"$type": "Map", "entries": [[flat[i], flat[i + 1]] for i in range(0, len(flat), 2)]}
    if kind == "Set":
        return {"$type": "Set", "values": decode_message(frames)}
    if kind == "Error":
        record = decode_message(frames)
        out = {"$type": "Error", "name": record["name"], "message": record["message"],
               "stack": record.get("stack"), "props": record["props"]}
        if "cause" in record:
            out["cause"] = record["cause"]
        return out
    if kind == "class":
        return {"$type": "class", "name": header["name"], "data": decode_message(frames)}
    if kind in ELEMENT_FORMATS:
        (data,) = frames
        out = {"$type": kind, "hex": bytes(data).hex()}
        fmt = ELEMENT_FORMATS[kind]
        if fmt is not None:
            n = len(data) // struct.calcsize(fmt)
            values = list(struct.unpack("<%d%s" % (n, fmt), data))
            out["values"] = [str(v) if fmt in "qQ" else tag_plain(v) for v in values]
        return out
    raise WireError("unknown dd type %r" % kind)


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(directory, "vectors.json"), encoding="utf-8") as f:
        vectors = json.load(f)["vectors"]
    failures = 0
    for vector in vectors:
        with open(os.path.join(directory, vector["file"]), "rb") as f:
            data = f.read()
        try:
            frames = unpack_frames(data)
            if len(frames) != vector["frames"]:
                raise WireError("%d frames, expected %d" % (len(frames), vector["frames"]))
            got = decode_message(frames)
        except Exception as error:  # noqa: BLE001 - report every vector, then fail
            print("FAIL %s: %s: %s" % (vector["name"], type(error).__name__, error))
            failures += 1
            continue
        if got != vector["expected"]:
            print("FAIL %s: decoded %s, expected %s" % (vector["name"], json.dumps(got), json.dumps(vector["expected"])))
            failures += 1
        else:
            print("ok   %s" % vector["name"])
    if failures:
        print("%d of %d vectors failed" % (failures, len(vectors)))
        sys.exit(1)
    print("all %d vectors ok" % len(vectors))


if __name__ == "__main__":
    main()
