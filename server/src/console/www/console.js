// tinyfleet console: a hash-routed page over the HTTP/JSON API (docs/console.md).
// The token stays in sessionStorage and goes in "Authorization: Bearer" on every call.
'use strict';

const main = () => document.getElementById('main');
const token = () => sessionStorage.getItem('tinyfleet.token');

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'onclick') e.addEventListener('click', v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function svg(tag, attrs, text) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function table(headers, rows) {
  const t = el('table', {}, el('tr', {}, ...headers.map((h) => el('th', {}, h))));
  for (const r of rows) t.append(el('tr', {}, ...r.map((c) => (c instanceof Node && c.tagName === 'TD' ? c : el('td', {}, c)))));
  return t;
}

async function api(method, path, send) {
  const headers = { Authorization: 'Bearer ' + token() };
  if (send !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch('/api/v1' + path, {
    method, headers, body: send === undefined ? undefined : JSON.stringify(send),
  });
  const body = await res.json().catch(() => ({ error: 'HTTP ' + res.status }));
  if (res.status === 401) {
    sessionStorage.removeItem('tinyfleet.token');
    location.hash = '#/login';
  }
  if (!res.ok) throw new Error(body.error || 'HTTP ' + res.status);
  return body;
}

function show(...nodes) {
  main().replaceChildren(...nodes);
}

function login() {
  const input = el('input', { id: 'token', type: 'password', size: 50, placeholder: 'tf_...' });
  const msg = el('div', { id: 'login-message' });
  const form = el('form', { id: 'login' }, el('h2', {}, 'Log in'),
    el('p', {}, 'Paste an API token (fleetctl tokens create).'), input, ' ',
    el('button', { id: 'login-button', type: 'submit' }, 'Log in'), msg);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    sessionStorage.setItem('tinyfleet.token', input.value.trim());
    try {
      await api('GET', '/whoami');
      location.hash = '#/fleet';
    } catch (e) {
      sessionStorage.removeItem('tinyfleet.token');
      msg.className = 'error';
      msg.textContent = e.message;
    }
  });
  show(form);
}

function counts(title, map) {
  return el('div', { class: 'card' }, el('h3', {}, title),
    table(['', 'devices'], Object.entries(map).map(([k, v]) => [k, v])));
}

async function fleet(after) {
  const f = await api('GET', '/fleet' + (after ? '?after=' + encodeURIComponent(after) : ''));
  const range = f.shown === 0 ? 'No devices' : f.shown < f.total
    ? `Devices ${f.devices[0].id} .. ${f.devices[f.shown - 1].id} (${f.shown} of ${f.total})` : 'Devices';
  const pages = el('p', { id: 'fleet-pages' });
  if (after) pages.append(el('a', { href: '#/fleet', id: 'fleet-first' }, 'First page'), ' ');
  if (f.next) pages.append(el('a', { href: '#/fleet/after/' + encodeURIComponent(f.next), id: 'fleet-next' }, 'Next page'));
  show(el('h2', { id: 'page-fleet' }, `Fleet: ${f.total} devices`),
    el('div', { class: 'cards' }, counts('By class', f.by_class), counts('By status', f.by_status),
      counts('By model version', f.by_model)),
    el('h3', {}, range), pages,
    table(['device', 'class', 'status', 'online', 'model', 'last seen', 'last telemetry'],
      f.devices.map((d) => [d.id, d.class, d.status, d.online ? 'online' : 'offline', d.model,
        d.last_seen || 'never', d.last_telemetry || 'none'])));
}

