// rbk console: a page over the JSON API (docs/console.md). No framework.
// Every text that comes from the store, a runbook or a person is put in
// the page as text (textContent), never as markup: a param, an output, a
// title or a comment cannot become script.
'use strict';

const state = { me: null, csrf: null, stream: null, timer: null, gen: 0, prompt: '' };

// el('td', {class: 'x'}, 'text', child...): an element whose strings are text.
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v === true) e.setAttribute(k, '');
    else e.setAttribute(k, String(v));
  }
  for (const k of kids.flat()) {
    if (k === null || k === undefined) continue;
    e.appendChild(typeof k === 'string' || typeof k === 'number' ? document.createTextNode(String(k)) : k);
  }
  return e;
}

function flash(text, error) {
  const d = el('div', { class: error ? 'error' : null }, text);
  document.getElementById('flash').appendChild(d);
  setTimeout(() => d.remove(), error ? 9000 : 4000);
}

async function api(method, path, body) {
  const opt = { method, headers: {}, credentials: 'same-origin' };
  if (body !== undefined) {
    opt.headers['Content-Type'] = 'application/json';
    opt.body = JSON.stringify(body);
  }
  if (method !== 'GET' && state.csrf) opt.headers['X-CSRF-Token'] = state.csrf;
  const res = await fetch(path, opt);
  const text = await res.text();
  let data = text;
  if ((res.headers.get('Content-Type') || '').startsWith('application/json')) {
    try { data = JSON.parse(text); } catch (e) { data = { error: text }; }
  }
  if (res.status === 401 && path !== '/login') { showLogin(); throw new Error('log in first'); }
  if (!res.ok) throw new Error((data && data.error) || (res.status + ' ' + res.statusText));
  return data;
}

// Replace node's children with kids, leaving out the absent ones (which
// replaceChildren would write as the text "null").
function put(node, ...kids) {
  node.replaceChildren(...kids.flat().filter((k) => k !== null && k !== undefined && k !== ''));
  return node;
}

function main(...kids) {
  return put(document.getElementById('main'), ...kids);
}

// A view paints only if no other navigation started while it loaded: a
// slow page must not cover the one the person went to next.
function paint(gen, ...kids) {
  if (gen === state.gen) main(...kids);
}

function stopLive() {
  if (state.stream) { state.stream.close(); state.stream = null; }
  if (state.timer) { clearInterval(state.timer); state.timer = null; }
}

const can = (what) => state.me && (what === 'read' || (what === 'act' && state.me.role === 'operator') ||
                                   (what === 'audit' && state.me.role === 'auditor'));
const statusCell = (s) => el('td', { class: 'status st-' + s }, s);
const when = (iso) => (iso || '').replace('T', ' ').replace(/\.\d+Z$/, 'Z');
const runLink = (id) => el('a', { href: '#/run/' + id }, '#' + id);

// ---- login ----

function showLogin() {
  stopLive();
  state.me = null;
  document.getElementById('nav').hidden = true;
  document.getElementById('logout').hidden = true;
  document.getElementById('who').textContent = '';
  const input = el('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'off', size: 70,
                              placeholder: 'rbk_…' });
  const form = el('form', { id: 'login', class: 'panel', onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      const me = await api('POST', '/login', { token: input.value });
      input.value = '';
      setMe(me);
      route();
    } catch (e) { flash(e.message, true); }
  } },
  el('h3', {}, 'Log in'),
  el('p', { class: 'muted' }, 'Your token was printed once by ', el('code', {}, 'rbk user add'), '.'),
  el('label', { for: 'token' }, 'Token'), input, ' ', el('button', { class: 'primary', type: 'submit' }, 'Log in'));
  main(form);
}

function setMe(me) {
  state.me = me;
  state.csrf = me.csrf || null;
  document.getElementById('nav').hidden = false;
  document.getElementById('nav-audit').hidden = me.role !== 'auditor';
  document.getElementById('who').textContent = me.user ? me.user + ' (' + me.role + ')' : 'read-only';
  document.getElementById('logout').hidden = !me.user;
}

// ---- active runs and history ----

