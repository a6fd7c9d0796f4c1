#!/usr/bin/env python3
"""table.py: turn bench/compare.sh's results.jsonl into a Markdown table of
figures with minimail/peer ratios.

Each input line is {"server": S, "work": W, "r": <mailbench --json object>}.
Rates are compared as minimail / peer, times as peer / minimail, so a ratio
above 1 always means minimail did better.
"""
import json
import sys


def load(path):
    res = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                o = json.loads(line)
            except ValueError:
                continue
            res[(o["server"], o["work"])] = o["r"]
    return res


def fig(r, key):
    if r is None or r.get("error") or key not in r:
        return None
    try:
        return float(r[key])
    except (TypeError, ValueError):
        return None


def fmt(v, unit):
    if v is None:
        return "-"
    if unit == "ms":
        return f"{v:.1f} ms" if v < 100 else f"{v:.0f} ms"
    return f"{v:,.0f} {unit}" if v >= 100 else f"{v:.1f} {unit}"


def ratio(mm, peer, higher_better):
    if mm is None or peer is None or mm == 0 or peer == 0:
        return "-"
    x = mm / peer if higher_better else peer / mm
    return f"{x:.2f}x"


def main():
    res = load(sys.argv[1])
    get = lambda s, w, k: fig(res.get((s, w)), k)
    rows = []

    def row_(label, work, key, unit, peer, sink=None, mm="minimail", higher=True):
        p = get(peer, work, key)
        m = get(mm, work, key)
        s = get(sink, work, key) if sink else None
        rows.append((label, fmt(s, unit) if sink else "", fmt(p, unit), fmt(m, unit),
                     ratio(m, p, higher), ratio(m, s, higher) if sink else ""))

    row = row_

    for w, name in (("smtp 1k", "1 KiB"), ("smtp 64k", "64 KiB")):
        row(f"SMTP accepted, {name}, 16 sessions (mailbench)", w, "rate", "msg/s",
            "postfix", "smtp-sink")
        row(f"  p99 end-of-data to 250, {name}", w, "p99_ms", "ms", "postfix",
            "smtp-sink", higher=False)
    row("SMTP accepted, 1 KiB, 16 sessions, one connection each, PIPELINING",
        "smtp 1k pipelined", "rate", "msg/s", "postfix", "smtp-sink")
    row("SMTP accepted, 1 KiB (smtp-source -s 16 -m N -l 1024)", "smtp-source 1k", "rate",
        "msg/s", "postfix", "smtp-sink")
    row("SMTP 250 -> visible over IMAP IDLE, 1 KiB", "e2e 1k", "rate", "msg/s",
        "postfix+dovecot")
    row("  delay 250 -> EXISTS, p50", "e2e 1k", "p50_ms", "ms", "postfix+dovecot", higher=False)
    row("  delay 250 -> EXISTS, p99", "e2e 1k", "p99_ms", "ms", "postfix+dovecot", higher=False)
    sizes = sorted({int(w.split()[1]) for (s, w) in res if s == "dovecot" and w.startswith("select ")})
    for n in sizes:
        # The biggest size may exist for minimail only as a scaling run.
        mm = "minimail" if ("minimail", f"select {n}") in res else "minimail-scale"
        row = lambda *a, mm=mm, **k: row_(*a, mm=mm, **k)
        if ("dovecot", f"append {n}") in res:
            row(f"IMAP APPEND pipelined into {n:,}-msg mailbox", f"append {n}", "rate", "msg/s",
                "dovecot")
        else:
            rows.append((f"IMAP {n:,}-msg mailbox (Dovecot's written as a Maildir folder)",
                         "", "", "", "", ""))
        row(f"  connect+LOGIN+SELECT, {n:,} msgs, p50", f"select {n}", "p50_ms", "ms", "dovecot",
            higher=False)
        row(f"  FETCH 1:* (UID FLAGS SIZE DATE ENVELOPE) warm, p50", f"fetch-meta {n}", "p50_ms",
            "ms", "dovecot", higher=False)
        row(f"  UID SEARCH TEXT word, warm, p50", f"search {n}", "p50_ms", "ms", "dovecot",
            higher=False)
        row(f"  UID SEARCH TEXT word, first, right after the APPENDs", f"search-burst {n}",
            "p50_ms", "ms", "dovecot", higher=False)
        row(f"  STORE 1:* +/-FLAGS (\\Flagged), p50", f"store {n}", "p50_ms", "ms", "dovecot",
            higher=False)
        row(f"  16 sessions random BODY.PEEK[]", f"body {n}", "rate", "fetch/s", "dovecot")
        row(f"  BODY.PEEK[] p99", f"body {n}", "p99_ms", "ms", "dovecot", higher=False)
        row(f"  UID SORT (REVERSE ARRIVAL), p50", f"sort-arrival {n}", "p50_ms", "ms", "dovecot",
            higher=False)
        row(f"  UID SORT (SUBJECT), p50", f"sort-subject {n}", "p50_ms", "ms", "dovecot",
            higher=False)
        row(f"  UID THREAD REFERENCES, p50", f"thread {n}", "p50_ms", "ms", "dovecot",
            higher=False)
        row(f"  SELECT (QRESYNC) after 100 changes + 10 expunges, p50", f"qresync {n}", "p50_ms",
            "ms", "dovecot", higher=False)
        row(f"  SELECT (QRESYNC) bytes sent", f"qresync {n}", "bytes", "B", "dovecot",
            higher=False)
    row = row_
    if any(w.startswith("zbody") for (_, w) in res):
        n = next((w.split()[1] for (_, w) in res if w.startswith("append z")), "z?")
        for w, label in (("zbody16", "16 sessions"), ("zbody1", "1 session")):
            row(f"COMPRESS ({n[1:]} msgs of 16 KiB): {label} random BODY.PEEK[], plain",
                f"{w} plain", "rate", "fetch/s", "dovecot")
            row(f"  same with COMPRESS=DEFLATE", f"{w} deflate", "rate", "fetch/s", "dovecot")
            row(f"  MiB over the wire, plain", f"{w} plain", "wire MiB", "MiB", "dovecot",
                higher=False)
            row(f"  MiB over the wire, DEFLATE", f"{w} deflate", "wire MiB", "MiB", "dovecot",
                higher=False)
        row("COMPRESS: FETCH 1:* metadata warm p50, plain", "zmeta plain", "p50_ms", "ms",
            "dovecot", higher=False)
        row("  same with COMPRESS=DEFLATE", "zmeta deflate", "p50_ms", "ms", "dovecot",
            higher=False)
        row("  KiB over the wire, plain", "zmeta plain", "wire KiB", "KiB", "dovecot",
            higher=False)
        row("  KiB over the wire, DEFLATE", "zmeta deflate", "wire KiB", "KiB", "dovecot",
            higher=False)
    conns = lambda s: (res.get((s, "idle")) or {}).get("connections", "?")
    if ("minimail", "idle") in res or ("dovecot", "idle") in res:
        idle = f"IDLE ({conns('minimail')} conns on minimail, {conns('dovecot')} on Dovecot via Postfix)"
        row(f"{idle}: push delay 250 -> EXISTS, p50", "idle", "p50_ms", "ms", "dovecot",
            higher=False)
        row("  push delay, p99", "idle", "p99_ms", "ms", "dovecot", higher=False)
        row("  push delay, max", "idle", "max_ms", "ms", "dovecot", higher=False)

    print("| work | smtp-sink (no storage) | Postfix / Dovecot | minimail | minimail vs peer | minimail vs sink |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print("| " + " | ".join(r) + " |")

    mi = res.get(("minimail", "idle"), {})
    di = res.get(("dovecot", "idle"), {})
    drss = res.get(("dovecot", "idle rss"), {})
    if mi and not mi.get("error"):
        print(f"\nIDLE: minimail held {mi.get('idling')} of {mi.get('connections')} connections, "
              f"server RSS {mi.get('rss before MiB', '?')} MiB before, "
              f"{mi.get('rss idle MiB', '?')} MiB with all idle, {mi.get('rss after MiB', '?')} MiB "
              f"after {mi.get('messages')} pushes each ({mi.get('failed')} missed).")
    if di and not di.get("error"):
        print(f"IDLE: Dovecot held {di.get('idling')} of {di.get('connections')} connections "
              f"(one imap process each); its processes' RSS {drss.get('before_mib', '?')} MiB "
              f"before, {drss.get('during_mib', '?')} MiB while idle.")

    scale = sorted({int(w.split()[1]) for (s, w) in res if s == "minimail-scale" and w.startswith("append ")})
    if scale:
        print("\nminimail scaling (ms unless noted):\n")
        print("| messages | APPEND msg/s | SELECT p50 | FETCH meta p50 | SEARCH TEXT p50 | STORE p50 | BODY fetch/s | BODY p99 |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for n in scale:
            g = lambda w, k: get("minimail-scale", f"{w} {n}", k)
            cells = [fmt(g("append", "rate"), "msg/s"), fmt(g("select", "p50_ms"), "ms"),
                     fmt(g("fetch-meta", "p50_ms"), "ms"), fmt(g("search", "p50_ms"), "ms"),
                     fmt(g("store", "p50_ms"), "ms"), fmt(g("body", "rate"), "fetch/s"),
                     fmt(g("body", "p99_ms"), "ms")]
            print(f"| {n:,} | " + " | ".join(cells) + " |")

    cpu = [(s, w, r.get("client_cpu_pct"), r.get("server_cpu_pct")) for (s, w), r in res.items()
           if isinstance(r, dict) and r.get("server_cpu_pct") is not None]
    if cpu:
        print("\nCPU (% of one core) during minimail runs, load tool vs server:")
        print("  " + "; ".join(
            f"{w if s == 'minimail' else s + ' ' + w}: {c:.0f}/{sv:.0f}" for (s, w, c, sv) in cpu))
    failed = [f"{s} {w}" for (s, w), r in res.items() if r.get("error") or r.get("failed")]
    if failed:
        print("\nruns with errors or failed operations: " + ", ".join(failed))


if __name__ == "__main__":
    main()
