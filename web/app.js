/* pgw dashboard: plain JavaScript, no build step. Session: the HttpOnly cookie set by
 * POST /api/v1/auth/login; changes carry the CSRF token from the login answer. Live: one
 * EventSource on /api/v1/events, which reconnects by itself (Last-Event-ID). */
'use strict';

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
const state = { me: null, csrf: sessionStorage.getItem('pgw.csrf') || '', org: sessionStorage.getItem('pgw.org') || '',
  proxies: [], mappings: [], health: {},
  history: {}, agent: null, fwd: null, fwdPrev: null, daemons: null, es: null, sort: {}, auditCursor: null, csvText: { mappings: null, proxies: null },
  tput: { t: [], down: [], up: [], per: {}, last: 0 }, charts: {}, conns: { items: [], total: 0, next: null, error: '' },
  connQuery: { client: '', proxy: '' }, webhooks: [] };

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat()) if (kid !== null && kid !== undefined) e.append(kid instanceof Node ? kid : String(kid));
  return e;
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error && body.error.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

/* A read answered after the user switched to another organisation belongs to the one before: it
   is dropped (StaleAnswer, which no one shows), not drawn over the one now shown. */
let orgGen = 0;
class StaleAnswer extends ApiError {
  constructor() { super(0, { error: { message: 'the organisation shown changed while this was loading' } }); }
}
const unshown = (e) => e instanceof StaleAnswer || (e instanceof ApiError && e.status === 401); /* already said, or moot */
const failed = (e) => { if (!unshown(e)) flash(e.message, true); };

/* The session's CSRF token for this page, kept for its reloads ('': none) */
function adoptCsrf(token) {
  state.csrf = token || '';
  if (state.csrf) sessionStorage.setItem('pgw.csrf', state.csrf);
  else sessionStorage.removeItem('pgw.csrf');
}

/* A 403 for the CSRF token: the session cookie is another's now (a login in another tab); /me
   gives the one that goes with it. True when there is a new one to try again with. */
async function fresherCsrf(res) {
  const d = await res.clone().json().catch(() => null);
  if (!d || !d.error || !/X-CSRF-Token/.test(d.error.message || '')) return false;
  const me = await fetch('/api/v1/me', { credentials: 'same-origin' }).then((r) => (r.ok ? r.json() : null), () => null);
  if (!me || !me.csrf_token || me.csrf_token === state.csrf) return false;
  if (state.me && me.id !== state.me.id) { /* another user signed in here: not done in their name */
    flash(`${me.username} signed in in another tab of this browser: this page shows that session now.`, true);
    adoptCsrf(me.csrf_token);
    background(start());
    return false;
  }
  adoptCsrf(me.csrf_token);
  return true;
}