function runsTable(runs, empty) {
  if (!runs.length) return el('p', { class: 'muted' }, empty);
  return el('table', { id: 'runs' },
    el('tr', {}, ['Run', 'Runbook', 'Status', 'State', 'Started (UTC)', 'Actor'].map((h) => el('th', {}, h))),
    runs.map((r) => el('tr', { class: r.status === 'waiting' || r.status === 'needs_attention' ? 'needs' : null,
                               'data-run': r.run },
      el('td', {}, runLink(r.run)), el('td', {}, r.runbook), statusCell(r.status), el('td', {}, r.state || ''),
      el('td', {}, when(r.created_at)), el('td', {}, r.actor))));
}

async function viewActive() {
  const gen = state.gen;
  const draw = async () => {
    const d = await api('GET', '/api/status');
    const waiting = d.runs.filter((r) => r.status === 'waiting' || r.status === 'needs_attention').length;
    paint(gen, el('h2', {}, 'Active runs'),
      waiting ? el('p', { class: 'needs' }, waiting + ' run(s) wait for a person.') : null,
      runsTable(d.runs, 'No active runs.'));
  };
  await draw();
  if (gen === state.gen) state.timer = setInterval(() => draw().catch(() => {}), 5000);
}

async function viewHistory(q) {
  const gen = state.gen;
  const f = {};
  const fields = ['runbook', 'status', 'actor', 'since', 'until', 'limit'];
  const inputs = fields.map((k) => el('input', { name: k, value: q.get(k) || '', size: k === 'limit' ? 4 : 14,
    placeholder: k === 'since' || k === 'until' ? '2026-12-01' : '' }));
  const sched = el('input', { type: 'checkbox', name: 'scheduled', checked: q.get('scheduled') === '1' });
  const form = el('form', { class: 'inline panel', onsubmit: (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    inputs.forEach((i) => { if (i.value) p.set(i.name, i.value); });
    if (sched.checked) p.set('scheduled', '1');
    location.hash = '#/history?' + p.toString();
  } }, inputs.map((i) => el('div', {}, el('label', {}, i.name), i)),
  el('div', {}, el('label', {}, 'scheduled'), sched), el('button', { type: 'submit' }, 'Filter'));
  fields.forEach((k) => { if (q.get(k)) f[k] = q.get(k); });
  const p = new URLSearchParams(f);
  if (q.get('scheduled') === '1') p.set('scheduled', '1');
  const d = await api('GET', '/api/history?' + p.toString());
  paint(gen, el('h2', {}, 'History'), form, runsTable(d.runs, 'No runs match.'));
}

// ---- a run ----

function summary(ev) {
  const d = ev.data || {};
  switch (ev.kind) {
    case 'transition': return d.from + ' → ' + d.to + (d.via ? ' (' + d.via + ')' : '');
    case 'step_started': return d.state + ' attempt ' + d.attempt + (d.action ? ' (' + d.action + ')' : '');
    case 'step_finished': {
      const r = d.result || {};
      const out = r.out && Object.keys(r.out).length ? ' ' + JSON.stringify(r.out) : '';
      return d.state + ' ' + d.status + (r.error ? ': ' + r.error : '') + out;
    }
    case 'approval_requested': return (d.state || '') + ': ' + (d.prompt || '');
    case 'approval_decided': return (d.state || '') + ' ' + (d.decision || '') + (d.comment ? ': ' + d.comment : '');
    case 'run_status': return d.status + (d.reason ? ': ' + d.reason : '');
    case 'run_finished': return d.status || '';
    case 'run_created': return d.runbook + (d.dry_run ? ' (dry run)' : '') + ' ' + JSON.stringify(d.params || {});
    case 'run_started': return 'at ' + d.start;
    case 'wait_started': return (d.state || '') + (d.until_ms ? ' until ' + new Date(d.until_ms).toISOString() : '');
    default: return JSON.stringify(d);
  }
}

function timelineRow(ev) {
  return el('tr', { 'data-seq': ev.seq, 'data-kind': ev.kind },
    el('td', {}, String(ev.seq) + (ev.part ? '.' + ev.part : '')), el('td', {}, when(ev.at)),
    el('td', {}, ev.actor), el('td', {}, ev.kind), el('td', { class: 'data' }, summary(ev)));
}