// A line chart: series [{label, points: [[t, y]...], dashed}], time across (seconds), with
// an optional horizontal bound line.
function chart(id, title, series, bound) {
  const w = 480, h = 120, left = 56, bottom = 22;
  const pts = series.flatMap((s) => s.points);
  const bands = series.flatMap((s) => s.band || []);
  const ys = pts.map((p) => p[1]).concat(bound === undefined ? [] : [bound],
    bands.flatMap((b) => [b[1], b[2]]));
  const s = svg('svg', { width: w + left + 8, height: h + bottom + 18, class: 'chart', id });
  s.append(svg('text', { x: left, y: 12, class: 'chart-title' }, title));
  if (!pts.length) {
    s.append(svg('text', { x: left, y: 40 }, 'no data yet'));
    return s;
  }
  const t0 = Math.min(...pts.map((p) => p[0])), t1 = Math.max(t0 + 1, ...pts.map((p) => p[0]));
  let y0 = Math.min(...ys), y1 = Math.max(...ys);
  if (y1 - y0 < 1e-9) { y0 -= 0.5; y1 += 0.5; }
  const X = (t) => left + ((t - t0) / (t1 - t0)) * w;
  const Y = (y) => 18 + h - ((y - y0) / (y1 - y0)) * h;
  s.append(svg('rect', { x: left, y: 18, width: w, height: h, fill: 'none', stroke: '#bbb' }));
  s.append(svg('text', { x: 0, y: 24 }, Number(y1).toPrecision(3)));
  s.append(svg('text', { x: 0, y: 18 + h }, Number(y0).toPrecision(3)));
  s.append(svg('text', { x: left, y: h + bottom + 14 }, `${new Date(t0 * 1000).toISOString().slice(11, 19)} UTC + ${Math.round(t1 - t0)} s`));
  if (bound !== undefined) {
    s.append(svg('line', { x1: left, x2: left + w, y1: Y(bound), y2: Y(bound), class: 'bound' }));
  }
  series.forEach((line, i) => {
    const colour = line.colour || `hsl(${(i * 120 + 210) % 360},70%,40%)`;
    if (line.band && line.band.length) {  // the interval [lo, hi] at each point, shaded
      const upper = line.band.map((b) => `${X(b[0]).toFixed(1)},${Y(b[2]).toFixed(1)}`);
      const lower = line.band.slice().reverse().map((b) => `${X(b[0]).toFixed(1)},${Y(b[1]).toFixed(1)}`);
      s.append(svg('polygon', { points: upper.concat(lower).join(' '), fill: colour,
        'fill-opacity': 0.15, stroke: 'none', class: 'interval' }));
    }
    const d = line.points.map((p, k) => `${k ? 'L' : 'M'}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(' ');
    s.append(svg('path', { d, fill: 'none', stroke: colour, 'stroke-width': 2,
      'stroke-dasharray': line.dashed ? '5,3' : 'none', class: 'series' }));
    for (const p of line.points) {
      const c = svg('circle', { cx: X(p[0]), cy: Y(p[1]), r: 2.5, fill: colour });
      c.append(svg('title', {}, `${line.label}: ${Number(p[1]).toPrecision(4)}`));
      s.append(c);
    }
    s.append(svg('text', { x: left + 200 + i * 150, y: h + bottom + 14, fill: colour, class: 'legend' }, line.label));
  });
  return s;
}

// A gate clause's verdict: the engine's ("pass", "fail", "wait", maybe timed out) where
// the report has it, else what known and passed say (older reports).
function verdictOf(g) {
  const v = g.verdict || (!g.known ? 'wait' : g.passed ? 'pass' : 'fail');
  return { text: v + (g.timed_out ? ' (timed out)' : ''),
    cls: v === 'pass' ? 'passed' : v === 'fail' ? 'failed' : 'unknown' };
}

const num = (x) => (x === null || x === undefined ? '-' : Number(x).toPrecision(4));
const interval = (g) => (g.lo === undefined || g.hi === undefined ? '-' : `[${num(g.lo)}, ${num(g.hi)}]`);
const groupText = (x) => (x ? `${num(x.value)} (${x.devices} devices)` : '-');

// One gate clause over time: where the reports compare the canary with a reference group
// (control, baseline or manifest), both groups' values; the compared value with its
// interval [lo, hi] against the bound; the latest verdict and device counts.
function gateCard(i, key, g) {
  const last = g.last;
  const card = el('div', { class: 'gate-card', id: `gate-${i}` }, el('h4', {}, key));
  const v = verdictOf(last);
  card.append(el('p', { class: 'gate-latest' }, 'Latest: ', el('span', { class: v.cls, id: `gate-verdict-${i}` }, v.text),
    `, value ${last.known ? num(last.value) : '-'} in ${interval(last)}`,
    last.canary ? `; canary ${groupText(last.canary)}` : '',
    last.reference ? `; ${last.reference.group} ${groupText(last.reference)}` : ''));
  if (g.reference.length) {  // comparative: both groups (a metric of the canary alone has none)
    const group = (last.reference && last.reference.group) || 'reference';
    card.append(chart(`canary-chart-${i}`, `${last.metric}: canary against ${group}`, [
      { label: `canary (${last.canary ? last.canary.devices : 0} devices)`, points: g.canary, colour: '#c2185b' },
      { label: `${group} (${last.reference ? last.reference.devices : 0} devices)`, points: g.reference,
        colour: '#1565c0', dashed: true }]));
  }
  card.append(chart(`gate-chart-${i}`, key, [{ label: g.band.length ? 'value, interval shaded' : 'value',
    points: g.points, band: g.band }], g.bound));
  return card;
}

// Each gate's value over time against its bound (the engine's history), and the
// rollout's telemetry per artifact (the new model solid, the old dashed).
function seriesCharts(series) {
  const parts = [el('h3', {}, 'Gates over time')];
  const gates = new Map();
  for (const e of series.gates) {
    for (const g of e.results) {
      const key = `${g.metric} ${g.op} ${g.bound}`;
      if (!gates.has(key)) gates.set(key, { bound: g.bound, points: [], band: [], canary: [], reference: [] });
      const x = gates.get(key);
      x.last = g;
      if (g.known) x.points.push([e.t, g.value]);
      if (g.known && g.lo !== undefined && g.hi !== undefined) x.band.push([e.t, g.lo, g.hi]);
      if (g.canary && g.canary.value !== null) x.canary.push([e.t, g.canary.value]);
      if (g.reference && g.reference.value !== null) x.reference.push([e.t, g.reference.value]);
    }
  }
  if (!gates.size) parts.push(el('p', {}, 'No gate evaluation recorded yet.'));
  const gateCharts = el('div', { class: 'charts' });
  let i = 0;
  for (const [key, g] of gates) gateCharts.append(gateCard(i++, key, g));
  parts.push(gateCharts, el('h3', {}, 'Telemetry per artifact'));
  const telemetryCharts = el('div', { class: 'charts' });
  const metrics = [['accuracy', 'probe accuracy'], ['psi', 'output drift (PSI, device windows)'],
    ['energy_uj', 'energy per inference (uJ)'], ['latency_p95_us', 'latency p95 (us)']];
  metrics.forEach(([key, title]) => {
    const lines = series.telemetry.map((a) => ({
      label: `${a.target ? 'new' : 'old'} ${a.class} ${a.artifact.slice(0, 8)}`, dashed: !a.target,
      points: a.points.filter((p) => p[key] !== null).map((p) => [p.t, p[key]]),
    }));
    telemetryCharts.append(chart(`telemetry-${key}`, title, lines));
  });
  parts.push(telemetryCharts);
  return parts;
}

function gateCell(g) {
  const v = verdictOf(g);
  return el('td', { class: v.cls }, v.text);
}

function gatesTable(r) {
  return table(['metric', 'value', 'interval', 'bound', 'verdict', 'canary', 'reference'],
    r.gate_results.map((g) => [g.metric, g.known ? num(g.value) : '-', interval(g), `${g.op} ${g.bound}`,
      gateCell(g), groupText(g.canary), g.reference ? `${g.reference.group}: ${groupText(g.reference)}` : '-']));
}

// Splits a comma list as fleetctl does (blanks dropped).
const list = (text) => text.split(',').map((x) => x.trim()).filter((x) => x);

// "1:60,10:60,100:0" (fleetctl's --phases) as [{percent, bake_seconds}].
function phasesOf(text) {
  return list(text).map((p) => {
    const m = p.match(/^(\d{1,9})(?::(\d{1,9}))?$/);
    if (!m) throw new Error(`phases take PERCENT:BAKE_SECONDS,... not '${p}'`);
    return { percent: Number(m[1]), bake_seconds: Number(m[2] || 0) };
  });
}

// Creating a rollout: what `fleetctl rollouts create` takes; the server's checks and
// messages are CreateRollout's.
async function newRollout() {
  const me = await api('GET', '/whoami');
  const models = await api('GET', '/models');
  const operator = me.role !== 'viewer';
  const field = (id, label, attrs, hint) => el('tr', {}, el('th', {}, el('label', { for: id }, label)),
    el('td', {}, el('input', { id, name: id, size: 40, ...attrs }), hint ? ' ' + hint : ''));
  const onFailure = el('select', { id: 'create-on-failure' }, el('option', { value: 'rollback' }, 'rollback'),
    el('option', { value: 'pause' }, 'pause'));
  const message = el('div', { id: 'create-message' });
  const form = el('form', { id: 'create-form' },
    el('datalist', { id: 'model-names' }, ...models.map((m) => el('option', { value: m.name }))),
    el('table', { class: 'form' },
      field('create-name', 'name', { required: '' }, 'a-z, 0-9, _ or -'),
      field('create-model', 'model', { required: '', list: 'model-names' }),
      field('create-version', 'version', { required: '', type: 'number', min: 1 }),
      field('create-fleet', 'fleet', { value: 'default' }),
      field('create-classes', 'device classes', {}, 'comma-separated; empty: every class'),
      field('create-tags', 'tags', {}, 'comma-separated; a device needs all'),
      field('create-devices', 'device ids', {}, 'comma-separated; empty: no restriction'),
      field('create-phases', 'phases', { placeholder: '1:60,10:60,100:0' }, 'PERCENT:BAKE_SECONDS,...; empty: 100% at once'),
      field('create-gates', 'gates', { placeholder: 'failure_rate <= 0.05 && accuracy_drop <= 0.05', size: 60 }),
      el('tr', {}, el('th', {}, el('label', { for: 'create-on-failure' }, 'on gate failure')), el('td', {}, onFailure)),
      field('create-rate', 'devices per minute', { type: 'number', min: 1, value: 600 })),
    el('button', { id: 'create-button', type: 'submit', class: 'action' + (operator ? '' : ' needs-operator'),
      title: operator ? 'create' : 'create needs role operator' }, 'Create rollout'),
    operator ? '' : ` (token '${me.name}' is a viewer)`, message);
  const value = (id) => document.getElementById(id).value.trim();
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const name = value('create-name');
      const r = await api('POST', '/rollouts', {
        name, model: value('create-model'), version: Number(value('create-version')),
        fleet: value('create-fleet'), device_classes: list(value('create-classes')),
        tags: list(value('create-tags')), device_ids: list(value('create-devices')),
        phases: phasesOf(value('create-phases')), gates: value('create-gates'),
        on_gate_failure: onFailure.value, rate_per_minute: Number(value('create-rate') || 0),
      });
      location.hash = `#/rollouts/${encodeURIComponent(r.name)}`;
    } catch (e) {
      message.className = 'error';
      message.textContent = e.message;
    }
  });
  show(el('h2', { id: 'page-new-rollout' }, 'New rollout'), form);
}

