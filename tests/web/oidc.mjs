// Single sign-on in the dashboard (issue 23), in real headless Chromium against pgw-api and a real
// OpenID provider (oidc_op.mjs: npm oidc-provider) in the lab's gw namespace. Prints TAP lines.
// argv[2] is the phase: login (roles, viewer cannot write, logout at the provider, a user who
// loses the group), rotate (a login after the provider's keys changed), down (the provider is
// gone: a clear error, and the break-glass password login). Env: URL (the dashboard), USERS_FILE
// (the provider's users, edited here), ADMIN_PASSWORD, LOCAL_USER and LOCAL_PASSWORD (a local
// user who is not the break-glass admin), PROVIDER (its display name).
import fs from 'node:fs';
import { finish, launch, ok, step } from './tap.mjs';

const env = process.env;
const phase = process.argv[2];

const browser = await launch();
const pageErrors = [];
async function fresh() { /* a browser of its own: no session here or at the provider */
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, ignoreHTTPSErrors: true /* the provider's private CA: the browser's trust is not what is tested; pgw-api checks it with oidc_ca_file */ });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  await page.goto(env.URL);
  await page.locator('#login').waitFor({ state: 'visible', timeout: 10000 });
  return page;
}
/* The button, the provider's own login form, and back: the dashboard or the login page. */
async function ssoLogin(page, user) {
  await page.locator('#sso-login').waitFor({ state: 'visible', timeout: 10000 });
  await page.locator('#sso-login').click();
  await page.locator('input[name="login"]').waitFor({ timeout: 10000 });
  await page.locator('input[name="login"]').fill(user);
  await page.locator('input[name="password"]').fill('anything');
  await page.locator('button[type="submit"]').click();
  await page.waitForURL(`${env.URL}/**`, { timeout: 15000 });
  await page.waitForFunction(() => !document.querySelector('#app').hidden || document.querySelector('#login-error').textContent !== '',
    null, { timeout: 15000 });
}
async function signedInAs(page) {
  return { name: await page.locator('#who-name').textContent(), role: await page.locator('#who-role').textContent() };
}
const users = () => JSON.parse(fs.readFileSync(env.USERS_FILE, 'utf8'));
const setUsers = (u) => fs.writeFileSync(env.USERS_FILE, JSON.stringify(u));
/* A request from the page with its session and CSRF token, as the dashboard makes them: "<status> <body>". */
const apiCall = (page, method, path, body) => page.evaluate(async ([m, p, b]) => {
  const r = await fetch(`/api/v1${p}`, { method: m, credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': sessionStorage.getItem('pgw.csrf') || '' },
    body: b ? JSON.stringify(b) : undefined });
  return `${r.status} ${await r.text()}`;
}, [method, path, body]);
const apiStatus = async (page, method, path, body) => Number((await apiCall(page, method, path, body)).split(' ')[0]);

