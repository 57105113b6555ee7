"""Render bench/startup.sh's figures (a directory of hyperfine and memory JSON) as a
markdown report and an SVG chart: start time against module size and against the number
of containers kept.  python3 bench/render.py OUTDIR [REPORT.md] [chart.svg]"""
import json
import os
import sys

out = sys.argv[1]
report = sys.argv[2] if len(sys.argv) > 2 else os.path.join(out, "REPORT.md")
chart = sys.argv[3] if len(sys.argv) > 3 else os.path.join(out, "startup.svg")


def results(name):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        return {}
    return {r["command"]: r for r in json.load(open(path))["results"]}


ms = lambda r: r["median"] * 1000
lines = ["# Start-up figures (bench/startup.sh)", ""]

wasm = results("wasm.json")
sizes = sorted({int(c.split("m")[-1]) for c in wasm if c.startswith("wharf m")})
if wasm:
    lines += ["## Cached wasm start vs module size (`wharf run --rm` vs `wasmtime run --allow-precompiled`)", "",
              "| module | wharf (ms) | wasmtime (ms) | wharf / wasmtime |", "|---|---|---|---|"]
    for s in sizes:
        w, p = ms(wasm[f"wharf m{s}"]), ms(wasm[f"wasmtime m{s}"])
        label = f"{s} MiB" if s else "0.1 MiB"
        lines.append(f"| {label} | {w:.2f} | {p:.2f} | {w / p:.2f}x |")
    if len(sizes) > 1:
        small, big = ms(wasm[f"wharf m{sizes[0]}"]), ms(wasm[f"wharf m{sizes[-1]}"])
        lines += ["", f"wharf {sizes[-1]} MiB / 0.1 MiB: {big / small:.2f}x", ""]

native = results("native.json")
if native:
    lines += ["## Native start (`run --rm busybox true`, same rootfs and confinement)", "",
              "| command | median (ms) | wharf / this |", "|---|---|---|"]
    ours = ms(native["wharf run --rm busybox true"])
    for c, r in native.items():
        lines.append(f"| {c} | {ms(r):.2f} | {ours / ms(r):.2f} |")
    crun = native.get("crun run (in unshare -m + cgroup2 mount)")
    mount = native.get("unshare -m + cgroup2 mount alone")
    if crun and mount:
        lines += ["", f"crun without its mount namespace and cgroup2 mount: {ms(crun) - ms(mount):.2f} ms "
                  f"(wharf / that: {ours / (ms(crun) - ms(mount)):.2f})", ""]

kept = []
for n in (0, 100, 1000):
    r = results(f"kept-{n}.json")
    if r:
        kept.append((n, ms(r[f"run --rm hello ({n} kept)"]), ms(r[f"ps -a ({n} kept)"]), ms(r[f"ps ({n} kept)"])))
if kept:
    lines += ["## Verbs vs stopped containers kept", "",
              "| kept | run --rm hello (ms) | ps (ms) | ps -a (ms) |", "|---|---|---|---|"]
    for n, run, psa, ps in kept:
        lines.append(f"| {n} | {run:.2f} | {ps:.2f} | {psa:.2f} |")
    lines += ["", f"run --rm with {kept[-1][0]} kept / none: {kept[-1][1] / kept[0][1]:.2f}x; "
              f"ps: {kept[-1][3] / kept[0][3]:.2f}x; ps -a: {kept[-1][2] / kept[0][2]:.2f}x", ""]

mem_path = os.path.join(out, "memory.json")
if os.path.exists(mem_path):
    m = json.load(open(mem_path))
    lines += ["## Memory of idle detached wasm containers (PSS)", "",
              f"- {m['idle']} idle containers: {m['total_pss_kib'] / 1024:.1f} MiB in all "
              f"(monitors {m['monitor_pss_kib'] / 1024:.1f} MiB, supervisors {m['supervisor_pss_kib'] / 1024:.1f} MiB), "
              f"{m['per_container_kib'] / 1024:.2f} MiB each",
              f"- an idle wasi:http server: monitor {m['http_monitor_pss_kib'] / 1024:.2f} MiB + "
              f"supervisor {m['http_supervisor_pss_kib'] / 1024:.2f} MiB", ""]

lines += ["![start time vs module size and containers kept](startup.svg)", ""]
open(report, "w").write("\n".join(lines))


def panel(x0, title, xs, series, xlabel):
    """One line chart: series is [(name, colour, [y...])]."""
    w, h, pad = 420, 260, 45
    ymax = max(max(ys) for _, _, ys in series) * 1.15 or 1
    px = lambda i: x0 + pad + i * (w - 2 * pad) / max(len(xs) - 1, 1)
    py = lambda y: 30 + (h - pad) * (1 - y / ymax)
    g = [f'<text x="{x0 + w / 2}" y="18" text-anchor="middle" font-size="13">{title}</text>',
         f'<line x1="{x0 + pad}" y1="{py(0)}" x2="{x0 + w - pad}" y2="{py(0)}" stroke="#444"/>',
         f'<line x1="{x0 + pad}" y1="30" x2="{x0 + pad}" y2="{py(0)}" stroke="#444"/>']
    for t in range(5):
        y = ymax * t / 4
        g.append(f'<text x="{x0 + pad - 4}" y="{py(y) + 4}" text-anchor="end" font-size="10">{y:.0f}</text>')
    for i, x in enumerate(xs):
        g.append(f'<text x="{px(i)}" y="{py(0) + 14}" text-anchor="middle" font-size="10">{x}</text>')
    g.append(f'<text x="{x0 + w / 2}" y="{py(0) + 30}" text-anchor="middle" font-size="11">{xlabel}</text>')
    for k, (name, colour, ys) in enumerate(series):
        pts = " ".join(f"{px(i)},{py(y)}" for i, y in enumerate(ys))
        g.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{pts}"/>')
        g.append(f'<text x="{x0 + w - pad}" y="{40 + 14 * k}" text-anchor="end" font-size="11" fill="{colour}">{name}</text>')
    return g


parts = []
if wasm:
    xs = [f"{s or 0.1} MiB" for s in sizes]
    parts += panel(0, "cached wasm start (ms) vs module size", xs,
                   [("wharf run --rm", "#1f77b4", [ms(wasm[f"wharf m{s}"]) for s in sizes]),
                    ("wasmtime --allow-precompiled", "#d62728", [ms(wasm[f"wasmtime m{s}"]) for s in sizes])],
                   "module size")
if kept:
    parts += panel(440, "verbs (ms) vs stopped containers kept", [str(n) for n, *_ in kept],
                   [("run --rm hello", "#1f77b4", [k[1] for k in kept]),
                    ("ps", "#2ca02c", [k[3] for k in kept]),
                    ("ps -a", "#ff7f0e", [k[2] for k in kept])],
                   "containers kept")
svg = ['<svg xmlns="http://www.w3.org/2000/svg" width="880" height="300" font-family="sans-serif">',
       '<rect width="100%" height="100%" fill="white"/>'] + parts + ["</svg>"]
open(chart, "w").write("\n".join(svg))
print("\n".join(lines))
