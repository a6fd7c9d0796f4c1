#!/usr/bin/env python3
"""table.py: turn bench/compare.sh's results.jsonl into a Markdown table of
figures with minimail/peer ratios.

Each input line is {"server": S, "work": W, "r": <mailbench --json object>}.
Rates are compared as minimail / peer, times as peer / minimail, so a ratio
above 1 always means minimail did better.
"""
import json
import sys


def load(path, rounds=None):
    """(server, work) -> result; lines tagged with a "round" (compare.sh
    --smtp-only) go to `rounds` instead: (round, server, work) -> result."""
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
            r = o["r"]
            if "round" in o:
                if rounds is not None:
                    rounds[(o["round"], o["server"], o["work"])] = r
                continue
            # compare.sh's mua runs give wall seconds.
            if isinstance(r, dict) and "octets" in r and "seconds" in r:
                r["ms"] = r["seconds"] * 1000
            res[(o["server"], o["work"])] = r
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


def rounds_table(rounds):
    """compare.sh --smtp-only: each round's rates, smtp-sink then minimail,
    the ratio, and the range of the ratios over the rounds."""
    if not rounds:
        return
    works = [("smtp-source 1k", "smtp-source -s 16 -m N -l 1024"),
             ("smtp-source 64k", "smtp-source -s 16 -m N -l 65536"),
             ("smtp 1k", "mailbench smtp 1 KiB, 16 sessions"),
             ("smtp 64k", "mailbench smtp 64 KiB, 16 sessions")]
    ids = sorted({r for (r, _, _) in rounds})
    print("| round (load at start) | work | smtp-sink | minimail | minimail / smtp-sink |")
    print("| --- | --- | --- | --- | --- |")
    spread = {}
    for i in ids:
        load = (rounds.get((i, "machine", "load")) or {}).get("load", "?")
        for w, label in works:
            s = fig(rounds.get((i, "smtp-sink", w)), "rate")
            m = fig(rounds.get((i, "minimail", w)), "rate")
            if s is None and m is None:
                continue
            if s and m:
                spread.setdefault(w, []).append(m / s)
            print(f"| {i} ({load}) | {label} | {fmt(s, 'msg/s')} | {fmt(m, 'msg/s')} | "
                  f"{ratio(m, s, True)} |")
    print()
    for w, label in works:
        if w in spread:
            v = spread[w]
            print(f"{label}: minimail / smtp-sink {min(v):.2f}x-{max(v):.2f}x over {len(v)} rounds "
                  f"(median {sorted(v)[len(v) // 2]:.2f}x)")


