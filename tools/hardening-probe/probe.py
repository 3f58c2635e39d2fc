#!/usr/bin/env python3
"""Issue 19's hostile inputs against two builds of the CLI, side by side.

    python3 tools/hardening-probe/probe.py OLD_MICROEXPR NEW_MICROEXPR [WORKDIR]    (PROBE_ONLY=4,8: those items only)

Each case makes a small hostile file from a synthetic data set (made by NEW's `synth`, so no real data is involved),
runs the same command with both builds and prints their exit code, peak memory, time and last stderr line. A case is
"fixed" when NEW exits 1 with one line naming the file and OLD did not. Run it to check that the hardening tests'
cases really failed before the fixes (the tests themselves only build against the new code)."""
import json, os, shutil, struct, subprocess, sys, tempfile, time, zipfile

old, new = sys.argv[1], sys.argv[2]
work = sys.argv[3] if len(sys.argv) > 3 else tempfile.mkdtemp(prefix="hardening-probe-")
os.makedirs(work, exist_ok=True)
os.chdir(work)

def run(binary, args, timeout=300):
    t0 = time.time()
    p = subprocess.run(["/usr/bin/time", "-f", "RSS %M", binary] + args, capture_output=True, text=True, timeout=timeout)
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    rss = next((int(l.split()[1]) for l in reversed(lines) if l.startswith("RSS ")), 0)
    msg = [l for l in lines if not l.startswith("RSS ") and not l.startswith("Command exited")]
    return p.returncode, rss / 1024, time.time() - t0, (msg[-1] if msg else "").strip()[:160]

def setup():
    if os.path.exists("syn"): return
    subprocess.run([new, "synth", "--out", "syn", "--subjects", "3", "--clips-per-subject", "3", "--frames", "12", "--size", "64"], check=True, capture_output=True)

RAW, XLSX = "syn/CASME2_RAW_selected", "syn/CASME2-coding-synthetic.xlsx"

def preprocess_args(xlsx, out):
    return ["preprocess", "--dataset", "casme2", "--root", RAW, "--annotations", xlsx, "--out", out, "--frames", "3", "--size", "16", "--no-face-detect"]

def cache(binary, tag):
    out = f"cache-{tag}"
    if not os.path.exists(out):
        subprocess.run([binary] + preprocess_args(XLSX, out), check=True, capture_output=True)
    return out

def model(binary, tag):
    run_dir = f"run-{tag}"
    path = f"{run_dir}/final/model.safetensors"
    if not os.path.exists(path):
        shutil.rmtree(run_dir, ignore_errors=True)
        subprocess.run([binary, "train", "--data", cache(binary, tag), "--out", run_dir, "--epochs", "1"], check=True, capture_output=True)
    return path

def copy_cache(binary, tag, name):
    dst = f"{name}-{tag}"
    if os.path.exists(dst): shutil.rmtree(dst)
    shutil.copytree(cache(binary, tag), dst)
    return dst

def xlsx_with(name, part, edit):
    dst = f"{name}.xlsx"
    with zipfile.ZipFile(XLSX) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == part: data = edit(data.decode("utf-8")).encode("utf-8")
            zout.writestr(item, data)
    return dst

def safetensors_edit(src, dst, edit):
    with open(src, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        body = f.read()
    edit(header)
    raw = json.dumps(header).encode("utf-8")
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(raw))); f.write(raw); f.write(body)
    return dst

def clip_frames():
    subject = sorted(os.listdir(RAW))[0]
    clip = sorted(os.listdir(os.path.join(RAW, subject)))[0]
    return os.path.join(RAW, subject, clip)