async function api(method, path, body, opts = {}) {
  const gen = orgGen;
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = opts.type || 'application/json';
  if (method !== 'GET' && state.csrf) headers['X-CSRF-Token'] = state.csrf;
  const org = 'org' in opts ? opts.org : state.org; /* the organisation the dashboard shows */
  if (org) headers['X-Pgw-Org'] = org;
  const res = await fetch('/api/v1' + path, { method, headers, credentials: 'same-origin',
    body: body === undefined ? undefined : (opts.type ? body : JSON.stringify(body)) });
  if (res.status === 401 && path !== '/auth/login') { showLogin('Your session has ended; please log in again.'); throw new ApiError(401, null); }
  if (res.status === 403 && method !== 'GET' && !opts.csrfAgain && (await fresherCsrf(res))) /* a login in another tab made a new one */
    return api(method, path, body, { ...opts, csrfAgain: true });
  if (res.status === 204) return null;
  const ct = res.headers.get('Content-Type') || '';
  const data = ct.startsWith('application/json') ? await res.json() : await res.text();
  if (method === 'GET' && gen !== orgGen) throw new StaleAnswer();
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

/* The status line keeps the last FLASH_KEEP messages, newest first, so that a live event (a
   failover, a quota) arriving just after an action does not hide what the action said. A message
   that stands for an answer on its way ("Checking…") is replaced by that answer (pass it back). */
const FLASH_KEEP = 3;
function flash(msg, bad = false, replace = null) {
  const f = $('#flash');
  const line = replace && replace.parentNode === f ? replace : document.createElement('div');
  line.textContent = msg;
  line.className = bad ? 'bad' : '';
  f.prepend(line); /* an answer is news: it moves to the top */
  while (f.children.length > FLASH_KEEP) f.lastElementChild.remove();
  [...f.children].forEach((line, i) => line.classList.toggle('old', i > 0));
  return line;
}

const isAdmin = () => state.me && state.me.role === 'admin';
/* A superadmin shown every organisation at once (of several): a change must say whose (the API
   answers 400 org_required), so the page offers none until one is chosen. */
const allOrgs = () => !!(state.me && state.me.superadmin && !state.org && state.me.orgs.length > 1);
const canChange = () => isAdmin() && !allOrgs();
const gatewayAdmin = () => !!(state.me && state.me.superadmin); /* the gateway's settings are a superadmin's */
const fmtMs = (v) => (v === null || v === undefined ? '–' : `${v} ms`);
function ago(ts) {
  if (!ts) return 'never';
  const s = Math.max(0, Math.round(Date.now() / 1000 - ts));
  return s < 60 ? `${s} s ago` : s < 3600 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
}
function rate(bps) {
  if (bps === null) return '–';
  const u = ['B/s', 'KB/s', 'MB/s', 'GB/s'];
  let i = 0;
  while (bps >= 1000 && i < u.length - 1) { bps /= 1000; i++; }
  return `${bps.toFixed(i ? 1 : 0)} ${u[i]}`;
}
/* Down for leaving from an address outside its expected_exit. */
const mismatch = (h) => h.status === 'down' && (h.last_error || '').startsWith('exit_ip_mismatch');
function kbit(k) { return k >= 1000 ? `${+(k / 1000).toFixed(2)} Mbit/s` : `${k} kbit/s`; }
function size(b) {
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (b >= 1000 && i < u.length - 1) { b /= 1000; i++; }
  return `${b.toFixed(i ? 1 : 0)} ${u[i]}`;
}
const badge = (status) => el('span', { class: `badge ${status}`, 'data-status': status }, status);

/* ---------- session ---------- */

function showLogin(msg = '') {
  if (state.es) { state.es.close(); state.es = null; }
  localStorage.removeItem('pgw.session'); /* no session to look for in a new tab */
  state.me = null;
  /* nothing of the user before stays for the next: their messages, a key's secret, open forms,
     previews, their unsaved edits (a logout loads a new page; this is for a session that ended) */
  $('#flash').replaceChildren();
  $('#kf-new').replaceChildren();
  $('#kf-new').hidden = true;
  $$('[data-cancel]').forEach((b) => { const f = b.closest('form'); f.reset(); f.hidden = true; });
  hideUsage(); /* (start() forgets previewed files) */
  configLoaded = {};
  configBuiltFor = '';
  for (const id of ['#org-health-url', '#org-dns-upstream']) { $(id).value = ''; delete $(id).dataset.loaded; }
  /* and what it showed: rows (audit, keys, users, connections…), cards, charts; an answer still on
     its way is stale (orgGen) and not drawn */
  orgGen++;
  $$('#app tbody').forEach((t) => t.replaceChildren());
  $('#proxy-cards').replaceChildren();
  for (const c of Object.values(state.charts)) c.plot.destroy();
  Object.assign(state, { charts: {}, proxies: [], mappings: [], health: {}, webhooks: [], auditCursor: null,
    conns: { items: [], total: 0, next: null, error: '' }, history: {}, tput: { t: [], down: [], up: [], per: {}, last: 0 },
    agent: null, fwd: null, fwdPrev: null, daemons: null, ha: null });
  for (const id of ['#st-active', '#st-blocked', '#st-conns', '#st-rate', '#st-agent']) $(id).textContent = '–';
  for (const id of ['#conn-total', '#tput-now']) $(id).textContent = '';
  $('#st-agent-label').textContent = 'kernel rules';
  $('#alert-banner').hidden = true;
  $('#app').hidden = true;
  $('#whoami').hidden = true;
  $('#login').hidden = false;
  $('#login-error').textContent = msg;
  $('#login-user').focus();
  loginMethods();
}

/* The login page offers "Sign in with <provider>" when single sign-on is set up. */
async function loginMethods() {
  try {
    const m = await (await fetch('/api/v1/auth/methods', { credentials: 'same-origin' })).json();
    $('#sso').hidden = !m.oidc;
    if (m.oidc) {
      $('#sso-login').textContent = `Sign in with ${m.oidc.name}`;
      $('#sso-login').href = m.oidc.login_url;
    }
  } catch (e) { $('#sso').hidden = true; }
}

/* Why a sign-in through the provider came back without a session (/?sso_error=CODE; the
 * details are in pgw-api's log and the audit log). */
const ssoErrors = {
  not_configured: 'Single sign-on is not configured on this gateway.',
  provider_unavailable: 'The identity provider cannot be reached. Try again later, or use the break-glass login.',
  provider_refused: 'The identity provider refused the sign-in.',
  bad_state: 'This sign-in expired or was already used. Please sign in again.',
  bad_token: 'The identity provider\'s answer failed verification and was refused.',
  token_refused: 'The identity provider did not confirm the sign-in.',
  wrong_issuer: 'The answer came from another identity provider and was refused.',
  no_role: 'Your account at the identity provider grants no role on this gateway. Ask an administrator.',
  disabled: 'Your user is disabled on this gateway.',
  ha_backup: 'This gateway is the HA backup: sign in on the master.',
  bad_request: 'The sign-in could not be completed. Please sign in again.',
};

async function login(ev) {
  ev.preventDefault();
  const f = ev.target;
  $('#login-error').textContent = '';
  if (!f.username.value || !f.password.value) { $('#login-error').textContent = 'Enter your user name and password.'; return; }
  try {
    const r = await api('POST', '/auth/login', { username: f.username.value, password: f.password.value });
    adoptCsrf(r.csrf_token);
    f.password.value = '';
    await start();
  } catch (e) {
    $('#login-error').textContent = e.status === 429 || e.status === 403 ? e.message : e.status === 401 ? 'Wrong user name or password.' : e.message;
  }
}

async function logout() {
  let r = null;
  try { r = await api('POST', '/auth/logout', {}); } catch (e) {
    /* ended already (401: api() shows the login); else it may not have ended: say so, stay */
    if (!(e instanceof ApiError && e.status === 401)) { flash(`Logout failed: ${e.message}`, true); return; }
  }
  adoptCsrf('');
  sessionStorage.removeItem('pgw.org');
  localStorage.removeItem('pgw.session');
  state.org = '';
  if (r && r.end_session_url) { location.assign(r.end_session_url); return; } /* the provider's session too */
  location.replace('/'); /* a new page: nothing of this user's stays for the next (a key's secret, open forms, previews) */
}

/* The organisation to show: the one chosen before if it is still the user's, else the only
 * one, else (a superadmin) all of them, else the first. */
function chooseOrg(me) {
  const ids = me.orgs.map((o) => String(o.id));
  if (!ids.includes(state.org)) state.org = me.superadmin || ids.length === 0 ? '' : ids[0];
  if (ids.length === 1 && !me.superadmin) state.org = ids[0];
  sessionStorage.setItem('pgw.org', state.org);
  const o = me.orgs.find((x) => String(x.id) === state.org);
  if (o && !me.superadmin) me.role = o.role; /* the role in the organisation shown */
  const sw = $('#org-switch');
  sw.replaceChildren(...(me.superadmin ? [el('option', { value: '' }, 'All organisations')] : []),
    ...me.orgs.map((x) => el('option', { value: String(x.id) }, x.name)));
  sw.value = state.org;
  sw.hidden = me.orgs.length < 2; /* nothing to choose */
}

/* The page shows another organisation (or the All view), or the same one anew: nothing of what
   it showed before from now on (a read answered for it is dropped, its event stream closed). */
async function startOver() {
  orgGen++;
  if (state.es) { state.es.close(); state.es = null; }
  $('#live').textContent = 'reconnecting…';
  $('#live').classList.remove('on');
  state.history = {};
  try { await start(); } catch (e) {
    if (!unshown(e)) flash(e.message, true);
    if (!(e instanceof StaleAnswer) && !state.es && state.me) connectEvents(); /* live again, whatever failed */
  }
}

async function switchOrg(ev) {
  state.org = ev.target.value;
  sessionStorage.setItem('pgw.org', state.org);
  await startOver();
}

/* An organisation made, renamed or removed, or a user's memberships or role changed (the `orgs`
   event): the switch follows what /me says now; a change to what is shown (the organisation shown
   no longer the user's, another role in it, superadmin gained or lost, the All view coming or
   going) starts the page over. Of events close together, the answer to the last ask decides. */
let orgsAsked = 0;
async function refreshOrgs() {
  const gen = orgGen, asked = ++orgsAsked;
  if (!state.me) return;
  const me = await api('GET', '/me', undefined, { org: '' });
  if (gen !== orgGen || asked !== orgsAsked || !state.me) return; /* switched, signed out or asked again meanwhile */
  const before = state.me, org = state.org, all = allOrgs();
  chooseOrg(me);
  state.me = me;
  if (state.org !== org || me.role !== before.role || !!me.superadmin !== !!before.superadmin || allOrgs() !== all) await startOver();
}

async function start() {
  state.me = await api('GET', '/me', undefined, { org: '' }); /* every organisation the user may choose */
  localStorage.setItem('pgw.session', '1'); /* a new tab of this browser asks /me (the cookie is HttpOnly) */
  chooseOrg(state.me);
  document.body.classList.toggle('viewer', !isAdmin());
  document.body.classList.toggle('all-orgs', allOrgs());
  document.body.classList.toggle('superadmin', !!state.me.superadmin);
  $('#who-name').textContent = state.me.username;
  $('#who-role').textContent = state.me.role;
  $('#login').hidden = true;
  $('#whoami').hidden = false;
  $('#app').hidden = false;
  /* another organisation or user: no rates across the change */
  state.tput = { t: [], down: [], up: [], per: {}, last: 0 };
  state.fwdPrev = null;
  $('#st-rate').textContent = '–'; /* the next forwarder event sets it */
  /* forms half filled in for the organisation before would be sent to this one */
  $$('[data-cancel]').forEach((b) => { const f = b.closest('form'); f.reset(); f.hidden = true; });
  $('#kf-new').replaceChildren();
  $('#kf-new').hidden = true;
  for (const c of Object.values(state.charts)) c.plot.destroy();
  state.charts = {};
  csvReset('mappings');
  csvReset('proxies');
  /* the tabs that load on a visit: nothing of the organisation before stays drawn (the tab shown asks again below) */
  hideUsage();
  state.clients = [];
  state.devices = [];
  state.conns = { items: [], total: 0, next: null, error: '' };
  state.connQuery.proxy = ''; /* the proxies are the other organisation's */
  $('#conn-proxy').value = '';
  state.webhooks = [];
  renderClients();
  renderConns();
  renderWebhooks();
  await Promise.all([loadProxies(), loadMappings(), loadStatus()]);
  renderAll();
  requestAnimationFrame(() => { drawLatency(); drawThroughput(); }); /* once laid out: a chart needs its width */
  background(loadConfig());
  if (isAdmin()) { if (state.me.superadmin) background(loadUsers()); background(loadKeys()); background(loadAudit(true)); }
  const shown = $('[role=tab][aria-selected="true"]');
  if (shown && ['tab-clients', 'tab-conns', 'tab-config'].includes(shown.id)) loadTab(shown);
  connectEvents();
}

/* ---------- data ---------- */

async function loadProxies() {
  const [p, h] = await Promise.all([api('GET', '/proxies'), api('GET', '/health')]);
  state.proxies = p.items;
  state.health = Object.fromEntries(h.items.map((x) => [x.proxy_id, x]));
  await Promise.all(state.proxies.map(async (px) => {
    const hist = await api('GET', `/health/${px.id}/history?limit=30`);
    state.history[px.id] = hist.items.reverse();
  }));
}
/* mappings, with each client's blocked reason from /clients (GET /api/v1/clients) */
async function loadMappings() {
  const [m, c] = await Promise.all([api('GET', '/mappings'), api('GET', '/clients')]);
  state.mappings = m.items;
  applyReasons(c.items);
}
function applyReasons(clients) {
  const by = Object.fromEntries(clients.map((c) => [c.mapping_id, c]));
  for (const m of state.mappings) {
    const c = by[m.id] || {};
    m.reason = c.reason || null;
    m.reason_detail = c.reason_detail || '';
  }
}
const REASONS = {
  mapping_disabled: 'mapping disabled', proxy_disabled: 'proxy disabled', proxy_down: 'proxy down',
  exit_ip_mismatch: 'exit IP mismatch', health_stale: 'health result too old', health_unknown: 'not checked yet',
  no_proxy_up: 'no proxy of its list is up', quota_exceeded: 'quota used up',
};
let reasonTimer = 0;
/* a client's state changed live: its reason is fetched again (coalesced) */
function reasonsSoon() {
  clearTimeout(reasonTimer);
  reasonTimer = setTimeout(() => background(api('GET', '/clients').then((c) => {
    state.clients = c.items;
    applyReasons(c.items);
    liveRender('mapping-table', renderMappings);
    liveRender('client-table', renderClientTable);
  })), 200);
}

/* ---------- clients (GET /api/v1/clients, /clients/{ip}/usage) ---------- */

async function loadClients() {
  const [c, d] = await Promise.all([api('GET', '/clients'), api('GET', '/devices')]);
  state.clients = c.items;
  state.devices = d.items;
}

const DEVICE_STATES = { mapped: 'mapped', unmapped: 'no mapping: blocked', mac_mismatch: 'address bound to another MAC: gets nothing' };

function renderDevices() {
  const q = $('#client-search').value;
  const rows = (state.devices || []).map((d) => ({ ...d, hostname: d.hostname || '' }))
    .filter((d) => matches(q, d.ip, d.mac, d.hostname, d.state));
  $('#device-table tbody').replaceChildren(...sortable($('#device-table'), 'devices', rows, renderDevices).map((d) => el('tr', { 'data-device': `${d.ip} ${d.mac}` },
    el('td', {}, d.ip), el('td', {}, d.mac), el('td', {}, d.hostname || '–'),
    el('td', {}, el('span', { class: d.state === 'mapped' ? '' : 'why', 'data-state': d.state }, DEVICE_STATES[d.state] || d.state)),
    el('td', {}, d.seen),
    el('td', {}, d.state === 'unmapped' && canChange()
      ? el('button', { type: 'button', class: 'small', onclick: () => mapDevice(d) }, 'Map') : null))));
}

/* One click: the mapping form with the device's address, MAC and name. */
function mapDevice(d) {
  selectTab($('#tab-mappings'));
  editMapping(null);
  const f = $('#mapping-form');
  f.client_ip.value = d.ip;
  f.mac.value = d.mac;
  f.label.value = d.hostname || '';
  f.proxy_id.focus();
}

function renderClients() { renderClientTable(); renderDevices(); }

function renderClientTable() {
  const q = $('#client-search').value;
  const pname = (id) => (state.proxies.find((p) => p.id === id) || {}).name || (id ? `#${id}` : '–');
  const rows = (state.clients || []).map((c) => ({
    ...c, via: c.carrying_proxy_id ? pname(c.carrying_proxy_id) : '–', conns: c.usage.connections, down: c.usage.bytes_down,
    up: c.usage.bytes_up, refused: c.usage.refused, device: [c.hostname, c.mac].filter((x) => x).join(' '),
    quota_used: c.quota ? c.quota.used / c.quota.limit : -1,
    limit: [c.limits.down_kbit ? `↓ ${kbit(c.limits.down_kbit)}` : '', c.limits.up_kbit ? `↑ ${kbit(c.limits.up_kbit)}` : ''].filter((x) => x).join(' ') || '–',
  })).filter((c) => matches(q, c.client_ip, c.label, c.state, c.reason || '', c.via, c.device));
  $('#client-table tbody').replaceChildren(...sortable($('#client-table'), 'clients', rows, renderClientTable).map((c) => el('tr', { 'data-client': c.client_ip, 'data-bytes-down': c.down },
    el('td', {}, c.client_ip), el('td', {}, c.label),
    el('td', {}, c.hostname ? el('span', {}, c.hostname, ' ') : null, c.mac ? el('span', { class: 'mac', title: 'bound: admitted only from this MAC' }, c.mac) : (c.hostname ? null : '–'),
      (c.mac_refused || []).length ? el('span', { class: 'why', 'data-refused': String(c.mac_refused.length),
        title: c.mac_refused.map((x) => `${x.mac}: ${x.packets} packets, last ${ago(x.last_seen)}`).join('\n') },
      ` ${c.mac_refused.length} other MAC${c.mac_refused.length > 1 ? 's' : ''} refused`) : null),
    el('td', {}, badge(c.state), c.reason ? el('span', { class: 'why', 'data-reason': c.reason, title: c.reason_detail || '' }, ` ${REASONS[c.reason] || c.reason}`) : null),
    el('td', {}, c.via), el('td', { class: 'limits' }, c.limit),
    el('td', { class: 'quota' }, c.quota ? [
      `${size(c.quota.used)} of ${size(c.quota.limit)} this ${c.quota.period}`,
      c.quota.exceeded ? el('span', { class: 'why' }, ' used up') : null,
      canChange() ? el('button', { type: 'button', class: 'small ghost', onclick: () => background(quotaAction(c, 'grant')) }, 'Grant') : null,
      canChange() ? el('button', { type: 'button', class: 'small ghost', onclick: () => background(quotaAction(c, 'reset')) }, 'Reset') : null] : '–'), el('td', {}, String(c.conns)), el('td', {}, size(c.down)), el('td', {}, size(c.up)), el('td', {}, String(c.refused)),
    el('td', {}, el('button', { type: 'button', class: 'small ghost', onclick: () => background(showUsage(c.client_ip)) }, 'Usage')))));
}

/* While the Clients tab is shown it follows the counters by itself (every 4 s, from the 2 s
   tick), the drill-down too: a redraw waits for the keyboard as live events' do. */
let clientsBusy = false;
async function refreshClients() {
  if (clientsBusy) return;
  clientsBusy = true;
  try { await loadClients(); } finally { clientsBusy = false; }
  liveRender('client-table', renderClientTable);
  liveRender('device-table', renderDevices);
  const box = $('#client-usage');
  if (!box.hidden) await showUsage(box.dataset.client, true);
}

/* Grant a client more of its quota (asked for, in MB) or start its count over. */
async function quotaAction(c, what) {
  let body;
  if (what === 'grant') {
    const mb = Number(window.prompt(`Grant ${c.client_ip} how many MB more this ${c.quota.period}?`, '1000'));
    if (!(mb > 0)) return;
    body = { bytes: Math.round(mb * 1e6) };
  } else if (!window.confirm(`Start ${c.client_ip}'s count for this ${c.quota.period} over?`)) {
    return;
  }
  await api('POST', `/clients/${encodeURIComponent(c.client_ip)}/quota/${what}`, body);
  flash(what === 'grant' ? `Granted ${size(body.bytes)} more to ${c.client_ip}.` : `${c.client_ip}'s quota count starts over.`);
  await loadClients();
  renderClients();
}

/* The client's last day, bytes per minute (down and up, minutes without traffic left out), with uPlot (web/vendor/uplot). */
let usageGen = 0;
function hideUsage() {
  usageGen++; /* an answer on its way is not drawn */
  $('#client-usage').hidden = true;
  if (state.usagePlot) { state.usagePlot.destroy(); state.usagePlot = null; }
}
async function showUsage(ip, auto = false) {
  const gen = ++usageGen; /* another client's Usage, a hide or a switch makes this answer stale */
  if (!auto) $('#client-usage').dataset.client = ip; /* the one a refresh asks for from now on */
  const u = await api('GET', `/clients/${encodeURIComponent(ip)}/usage`);
  if (gen !== usageGen) return;
  const box = $('#client-usage'), chart = $('#client-usage-chart');
  box.hidden = false;
  box.dataset.client = ip;
  $('#client-usage-title').textContent = `Usage of ${ip}, last day (per minute)`;
  $('#client-usage-total').textContent = `${size(u.total.bytes_down)} down, ${size(u.total.bytes_up)} up, ${u.total.connections} connections`;
  const lc = $('#client-usage-conns');
  if (!auto) lc.replaceChildren();
  api('GET', `/connections?client=${encodeURIComponent(ip)}&limit=1`).then((r) => {
    if (gen !== usageGen) return;
    const n = `${r.total} open connection${r.total === 1 ? '' : 's'} now `;
    const count = lc.querySelector('span');
    if (count) { count.textContent = n; return; } /* the button stays (and the keyboard's focus on it) */
    lc.replaceChildren(el('span', {}, n), el('button', { type: 'button', class: 'small ghost', onclick: () => showClientConns(ip) }, 'Show them'));
  }).catch((e) => { if (gen === usageGen && !unshown(e)) lc.textContent = `Open connections: ${e.message}`; });
  const xs = u.items.map((i) => i.t), down = u.items.map((i) => i.bytes_down), up = u.items.map((i) => i.bytes_up);
  if (auto && state.usagePlot && xs.length) { state.usagePlot.setData([xs, down, up]); return; }
  if (state.usagePlot) { state.usagePlot.destroy(); state.usagePlot = null; }
  chart.replaceChildren();
  if (!xs.length) { chart.append(el('p', { class: 'hint' }, 'Nothing relayed in the last day.')); return; }
  if (typeof uPlot === 'undefined') { chart.append(el('p', { class: 'hint' }, 'The chart library did not load.')); return; }
  state.usagePlot = new uPlot({
    width: Math.min(900, chart.clientWidth || 900), height: 240,
    series: [{}, { label: 'down', stroke: '#2a7', fill: 'rgba(34,170,119,0.15)', value: (_, v) => (v === null ? '–' : size(v)) },
      { label: 'up', stroke: '#27a', value: (_, v) => (v === null ? '–' : size(v)) }],
    axes: [axis(), axis(size)],
  }, [xs, down, up], chart);
}
async function loadStatus() {
  const [s, ha] = await Promise.all([api('GET', '/status'), api('GET', '/ha')]);
  state.agent = s.agent;
  state.fwd = s.forwarder;
  state.daemons = s.daemons;
  state.counts = s.counts;
  state.ha = ha;
  state.haAt = Date.now();
}

function renderAll() { renderDashboard(); renderProxies(); renderMappings(); drawLatency(); drawThroughput(); }

/* A live event does not redraw a table under the keyboard: while the keyboard's focus (not a
   click's) is on a control in its rows (Edit, Delete, Usage, a checkbox), the redraw waits until
   the focus leaves the table. The user's own actions redraw at once. */
function liveRender(table, render) {
  const tb = $(`#${table} tbody`), a = document.activeElement;
  if (!tb || !tb.contains(a) || !a.matches(':focus-visible')) { render(); return; }
  if (tb.dataset.pending) return;
  tb.dataset.pending = '1';
  tb.addEventListener('focusout', function later(ev) {
    if (tb.contains(ev.relatedTarget)) return; /* still inside */
    tb.removeEventListener('focusout', later);
    delete tb.dataset.pending;
    render();
  });
}
function renderAllLive() {
  renderDashboard();
  liveRender('proxy-table', renderProxies);
  liveRender('mapping-table', renderMappings);
  drawLatency();
  drawThroughput();
}

/* ---------- charts (uPlot, web/vendor/uplot; colours from the theme) ---------- */

const PALETTE = ['#0b7a75', '#c2410c', '#7c3aed', '#0891b2', '#b91c1c', '#4d7c0f', '#a16207', '#be185d'];
const TPUT_SPAN = 300; /* seconds of throughput kept */
const TPUT_PROXIES = 6; /* proxies drawn one by one; the rest are in the total */
const cssVar = (name) => getComputedStyle(document.body).getPropertyValue(name).trim();
const visible = (node) => node && node.offsetParent !== null && node.clientWidth > 0;

function axis(fmt) {
  const a = { stroke: cssVar('--muted'), grid: { stroke: cssVar('--line'), width: 1 }, ticks: { stroke: cssVar('--line') } };
  if (fmt) { a.values = (_, ticks) => ticks.map(fmt); a.size = 80; }
  return a;
}
/* (Re)draw a chart in node: a new uPlot when the series changed (key), else only new data. */
function liveChart(name, node, key, series, data, yfmt) {
  let c = state.charts[name];
  if (!visible(node) || typeof uPlot === 'undefined') return;
  const width = Math.max(260, Math.min(node.clientWidth, 1240));
  if (c && (c.key !== key || c.width !== width)) { c.plot.destroy(); c = null; }
  if (!c) {
    node.replaceChildren();
    const plot = new uPlot({ width, height: 200, series: [{}, ...series], axes: [axis(), axis(yfmt)],
      cursor: { drag: { x: false, y: false } }, scales: { x: { time: true } } }, data, node);
    c = state.charts[name] = { plot, key, width };
  } else {
    c.plot.setData(data);
  }
}

/* A forwarder event: total rates since the previous one, on the server's clock (at_ms), and per
 * proxy what its clients moved in the server's last interval (interval_ms). */
function noteThroughput(now) {
  const prev = state.fwdPrev, at = now.at_ms || Date.now();
  if (prev && at > prev.at) {
    const secs = (at - prev.at) / 1000, isecs = (now.interval_ms || at - prev.at) / 1000;
    /* a counter that went back: the forwarder restarted (0) */
    const down = Math.max(0, (now.bytes_down - prev.down) / secs), up = Math.max(0, (now.bytes_up - prev.up) / secs);
    const per = {};
    for (const [id, bu, bd] of now.proxies || []) per[id] = (bu + bd) / isecs;
    $('#st-rate').textContent = rate(down + up);
    pushThroughput(at / 1000, down, up, per);
  }
  state.fwdPrev = { at, seen: Date.now(), down: now.bytes_down, up: now.bytes_up };
}

function pushThroughput(ts, down, up, per) {
  const tp = state.tput;
  if (tp.t.length && ts <= tp.t[tp.t.length - 1]) ts = tp.t[tp.t.length - 1] + 0.001; /* x only grows */
  tp.t.push(ts); tp.down.push(down); tp.up.push(up);
  for (const [id, v] of Object.entries(per)) {
    if (!tp.per[id] && Object.keys(tp.per).length < TPUT_PROXIES && v > 0) tp.per[id] = tp.t.slice(0, -1).map(() => null);
  }
  for (const [id, arr] of Object.entries(tp.per)) arr.push(per[id] ?? 0);
  while (tp.t.length && tp.t[0] < ts - TPUT_SPAN) { tp.t.shift(); tp.down.shift(); tp.up.shift(); for (const a of Object.values(tp.per)) a.shift(); }
  tp.last = Date.now();
  drawThroughput();
}

function drawThroughput() {
  const tp = state.tput, node = $('#tput-chart');
  const ids = Object.keys(tp.per);
  const pname = (id) => (state.proxies.find((p) => String(p.id) === id) || {}).name || `proxy ${id}`;
  const peak = Math.max(0, ...tp.down.map((d, i) => d + tp.up[i]));
  node.dataset.points = String(tp.t.length);
  node.dataset.peak = String(Math.round(peak));
  const last = tp.t.length - 1;
  $('#tput-now').textContent = last >= 0
    ? `now ${rate(tp.down[last])} down, ${rate(tp.up[last])} up; peak ${rate(peak)}` : 'waiting for traffic…';
  if (!tp.t.length) return;
  liveChart('tput', node, ids.join(','), [
    { label: 'down', stroke: cssVar('--accent'), width: 2, fill: 'rgba(11,92,173,0.12)', value: (_, v) => (v == null ? '–' : rate(v)) },
    { label: 'up', stroke: cssVar('--up'), width: 2, value: (_, v) => (v == null ? '–' : rate(v)) },
    ...ids.map((id, i) => ({ label: pname(id), stroke: PALETTE[i % PALETTE.length], dash: [5, 3], value: (_, v) => (v == null ? '–' : rate(v)) })),
  ], [tp.t, tp.down, tp.up, ...ids.map((id) => tp.per[id])], rate);
}

/* Each proxy's probe latency over its last 30 probes (a gap where a probe failed). */
function drawLatency() {
  const node = $('#lat-chart');
  const ps = state.proxies.slice(0, 8);
  const times = [...new Set(ps.flatMap((p) => (state.history[p.id] || []).map((h) => h.checked_at)).filter(Boolean))].sort((a, b) => a - b);
  if (!times.length) { if (visible(node) && !node.firstChild) node.append(el('p', { class: 'hint' }, 'No probes yet.')); return; }
  const series = ps.map((p, i) => ({ label: p.name, stroke: PALETTE[i % PALETTE.length], width: 2, spanGaps: false,
    value: (_, v) => (v == null ? '–' : `${v} ms`), points: { show: true, size: 4 } }));
  const data = [times, ...ps.map((p) => {
    const at = new Map((state.history[p.id] || []).map((h) => [h.checked_at, h.status === 'up' ? h.latency_ms : null]));
    return times.map((t) => (at.has(t) ? at.get(t) : undefined));
  })];
  liveChart('lat', node, ps.map((p) => `${p.id}:${p.name}`).join(','), series, data, (v) => `${v} ms`);
}

/* ---------- live connections (GET/DELETE /api/v1/connections) ---------- */

let connsGen = 0, connsBusy = false;
async function loadConns(more = false, auto = false) {
  if (auto && connsBusy) return; /* the 2 s refresh waits for an answer still coming */
  const gen = ++connsGen; /* a later question (another filter, More) makes this answer stale */
  /* the filter as last asked for: the 2 s refresh and More keep to it while a client's address is
   * still being typed (the question goes 300 ms after the last key), not a half-typed one */
  if (!auto && !more) state.connQuery = { client: $('#conn-client').value.trim(), proxy: $('#conn-proxy').value };
  const q = new URLSearchParams({ limit: String(more ? 200 : Math.min(1000, Math.max(200, state.conns.items.length))) });
  const { client: c, proxy: p } = state.connQuery;
  if (c) q.set('client', c);
  if (p) q.set('proxy', p);
  if (more && state.conns.next) q.set('cursor', String(state.conns.next));
  connsBusy = true;
  try {
    const r = await api('GET', `/connections?${q}`);
    if (gen !== connsGen) return;
    state.conns = { items: more ? state.conns.items.concat(r.connections) : r.connections, total: r.total, next: r.next_cursor, error: '' };
  } catch (e) {
    if (e.status !== 400 && e.status !== 503) throw e;
    if (gen !== connsGen) return;
    state.conns = { items: [], total: 0, next: null, error: e.message };
  } finally { if (gen === connsGen) connsBusy = false; }
  /* a refresh does not take the row away from under the keyboard: it waits until focus leaves */
  if (auto && $('#conn-table tbody').contains(document.activeElement)) return;
  $('#conn-total').setAttribute('aria-live', auto ? 'off' : 'polite'); /* counts are read out on a change of filter, not every 2 s */
  renderConns();
}

function renderConns() {
  const sel = $('#conn-proxy'), cur = sel.value, key = state.proxies.map((p) => `${p.id}:${p.name}`).join(',');
  if (sel.dataset.key !== key) { /* only when the proxies changed: an open list stays open */
    sel.replaceChildren(el('option', { value: '' }, 'Any proxy'), ...state.proxies.map((p) => el('option', { value: p.id }, p.name)));
    sel.value = cur;
    sel.dataset.key = key;
  }
  const c = state.conns, client = state.connQuery.client; /* the client whose rows are shown */
  $('#conn-total').textContent = c.error ? c.error
    : `${c.total} open connection${c.total === 1 ? '' : 's'}${c.items.length < c.total ? `, ${c.items.length} shown` : ''}`;
  $('#conn-total').classList.toggle('bad', !!c.error);
  $('#conn-more').hidden = !c.next;
  $('#conn-close-client').hidden = !client || !c.total;
  const rows = c.items.map((x) => ({ ...x, dst: x.dst_ip.includes(':') ? `[${x.dst_ip}]:${x.dst_port}` : `${x.dst_ip}:${x.dst_port}` }));
  $('#conn-table tbody').replaceChildren(...sortable($('#conn-table'), 'conns', rows, renderConns).map((x) => el('tr',
    { 'data-conn': x.id, 'data-client': x.client_ip, 'data-bytes-down': x.bytes_down },
    el('td', {}, String(x.id)), el('td', {}, x.client_ip, x.client_label ? el('span', { class: 'hint' }, ` ${x.client_label}`) : null),
    el('td', {}, x.dst), el('td', {}, x.proxy_name || `#${x.proxy_id}`), el('td', {}, x.state),
    el('td', {}, dur(x.duration_ms)), el('td', { class: 'num' }, size(x.bytes_down)), el('td', { class: 'num' }, size(x.bytes_up)),
    el('td', { class: 'num' }, `↓ ${rate(x.rate_down)} ↑ ${rate(x.rate_up)}`),
    canChange() ? el('td', {}, el('button', { type: 'button', class: 'small danger', 'aria-label': `Close connection ${x.id} of ${x.client_ip}`,
      onclick: () => background(closeConn(x)) }, 'Close')) : null)));
}

function dur(ms) {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s} s` : s < 3600 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

async function closeConn(x) {
  if (!window.confirm(`Close connection ${x.id} of ${x.client_ip} to ${x.dst_ip}:${x.dst_port}? Its transfer ends at once.`)) return;
  try {
    await api('DELETE', `/connections/${x.id}`);
    flash(`Connection ${x.id} of ${x.client_ip} closed.`);
  } catch (e) { if (!unshown(e)) flash(e.status === 404 ? `Connection ${x.id} had already ended.` : e.message, e.status !== 404); }
  await loadConns();
}

async function closeClientConns() {
  const ip = state.connQuery.client;
  if (!ip || !window.confirm(`Close every open connection of ${ip}? It may connect again.`)) return;
  const r = await api('DELETE', `/connections?client=${encodeURIComponent(ip)}`);
  flash(`${r.closed} connection${r.closed === 1 ? '' : 's'} of ${ip} closed.`);
  await loadConns();
}

/* From a client's drill-down: its connections, live. */
function showClientConns(ip) {
  $('#conn-client').value = ip;
  $('#conn-proxy').value = '';
  selectTab($('#tab-conns'));
}

/* ---------- alerts: webhooks (/api/v1/webhooks; admins) ---------- */

const WEBHOOK_TYPES = { 'proxy.down': 'a proxy goes down', 'proxy.up': 'a proxy is back up', 'proxy.exit_ip_changed': 'a proxy\'s exit address changes',
  'client.blocked': 'a client is blocked (not by an admin)', 'agent.error': 'the kernel rules could not be applied' };

async function loadWebhooks() {
  state.webhooks = (await api('GET', '/webhooks')).items;
  renderWebhooks();
}

function renderWebhooks() {
  $('#wh-table tbody').replaceChildren(...state.webhooks.map((w) => el('tr', { 'data-webhook': w.name },
    el('td', {}, w.name, w.enabled ? null : el('span', { class: 'hint' }, ' (off)')), el('td', { class: 'url' }, w.url),
    el('td', {}, w.events.join(', ')),
    el('td', { class: 'delivery' }, !w.last_attempt_at ? 'none yet'
      : w.last_error ? el('span', { class: 'why' }, `failed ${ago(w.last_attempt_at)}: ${w.last_error}`)
        : `HTTP ${w.last_status}, ${ago(w.last_attempt_at)}`),
    el('td', { class: 'org-write' }, el('div', { class: 'actions' },
      el('button', { type: 'button', class: 'small', onclick: () => background(testWebhook(w)) }, 'Test'),
      el('button', { type: 'button', class: 'small ghost', onclick: () => editWebhook(w) }, 'Edit'),
      el('button', { type: 'button', class: 'small danger', onclick: () => background(deleteWebhook(w)) }, 'Delete'))))));
  if (!state.webhooks.length) $('#wh-table tbody').append(el('tr', {}, el('td', { colspan: 5, class: 'hint' }, 'No webhooks yet.')));
}

function editWebhook(w) {
  const box = $('#wh-events');
  box.replaceChildren(el('legend', {}, 'Events'), ...Object.entries(WEBHOOK_TYPES).map(([t, what]) => el('label', { class: 'check' },
    el('input', { type: 'checkbox', name: 'ev', value: t }), `${t} `, el('span', { class: 'opt' }, `(${what})`))));
  openForm($('#wh-form'), w ? `Edit webhook ${w.name}` : 'Add webhook', w ? { ...w, secret: '' } : { enabled: true });
  for (const cb of $$('input[name=ev]', box)) cb.checked = w ? w.events.includes(cb.value) : true;
  $('#wh-secret-hint').textContent = w && w.has_secret ? '(leave empty to keep the stored one)' : '(optional: signs each body)';
}

async function saveWebhook(ev) {
  ev.preventDefault();
  const f = ev.target, err = $('.error', f);
  const events = $$('input[name=ev]', f).filter((c) => c.checked).map((c) => c.value);
  err.textContent = !f.name.value.trim() ? 'Give the webhook a name.'
    : !/^https?:\/\/[^\s/]+/.test(f.url.value.trim()) ? 'The URL starts with http:// or https:// and names a host.'
      : !events.length ? 'Choose at least one event.' : '';
  if (err.textContent) return;
  const body = { name: f.name.value.trim(), url: f.url.value.trim(), events, enabled: f.enabled.checked };
  if (f.secret.value) body.secret = f.secret.value;
  try {
    if (f.id.value) await api('PATCH', `/webhooks/${f.id.value}`, body); else await api('POST', '/webhooks', body);
    f.hidden = true;
    flash(`Webhook ${body.name} saved.`);
    await loadWebhooks();
  } catch (e) { if (!unshown(e)) err.textContent = e.message; }
}

async function testWebhook(w) {
  const wait = flash(`Sending a test event to ${w.name}…`);
  let r;
  try { r = await api('POST', `/webhooks/${w.id}/test`, {}); } catch (e) { if (!unshown(e)) flash(e.message, true, wait); return; }
  if (r.delivered) flash(`Test event delivered to ${w.name} (HTTP ${r.status}, ${r.duration_ms} ms).`, false, wait);
  else flash(`Test event not delivered to ${w.name}: ${r.error}`, true, wait);
  await loadWebhooks();
}

async function deleteWebhook(w) {
  if (!window.confirm(`Delete webhook ${w.name}?`)) return;
  await api('DELETE', `/webhooks/${w.id}`);
  flash(`Webhook ${w.name} deleted.`);
  await loadWebhooks();
}

/* ---------- dashboard ---------- */

function sparkline(points) {
  const w = 260, h = 36, svgNS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(svgNS, 'svg');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('role', 'img');
  const ok = points.filter((p) => p.status === 'up' && p.latency_ms !== null);
  svg.setAttribute('aria-label', ok.length ? `latency history, last ${ok[ok.length - 1].latency_ms} ms` : 'no latency history yet');
  const max = Math.max(1, ...ok.map((p) => p.latency_ms));
  const step = points.length > 1 ? w / (points.length - 1) : w;
  const line = document.createElementNS(svgNS, 'polyline');
  line.setAttribute('points', points.map((p, i) => (p.status === 'up' && p.latency_ms !== null)
    ? `${(i * step).toFixed(1)},${(h - 2 - (p.latency_ms / max) * (h - 6)).toFixed(1)}` : '').filter(Boolean).join(' '));
  svg.append(line);
  points.forEach((p, i) => {
    if (p.status !== 'down') return;
    const c = document.createElementNS(svgNS, 'circle');
    c.setAttribute('class', 'fail');
    c.setAttribute('cx', (i * step).toFixed(1));
    c.setAttribute('cy', String(h - 4));
    c.setAttribute('r', '2.5');
    svg.append(c);
  });
  return svg;
}

function renderDashboard() {
  const cards = $('#proxy-cards');
  cards.replaceChildren(...state.proxies.map((p) => {
    const h = state.health[p.id] || { status: 'unknown' };
    return el('article', { class: 'pcard', 'data-proxy': p.name, 'aria-label': `proxy ${p.name}` },
      el('header', {}, el('h3', {}, p.name), badge(h.status)),
      el('dl', {},
        el('dt', {}, 'Address'), el('dd', {}, `${p.type} ${hostPort(p)}`,
          // a name: the one address a probe reached, where the forwarder relays its clients
          h.address && h.address !== p.host ? el('span', { class: 'probed', title: 'the address the last good probe reached: clients go there' }, ` (${h.address})`) : ''),
        ...(p.type === 'socks5' ? [el('dt', {}, 'Handshake'), el('dd', { class: 'hs' },
          h.pipelining ? 'pipelined (1 round trip)' : 'lock-step')] : []),
        el('dt', {}, 'Latency'), el('dd', { class: 'lat' }, fmtMs(h.latency_ms)),
        el('dt', {}, 'DNS'), el('dd', { class: 'dns', title: h.dns_error || '' },
          h.dns === 'up' ? `carries DNS (${fmtMs(h.dns_latency_ms)})`
            : h.dns === 'down' ? `no DNS: ${h.dns_error || 'check failed'}` : 'not checked'),
        el('dt', {}, 'UDP'), el('dd', { class: 'udp', title: h.udp_error || '' },
          h.udp === 'yes' ? 'carries UDP' : h.udp === 'no' ? `no UDP: ${h.udp_error || 'check failed'}` : 'not checked'),
        el('dt', {}, 'Exit IP'), el('dd', { class: `exit${mismatch(h) ? ' bad' : ''}` }, h.exit_ip || '–',
          p.expected_exit && p.expected_exit.length ? ` (expected ${p.expected_exit.join(', ')})` : ''),
        el('dt', {}, 'Checked'), el('dd', {}, ago(h.checked_at)),
        el('dt', {}, 'Last error'), el('dd', { class: 'err' }, h.stale
          ? 'no fresh result from pgw-healthd: clients blocked until it answers' : (h.last_error || 'none'))),
      sparkline(state.history[p.id] || []));
  }));
  if (!state.proxies.length) cards.append(el('p', {}, 'No proxies yet. Add one in Proxy Mappings.'));
  const active = state.mappings.filter((m) => m.state === 'active').length;
  $('#st-active').textContent = active;
  $('#st-blocked').textContent = state.mappings.length - active;
  $('#st-conns').textContent = state.fwd ? state.fwd.active : '–';
  const alerts = [];
  /* a daemon that stopped (the live "daemons" event): what it means for the clients, and that
     nothing leaks meanwhile */
  const run = state.daemons || {};
  const again = (d) => `Start it again (systemctl start pgw-${d}, or docker compose up -d in pgw's compose directory); journalctl -u pgw-${d} or docker compose logs ${d} says why it stopped.`;
  if (run.forwarder === false) alerts.push(`pgw-forwarder is not running: no client traffic is relayed (connections, UDP and DNS through proxies fail; nothing leaks past the gateway). ${again('forwarder')}`);
  if (run.agent === false) alerts.push(`pgw-agent is not running: the kernel rules stay as last applied, so a new or changed mapping does not take effect, and a proxy that goes down is not blocked in the kernel (pgw-forwarder still refuses its clients). ${again('agent')}`);
  if (run.healthd === false) alerts.push(`pgw-healthd is not running: no proxy is checked, and each proxy's clients are blocked once its last result goes stale. ${again('healthd')}`);
  if (run.forwarder !== false && state.fwd && state.fwd.mappings_unread) {
    const since = state.fwd.mappings_unread_since_ms ? ` since ${new Date(state.fwd.mappings_unread_since_ms).toLocaleTimeString()}` : '';
    alerts.push(`pgw-forwarder has read no mappings${since} (is the database readable?): it blocks every client, connections, UDP and DNS through proxies, until it can read them again. Its log says why.`);
  }
  if (state.agent && state.agent.iface_error) alerts.push(`Kernel rules: ${state.agent.iface_error}`);
  const udp = state.fwd && state.fwd.udp;
  if (udp && udp.enabled && !udp.listening) {
    alerts.push(`UDP relay off: ${udp.error || 'not listening'}. Client UDP stays blocked: give pgw-forwarder CAP_NET_ADMIN (the pgw-forwarder-tproxy.conf drop-in, or the compose override in docs/DEPLOYMENT.md), or set udp_relay to false.`);
  }
  const stale = state.proxies.filter((p) => (state.health[p.id] || {}).stale).map((p) => p.name);
  if (stale.length) alerts.push(`No fresh health result for ${stale.join(', ')}: pgw-healthd is stopped or stuck, so their clients are blocked.`);
  const ha = state.ha && state.ha.enabled ? state.ha : null;
  $('#st-ha-box').hidden = !ha;
  if (ha) {
    const behind = ha.lag_seconds + (Date.now() - (state.haAt || Date.now())) / 1000;
    const lag = ha.lag_seconds === null ? 'never synced' : ha.lag_seconds > 0 ? `${behind.toFixed(1)} s behind` : 'in step';
    $('#st-ha').textContent = ha.role;
    $('#st-ha-label').textContent = `HA pair with ${ha.peer}: configuration #${ha.generation}${ha.role === 'master' ? '' : `, ${lag}`}`;
    if (ha.role !== 'master') alerts.push(`This gateway is the HA ${ha.role === 'unknown' ? 'backup (keepalived has not told it its role yet)' : ha.role}: its configuration is read-only and follows the master at ${ha.peer}.`);
    if (ha.sync_error) alerts.push(`HA sync: ${ha.sync_error}`);
  }
  const banner = $('#alert-banner');
  banner.replaceChildren(...alerts.map((a) => el('p', {}, a)));
  banner.hidden = !alerts.length;
  if (state.agent) {
    $('#st-agent').textContent = state.agent.last_error ? 'error' : `#${state.agent.generation}`;
    $('#st-agent-label').textContent = state.agent.last_error
      ? `kernel rules: ${state.agent.last_error}` : `kernel rules, applied ${ago(state.agent.applied_at)}`;
  }
}

/* ---------- tables: sort and search ---------- */

function sortable(table, key, rows, render) {
  const s = state.sort[key] || { col: null, dir: 1 };
  $$('th[data-sort]', table).forEach((th) => {
    th.tabIndex = 0;
    th.setAttribute('aria-sort', s.col === th.dataset.sort ? (s.dir > 0 ? 'ascending' : 'descending') : 'none');
    th.onclick = th.onkeydown = (ev) => {
      if (ev.type === 'keydown' && ev.key !== 'Enter' && ev.key !== ' ') return;
      ev.preventDefault();
      state.sort[key] = { col: th.dataset.sort, dir: s.col === th.dataset.sort ? -s.dir : 1 };
      render();
    };
  });
  if (!s.col) return rows;
  const cmp = (x, y) => (typeof x === 'number' && typeof y === 'number' ? x - y
    : String(x ?? '').localeCompare(String(y ?? ''), undefined, { numeric: true }));
  return rows.slice().sort((a, b) => cmp(a[s.col], b[s.col]) * s.dir);
}
const matches = (q, ...fields) => !q || fields.some((f) => String(f ?? '').toLowerCase().includes(q.toLowerCase()));

/* ---------- proxies ---------- */

function renderProxies() {
  const q = $('#proxy-search').value;
  const rows = state.proxies.map((p) => ({ ...p, status: (state.health[p.id] || {}).status || 'unknown' }))
    .filter((p) => matches(q, p.name, p.host, p.type, p.status));
  const tbody = $('#proxy-table tbody');
  tbody.replaceChildren(...sortable($('#proxy-table'), 'proxies', rows, renderProxies).map((p) => el('tr', { 'data-proxy': p.name },
    el('td', {}, p.name), el('td', {}, p.type), el('td', {}, hostPort(p)), el('td', {}, badge(p.status)),
    canChange() ? el('td', {}, el('div', { class: 'actions' },
      el('button', { type: 'button', class: 'small ghost', onclick: () => checkProxy(p) }, 'Check'),
      el('button', { type: 'button', class: 'small ghost', onclick: () => editProxy(state.proxies.find((x) => x.id === p.id) || p) }, 'Edit'), /* as it is now */
      el('button', { type: 'button', class: 'small danger', onclick: () => deleteProxy(p) }, 'Delete'))) : null)));
  const sel = $('#mf-proxy');
  const cur = sel.value;
  const want = state.proxies.map((p) => [String(p.id), `${p.name} (${(state.health[p.id] || {}).status || 'unknown'})`]);
  /* the same proxies: their labels changed in place (rebuilding the options at every health event
     would close the list under the pointer of someone choosing from it) */
  if (sel.options.length === want.length && want.every(([id], i) => sel.options[i].value === id)) {
    want.forEach(([, label], i) => { if (sel.options[i].textContent !== label) sel.options[i].textContent = label; });
    return;
  }
  sel.replaceChildren(...want.map(([id, label]) => el('option', { value: id }, label)));
  if (cur) sel.value = cur;
}

function openForm(form, title, values) {
  form.reset();
  /* reset() leaves hidden inputs as they were: an "Add" after an "Edit" must not carry its id */
  for (const h of form.querySelectorAll('input[type=hidden]')) h.value = '';
  $('.error', form).textContent = '';
  const g = $('.gate', form);
  if (g) g.textContent = '';
  form.querySelector('h3').textContent = title;
  for (const [k, v] of Object.entries(values)) {
    const f = form.elements[k];
    if (!f) continue;
    if (f.type === 'checkbox') f.checked = !!v; else f.value = v ?? '';
  }
  form.hidden = false;
  form.querySelector('input:not([type=hidden]), select').focus();
}

function editProxy(p) {
  $('#pf-pass-hint').textContent = p && p.has_password ? '(leave empty to keep the stored one)' : '(optional)';
  openForm($('#proxy-form'), p ? `Edit proxy ${p.name}` : 'Add proxy',
    p ? { ...p, password: '', expected_exit: (p.expected_exit || []).join(', ') } : { type: 'socks5', port: 1080 });
}

// host:port, with an IPv6 address in brackets
function hostPort(p) {
  return p.host.includes(':') ? `[${p.host}]:${p.port}` : `${p.host}:${p.port}`;
}

function proxyErrors(f) {
  if (!f.name.value.trim()) return 'Give the proxy a name.';
  if (!f.host.value.trim() || /[\s/@\[\]%]/.test(f.host.value)) return 'Enter the proxy\'s host name or address (an IPv6 address without brackets; the port goes below).';
  const port = Number(f.port.value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return 'The port is a number from 1 to 65535.';
  return '';
}

async function saveProxy(ev) {
  ev.preventDefault();
  const f = ev.target, err = $('.error', f);
  err.textContent = proxyErrors(f);
  if (err.textContent) return;
  const body = { name: f.name.value.trim(), type: f.type.value, host: f.host.value.trim(), port: Number(f.port.value), username: f.username.value,
    expected_exit: f.expected_exit.value.split(',').map((s) => s.trim()).filter(Boolean) };
  if (f.password.value) body.password = f.password.value;
  try {
    if (f.id.value) await api('PATCH', `/proxies/${f.id.value}`, body); else await api('POST', '/proxies', body);
    f.hidden = true;
    flash(`Proxy ${body.name} saved.`);
    await loadProxies();
    renderAll();
  } catch (e) { if (!unshown(e)) err.textContent = e.message; }
}

async function deleteProxy(p) {
  if (!confirm(`Delete proxy ${p.name}?`)) return;
  try { await api('DELETE', `/proxies/${p.id}`); flash(`Proxy ${p.name} deleted.`); await loadProxies(); renderAll(); }
  catch (e) { failed(e); }
}

async function checkProxy(p) {
  const wait = flash(`Checking ${p.name}…`);
  try {
    const r = await api('POST', `/proxies/${p.id}/check`, {});
    flash(r.status === 'up' ? `${p.name} is up: ${r.latency_ms} ms${r.exit_ip ? `, exit IP ${r.exit_ip}` : ''}.` : `${p.name} is down: ${r.error}.`, r.status !== 'up', wait);
  } catch (e) { if (!unshown(e)) flash(e.message, true, wait); else wait.remove(); }
}

/* ---------- mappings ---------- */

function renderMappings() {
  const q = $('#mapping-search').value;
  const name = (id) => (state.proxies.find((p) => p.id === id) || {}).name || `#${id}`;
  /* a failover mapping carried by another proxy than its primary says which */
  const shown = (m) => (m.carrying_proxy_id && m.carrying_proxy_id !== m.proxy_id ? `${name(m.proxy_id)} → via ${name(m.carrying_proxy_id)}` : name(m.proxy_id));
  const rows = state.mappings.map((m) => ({ ...m, proxy: shown(m) })).filter((m) => matches(q, m.client_ip, m.proxy, m.label, m.state));
  $('#mapping-table tbody').replaceChildren(...sortable($('#mapping-table'), 'mappings', rows, renderMappings).map((m) => el('tr', { 'data-client': m.client_ip },
    el('td', {}, m.client_ip), el('td', {}, m.proxy), el('td', {}, m.label),
    el('td', {}, badge(m.state), m.state === 'blocked' && m.reason
      ? el('span', { class: 'why', 'data-reason': m.reason, title: m.reason_detail }, ` ${REASONS[m.reason] || m.reason}${m.reason_detail ? `: ${m.reason_detail}` : ''}`) : null),
    el('td', {}, el('input', { type: 'checkbox', checked: m.enabled, disabled: !canChange(), 'aria-label': `enabled for ${m.client_ip}`,
      onchange: (ev) => toggleMapping(m, ev.target) })),
    canChange() ? el('td', {}, el('div', { class: 'actions' },
      el('button', { type: 'button', class: 'small ghost', onclick: () => editMapping(state.mappings.find((x) => x.id === m.id) || m) }, 'Edit'),
      el('button', { type: 'button', class: 'small danger', onclick: () => deleteMapping(m) }, 'Delete'))) : null)));
}

function editMapping(m) {
  openForm($('#mapping-form'), m ? `Edit mapping of ${m.client_ip}` : 'Add mapping',
    m ? { ...m, quota_mb: (m.quota_bytes || 0) / 1e6, failover: (m.failover_proxy_ids || []).map((id) => (state.proxies.find((p) => p.id === id) || {}).name || id).join(', ') }
      : { enabled: true, on_down: 'block', max_conns: 0, new_conns_per_s: 0, mac: '', down_kbit: 0, up_kbit: 0, quota_mb: 0, quota_period: 'month', proxy_id: state.proxies.length ? state.proxies[0].id : '' });
}

async function saveMapping(ev) {
  ev.preventDefault();
  const f = ev.target, err = $('.error', f), gate = $('.gate', f);
  err.textContent = '';
  gate.textContent = '';
  /* what a client address may be (IPv4 in the LAN network, or IPv6) is the server's to judge:
   * its 400 message is shown as it is */
  if (!f.client_ip.value.trim()) { err.textContent = 'Enter the client\'s address, like 192.168.2.10 or fd00:2::10.'; return; }
  if (!f.proxy_id.value) { err.textContent = 'Add a proxy first.'; return; }
  const failover = [];
  for (const n of f.failover.value.split(',').map((x) => x.trim()).filter((x) => x)) {
    const p = state.proxies.find((q) => q.name === n);
    if (!p) { err.textContent = `No proxy named ${n} (failover proxies are proxy names, comma-separated).`; return; }
    failover.push(p.id);
  }
  const body = { client_ip: f.client_ip.value.trim(), proxy_id: Number(f.proxy_id.value), label: f.label.value, enabled: f.enabled.checked,
    on_down: f.on_down.value, failover_proxy_ids: failover,
    max_conns: Number(f.max_conns.value) || 0, new_conns_per_s: Number(f.new_conns_per_s.value) || 0,
    mac: f.mac.value.trim(), down_kbit: Number(f.down_kbit.value) || 0, up_kbit: Number(f.up_kbit.value) || 0,
    quota_bytes: Math.round((Number(f.quota_mb.value) || 0) * 1e6), quota_period: f.quota_period.value };
  const pname = (state.proxies.find((p) => p.id === body.proxy_id) || {}).name;
  gate.textContent = `Checking proxy ${pname}…`;
  try {
    const r = f.id.value ? await api('PUT', `/mappings/${f.id.value}`, body) : await api('POST', '/mappings', body);
    gate.textContent = '';
    f.hidden = true;
    const via = r.health && r.health.proxy_id !== body.proxy_id ? (state.proxies.find((p) => p.id === r.health.proxy_id) || {}).name : null;
    flash(via ? `Mapping saved: ${pname} is down, the client fails over to ${via} (exit IP ${r.health.exit_ip}).`
      : r.health ? `Mapping saved: ${pname} is up (${r.health.latency_ms} ms, exit IP ${r.health.exit_ip}).` : 'Mapping saved.');
    await loadMappings();
    renderAll();
  } catch (e) {
    gate.textContent = '';
    if (e.status === 422) {
      const c = e.body.error.check || {};
      if (e.body.error.checks) err.textContent = `Not saved: no proxy of the failover list passed its health check (${e.body.error.checks.map((x) => x.error || x.status).join('; ')}).`;
      else err.textContent = `Not saved: proxy ${pname} failed its health check (${c.error || 'down'}). Clients mapped to a failing proxy would be blocked, so pgw refuses the mapping.`;
    } else if (!unshown(e)) err.textContent = e.message;
  }
}

async function toggleMapping(m, box) {
  box.disabled = true;
  try {
    await api('PATCH', `/mappings/${m.id}`, { enabled: box.checked });
    flash(`${m.client_ip} ${box.checked ? 'enabled' : 'disabled'}.`);
    await loadMappings();
    renderAll();
  } catch (e) {
    if (e instanceof StaleAnswer) return; /* changed; the table is another organisation's now */
    box.checked = !box.checked;
    if (e.status === 401) return;
    flash(e.status === 422 ? `Not enabled: the proxy failed its health check (${(e.body.error.check || {}).error}).` : e.message, true);
  } finally { box.disabled = false; }
}

async function deleteMapping(m) {
  if (!confirm(`Delete the mapping of ${m.client_ip}?`)) return;
  try { await api('DELETE', `/mappings/${m.id}`); flash(`Mapping of ${m.client_ip} deleted.`); await loadMappings(); renderAll(); }
  catch (e) { failed(e); }
}

/* CSV of mappings or proxies: export, a dry run as the preview, then the import. */
async function exportCsv(kind = 'mappings') {
  const res = await fetch(`/api/v1/${kind}/export`, { credentials: 'same-origin', headers: state.org ? { 'X-Pgw-Org': state.org } : {} });
  if (!res.ok) { flash(`Export failed: HTTP ${res.status}`, true); return; }
  const url = URL.createObjectURL(await res.blob());
  const a = el('a', { href: url, download: `pgw-${kind}.csv` });
  document.body.append(a);
  a.click();
  a.remove();
  URL.revokeObjectURL(url);
}

const csvIds = { mappings: 'csv', proxies: 'pcsv' };
/* A proxies file is CSV when its first line names the columns, else proxy URIs. */
const csvType = (kind, text) => (kind === 'proxies' && !/^\ufeff?name,/.test(text) ? 'text/plain' : 'text/csv');

/* A file previewed is imported into the organisation it was previewed for: another one shown (or
   another user) forgets it. */
function csvReset(kind) {
  const id = csvIds[kind];
  state.csvText[kind] = null;
  $(`#${id}-import`).hidden = true;
  $(`#${id}-preview`).replaceChildren();
  $(`#${id}-file`).value = '';
}

async function previewCsv(ev, kind = 'mappings') {
  const id = csvIds[kind], file = ev.target.files[0], out = $(`#${id}-preview`);
  $(`#${id}-import`).hidden = true;
  out.replaceChildren();
  if (!file) return;
  const text = state.csvText[kind] = await file.text(), gen = orgGen;
  try {
    const r = await api('POST', `/${kind}/import?dry_run=true`, text, { type: csvType(kind, text) });
    if (gen !== orgGen) return; /* previewed for the organisation before: forgotten (csvReset) */
    out.append(el('p', {}, `${r.rows} rows: ${r.created} new, ${r.updated} changed, ${r.unchanged} unchanged.`));
    $(`#${id}-import`).hidden = r.created + r.updated === 0;
  } catch (e) {
    out.append(el('p', { class: 'error' }, e.message));
    const lines = (e.body && e.body.error && (e.body.error.lines || e.body.error.checks)) || [];
    if (lines.length) out.append(el('ul', { class: 'csv-errors' }, lines.map((l) => el('li', {}, l.line ? `line ${l.line}: ${l.error}` : `proxy ${l.proxy_id}: ${l.error}`))));
  }
}

async function importCsv(kind = 'mappings') {
  const text = state.csvText[kind];
  if (text === null) return;
  try {
    const r = await api('POST', `/${kind}/import`, text, { type: csvType(kind, text) });
    flash(`Imported: ${r.created} new, ${r.updated} changed.`);
    csvReset(kind);
    await (kind === 'proxies' ? loadProxies() : loadMappings());
    renderAll();
  } catch (e) { failed(e); }
}

/* ---------- configuration ---------- */

/* The form comes from the server's registry (GET /config/schema): labels, help, kinds, choices
 * and ranges are defined once, in common/settings.c. The server validates; its message is shown. */
let configSchema = [];

/* The chosen organisation's own settings (none chosen: the form is hidden). */
async function loadOrgConfig() {
  const form = $('#org-config-form');
  form.hidden = !state.org;
  if (!state.org) return;
  const s = await api('GET', `/orgs/${encodeURIComponent(state.org)}/settings`);
  const o = state.me.orgs.find((x) => String(x.id) === state.org);
  $('#org-config-title').textContent = `Settings of ${o ? o.name : 'this organisation'}`;
  for (const [id, key] of [['#org-health-url', 'health_url'], ['#org-dns-upstream', 'dns_upstream']]) {
    const input = $(id), v = s[key] ?? '';
    /* a live reload keeps what the user is typing: a value that differs from the one loaded */
    if (!(input.dataset.org === state.org && 'loaded' in input.dataset && input.value !== input.dataset.loaded)) input.value = v;
    input.dataset.loaded = v;
    input.dataset.org = state.org;
    input.placeholder = s.gateway[key];
    input.disabled = !isAdmin();
  }
}

async function saveOrgConfig(ev) {
  ev.preventDefault();
  const f = ev.target, err = $('.error', f), v = f.elements.health_url.value.trim();
  const dns = f.elements.dns_upstream.value.trim();
  const org = state.org;
  err.textContent = '';
  try {
    await api('PUT', `/orgs/${encodeURIComponent(org)}/settings`, { health_url: v || null, dns_upstream: dns || null });
    if (org !== state.org) return; /* another organisation is shown now: its form is its own */
    for (const [i, sent] of [[f.elements.health_url, v], [f.elements.dns_upstream, dns]]) { /* saved: no longer an edit */
      if (i.value.trim() === sent) i.value = sent; /* (else typed on meanwhile: still an edit) */
      i.dataset.loaded = sent;
    }
    flash(v || dns ? 'Saved the organisation\'s settings.' : 'The organisation uses the gateway\'s settings.');
  } catch (e) { if (!unshown(e)) err.textContent = e.message; }
}

/* The settings form is reloaded on every config event (another admin, a script, this browser's
   own save). Built once for a schema (and a user), then its values are updated in place, so focus,
   the cursor and the error line stay; a field whose value differs from the one last loaded is the
   admin's unsaved edit and keeps it, not overwritten under their fingers. */
let configLoaded = {}, configBuiltFor = '';
async function loadConfig() {
  background(loadOrgConfig());
  const [schema, cfg] = await Promise.all([api('GET', '/config/schema'), api('GET', '/config')]);
  configSchema = schema.items;
  const form = $('#config-form');
  const shape = JSON.stringify([configSchema, gatewayAdmin()]);
  if (shape === configBuiltFor) {
    for (const s of configSchema) {
      const i = form.elements[s.key];
      if (i.value === configLoaded[s.key]) { i.value = cfg[s.key] ?? ''; configLoaded[s.key] = i.value; } /* not being edited */
      else configLoaded[s.key] = String(cfg[s.key] ?? '');
    }
    return;
  }
  configBuiltFor = shape;
  form.replaceChildren(...configSchema.map((s) => {
    const id = `cfg-${s.key}`;
    const input = s.choices
      ? el('select', { id, name: s.key, disabled: !gatewayAdmin(), 'aria-describedby': `${id}-help` }, s.choices.map((o) => el('option', { value: o, selected: cfg[s.key] === o }, o)))
      : el('input', { id, name: s.key, value: cfg[s.key] ?? '', disabled: !gatewayAdmin(), type: s.kind === 'range' ? 'number' : 'text',
        min: s.kind === 'range' ? String(s.min) : null, max: s.kind === 'range' ? String(s.max) : null, 'aria-describedby': `${id}-help` });
    return el('div', {}, el('label', { for: id }, s.label), input,
      el('p', { class: 'hint', id: `${id}-help` }, `${s.help} Default: ${s.default}.`));
  }), el('p', { class: 'error', role: 'alert' }), gatewayAdmin() ? el('div', { class: 'buttons' }, el('button', { type: 'submit' }, 'Save settings')) : null);
  configLoaded = Object.fromEntries(configSchema.map((s) => [s.key, form.elements[s.key].value])); /* as shown */
}

async function saveConfig(ev) {
  ev.preventDefault();
  const f = ev.target, err = $('.error', f), body = {};
  try {
    const cur = await api('GET', '/config');
    for (const { key } of configSchema) if (f.elements[key] && String(f.elements[key].value) !== String(cur[key])) body[key] = String(f.elements[key].value);
    err.textContent = '';
    if (!Object.keys(body).length) { flash('Nothing changed.'); return; }
    await api('PUT', '/config', body);
    flash(`Saved: ${Object.keys(body).join(', ')}.`);
  } catch (e) { if (!unshown(e)) err.textContent = e.message; }
}

/* ---------- users and audit ---------- */

async function loadUsers() {
  const users = (await api('GET', '/users')).items;
  $('#user-table tbody').replaceChildren(...users.map((u) => el('tr', { 'data-user': u.username },
    el('td', {}, u.username, ...(u.sso ? [' ', el('span', { class: 'pill', title: `signs in through ${u.sso.issuer} (its roles come from there at each sign-in)` }, 'SSO')] : [])),
    el('td', {}, el('select', { 'aria-label': `role of ${u.username}`, disabled: allOrgs(), /* a role is in one organisation */
      title: allOrgs() ? 'Choose an organisation to set a role in it' : null, onchange: (ev) => patchUser(u, { role: ev.target.value }) },
      ['viewer', 'admin'].map((r) => el('option', { value: r, selected: u.role === r }, r)))),
    el('td', {}, el('input', { type: 'checkbox', checked: !u.disabled, 'aria-label': `${u.username} enabled`, onchange: (ev) => patchUser(u, { disabled: !ev.target.checked }) })),
    el('td', {}, u.id === state.me.id ? 'you' : el('button', { type: 'button', class: 'small danger', onclick: () => deleteUser(u) }, 'Delete')))));
}

async function loadKeys() {
  const keys = (await api('GET', '/api-keys')).items;
  const when = (t) => (t ? new Date(t * 1000).toISOString().slice(0, 16).replace('T', ' ') : 'never');
  $('#key-table tbody').replaceChildren(...keys.map((k) => el('tr', { 'data-key': k.name },
    el('td', {}, k.name), el('td', {}, k.role), el('td', {}, k.last_used_at ? ago(k.last_used_at) : 'never'),
    el('td', {}, k.revoked_at ? `revoked ${when(k.revoked_at)}` : when(k.expires_at)),
    el('td', { class: 'org-write' }, k.revoked_at ? '' : el('button', { type: 'button', class: 'small danger', onclick: () => revokeKey(k) }, 'Revoke')))));
}

async function addKey(ev) {
  ev.preventDefault();
  const f = ev.target, err = $('.error', f), shown = $('#kf-new');
  err.textContent = '';
  shown.hidden = true;
  const body = { name: f.name.value.trim(), role: f.role.value };
  if (f.days.value) body.expires_at = Math.floor(Date.now() / 1000) + Number(f.days.value) * 86400;
  try {
    const k = await api('POST', '/api-keys', body);
    f.reset();
    shown.textContent = `Key ${k.name}: ${k.key} (copy it now: it is not shown again)`;
    shown.hidden = false;
    background(loadKeys());
  } catch (e) { if (!unshown(e)) err.textContent = e.message; }
}

async function revokeKey(k) {
  if (!confirm(`Revoke the API key ${k.name}? Scripts using it stop working at once.`)) return;
  try { await api('DELETE', `/api-keys/${k.id}`); flash(`Key ${k.name} revoked.`); }
  catch (e) { failed(e); }
  background(loadKeys());
}

async function patchUser(u, body) {
  try { await api('PATCH', `/users/${u.id}`, body); flash(`User ${u.username} updated.`); }
  catch (e) { failed(e); }
  background(loadUsers());
}

async function deleteUser(u) {
  if (!confirm(`Delete user ${u.username}?`)) return;
  try { await api('DELETE', `/users/${u.id}`); flash(`User ${u.username} deleted.`); } catch (e) { failed(e); }
  background(loadUsers());
}

async function addUser(ev) {
  ev.preventDefault();
  const f = ev.target, err = $('.error', f);
  err.textContent = '';
  if (!/^[A-Za-z0-9._@-]{1,64}$/.test(f.username.value)) { err.textContent = 'User names use letters, digits and . _ @ -'; return; }
  if (f.password.value.length < 8) { err.textContent = 'The password needs at least 8 characters.'; return; }
  try {
    await api('POST', '/users', { username: f.username.value, role: f.role.value, password: f.password.value });
    flash(`User ${f.username.value} added.`);
    f.reset();
    background(loadUsers());
  } catch (e) { if (!unshown(e)) err.textContent = e.message; }
}

async function changePassword(ev) {
  ev.preventDefault();
  const f = ev.target, err = $('.error', f);
  err.textContent = '';
  if (f.password.value.length < 8) { err.textContent = 'The new password needs at least 8 characters.'; return; }
  try {
    await api('PUT', `/users/${state.me.id}/password`, { current_password: f.current_password.value, password: f.password.value });
    f.reset();
    /* a new password ends every session of this user, this one too */
    adoptCsrf('');
    showLogin('Password changed. Every session of yours has ended: log in with the new password.');
  } catch (e) { err.textContent = e.status === 403 ? 'The current password is wrong.' : e.message; }
}

async function loadAudit(reset) {
  if (reset) { state.auditCursor = null; $('#audit-table tbody').replaceChildren(); }
  const q = $('#audit-search').value;
  const r = await api('GET', `/audit?limit=25${q ? `&q=${encodeURIComponent(q)}` : ''}${state.auditCursor ? `&cursor=${state.auditCursor}` : ''}`);
  $('#audit-table tbody').append(...r.items.map((a) => el('tr', {},
    el('td', {}, new Date(a.ts * 1000).toLocaleString()), el('td', {}, a.user || '–'), el('td', {}, a.action),
    el('td', {}, `${a.object_type} ${a.object_id}`.trim()), el('td', {}, a.result))));
  state.auditCursor = r.next_cursor || null;
  $('#audit-more').hidden = !state.auditCursor;
}

/* ---------- live events ---------- */

/* Work nobody clicked for (live events, tab visits): a 401 has already brought the login back
 * (api()), anything else is shown; nothing escapes as an unhandled rejection. */
function background(promise) {
  promise.catch((e) => { if (!unshown(e)) flash(e.message, true); });
}

/* A burst of change events costs one refetch. */
let refetchTimer = null;
function refetchSoon() {
  clearTimeout(refetchTimer);
  refetchTimer = setTimeout(() => background(Promise.all([loadProxies(), loadMappings()]).then(renderAllLive)), 150);
}

/* Everything the page shows, asked again (after a gap in the event stream). */
function resync() {
  background(Promise.all([loadProxies(), loadMappings(), loadStatus()]).then(renderAllLive));
  const shown = $('[role=tab][aria-selected="true"]');
  if (shown && ['tab-clients', 'tab-conns', 'tab-config'].includes(shown.id)) loadTab(shown);
}

let eventsRetryMs = 2000; /* after a refused stream: doubling to 30 s, back to 2 s once one opens */
function connectEvents(resyncOnOpen = false) {
  if (state.es) state.es.close();
  const es = new EventSource('/api/v1/events' + (state.org ? `?org=${encodeURIComponent(state.org)}` : ''));
  state.es = es;
  const live = $('#live');
  let gap = resyncOnOpen;
  es.onopen = () => {
    live.textContent = 'live'; live.classList.add('on');
    eventsRetryMs = 2000;
    /* back after a gap (pgw-api restarted, the HA address moved): what changed meanwhile sent no
       event to this page (a new process starts from what is, not from before): asked again */
    if (gap) { gap = false; resync(); }
  };
  es.onerror = () => {
    live.textContent = 'reconnecting…'; live.classList.remove('on');
    gap = true;
    if (es.readyState !== EventSource.CLOSED || state.es !== es) return; /* the browser tries again itself */
    /* the server refused the stream (the session ended: 401; the browser gives up for good):
       /me says which; a session that ended shows the login (api()), else it is tried again */
    state.es = null;
    const again = () => {
      setTimeout(() => { if (!state.es && state.me) connectEvents(true); }, eventsRetryMs);
      eventsRetryMs = Math.min(eventsRetryMs * 2, 30000);
    };
    api('GET', '/me', undefined, { org: '' }).then((me) => {
      /* no longer a member of the organisation shown (the stream's 404): the page starts over */
      if (state.org && !me.superadmin && !me.orgs.some((o) => String(o.id) === state.org)) { background(start()); return; }
      again();
    }, (e) => { if (!(e instanceof ApiError && e.status === 401)) again(); });
  };
  es.addEventListener('health', (ev) => {
    const h = JSON.parse(ev.data);
    if (h.removed) return;
    state.health[h.proxy_id] = h;
    const hist = state.history[h.proxy_id] || (state.history[h.proxy_id] = []);
    const last = hist[hist.length - 1];
    if (!last || last.checked_at !== h.checked_at) hist.push(h); /* a probe; else an edit, a flag */
    else hist[hist.length - 1] = h;
    if (hist.length > 30) hist.shift();
    renderDashboard();
    drawLatency();
    liveRender('proxy-table', renderProxies);
  });
  /* one event per client: a proxy with 200 clients going down sends 200. Apply each in place
   * and render once per frame; only an unknown or removed client needs a (coalesced) refetch. */
  let frame = 0;
  const renderSoon = () => { if (!frame) frame = requestAnimationFrame(() => { frame = 0; renderDashboard(); liveRender('mapping-table', renderMappings); }); };
  es.addEventListener('client', (ev) => {
    const c = JSON.parse(ev.data);
    const m = state.mappings.find((x) => x.client_ip === c.client_ip);
    if (m && !c.removed) { m.state = c.state; m.carrying_proxy_id = c.carrying_proxy_id; renderSoon(); reasonsSoon(); } else refetchSoon();
  });
  es.addEventListener('failover', (ev) => {
    const x = JSON.parse(ev.data), pn = (id) => (state.proxies.find((q) => q.id === id) || {}).name || `proxy ${id}`;
    flash(`${x.client_ip} failed over from ${pn(x.from)} to ${pn(x.to)}.`);
  });
  es.addEventListener('quota', (ev) => {
    const x = JSON.parse(ev.data);
    if (x.state === 'warning') flash(`${x.client_ip} has used ${x.percent} % of its quota.`);
    else if (x.state === 'exceeded') flash(`${x.client_ip} used up its quota (${size(x.limit)}): blocked.`, true);
    else flash(`${x.client_ip} is under its quota again.`);
    reasonsSoon();
  });
  es.addEventListener('exit_ip_mismatch', (ev) => {
    const x = JSON.parse(ev.data), p = state.proxies.find((q) => q.id === x.proxy_id);
    flash(`${p ? p.name : `Proxy ${x.proxy_id}`} is down: it left from ${x.exit_ip}, outside its expected exit.`, true);
  });
  es.addEventListener('agent', (ev) => { state.agent = JSON.parse(ev.data); renderDashboard(); });
  es.addEventListener('daemons', (ev) => { state.daemons = JSON.parse(ev.data); renderDashboard(); });
  /* the pair's state when it changes; a backup's lag only when it falls behind or catches up
     (counted on here meanwhile) */
  es.addEventListener('ha', (ev) => { state.ha = JSON.parse(ev.data); state.haAt = Date.now(); renderDashboard(); });
  es.addEventListener('forwarder', (ev) => {
    const now = JSON.parse(ev.data);
    noteThroughput(now); /* the server's clock: events may arrive together */
    state.fwd = now;
    renderDashboard();
  });
  es.addEventListener('proxies', refetchSoon);
  es.addEventListener('mappings', refetchSoon);
  es.addEventListener('reset', resync); /* what was missed: /status (daemons, HA, agent) too */
  es.addEventListener('config', () => background(loadConfig()));
  es.addEventListener('orgs', () => background(refreshOrgs()));
}

/* ---------- tabs (arrow keys move between them) ---------- */

function selectTab(tab) {
  $$('[role=tab]').forEach((t) => {
    const on = t === tab;
    t.setAttribute('aria-selected', String(on));
    t.tabIndex = on ? 0 : -1;
    $(`#${t.getAttribute('aria-controls')}`).hidden = !on;
  });
  tab.focus();
  loadTab(tab);
}

/* What a tab shows that is asked for on each visit (and after a switch of organisation). */
function loadTab(tab) {
  if (tab.id === 'tab-clients') background(Promise.all([loadProxies(), loadClients()]).then(renderClients)); /* fresh on every visit */
  if (tab.id === 'tab-conns') background(loadConns());
  if (tab.id === 'tab-dashboard') { drawThroughput(); drawLatency(); } /* a hidden chart has no width: drawn when shown */
  if (tab.id === 'tab-config' && isAdmin()) background(loadWebhooks());
  if (tab.id === 'tab-auth' && isAdmin()) { if (state.me.superadmin) background(loadUsers()); background(loadKeys()); background(loadAudit(true)); } /* fresh on every visit */
}

document.addEventListener('DOMContentLoaded', () => {
  $('#login-form').addEventListener('submit', login);
  $('#org-switch').addEventListener('change', switchOrg);
  $('#org-config-form').addEventListener('submit', saveOrgConfig);
  $('#logout').addEventListener('click', logout);
  const tabs = $$('[role=tab]');
  tabs.forEach((t, i) => {
    t.addEventListener('click', () => selectTab(t));
    t.addEventListener('keydown', (ev) => {
      if (ev.key === 'ArrowRight' || ev.key === 'ArrowLeft') {
        selectTab(tabs[(i + (ev.key === 'ArrowRight' ? 1 : tabs.length - 1)) % tabs.length]);
      }
    });
  });
  $('#proxy-new').addEventListener('click', () => editProxy(null));
  $('#mapping-new').addEventListener('click', () => editMapping(null));
  $('#proxy-form').addEventListener('submit', saveProxy);
  $('#mapping-form').addEventListener('submit', saveMapping);
  $$('[data-cancel]').forEach((b) => b.addEventListener('click', () => { b.closest('form').hidden = true; }));
  $('#proxy-search').addEventListener('input', renderProxies);
  $('#mapping-search').addEventListener('input', renderMappings);
  $('#client-search').addEventListener('input', renderClients);
  $('#csv-export').addEventListener('click', () => exportCsv('mappings'));
  $('#csv-file').addEventListener('change', (ev) => previewCsv(ev, 'mappings'));
  $('#csv-import').addEventListener('click', () => importCsv('mappings'));
  $('#pcsv-export').addEventListener('click', () => exportCsv('proxies'));
  $('#pcsv-file').addEventListener('change', (ev) => previewCsv(ev, 'proxies'));
  $('#pcsv-import').addEventListener('click', () => importCsv('proxies'));
  $('#config-form').addEventListener('submit', saveConfig);
  $('#user-form').addEventListener('submit', addUser);
  $('#key-form').addEventListener('submit', addKey);
  $('#password-form').addEventListener('submit', changePassword);
  let t = null;
  $('#audit-search').addEventListener('input', () => { clearTimeout(t); t = setTimeout(() => background(loadAudit(true)), 300); });
  $('#audit-more').addEventListener('click', () => background(loadAudit(false)));
  setInterval(() => { if (state.me) renderDashboard(); }, 15000); /* "checked N s ago" ages */
  /* the Connections view refreshes itself every 2 s while shown; the throughput chart moves on
   * with zeros when the forwarder has nothing new to say (no event) */
  let clientsTick = 0;
  setInterval(() => {
    if (!state.me || document.hidden) return;
    if (!$('#panel-conns').hidden) background(loadConns(false, true));
    if (!$('#panel-clients').hidden && (clientsTick = (clientsTick + 1) % 2) === 0) background(refreshClients());
    const fp = state.fwdPrev; /* no event for a while (an organisation's come only when it moves): zeros, on the server's clock */
    const up = state.es && state.es.readyState === EventSource.OPEN; /* down: nothing is known, no zeros */
    if (fp && up && Date.now() - state.tput.last > 5000) { pushThroughput((fp.at + Date.now() - fp.seen) / 1000, 0, 0, {}); $('#st-rate').textContent = rate(0); }
  }, 2000);
  let ct = null;
  $('#conn-client').addEventListener('input', () => { clearTimeout(ct); ct = setTimeout(() => background(loadConns()), 300); });
  $('#conn-proxy').addEventListener('change', () => background(loadConns()));
  $('#conn-more').addEventListener('click', () => background(loadConns(true)));
  $('#conn-close-client').addEventListener('click', () => background(closeClientConns()));
  $('#wh-new').addEventListener('click', () => editWebhook(null));
  $('#wh-form').addEventListener('submit', saveWebhook);
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => { /* colours are read when a chart is made */
    for (const c of Object.values(state.charts)) c.plot.destroy();
    state.charts = {};
    drawThroughput();
    drawLatency();
  });
  let rt = null;
  window.addEventListener('resize', () => { clearTimeout(rt); rt = setTimeout(() => { drawThroughput(); drawLatency(); }, 200); });
  const q = new URLSearchParams(location.search);
  if (q.has('sso') || q.has('sso_error')) history.replaceState(null, '', '/');
  if (q.has('sso_error')) {
    const code = q.get('sso_error');
    showLogin(Object.hasOwn(ssoErrors, code) ? ssoErrors[code] : 'The sign-in through the identity provider failed.');
  } else if (q.get('sso') === 'ok' || state.csrf || localStorage.getItem('pgw.session')) {
    /* back from the provider, a new tab, a reload: the session cookie (HttpOnly) may be there;
       /me tells this page who and its CSRF token (a login in another tab made a new one). Only
       then: a browser that never signed in here is not asked (a 401 in its console) */
    const sso = q.get('sso') === 'ok';
    fetch('/api/v1/me', { credentials: 'same-origin' }).then((res) => (res.ok ? res.json() : null)).then((me) => {
      if (!me || !me.csrf_token) { showLogin(sso ? 'The sign-in did not complete; please sign in again.' : ''); return; }
      adoptCsrf(me.csrf_token);
      return start();
    }).catch((e) => { if (!(e instanceof StaleAnswer)) showLogin(); });
  } else {
    showLogin();
  }
});