async function rollouts() {
  const list = await api('GET', '/rollouts');
  show(el('h2', { id: 'page-rollouts' }, 'Rollouts'),
    el('p', {}, el('a', { href: '#/new-rollout', id: 'new-rollout-link' }, 'New rollout')),
    table(['rollout', 'model', 'state', 'phase', 'devices', 'reason'], list.map((r) => [
      el('a', { href: `#/rollouts/${r.name}` }, r.name), `${r.model} v${r.version}`, r.state,
      `${r.current_phase + 1} of ${r.phases.length}`, r.selected_devices, r.reason])));
}

async function rollout(name) {
  const r = await api('GET', '/rollouts/' + encodeURIComponent(name));
  const me = await api('GET', '/whoami');
  const operator = me.role !== 'viewer';
  const message = el('div', { id: 'action-message' });
  const buttons = ['pause', 'resume', 'promote', 'abort'].map((act) => el('button', {
    id: 'action-' + act, type: 'button',
    class: 'action' + (operator ? '' : ' needs-operator'),
    title: operator ? act : act + ' needs role operator',
    onclick: async () => {
      try {
        await api('POST', `/rollouts/${encodeURIComponent(name)}/${act}`);
        await rollout(name);
        const m = document.getElementById('action-message');
        m.className = 'notice';
        m.textContent = `${act}: done`;
      } catch (e) {
        message.className = 'error';
        message.textContent = e.message;
      }
    },
  }, act));
  show(el('h2', { id: 'page-rollout' }, `Rollout ${r.name}: ${r.model} v${r.version}`),
    el('p', {}, 'State: ', el('strong', { id: 'rollout-state' }, r.state),
      ` (on gate failure: ${r.on_gate_failure}; gates: ${r.gates || 'none'})`),
    el('div', { class: 'decision', id: 'decision' }, 'Decision: ', r.reason || 'none yet'),
    el('div', {}, ...buttons, operator ? '' : ` (token '${me.name}' is a viewer)`), message,
    el('h3', {}, 'Phases'),
    table(['phase', 'percent', 'state', 'progress', 'updated / devices', 'failed', 'reporting'],
      r.phases.map((p) => [p.index === 0 ? '0 (canary)' : p.index, p.percent + '%', p.state,
        el('progress', { max: Math.max(p.devices, 1), value: p.updated }),
        `${p.updated} / ${p.devices}`, p.failed, p.reporting])),
    el('h3', {}, 'Gates (latest evaluation of the current phase)'), gatesTable(r),
    el('div', { id: 'rollout-series' }, 'loading charts...'));
  const series = await api('GET', `/rollouts/${encodeURIComponent(name)}/series`);
  document.getElementById('rollout-series').replaceChildren(...seriesCharts(series));
}