function actionsPanel(run, reload) {
  if (!can('act')) return null;
  const go = async (verb, body) => {
    try {
      const r = await api('POST', '/api/runs/' + run.run + '/' + verb, body);
      flash('run ' + run.run + ': ' + verb + ' recorded (' + r.status + ')');
      reload();
    } catch (e) { flash(e.message, true); }
  };
  const kids = [el('h3', {}, 'Act')];
  if (run.status === 'waiting') {
    kids.push(el('p', { id: 'prompt', class: 'status' }, state.prompt || ''));
    const comment = el('textarea', { id: 'comment', name: 'comment', placeholder: 'comment (recorded with your name)' });
    kids.push(el('form', { id: 'decide', onsubmit: (ev) => ev.preventDefault() },
      el('label', { for: 'comment' }, 'Comment'), comment,
      el('button', { id: 'approve', class: 'primary', type: 'button',
                     onclick: () => go('approve', { comment: comment.value }) }, 'Approve'), ' ',
      el('button', { id: 'reject', type: 'button', onclick: () => go('reject', { comment: comment.value }) }, 'Reject')));
  }
  if (run.status === 'interrupted' || run.status === 'needs_attention') {
    const mode = el('select', { id: 'resume-mode' }, el('option', { value: '' }, 'resume'),
      el('option', { value: 'retry' }, 'retry the step'), el('option', { value: 'success' }, 'mark the step succeeded'),
      el('option', { value: 'failure' }, 'mark the step failed'));
    kids.push(el('p', {}, mode, ' ', el('button', { id: 'resume', type: 'button', onclick: () => {
      const m = mode.value;
      go('resume', m === 'retry' ? { retry_step: true } : m ? { mark_step: m } : {});
    } }, 'Resume')));
  }
  if (!['succeeded', 'failed', 'rolled_back', 'aborted'].includes(run.status)) {
    const rb = el('input', { type: 'checkbox', id: 'rollback' });
    kids.push(el('p', {}, el('button', { id: 'abort', class: 'danger', type: 'button', onclick: () => {
      if (confirm('Abort run ' + run.run + ' for good?')) go('abort', { rollback: rb.checked });
    } }, 'Abort'), ' ', rb, el('label', { for: 'rollback', style: null }, 'roll back')));
  }
  return kids.length > 1 ? el('div', { class: 'panel', id: 'actions' }, kids) : null;
}

function kv(obj) {
  const g = el('div', { class: 'grid' });
  for (const [k, v] of Object.entries(obj || {}))
    g.append(el('span', { class: 'muted' }, k), el('span', { class: 'data' }, typeof v === 'string' ? v : JSON.stringify(v)));
  return g;
}

async function viewRun(id) {
  const gen = state.gen;
  state.prompt = '';
  const head = el('div', { id: 'run-head' });
  const actions = el('div');
  const tbody = el('tbody', { id: 'timeline' });
  const live = el('span', { id: 'live', class: 'muted' }, 'connecting…');
  const drawHead = async () => {
    const r = await api('GET', '/api/runs/' + id);
    put(head, 
      el('h2', {}, 'Run ' + r.run + ': ', el('span', { id: 'run-runbook' }, r.runbook)),
      el('p', {}, el('span', { id: 'run-status', class: 'status st-' + r.status }, r.status),
        r.state ? [' in ', el('b', { id: 'run-state' }, r.state)] : null,
        r.reason ? el('span', { class: 'muted' }, ' (' + r.reason + ')') : null,
        ' · launched by ', r.actor, ' at ', when(r.created_at), r.dry_run ? ' · dry run' : null),
      el('div', { class: 'panel' }, el('h3', {}, 'Params'), kv(r.params)),
      r.parent_run ? el('p', {}, 'Called by run ', runLink(r.parent_run)) : null,
      r.children && r.children.length ? el('div', { class: 'panel' }, el('h3', {}, 'Child runs'),
        r.children.map((c) => el('span', {}, runLink(c.run || c), ' '))) : null,
      el('div', { class: 'panel' }, el('h3', {}, 'Provenance'), kv(r.provenance),
        el('p', {}, 'definition sha256:', r.source_sha256, ' · ', el('a', { href: '/api/runs/' + id + '/source', target: '_blank' }, 'exact definition'))));
    // Redrawn only when the status changes: a comment being typed survives
    // the events that arrive meanwhile.
    if (actions.dataset.status !== r.status) {
      actions.dataset.status = r.status;
      put(actions, actionsPanel(r, () => drawHead().catch((e) => flash(e.message, true))));
    }
    return r;
  };
  await drawHead();
  paint(gen, head, actions,
    el('div', { class: 'panel' }, el('h3', {}, 'Timeline ', live),
      el('table', {}, el('thead', {}, el('tr', {}, ['Seq', 'At (UTC)', 'Actor', 'Event', 'What'].map((h) => el('th', {}, h)))), tbody)),
    el('div', { class: 'panel' }, el('h3', {}, 'The machine and the path taken'),
      el('iframe', { class: 'report', sandbox: '', src: '/api/runs/' + id + '/report', title: 'report' })));
  if (gen !== state.gen) return;
  // The timeline: the events so far, then each as it is recorded.
  const es = new EventSource('/api/runs/' + id + '/events');
  state.stream = es;
  es.onopen = () => { live.textContent = 'live'; };
  es.onmessage = (m) => {
    let ev;
    try { ev = JSON.parse(m.data); } catch (e) { return; }
    tbody.appendChild(timelineRow(ev));
    if (ev.kind === 'approval_requested') {
      // The question being asked, above the answer's buttons.
      state.prompt = (ev.data && ev.data.prompt) || '';
      const p = document.getElementById('prompt');
      if (p) p.textContent = state.prompt;
    }
    if (['run_status', 'run_finished', 'approval_decided', 'approval_requested'].includes(ev.kind))
      drawHead().catch(() => {});
  };
  es.addEventListener('end', () => {
    live.textContent = 'ended';
    es.close();
    drawHead().catch(() => {});
  });
  es.onerror = () => { live.textContent = 'reconnecting…'; };
}

