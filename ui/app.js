// metalboot /ui: every host's boot timeline, live from /debug/boots/events (server-sent
// events: a snapshot, then only the hosts that changed, at most twice a second). Read-only.
// Stuck hosts (idle past the threshold, not sent to their disk) are highlighted with the reason
// /debug/explain gives. Plain browser JavaScript: no build step, nothing fetched from elsewhere.

/** The shortest time a bar's width stands for. */
const MIN_SCALE_MS = 1_000;
/** Explanations asked for at once, and how long one is kept. */
const EXPLAIN_CONCURRENCY = 2;
const EXPLAIN_TTL_MS = 30_000;

const hosts = new Map(); // mac → { view, row, cells, reason }
let clockOffsetMs = 0; // server time − this browser's time
let stateFilter = '';
let renderQueued = false;
const explained = new Map(); // mac → { at, text }
const explainQueue = [];
let explaining = 0;

const $ = (id) => document.getElementById(id);
const rows = $('rows');
const statusLine = $('status');
const find = $('find');
const stuckAfter = $('stuck-after');
const onlyStuck = $('only-stuck');

const serverNow = () => Date.now() + clockOffsetMs;
const idleMs = (v) => Math.max(0, serverNow() - Date.parse(v.lastSeen));
const isStuck = (v) => v.state !== 'local-boot' && idleMs(v) >= Number(stuckAfter.value || 120) * 1000;

function seconds(ms) {
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function bytesPerSecond(n) {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB/s`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)} kB/s`;
  return `${n.toFixed(0)} B/s`;
}

/** The entries of the host's current boot. */
function currentBoot(v) {
  return v.milestones.filter((m) => m.boot === v.boot);
}

function detailText(d) {
  return Object.entries(d)
    .map(([k, x]) => `${k}=${x}`)
    .join(' ');
}

function makeRow(mac) {
  const row = document.createElement('tr');
  row.dataset.mac = mac;
  const cells = {};
  for (const name of ['mac', 'state', 'last', 'idle', 'timeline']) {
    const td = document.createElement('td');
    td.className = name;
    row.append(td);
    cells[name] = td;
  }
  const bar = document.createElement('div');
  bar.className = 'bar';
  cells.timeline.append(bar);
  cells.bar = bar;
  return { row, cells };
}

function fillRow(h) {
  const v = h.view;
  const c = h.cells;
  c.mac.textContent = v.mac;
  if (v.name !== null) {
    const small = document.createElement('small');
    small.textContent = v.name;
    c.mac.append(small);
  }
  c.mac.title = v.name ?? v.mac;
  c.state.textContent = v.state;
  c.last.textContent = v.lastMilestone;
  const last = v.milestones.at(-1);
  c.last.title = `${last.milestone} ×${last.count} ${detailText(last.detail)}`;
  const boot = currentBoot(v);
  const start = boot.length === 0 ? 0 : boot[0].offsetMs;
  const segments = boot.map((m, i) => {
    const seg = document.createElement('i');
    const next = boot[i + 1];
    seg.className = m.state;
    seg.dataset.milestone = m.milestone;
    seg.style.setProperty('--at', String(m.offsetMs - start));
    seg.style.setProperty('--d', String(next === undefined ? 0 : next.offsetMs - m.offsetMs));
    const took = next === undefined ? '' : ` (${seconds(next.offsetMs - m.offsetMs)} to ${next.milestone})`;
    seg.title = `${m.milestone} at ${new Date(m.at).toLocaleTimeString()}${took}${m.count > 1 ? ` ×${m.count}` : ''}\n${detailText(m.detail)}`;
    return seg;
  });
  c.bar.replaceChildren(...segments);
  h.span = boot.length === 0 ? 0 : boot.at(-1).offsetMs - start;
  row(h);
}

/** The classes and texts that move with the clock: idle time, stuck, its reason. */
function row(h) {
  const v = h.view;
  const idle = idleMs(v);
  h.cells.idle.textContent = seconds(idle);
  const stuck = isStuck(v);
  h.row.classList.toggle('stuck', stuck);
  h.row.classList.toggle('error', v.state === 'error');
  h.cells.last.textContent = v.lastMilestone;
  h.cells.timeline.querySelector('.reason')?.remove();
  if (stuck) {
    wantExplanation(v.mac);
    h.cells.state.textContent = 'stuck';
    h.cells.state.title = `${v.state}, nothing for ${seconds(idle)} after ${v.lastMilestone}`;
    const reason = document.createElement('span');
    reason.className = 'reason';
    reason.textContent = explained.get(v.mac)?.text ?? '…';
    h.cells.timeline.append(reason);
  } else {
    h.cells.state.textContent = v.state;
    h.cells.state.title = '';
  }
}

function matches(v) {
  if (stateFilter !== '' && v.state !== stateFilter) return false;
  if (onlyStuck.checked && !isStuck(v)) return false;
  const q = find.value.trim().toLowerCase();
  if (q === '') return true;
  return v.mac.includes(q) || (v.name ?? '').toLowerCase().includes(q) || v.lastMilestone.includes(q);
}

function render() {
  renderQueued = false;
  // Stuck hosts first (what an operator looks for), then the most recently active.
  const all = [...hosts.values()].sort(
    (a, b) =>
      Number(isStuck(b.view)) - Number(isStuck(a.view)) || Date.parse(b.view.lastSeen) - Date.parse(a.view.lastSeen),
  );
  const shown = all.filter((h) => matches(h.view));
  rows.replaceChildren(...shown.map((h) => h.row));
  $('empty').hidden = hosts.size > 0;
  const scale = Math.max(MIN_SCALE_MS, ...shown.map((h) => h.span ?? 0));
  document.documentElement.style.setProperty('--scale', String(scale));
  $('scale').textContent = `bar width: ${seconds(scale)}`;
  const byState = new Map();
  for (const h of all) {
    const s = isStuck(h.view) ? 'stuck' : h.view.state;
    byState.set(s, (byState.get(s) ?? 0) + 1);
  }
  const buttons = [['', `all ${all.length}`], ...[...byState].sort().map(([s, n]) => [s, `${s} ${n}`])].map(([s, label]) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = label;
    b.dataset.state = s;
    b.className = s === stateFilter || (s === 'stuck' && onlyStuck.checked) ? 'on' : '';
    return b;
  });
  $('states').replaceChildren(...buttons);
}

function queueRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(render);
}

function update(views) {
  for (const v of views) {
    let h = hosts.get(v.mac);
    if (h === undefined) {
      h = makeRow(v.mac);
      hosts.set(v.mac, h);
    }
    h.view = v;
    fillRow(h);
  }
  queueRender();
}

function wantExplanation(mac) {
  const known = explained.get(mac);
  if (known !== undefined && serverNow() - known.at < EXPLAIN_TTL_MS) return;
  if (explainQueue.includes(mac)) return;
  explainQueue.push(mac);
  pumpExplanations();
}

/** One line from /debug/explain: why nothing more happens for this host. */
function reasonOf(x) {
  if (x.conflict) return `conflict: ${x.conflict.reason}`;
  if (x.dhcp?.answer === 'silent') return `DHCP silent: ${x.dhcp.reason}${x.dhcp.detail ? ` (${x.dhcp.detail})` : ''}`;
  if (x.host?.problem) return x.host.problem;
  const parts = [];
  if (x.host?.provisioningState) parts.push(`state ${x.host.provisioningState}`);
  if (x.script?.kind) parts.push(`script ${x.script.kind}${x.script.why ? `: ${x.script.why}` : ''}`);
  if (x.ironicAgent?.node) parts.push(`node ${x.ironicAgent.node}`);
  return parts.join('; ') || 'DHCP would answer; nothing was asked since';
}

function pumpExplanations() {
  while (explaining < EXPLAIN_CONCURRENCY && explainQueue.length > 0) {
    const mac = explainQueue.shift();
    explaining++;
    fetch(`../debug/explain?mac=${encodeURIComponent(mac)}`)
      .then(async (res) => {
        const body = await res.json();
        return res.ok ? reasonOf(body) : (body.error ?? `explain answered ${res.status}`);
      })
      .catch(() => 'explain unavailable')
      .then((text) => {
        explained.set(mac, { at: serverNow(), text });
        const h = hosts.get(mac);
        if (h !== undefined) row(h);
      })
      .finally(() => {
        explaining--;
        pumpExplanations();
      });
  }
}

function showRates(r) {
  const p = r.perSecond;
  $('rate-dhcp').textContent = `${p.dhcp.toFixed(1)}/s`;
  $('rate-tftp').textContent = `${p.tftp.toFixed(1)}/s · ${bytesPerSecond(p.tftpBytes)}`;
  $('rate-http').textContent = `${p.http.toFixed(1)}/s`;
  $('rate-image').textContent = `${p.image.toFixed(1)}/s · ${bytesPerSecond(p.imageBytes)}`;
}

function connect() {
  const source = new EventSource('../debug/boots/events');
  source.addEventListener('snapshot', (e) => {
    const d = JSON.parse(e.data);
    clockOffsetMs = Date.parse(d.now) - Date.now();
    hosts.clear();
    update(d.hosts);
    statusLine.textContent = `live · ${d.hosts.length} hosts`;
    statusLine.className = 'status live';
  });
  source.addEventListener('hosts', (e) => {
    const d = JSON.parse(e.data);
    clockOffsetMs = Date.parse(d.now) - Date.now();
    update(d.hosts);
    statusLine.textContent = `live · ${hosts.size} hosts`;
  });
  source.addEventListener('rates', (e) => showRates(JSON.parse(e.data)));
  source.addEventListener('error', () => {
    statusLine.textContent = 'reconnecting…';
    statusLine.className = 'status down';
  });
}

$('states').addEventListener('click', (e) => {
  const s = e.target?.dataset?.state;
  if (s === undefined) return;
  if (s === 'stuck') {
    onlyStuck.checked = !onlyStuck.checked;
    stateFilter = '';
  } else {
    stateFilter = s === stateFilter ? '' : s;
    onlyStuck.checked = false;
  }
  queueRender();
});
for (const el of [find, stuckAfter, onlyStuck]) el.addEventListener('input', queueRender);
// Idle times and stuck marks move with the clock, not with events.
setInterval(() => {
  for (const h of hosts.values()) row(h);
  queueRender();
}, 1000);

connect();