if (phase === 'login') {
  let alice;
  await step(`the login page offers "Sign in with ${env.PROVIDER}"`, async () => {
    const page = await fresh();
    /* shown (and named) once GET /auth/methods has answered: after the login form is */
    await page.locator('#sso-login').waitFor({ state: 'visible', timeout: 10000 });
    const text = (await page.locator('#sso-login').textContent()).trim();
    if (text !== `Sign in with ${env.PROVIDER}`) throw new Error(`button: ${text}`);
    await page.context().close();
  });
  await step('alice (group admins) signs in through the provider and lands on the dashboard as admin', async () => {
    alice = await fresh();
    await ssoLogin(alice, 'alice');
    const who = await signedInAs(alice);
    if (who.name !== 'alice' || who.role !== 'admin') throw new Error(`signed in as ${JSON.stringify(who)}`);
    if (await alice.evaluate(() => document.body.classList.contains('viewer'))) throw new Error('the dashboard is read-only');
    await alice.locator('#tab-config').click();
    await alice.locator('#panel-config input[name="oidc_issuer"]').waitFor({ timeout: 5000 });
    return `${who.name}, ${who.role}`;
  });
  await step('alice may write (a change through the API with her session is accepted)', async () => {
    const s = await apiStatus(alice, 'PUT', '/config', { oidc_provider_name: env.PROVIDER });
    if (s !== 200) throw new Error(`PUT /config: ${s}`);
    return `PUT /config ${s}`;
  });
  await step('bob (group staff) signs in as viewer and cannot write', async () => {
    const page = await fresh();
    await ssoLogin(page, 'bob');
    const who = await signedInAs(page);
    if (who.name !== 'bob' || who.role !== 'viewer') throw new Error(`signed in as ${JSON.stringify(who)}`);
    if (!(await page.evaluate(() => document.body.classList.contains('viewer')))) throw new Error('not shown read-only');
    const res = await apiCall(page, 'POST', '/proxies', { name: 'bobs', type: 'socks5', host: '10.9.9.9', port: 1080 });
    if (!res.startsWith('403 ') || !res.includes('the viewer role can only read')) throw new Error(`POST /proxies as viewer: ${res}`);
    await page.context().close();
    return 'POST /proxies 403: the viewer role can only read';
  });
  await step('dave (no mapped group) is refused with a clear message', async () => {
    const page = await fresh();
    await ssoLogin(page, 'dave');
    const msg = await page.locator('#login-error').textContent();
    if (!msg.includes('grants no role on this gateway')) throw new Error(`message: ${msg}`);
    if (!(await page.locator('#app').isHidden())) throw new Error('the dashboard is shown');
    if (page.url() !== `${env.URL}/`) throw new Error(`url: ${page.url()}`);
    await page.context().close();
    return msg;
  });
  await step('logout ends the session here and at the provider (RP-initiated logout)', async () => {
    const sess = (await alice.context().cookies()).find((c) => c.name === 'pgw_session');
    if (!sess) throw new Error('no session cookie before the logout');
    await alice.locator('#logout').click();
    await alice.locator('button[name="logout"][value="yes"]').click({ timeout: 10000 });
    await alice.waitForURL(`${env.URL}/**`, { timeout: 10000 });
    await alice.locator('#login').waitFor({ state: 'visible', timeout: 10000 });
    const me = await apiStatus(alice, 'GET', '/me');
    if (me !== 401) throw new Error(`/me after logout: ${me}`);
    /* ended on the server, not only forgotten by this browser: the old cookie, sent again, is refused */
    const other = await fresh();
    await other.context().addCookies([sess]);
    const again = await apiStatus(other, 'GET', '/me');
    await other.context().close();
    if (again !== 401) throw new Error(`the old session cookie still answers ${again}`);
    /* the provider forgot her too: signing in again asks for the login form */
    await alice.locator('#sso-login').click();
    await alice.locator('input[name="login"]').waitFor({ timeout: 10000 });
    return `/me ${me}, the old cookie ${again}, the provider asks again`;
  });
  await step('alice loses the group at the provider: her next login is refused and her open sessions end', async () => {
    const page = await fresh();
    await ssoLogin(page, 'alice');
    if ((await signedInAs(page)).role !== 'admin') throw new Error('not signed in as admin first');
    const u = users();
    u.alice.groups = ['others'];
    setUsers(u);
    const other = await fresh();
    await ssoLogin(other, 'alice');
    const msg = await other.locator('#login-error').textContent();
    if (!msg.includes('grants no role')) throw new Error(`second login: ${msg}`);
    const s = await apiStatus(page, 'GET', '/me');
    if (s !== 401) throw new Error(`the first session still answers ${s}`);
    u.alice.groups = ['admins'];
    setUsers(u);
    return 'refused; the open session gets 401';
  });
} else if (phase === 'rotate') {
  await step('after the provider rotated its keys (new key ids, ES256), a login still works (and the Users table marks SSO users)', async () => {
    const page = await fresh();
    await ssoLogin(page, 'alice');
    const who = await signedInAs(page);
    if (who.name !== 'alice' || who.role !== 'admin') throw new Error(`signed in as ${JSON.stringify(who)}`);
    await page.locator('#tab-auth').click();
    const bob = page.locator('#user-table tr[data-user="bob"]');
    await bob.waitFor({ timeout: 10000 });
    if ((await bob.locator('.pill').textContent()) !== 'SSO') throw new Error('bob is not marked SSO');
    if (await page.locator('#user-table tr[data-user="admin"] .pill').count()) throw new Error('the local admin is marked SSO');
    return `${who.name}, ${who.role}; the Users table marks bob SSO, not admin`;
  });
} else if (phase === 'down') {
  await step('the provider down: "Sign in" comes back with a clear error', async () => {
    const page = await fresh();
    await page.locator('#sso-login').click();
    await page.waitForFunction(() => document.querySelector('#login-error').textContent !== '', null, { timeout: 15000 });
    const msg = await page.locator('#login-error').textContent();
    if (!msg.includes('cannot be reached')) throw new Error(`message: ${msg}`);
    await page.context().close();
    return msg;
  });
  await step('a local user other than the break-glass admin is told password login is off', async () => {
    const page = await fresh();
    await page.locator('#login-user').fill(env.LOCAL_USER);
    await page.locator('#login-pass').fill(env.LOCAL_PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForFunction(() => document.querySelector('#login-error').textContent !== '', null, { timeout: 10000 });
    const msg = await page.locator('#login-error').textContent();
    if (!msg.includes('password login is off')) throw new Error(`message: ${msg}`);
    await page.context().close();
    return msg;
  });
  await step('the break-glass admin still signs in with the password', async () => {
    const page = await fresh();
    await page.locator('#login-user').fill('admin');
    await page.locator('#login-pass').fill(env.ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.locator('#app').waitFor({ state: 'visible', timeout: 10000 });
    const who = await signedInAs(page);
    if (who.name !== 'admin' || who.role !== 'admin') throw new Error(`signed in as ${JSON.stringify(who)}`);
    await page.context().close();
    return `${who.name}, ${who.role}`;
  });
}
ok(pageErrors.length === 0, `no script errors in the pages${pageErrors.length ? `: ${pageErrors[0]}` : ''}`);
await browser.close();
finish();