// ---- runbooks ----

async function viewRunbooks() {
  const gen = state.gen;
  const d = await api('GET', '/api/runbooks');
  paint(gen, el('h2', {}, 'Runbooks'), el('table', { id: 'runbooks' },
    el('tr', {}, ['Runbook', 'Title', 'Params', 'States', 'Schedules'].map((h) => el('th', {}, h))),
    d.runbooks.map((b) => el('tr', {},
      el('td', {}, el('a', { href: '#/runbook/' + encodeURIComponent(b.name) }, b.name)),
      el('td', {}, b.valid ? b.title || '' : 'invalid: rbk validate ' + b.name + ' says why'),
      el('td', {}, b.params ? b.params.map((p) => p.name).join(', ') : ''),
      el('td', {}, String(b.states || '')), el('td', {}, String(b.schedules || ''))))));
}

function paramInput(p) {
  const id = 'p-' + p.name;
  const common = { id, name: p.name, 'data-type': p.type, required: p.required && p.default === null };
  let input;
  if (p.type === 'bool') input = el('input', { ...common, type: 'checkbox', checked: p.default === 'true', required: false });
  else if (p.type === 'enum') input = el('select', common, p.values.map((v) => el('option', { value: v, selected: v === p.default }, v)));
  else input = el('input', { ...common, type: p.secret ? 'password' : p.type === 'int' || p.type === 'number' ? 'number' : 'text',
    step: p.type === 'number' ? 'any' : null, min: p.min, max: p.max, value: p.default !== null ? p.default : '',
    placeholder: p.type === 'duration' ? '30s, 5m, 1h30m' : p.env ? 'or $' + p.env : '' });
  return el('div', { class: 'param' }, el('label', { for: id }, p.name + ' (' + p.type + (p.required ? ', required' : '') +
    (p.secret ? ', secret' : '') + ')'), input, p.description ? el('span', { class: 'muted' }, ' ' + p.description) : null);
}

async function viewRunbook(name) {
  const gen = state.gen;
  const d = await api('GET', '/api/runbooks');
  const b = d.runbooks.find((x) => x.name === name);
  if (!b) { paint(gen, el('p', {}, 'No runbook ' + name + '.')); return; }
  const kids = [el('h2', {}, el('span', { id: 'rb-name' }, b.name), b.title ? el('span', { id: 'rb-title' }, ': ' + b.title) : null),
    b.description ? el('p', { id: 'rb-description' }, b.description) : null];
  if (can('act') && b.valid) {
    const form = el('form', { id: 'launch', class: 'panel', onsubmit: async (ev) => {
      ev.preventDefault();
      const params = {};
      for (const i of form.querySelectorAll('[data-type]')) {
        if (i.type === 'checkbox') params[i.name] = i.checked;
        else if (i.value !== '') params[i.name] = i.value;
      }
      try {
        const r = await api('POST', '/api/runs', { runbook: b.name, params });
        flash('run ' + r.run + ' queued');
        location.hash = '#/run/' + r.run;
      } catch (e) { flash(e.message, true); }
    } }, el('h3', {}, 'Launch'), b.params.map(paramInput), el('p', {}, el('button', { class: 'primary', type: 'submit' }, 'Launch')));
    kids.push(form);
  } else if (b.params) {
    kids.push(el('div', { class: 'panel' }, el('h3', {}, 'Params'), b.params.map((p) =>
      el('p', {}, el('b', {}, p.name), ' ' + p.type + (p.required ? ', required' : '') + (p.description ? ': ' + p.description : '')))));
  }
  kids.push(el('div', { class: 'panel' }, el('h3', {}, 'Graph'),
    el('img', { class: 'graph', alt: 'the state machine of ' + b.name, src: '/api/runbooks/' + encodeURIComponent(b.name) + '/graph.svg' })));
  paint(gen, ...kids);
}