# --- the cases: name -> function(binary, tag) returning the command's arguments ---
def flipped_bytes(b, tag):  # item 3
    c = copy_cache(b, tag, "flipped")
    clips = sorted(os.listdir(f"{c}/clips"))
    path = f"{c}/clips/{clips[0]}"
    data = bytearray(open(path, "rb").read())
    for i in range(200): data[len(data) // 2 + i] ^= 0xFF
    open(path, "wb").write(data)
    return ["train", "--data", c, "--out", f"run-flipped-{tag}", "--epochs", "1", "--fold", "1", "--no-final"]

def clips_null(b, tag):  # item 9
    c = copy_cache(b, tag, "nullclips")
    idx = json.load(open(f"{c}/index.json")); idx["clips"] = None
    json.dump(idx, open(f"{c}/index.json", "w"))
    return ["train", "--data", c, "--out", f"run-null-{tag}", "--epochs", "1", "--fold", "1", "--no-final"]

def huge_config(b, tag):  # item 4
    def edit(h):
        cfg = json.loads(h["__metadata__"]["microexpr.config"]); cfg["Width"] = 4096; cfg["Depth"] = 12; cfg["MlpHidden"] = 16384
        h["__metadata__"]["microexpr.config"] = json.dumps(cfg)
    return ["predict", "--model", safetensors_edit(model(b, tag), os.path.join(os.path.dirname(model(b, tag)), "huge.safetensors"), edit), "--frames", clip_frames()]

def negative_offsets(b, tag):  # item 8
    def edit(h):
        first = next(k for k in h if k != "__metadata__")
        begin, end = h[first]["data_offsets"]; h[first]["data_offsets"] = [begin - 64, end - 64]
    return ["predict", "--model", safetensors_edit(model(b, tag), os.path.join(os.path.dirname(model(b, tag)), "negative.safetensors"), edit), "--frames", clip_frames()]

def zzz_column(b, tag):  # item 5
    x = xlsx_with(f"zzz-{tag}", "xl/worksheets/sheet1.xml", lambda s: s.replace("</row>", '<c r="ZZZZZZ1"><v>1</v></c></row>', 1))
    return preprocess_args(x, f"cache-zzz-{tag}")

def broken_workbook(b, tag):  # item 12
    x = xlsx_with(f"broken-{tag}", "xl/workbook.xml", lambda s: s[: len(s) // 2])
    return preprocess_args(x, f"cache-broken-{tag}")

def manifest(rows, name):
    frames = os.path.abspath(clip_frames())
    d = os.path.join(os.getcwd(), f"root-{name}"); os.makedirs(d, exist_ok=True)
    inside = os.path.join(d, "clip"); 
    if not os.path.exists(inside): shutil.copytree(frames, inside)
    with open(os.path.join(d, "manifest.csv"), "w") as f:
        f.write("subject,label,path\n")
        for r in rows: f.write(r.replace("FRAMES", frames) + "\n")
    return os.path.join(d, "manifest.csv")

def huge_label(b, tag):  # item 6
    m = manifest(["s1,0,clip", "s2,1,clip", "s3,99999999,clip"], f"label-{tag}")
    return ["preprocess", "--dataset", "manifest", "--root", m, "--out", f"cache-label-{tag}", "--frames", "3", "--size", "16", "--no-face-detect"]

def outside_root(b, tag):  # item 11
    m = manifest(["s1,0,clip", "s2,1,FRAMES", "s3,2,../../../../etc"], f"outside-{tag}")
    return ["preprocess", "--dataset", "manifest", "--root", m, "--out", f"cache-outside-{tag}", "--frames", "3", "--size", "16", "--no-face-detect"]

def out_under_file(b, tag):  # item 12, --out
    open("a-file", "w").write("x")
    return ["demo", "--out", "a-file/demo", "--subjects", "2", "--clips-per-subject", "1"]

CASES = [("3 flipped bytes in a cached clip", flipped_bytes), ("9 index.json clips: null", clips_null),
         ("4 config claims width 4096", huge_config), ("8 negative tensor offset", negative_offsets),
         ("5 xlsx cell r=ZZZZZZ1", zzz_column), ("12 xlsx workbook.xml cut", broken_workbook),
         ("6 manifest label 99999999", huge_label), ("11 manifest path outside root", outside_root),
         ("12 --out under a file", out_under_file)]

setup()
print(f"old: {old}\nnew: {new}\n")
only = os.environ.get("PROBE_ONLY")  # e.g. PROBE_ONLY=4,8 runs items 4 and 8 only
for name, make in CASES:
    if only and name.split()[0] not in only.split(","): continue
    print(f"## item {name}")
    for tag, binary in (("old", old), ("new", new)):
        try:
            code, mb, s, line = run(binary, make(binary, tag))
            print(f"  {tag}: exit {code}, {mb:.0f} MB, {s:.1f} s: {line}")
        except Exception as e:  # a setup step of the old build failing is itself a finding
            print(f"  {tag}: could not run ({type(e).__name__}: {str(e)[:120]})")