async function models() {
  const list = await api('GET', '/models');
  const rows = [];
  for (const m of list) {
    for (const v of m.versions) {
      rows.push([m.name, el('a', { href: `#/models/${m.name}/versions/${v.version}` }, 'v' + v.version),
        v.artifacts.map((a) => `${a.class}: ${a.status}`).join(', '), v.created_at]);
    }
  }
  show(el('h2', { id: 'page-models' }, 'Models'), table(['model', 'version', 'artifacts', 'created'], rows));
}

// The memory plan: each buffer a rectangle, steps across, arena offset down.
function memoryPlan(plan) {
  const w = 640, h = 240, pad = 30;
  const steps = Math.max(1, ...plan.buffers.map((b) => b.last_step + 1));
  const bytes = Math.max(1, plan.arena_bytes, ...plan.buffers.map((b) => b.offset + b.size));
  const s = svg('svg', { width: w + pad, height: h + pad, class: 'memory-plan' });
  s.append(svg('rect', { x: pad, y: 0, width: w, height: h, fill: 'none', stroke: '#888' }));
  plan.buffers.forEach((b, i) => {
    const x = pad + (b.first_step / steps) * w;
    const y = (b.offset / bytes) * h;
    const r = svg('rect', { x, y, width: Math.max(2, ((b.last_step - b.first_step + 1) / steps) * w),
      height: Math.max(1, (b.size / bytes) * h), fill: `hsl(${(i * 47) % 360},60%,60%)`, stroke: '#333' });
    r.append(svg('title', {}, `${b.tensor}: ${b.size} B at ${b.offset}, steps ${b.first_step}-${b.last_step}`));
    s.append(r);
  });
  s.append(svg('text', { x: pad, y: h + 14 }, `step 0 .. ${steps - 1} (operators in order)`));
  s.append(svg('text', { x: 0, y: 10 }, '0 B'));
  s.append(svg('text', { x: 0, y: h }, `${bytes} B`));
  return s;
}