def main():
    rounds = {}
    res = load(sys.argv[1], rounds)
    if rounds and not res:
        rounds_table(rounds)
        return
    get = lambda s, w, k: fig(res.get((s, w)), k)
    rows = []

    def row_(label, work, key, unit, peer, sink=None, mm="minimail", higher=True):
        p = get(peer, work, key)
        m = get(mm, work, key)
        s = get(sink, work, key) if sink else None
        rows.append((label, fmt(s, unit) if sink else "", fmt(p, unit), fmt(m, unit),
                     ratio(m, p, higher), ratio(m, s, higher) if sink else ""))

    row = row_

    smtp = any(w.startswith(("smtp", "e2e")) for (_, w) in res)
    if smtp:
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
    sizes = sorted({int(w.split()[1]) for (s, w) in res
                    if s == "dovecot" and w.startswith("select ") and w.split()[1].isdigit()})
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
        row(f"  SELECT after 10 flag changes + 1 APPEND + 1 expunge, p50",
            f"select-changed {n}", "p50_ms", "ms", "dovecot", higher=False)
        row(f"  FETCH 1:* (UID FLAGS SIZE DATE ENVELOPE) warm, p50", f"fetch-meta {n}", "p50_ms",
            "ms", "dovecot", higher=False)
        row(f"  UID SEARCH TEXT word, warm, p50", f"search {n}", "p50_ms", "ms", "dovecot",
            higher=False)
        row(f"  UID SEARCH TEXT word, first, right after the APPENDs", f"search-burst {n}",
            "p50_ms", "ms", "dovecot", higher=False)
        row(f"  UID SEARCH SUBJECT word, warm, p50", f"search-subject {n}", "p50_ms", "ms",
            "dovecot", higher=False)
        row(f"  UID SEARCH FROM address, warm, p50", f"search-from {n}", "p50_ms", "ms",
            "dovecot", higher=False)
        # The first search of a session (minimail: its header cache
        # filled when an earlier session selected the mailbox,
        # mailstore/src/search/cache.rs), and one sent right after the
        # mailbox's first SELECT (the fill then still running).
        row(f"  UID SEARCH SUBJECT word, first of its session", f"search-subject {n}",
            "cold ms", "ms", "dovecot", higher=False)
        row(f"  UID SEARCH FROM address, first of its session", f"search-from {n}", "cold ms",
            "ms", "dovecot", higher=False)
        row(f"  UID SEARCH SUBJECT word, right after the mailbox's first SELECT",
            f"search-first {n}", "cold ms", "ms", "dovecot", higher=False)
        row(f"  FETCH 1:500 BODY.PEEK[], one connection, p50", f"bodies {n}", "p50_ms", "ms",
            "dovecot", higher=False)
        row(f"  same, octets per second", f"bodies {n}", "MB/s", "MB/s", "dovecot")
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
    if any(w == "bodies mixed" for (_, w) in res):
        n = next((w.split()[1][1:] for (_, w) in res if w.startswith("append b")), "?")
        n = f"{int(n):,}" if n.isdigit() else n
        row(f"BODY ({n} msgs of 4-150 KiB): FETCH 1:500 BODY.PEEK[], one connection, p50",
            "bodies mixed", "p50_ms", "ms", "dovecot", higher=False)
        row("  same, octets per second", "bodies mixed", "MB/s", "MB/s", "dovecot")
        row("  16 sessions random UID FETCH n BODY.PEEK[]", "body mixed", "rate", "fetch/s",
            "dovecot")
        row("  same, MiB/s", "body mixed", "MiB/s", "MiB/s", "dovecot")
        row("  same, p99", "body mixed", "p99_ms", "ms", "dovecot", higher=False)
        row("  1 session random UID FETCH n BODY.PEEK[]", "body1 mixed", "rate", "fetch/s",
            "dovecot")
    for w in sorted({w for (_, w) in res if w.startswith("bodies rss r")}):
        r = res[("minimail", w)]
        a = res.get(("minimail", "bodies all " + w.split()[2])) or {}
        rows.append((f"minimail RSS while FETCH 1:{w.split()[2][1:]} BODY.PEEK[] runs (one "
                     f"connection, {a.get('MB/s', '?')} MB/s)", "", "",
                     f"VmRSS {r.get('rss_before_mib')} -> max {r.get('rss_max_mib')} MiB, RssAnon "
                     f"{r.get('anon_before_mib')} -> max {r.get('anon_max_mib')} MiB", "", ""))
    for w in sorted({w for (_, w) in res if w.startswith("list-status ")}):
        b = w.split()[1]
        row(f"LIST \"\" \"*\" RETURN (STATUS (MESSAGES UNSEEN)), {int(b):,} mailboxes, cold",
            w, "cold ms", "ms", "dovecot", higher=False)
        row("  same, warm, p50", w, "p50_ms", "ms", "dovecot", higher=False)
        row("  bytes of one answer", w, "bytes", "B", "dovecot", higher=False)
    for w in sorted({w for (_, w) in res if w.startswith("qresync10 q")}):
        q = w.split()[1]
        n = f"{int(q[1:]):,}"
        row(f"{n}-msg mailbox: connect+LOGIN+SELECT, first (Dovecot: indexing its Maildir)",
            f"select {q}", "max_ms", "ms", "dovecot", higher=False)
        row("  SELECT (QRESYNC) after 10 flag changes, p50", w, "p50_ms", "ms", "dovecot",
            higher=False)
        row("  SELECT (QRESYNC) bytes sent", w, "bytes", "B", "dovecot", higher=False)
        row("  plain SELECT bytes sent", w, "full select bytes", "B", "dovecot", higher=False)
        row("  mua list (cache) first: octets received", f"mua whole {q}", "octets", "B",
            "dovecot", higher=False)
        row("  mua list (cache) nothing changed: octets", f"mua unchanged {q}", "octets", "B",
            "dovecot", higher=False)
        row("  mua list (cache) after the 10 changes: octets", f"mua resync {q}", "octets", "B",
            "dovecot", higher=False)
        row("  same, wall time of the mua run", f"mua resync {q}", "ms", "ms", "dovecot",
            higher=False)
    conns = lambda s: (res.get((s, "idle")) or {}).get("connections", "?")
    if ("minimail", "idle") in res or ("dovecot", "idle") in res:
        idle = f"IDLE ({conns('minimail')} conns on minimail, {conns('dovecot')} on Dovecot via Postfix)"
        row(f"{idle}: push delay 250 -> EXISTS, p50", "idle", "p50_ms", "ms", "dovecot",
            higher=False)
        row("  push delay, p99", "idle", "p99_ms", "ms", "dovecot", higher=False)
        row("  push delay, max", "idle", "max_ms", "ms", "dovecot", higher=False)

    inbound = any(not w.startswith("outbound") for (_, w) in res)
    if inbound:
        print("| work | smtp-sink (no storage) | Postfix / Dovecot | minimail | minimail vs peer | minimail vs sink |")
        print("| --- | --- | --- | --- | --- | --- |")
        for r in rows:
            print("| " + " | ".join(r) + " |")
    outbound_table(res)

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
    if rounds:
        print()
        rounds_table(rounds)


