/**
 * The `status` page: one self-contained HTML document (inline style and
 * script, no external asset, no build step) that polls its own URL with
 * `?format=json` every 2 s and redraws. A connection's idle time is drawn
 * as a bar against its lb_idle_timeout: amber past half, red past 80 % —
 * the connection the load balancer is about to forget.
 */
export const STATUS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>keepwire status</title>
<style>
:root { color-scheme: light; --fg:#1d2330; --muted:#667; --line:#dde1e8; --ok:#2e7d32; --warn:#c77700; --bad:#c62828; }
body { font: 13px/1.4 system-ui, sans-serif; color: var(--fg); margin: 16px 20px; background: #fafbfc; }
h1 { font-size: 18px; margin: 0 0 4px; } h2 { font-size: 14px; margin: 18px 0 6px; }
.muted { color: var(--muted); }
table { border-collapse: collapse; background: #fff; border: 1px solid var(--line); }
th, td { padding: 3px 8px; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; }
th { background: #f1f3f6; font-weight: 600; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.up { color: var(--ok); font-weight: 600; } .down { color: var(--bad); font-weight: 600; }
.bar { position: relative; width: 140px; height: 12px; background: #eceff3; border-radius: 2px; display: inline-block; vertical-align: middle; }
.bar > span { position: absolute; left: 0; top: 0; bottom: 0; background: var(--ok); border-radius: 2px; }
.bar.warn > span { background: var(--warn); } .bar.bad > span { background: var(--bad); }
tr.bad td { background: #fdecea; }
#err { color: var(--bad); }
</style>
</head>
<body>
<h1>keepwire status</h1>
<div class="muted"><span id="updated">loading…</span> <span id="err"></span></div>
<h2>Listeners</h2>
<table id="listeners"><thead><tr><th>listen</th><th>kind</th><th>so_keepalive</th><th>accepted</th></tr></thead><tbody></tbody></table>
<h2>Upstreams</h2>
<table id="upstreams"><thead><tr><th>upstream</th><th>server</th><th>health</th><th>fails</th><th>active</th><th>idle in cache</th></tr></thead><tbody></tbody></table>
<h2>Connections <span class="muted" id="conncount"></span></h2>
<table id="connections"><thead><tr><th>side</th><th>state</th><th>where</th><th>local</th><th>remote</th><th>age</th><th>idle</th><th>idle vs lb_idle_timeout</th><th>in</th><th>out</th><th>keepalive in force</th><th>unanswered probes</th><th>last data recv</th><th>last ACK recv</th><th>RTT</th></tr></thead><tbody></tbody></table>
<h2>Recent events</h2>
<table id="events"><thead><tr><th>time</th><th>event</th><th>where</th><th>detail</th></tr></thead><tbody></tbody></table>
<script>
"use strict";
const jsonUrl = location.pathname + "?format=json";
function el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined) e.textContent = String(text); if (cls) e.className = cls; return e; }
function row(cells, cls) { const tr = el("tr", undefined, cls); for (const c of cells) { if (c instanceof Node) { const td = el("td"); td.appendChild(c); tr.appendChild(td); } else if (typeof c === "number") tr.appendChild(el("td", c, "num")); else tr.appendChild(el("td", c)); } return tr; }
function fill(id, rows) { const body = document.querySelector("#" + id + " tbody"); body.replaceChildren(...rows); }
function dur(ms) { if (ms === null || ms === undefined) return "-"; if (ms < 1000) return ms + " ms"; const s = ms / 1000; if (s < 120) return s.toFixed(1) + " s"; const m = s / 60; if (m < 120) return m.toFixed(1) + " min"; return (m / 60).toFixed(1) + " h"; }
function bytes(n) { if (n < 1024) return n + " B"; if (n < 1048576) return (n / 1024).toFixed(1) + " KiB"; return (n / 1048576).toFixed(1) + " MiB"; }
function idleBar(c) {
  if (c.lbIdleTimeoutMs === null) return el("span", "no lb_idle_timeout", "muted");
  const f = c.idleMs / c.lbIdleTimeoutMs;
  const wrap = el("span");
  const bar = el("span", undefined, "bar" + (f >= 0.8 ? " bad" : f >= 0.5 ? " warn" : ""));
  const fillEl = el("span"); fillEl.style.width = Math.min(100, f * 100).toFixed(1) + "%";
  bar.appendChild(fillEl); wrap.appendChild(bar); wrap.appendChild(document.createTextNode(" " + Math.round(f * 100) + "% of " + dur(c.lbIdleTimeoutMs)));
  return wrap;
}
function render(s) {
  fill("listeners", s.listeners.map((l) => row([l.listen, l.kind, l.soKeepalive, l.accepted])));
  const ups = [];
  for (const u of s.upstreams) for (const v of u.servers)
    ups.push(row([u.name, v.server, el("span", v.down ? "down (configured)" : v.up ? "up" : "ejected", v.up ? "up" : "down"), v.fails, v.active, u.idleConnections === null ? "-" : u.idleConnections + " / " + u.keepalive]));
  fill("upstreams", ups);
  document.getElementById("conncount").textContent = "(" + s.connections.length + " most idle of " + s.connectionsTotal + ")";
  fill("connections", s.connections.map((c) => {
    const k = c.kernel;
    const ok = !("error" in k);
    const ka = !ok ? k.error : k.keepalive.enabled ? k.keepalive.idle + "s:" + k.keepalive.interval + "s:" + k.keepalive.count : "off";
    const near = c.lbIdleTimeoutMs !== null && c.idleMs >= 0.8 * c.lbIdleTimeoutMs;
    return row([c.side, c.state, c.where, c.local, c.remote, dur(c.ageMs), dur(c.idleMs), idleBar(c), bytes(c.bytesReceived), bytes(c.bytesSent), ka,
      ok ? k.probesUnanswered : "-", ok ? dur(k.lastDataReceivedMs) : "-", ok ? dur(k.lastAckReceivedMs) : "-", ok ? (k.rttUs / 1000).toFixed(2) + " ms" : "-"], near ? "bad" : undefined);
  }));
  fill("events", s.events.slice().reverse().map((e) => row([new Date(e.at).toISOString().slice(11, 23), e.kind, e.where, e.detail])));
  document.getElementById("updated").textContent = "updated " + new Date(s.at).toISOString().replace("T", " ").slice(0, 19) + " UTC";
  document.body.dataset.loaded = "1";
}
async function poll() {
  try {
    const r = await fetch(jsonUrl, { cache: "no-store" });
    if (!r.ok) throw new Error("HTTP " + r.status);
    render(await r.json());
    document.getElementById("err").textContent = "";
  } catch (e) {
    document.getElementById("err").textContent = "update failed: " + e.message;
  }
  setTimeout(poll, 2000);
}
poll();
</script>
</body>
</html>
`;
