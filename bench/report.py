"""The bench's verdict: each goal against its target, and the table printed at the end of a run."""

from __future__ import annotations

from typing import Any


def goals(report: dict[str, Any]) -> list[dict[str, Any]]:
    t = report.get("throughput", {})
    out: list[dict[str, Any]] = []

    def goal(name: str, value: float | None, target: float, higher: bool = True, unit: str = "") -> None:
        met = None if value is None else (value >= target if higher else value <= target)
        out.append({"goal": name, "value": value, "target": target, "higher_is_better": higher, "met": met,
                    "unit": unit})

    def ratio(a: str, b: str) -> float | None:
        if a in t and b in t and t[b]["rps"]:
            return t[a]["rps"] / t[b]["rps"]
        return None

    goal("introspection hot / bare view", t.get("introspect_hot", {}).get("vs_bare"), 0.8)
    goal("introspection cold / bare view", t.get("introspect_cold", {}).get("vs_bare"), 0.45)
    goal("introspection / vanilla DOT (Bearer)", ratio("introspect_hot", "dot_introspect_bearer"), 15)
    goal("introspection / vanilla DOT (Basic)", ratio("introspect_hot", "dot_introspect_basic"), 500)
    goal("API-key verification (hot) / bare view", t.get("apikey_hot", {}).get("vs_bare"), 0.8)
    goal("introspection hot, absolute", t.get("introspect_hot", {}).get("rps"), 5100, unit="/s")
    # Token issuance (issue 17): absolute rates on the 2-core reference machine, and the ratio.
    goal("client_credentials / bare view", t.get("client_credentials", {}).get("vs_bare"), 0.2)
    goal("client_credentials / bare view (stretch)", t.get("client_credentials", {}).get("vs_bare"), 0.3)
    goal("client_credentials, absolute", t.get("client_credentials", {}).get("rps"), 1000, unit="/s")
    goal("authorization_code exchange, absolute", t.get("authorization_code", {}).get("rps"), 500, unit="/s")
    goal("refresh_token, absolute", t.get("refresh_token", {}).get("rps"), 500, unit="/s")
    goal("client_credentials / vanilla DOT", ratio("client_credentials", "dot_client_credentials"), 200)
    ol = report.get("open_loop") or {}
    cc = ol.get("client_credentials") or {}
    goal(f"open loop {cc.get('rate', 0):.0f} tokens/s p99", cc.get("p99_ms"), 20.0, higher=False, unit="ms")
    goal("open loop token errors", cc.get("errors"), 0, higher=False)
    goal(f"open loop {ol.get('rate', 0):.0f}/s p50", ol.get("p50_ms"), 1.0, higher=False, unit="ms")
    goal(f"open loop {ol.get('rate', 0):.0f}/s p99", ol.get("p99_ms"), 5.0, higher=False, unit="ms")
    goal("open loop errors", ol.get("errors"), 0, higher=False)
    goal("revocation seen by every worker", (report.get("revocation") or {}).get("worst_ms"), 1000, higher=False,
         unit="ms")
    sc = report.get("scale") or {}
    goal("throughput large / small token table", sc.get("ratio"), 0.9)
    inc = (sc.get("cleanup") or {}).get("p99_increase")
    goal("p99 increase during cleanup", None if inc is None else inc * 100, 25, higher=False, unit="%")
    return out