def outbound_table(res):
    """bench/compare.sh's OUTBOUND section: Postfix vs minimail."""
    if not any(w.startswith("outbound") for (_, w) in res):
        return
    get = lambda s, w, k: fig(res.get((s, w)), k)
    rows = []

    def row(label, work, key, unit, higher=True):
        p, m = get("postfix", work, key), get("minimail", work, key)
        if p is None and m is None:
            return
        rows.append((label, fmt(p, unit), fmt(m, unit), ratio(m, p, higher)))

    def conns(label, work):
        def cell(s):
            r = res.get((s, work)) or {}
            if r.get("error") or "sink_connections" not in r:
                return "-"
            return f"{int(r['sink_connections']):,} ({float(r['msgs_per_connection']):.1f})"
        if (("postfix", work) in res) or (("minimail", work) in res):
            rows.append((label, cell("postfix"), cell("minimail"), ""))

    def early(label, work):
        cell = lambda s: str((res.get((s, work)) or {}).get("early", "-"))
        if (("postfix", work) in res) or (("minimail", work) in res):
            rows.append((label, cell("postfix"), cell("minimail"), ""))

    n = (res.get(("minimail", "outbound")) or res.get(("postfix", "outbound")) or {}).get("messages", "?")
    n = f"{int(n):,}" if str(n).isdigit() else n
    w = "outbound"
    row(f"{n} msgs of 4 KiB to 100 domains (100 MX hosts): submit 250 -> remote 250 rate", w,
        "rate", "msg/s")
    row("  queue delay (submit 250 -> remote 250), p50", w, "p50_ms", "ms", higher=False)
    row("  queue delay, p99", w, "p99_ms", "ms", higher=False)
    row("  queue delay, max", w, "max_ms", "ms", higher=False)
    row("  end of DATA -> remote 250, p50 (includes accepting)", w, "from_dot_p50_ms", "ms",
        higher=False)
    row("  end of DATA -> remote 250, p99", w, "from_dot_p99_ms", "ms", higher=False)
    early("  delivered before the submitter read its 250 (counted 0)", w)
    row("  submission alone (16 sessions, PIPELINING)", w, "submit_rate", "msg/s")
    conns("  connections to the MX hosts (messages per connection)", w)
    w = "outbound paced"
    r = res.get(("minimail", w)) or res.get(("postfix", w)) or {}
    row(f"Same at an offered {r.get('offered', '?')}: queue delay p50", w, "p50_ms", "ms",
        higher=False)
    row("  queue delay, p99", w, "p99_ms", "ms", higher=False)
    row("  queue delay, max", w, "max_ms", "ms", higher=False)
    row("  end of DATA -> remote 250, p50 (includes accepting)", w, "from_dot_p50_ms", "ms",
        higher=False)
    row("  end of DATA -> remote 250, p99", w, "from_dot_p99_ms", "ms", higher=False)
    early("  delivered before the submitter read its 250 (counted 0)", w)
    conns("  connections to the MX hosts (messages per connection)", w)
    w = "outbound held"
    row("Same, MX hosts hold connections until all is queued: drain rate of the full queue", w,
        "rate", "msg/s")
    row("  release -> remote 250, p99", w, "p99_ms", "ms", higher=False)
    conns("  connections to the MX hosts (messages per connection)", w)
    for w, what in (("outbound", "rate"), ("outbound held", "drain rate of the full queue")):
        p, m = get("postfix", w, "rate"), get("minimail-c100", w, "rate")
        if m is not None:
            rows.append((f"minimail with Postfix's limits (100 connections, 20 per destination): "
                         f"{what}", fmt(p, "msg/s"),
                         fmt(m, "msg/s"), ratio(m, p, True)))
    w = "outbound one-mx"
    row("Every domain's MX one address (mailbench sink): rate", w, "rate", "msg/s")
    row("  queue delay, p99", w, "p99_ms", "ms", higher=False)
    conns("  connections to the MX host (messages per connection)", w)
    row("Every domain's MX one address (smtp-sink -c): rate", "outbound smtp-sink", "rate",
        "msg/s")
    if rows:
        print("\n| outbound (issue 15) | Postfix | minimail | minimail vs Postfix |")
        print("| --- | --- | --- | --- |")
        for r in rows:
            print("| " + " | ".join(r) + " |")
    rss = res.get(("minimail", "outbound rss")) or {}
    q = res.get(("minimail", "outbound rss queue")) or {}
    if rss and not rss.get("error"):
        queued = q.get("queued")
        queued = f"{queued:,}" if isinstance(queued, int) else "?"
        print(f"\nRSS check: minimail with {queued} messages queued for a destination "
              f"that refuses connections (store {q.get('store_mib', '?')} MiB): VmRSS "
              f"{q.get('rss_before_mib', '?')} MiB before, peak {rss.get('rss_peak_mib', '?')} MiB "
              f"(anon {rss.get('rss_peak_anon_mib', '?')}, file {rss.get('rss_peak_file_mib', '?')}), "
              f"{rss.get('rss_end_mib', '?')} MiB at the end, high-water mark "
              f"{rss.get('hwm_mib', '?')} MiB; queued at {float(rss.get('rate', 0)):,.0f} msg/s.")

if __name__ == "__main__":
    main()
