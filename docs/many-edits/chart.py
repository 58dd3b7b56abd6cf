#!/usr/bin/env python3
"""Draws docs/many-edits/sequence.svg from the checkpoints.csv of each method's sequential run (Python's standard library only).

    python3 docs/many-edits/chart.py docs/many-edits/*-sequential-b10
"""
import csv
import sys
from pathlib import Path

COLOURS = {"rome": "#d62728", "r-rome": "#ff7f0e", "memit": "#1f77b4", "alphaedit": "#2ca02c"}
PANELS = [("S", "S (harmonic mean of ES, PS, NS)"), ("retention", "retention of untouched facts (%)"), ("GE", "GE, bits x 100")]
W, H, PAD, GAP = 300, 220, 46, 30


def main(folders):
    runs = {}
    for folder in folders:
        rows = list(csv.DictReader(open(Path(folder) / "checkpoints.csv")))
        if rows:
            runs[rows[0]["method"]] = rows
    width = len(PANELS) * (W + GAP) + PAD
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{H + 2 * PAD + 20}" font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{H + 2 * PAD + 20}" fill="white"/>']
    max_edits = max(int(r["edits"]) for rows in runs.values() for r in rows)
    for p, (key, title) in enumerate(PANELS):
        x0 = PAD + p * (W + GAP)
        values = [float(r[key]) for rows in runs.values() for r in rows if r[key]]
        base = [float(r[key + "_unedited"]) for rows in runs.values() for r in rows if r.get(key + "_unedited")]
        top = max(values + base + [1]) * 1.05
        sx = lambda e: x0 + W * e / max_edits
        sy = lambda v: PAD + H - H * v / top
        out.append(f'<text x="{x0}" y="{PAD - 12}" font-weight="bold">{title}</text>')
        out.append(f'<rect x="{x0}" y="{PAD}" width="{W}" height="{H}" fill="none" stroke="#999"/>')
        for i in range(5):
            v = top * i / 4
            out.append(f'<text x="{x0 - 4}" y="{sy(v) + 4:.1f}" text-anchor="end">{v:.0f}</text>')
        for e in range(0, max_edits + 1, max(1, max_edits // 5)):
            out.append(f'<text x="{sx(e):.1f}" y="{PAD + H + 14}" text-anchor="middle">{e}</text>')
        out.append(f'<text x="{x0 + W / 2}" y="{PAD + H + 28}" text-anchor="middle">edits</text>')
        if base:
            out.append(f'<line x1="{x0}" x2="{x0 + W}" y1="{sy(base[0]):.1f}" y2="{sy(base[0]):.1f}" stroke="#777" stroke-dasharray="4 3"/>')
        for method, rows in runs.items():
            points = " ".join(f"{sx(int(r['edits'])):.1f},{sy(float(r[key])):.1f}" for r in rows if r[key])
            out.append(f'<polyline points="{points}" fill="none" stroke="{COLOURS.get(method, "#000")}" stroke-width="2"/>')
    for i, method in enumerate(runs):
        x = PAD + i * 110
        out.append(f'<rect x="{x}" y="{H + 2 * PAD}" width="12" height="4" fill="{COLOURS.get(method, "#000")}"/>')
        out.append(f'<text x="{x + 16}" y="{H + 2 * PAD + 6}">{method}</text>')
    out.append(f'<text x="{PAD + 4 * 110}" y="{H + 2 * PAD + 6}">dashed: the unedited model</text>')
    out.append("</svg>")
    Path(__file__).with_name("sequence.svg").write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