async function version(model, number) {
  const v = await api('GET', `/models/${encodeURIComponent(model)}/versions/${number}`);
  const parts = [el('h2', { id: 'page-version' }, `${v.model} v${v.version}: compile report`)];
  for (const a of v.artifacts) {
    const rep = a.report || {};
    parts.push(el('h3', {}, `${a.class}: ${a.status === 'compiled' ? 'fits, compiled' : 'refused'}`));
    if (a.refusal_reason) parts.push(el('div', { class: 'error' }, a.refusal_reason));
    const keys = ['latency_ms', 'energy_mj', 'cycles', 'macs', 'weight_bytes', 'arena_bytes',
      'naive_arena_bytes', 'artifact_bytes', 'operators', 'compile_ms'];
    const rows = keys.filter((k) => rep[k] !== undefined).map((k) => [k, rep[k]]);
    if (a.size_bytes) rows.push(['stored size (bytes)', a.size_bytes]);
    if (a.modelled_cycles) rows.push(['modelled cycles', a.modelled_cycles]);
    parts.push(table(['estimate', 'value'], rows));
    if (rep.validation) {
      const val = rep.validation;
      parts.push(el('h4', {}, 'Quantization'), table(['float top-1', 'int8 top-1', 'drop', 'worst layer', 'its SQNR (dB)'],
        [[val.float_top1, val.int8_top1, val.drop, val.worst_layer, val.worst_layer_sqnr_db]]));
    }
    if (a.memory_plan && a.memory_plan.buffers.length) {
      parts.push(el('h4', {}, `Memory plan: ${a.memory_plan.buffers.length} buffers in ${a.memory_plan.arena_bytes} B`),
        memoryPlan(a.memory_plan));
    }
  }
  show(...parts);
}

