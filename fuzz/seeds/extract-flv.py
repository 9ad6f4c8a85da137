"""Seeds for flv_tag, avc_config and aac_config from FLV files that ffmpeg wrote (README.md):
the first sequence header, keyframe and two other frames of each kind of tag in every *.flv in
the current folder, the avcC and SPS inside each video sequence header, the AudioSpecificConfig
inside each AAC one, and the parameter sets at the start of annexb.h264.

    python3 extract-flv.py OUT_DIR    # writes OUT_DIR/{flv_tag,avc_config,aac_config}/
"""
import hashlib, os, sys, glob
out = sys.argv[1]
for d in ["flv_tag", "avc_config", "aac_config"]:
    os.makedirs(f"{out}/{d}", exist_ok=True)
def save(kind, name, data):
    h = hashlib.sha1(data).hexdigest()[:12]
    open(f"{out}/{kind}/{name}-{h}", "wb").write(data)
def tags(path):
    b = open(path, "rb").read()
    pos = 9 + 4
    while pos + 11 <= len(b):
        t = b[pos]; size = int.from_bytes(b[pos+1:pos+4], "big")
        yield t, b[pos+11:pos+11+size]
        pos += 11 + size + 4
for path in sorted(glob.glob("*.flv")):
    stem = os.path.splitext(path)[0]
    seen = {}
    for t, body in tags(path):
        if t == 9 and body:
            kind = ("seqhdr" if body[1] == 0 else "key" if body[0] >> 4 == 1 else "inter") if len(body) > 1 else "x"
        elif t == 8 and body:
            kind = "aacseq" if body[0] >> 4 == 10 and len(body) > 1 and body[1] == 0 else "audio"
        else:
            continue
        n = seen.get((t, kind), 0)
        if n >= (2 if kind in ("inter", "audio") else 1):
            continue
        seen[(t, kind)] = n + 1
        if len(body) <= 8192:
            save("flv_tag", f"{stem}-{'video' if t == 9 else 'audio'}-{kind}", body)
        if kind == "seqhdr":
            avcc = body[5:]
            save("avc_config", f"{stem}-avcC", avcc)
            sps_len = int.from_bytes(avcc[6:8], "big")
            save("avc_config", f"{stem}-sps", avcc[8:8+sps_len])
        if kind == "aacseq":
            save("aac_config", f"{stem}-asc", body[2:])
h = open("annexb.h264", "rb").read()
idr = h.find(b"\x00\x00\x01\x65")
save("avc_config", "x264-annexb-parameter-sets", h[:idr])