def table(report: dict[str, Any]) -> str:
    t = report.get("throughput", {})
    dot_of = {"introspect_hot": "dot_introspect_bearer", "introspect_cold": "dot_introspect_bearer",
              "client_credentials": "dot_client_credentials"}
    lines = [f"{'scenario':<34} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'x bare':>7} {'x DOT':>8} {'errors':>7}",
             "-" * 87]

    def fmt(v: float | None, spec: str) -> str:
        return "-" if v is None else format(v, spec)

    if "introspect_hot" in t and t["introspect_hot"].get("bare_rps"):
        lines.append(f"{'bare Django JSON view (baseline)':<34} {t['introspect_hot']['bare_rps']:>9.0f} "
                     f"{'':>8} {'':>8} {1.0:>7.2f} {'-':>8} {'':>7}")
    for name, row in t.items():
        dname = dot_of.get(name)
        x_dot = row["rps"] / t[dname]["rps"] if dname in t and t[dname]["rps"] else None
        if name == "introspect_hot" and "dot_introspect_basic" in t and t["dot_introspect_basic"]["rps"]:
            extra = f"  (x DOT Basic {row['rps'] / t['dot_introspect_basic']['rps']:.0f})"
        else:
            extra = ""
        label = ("vanilla DOT: " + name[4:]) if name.startswith("dot_") else name
        lines.append(f"{label:<34} {row['rps']:>9.1f} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} "
                     f"{fmt(row.get('vs_bare'), '7.2f'):>7} {fmt(x_dot, '8.0f'):>8} {row['errors']:>7}{extra}")
    ol = report.get("open_loop")
    if ol and ol.get("bare"):
        floor = ol["bare"]
        lines.append(f"{'open loop ' + format(ol['rate'], '.0f') + '/s bare view (floor)':<34} {ol['rate']:>9.0f} "
                     f"{floor['p50_ms']:>8.2f} {floor['p99_ms']:>8.2f} {'':>7} {'':>8} {floor['errors']:>7}"
                     f"  p99.9 {floor['p999_ms']:.2f} ms")
    if ol:
        lines.append(f"{'open loop ' + format(ol['rate'], '.0f') + '/s introspection':<34} {ol['rate']:>9.0f} "
                     f"{ol['p50_ms']:>8.2f} {ol['p99_ms']:>8.2f} {'':>7} {'':>8} {ol['errors']:>7}"
                     f"  p99.9 {ol['p999_ms']:.2f} ms")
    cc = (ol or {}).get("client_credentials")
    if cc:
        lines.append(f"{'open loop ' + format(cc['rate'], '.0f') + '/s client_credentials':<34} {cc['rate']:>9.0f} "
                     f"{cc['p50_ms']:>8.2f} {cc['p99_ms']:>8.2f} {'':>7} {'':>8} {cc['errors']:>7}"
                     f"  p99.9 {cc['p999_ms']:.2f} ms")
    kit = report.get("kit")
    if kit:
        lines.append(f"{'kit: bare view, 1 at a time':<34} {kit['bare']['rps']:>9.0f} {kit['bare']['p50_ms']:>8.2f} "
                     f"{'':>8} {1.0:>7.2f} {'-':>8} {'':>7}  (baseline of the kit rows)")
        for name, label in (("miss", "kit: cache miss (1 introspection)"), ("cached", "kit: cached verification")):
            row = kit[name]
            lines.append(f"{label:<34} {row['rps']:>9.0f} {row['p50_ms']:>8.3f} {row['p99_ms']:>8.3f} "
                         f"{fmt(row['vs_bare'], '7.2f'):>7} {'-':>8} {'':>7}")
    rv = report.get("revocation")
    if rv:
        lines.append(f"{'revocation seen by every worker':<34} worst {rv['worst_ms']:.0f} ms "
                     f"over {rv['trials']} trials")
    sc = report.get("scale")
    if sc:
        lines.append(f"{'introspection, ' + format(sc['sizes']['small'], ',') + ' stored':<34} "
                     f"{sc['small']['rps']:>9.0f} {'':>8} {sc['small']['p99_ms']:>8.2f}")
        lines.append(f"{'introspection, ' + format(sc['sizes']['large'], ',') + ' stored':<34} "
                     f"{sc['large']['rps']:>9.0f} {'':>8} {sc['large']['p99_ms']:>8.2f}  "
                     f"ratio {sc['ratio']:.2f}")
        c = sc.get("cleanup") or {}
        if c:
            lines.append(f"{'introspection p99 during cleanup':<34} {c['rate']:>9.0f} {c['p50_during_ms']:>8.2f} "
                         f"{c['p99_during_ms']:>8.2f} {'':>7} {'':>8} {c['errors']:>7}  before p99 "
                         f"{c['p99_before_ms']:.2f} ms; {c.get('deleted') or 0:,} deleted in {c['job_seconds']:.0f} s")
    for kind, rows in (report.get("servers") or {}).items():
        for name, row in rows.items():
            lines.append(f"{kind + ': ' + name:<34} {row['rps']:>9.0f} {'':>8} {row['p99_ms']:>8.2f} "
                         f"{fmt(row['vs_bare'], '7.2f'):>7} {'':>8} {row['errors']:>7}  bare {row['bare_rps']:.0f}")
    for failure in report.get("failures", []):
        lines.append(f"FAILED PHASE {failure}")
    lines.append("")
    for g in report.get("goals", []):
        mark = {True: "met ", False: "MISS", None: "n/a "}[g["met"]]
        value = "-" if g["value"] is None else f"{g['value']:.2f}{g['unit']}"
        op = ">=" if g["higher_is_better"] else "<="
        lines.append(f"  [{mark}] {g['goal']}: {value} ({op} {g['target']}{g['unit']})")
    return "\n".join(lines)