async function route() {
  const hash = location.hash || '#/fleet';
  document.getElementById('nav').hidden = !token();
  if (!token() || hash === '#/login') return login();
  try {
    const me = await api('GET', '/whoami');
    document.getElementById('who').textContent = `${me.name} (${me.role})`;
    let m;
    if (hash === '#/fleet') await fleet();
    else if ((m = hash.match(/^#\/fleet\/after\/([^/]+)$/))) await fleet(decodeURIComponent(m[1]));
    else if (hash === '#/rollouts') await rollouts();
    else if (hash === '#/new-rollout') await newRollout();
    else if ((m = hash.match(/^#\/rollouts\/([^/]+)$/))) await rollout(decodeURIComponent(m[1]));
    else if (hash === '#/models') await models();
    else if ((m = hash.match(/^#\/models\/([^/]+)\/versions\/(\d+)$/))) await version(decodeURIComponent(m[1]), m[2]);
    else show(el('div', { class: 'error' }, 'no page ' + hash));
  } catch (e) {
    show(el('div', { class: 'error', id: 'page-error' }, e.message));
  }
}

window.addEventListener('hashchange', route);
window.addEventListener('DOMContentLoaded', () => {
  document.getElementById('logout').addEventListener('click', () => {
    sessionStorage.removeItem('tinyfleet.token');
    location.hash = '#/login';
  });
  route();
});