// ---- schedules and audit ----

async function viewSchedules() {
  const gen = state.gen;
  const d = await api('GET', '/api/schedules');
  paint(gen, el('h2', {}, 'Schedules'), d.entries.length ? el('table', { id: 'schedules' },
    el('tr', {}, ['Runbook', 'Cron', 'Zone', 'Next (local)', 'Last fire', 'Decision', 'Run'].map((h) => el('th', {}, h))),
    d.entries.map((s) => el('tr', {}, el('td', {}, s.runbook), el('td', {}, s.cron), el('td', {}, s.timezone),
      el('td', {}, s.next_local || ''), el('td', {}, when(s.last_nominal)), el('td', {}, s.last_outcome || ''),
      el('td', {}, s.last_run ? [runLink(s.last_run), ' ', s.last_run_status || ''] : ''))))
    : el('p', { class: 'muted' }, 'No runbook on the server\'s path has a schedule.'));
}

async function viewAudit() {
  const gen = state.gen;
  if (!can('audit')) { paint(gen, el('p', {}, 'The audit page needs the auditor role.')); return; }
  const out = el('div', { id: 'verify' });
  const runInput = el('input', { id: 'bundle-run', type: 'number', min: 1, placeholder: 'run' });
  const verify = async () => {
    out.replaceChildren(el('p', { class: 'muted' }, 'verifying…'));
    try {
      const v = await api('GET', '/api/audit/verify');
      out.replaceChildren(el('p', { class: 'status ' + (v.intact ? 'st-succeeded' : 'st-failed') },
        v.intact ? 'The chain is intact.' : 'The chain is broken.'), kv(v));
    } catch (e) { out.replaceChildren(el('p', { class: 'status st-failed' }, e.message)); }
  };
  paint(gen, el('h2', {}, 'Audit'),
    el('div', { class: 'panel' }, el('h3', {}, 'Verify the chain'), el('button', { id: 'verify-btn', type: 'button', onclick: verify }, 'Verify now'), out),
    el('div', { class: 'panel' }, el('h3', {}, 'Export a run as a bundle'), runInput, ' ',
      el('button', { type: 'button', onclick: () => { if (runInput.value) location.href = '/api/runs/' + Number(runInput.value) + '/bundle'; } }, 'Download')));
  await verify();
}

// ---- routing ----

async function route() {
  stopLive();
  state.gen++;
  if (!state.me) {
    try { setMe(await api('GET', '/api/me')); } catch (e) { return; }
  }
  const h = location.hash.replace(/^#/, '') || '/';
  const [path, query] = h.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  try {
    if (!parts.length) await viewActive();
    else if (parts[0] === 'history') await viewHistory(new URLSearchParams(query || ''));
    else if (parts[0] === 'run' && /^\d+$/.test(parts[1] || '')) await viewRun(parts[1]);
    else if (parts[0] === 'runbooks') await viewRunbooks();
    else if (parts[0] === 'runbook' && parts[1]) await viewRunbook(parts[1]);
    else if (parts[0] === 'schedules') await viewSchedules();
    else if (parts[0] === 'audit') await viewAudit();
    else main(el('p', {}, 'No such page.'));
  } catch (e) {
    if (state.me) main(el('p', { class: 'st-failed' }, e.message));
  }
}

window.addEventListener('hashchange', route);
window.addEventListener('DOMContentLoaded', () => {
  document.getElementById('logout').addEventListener('click', async () => {
    try { await api('POST', '/logout', {}); } catch (e) { /* logged out either way */ }
    state.csrf = null;
    showLogin();
  });
  route();
});
