// Live operations (issue 20) in real headless Chromium against a running pgw in the lab. Prints
// TAP lines. Env: PGW_URL, ADMIN_PASSWORD, VIEWER_PASSWORD, SHOTS_DIR; IPERF (a shell command:
// an iperf3 run through the gateway, in the background), DOWNLOAD (a slow download through the
// gateway in the background, its curl exit code written to DOWNLOAD_END when it ends), CLIENT
// (the downloading client's address), RECEIVER (a webhook receiver's URL), RECEIVED (a
// shell command printing what it received), FWD_KILL and FWD_START (shell commands: pgw-forwarder
// killed, and started again).
import { finish, flashMark, flashNew, launch, ok, step } from './tap.mjs';
import { execSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

const env = process.env;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(what, fn, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

const browser = await launch();
const consoleErrors = [];
async function newPage(opts = {}) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...opts });
  const page = await ctx.newPage();
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  page.on('dialog', (d) => d.accept());
  return page;
}
async function loginAs(page, user, pass) {
  await page.goto(env.PGW_URL);
  await page.locator('#login-user').fill(user);
  await page.locator('#login-pass').fill(pass);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('tab', { name: 'Connections' }).waitFor({ timeout: 5000 });
}
const shot = (page, name) => page.screenshot({ path: `${env.SHOTS_DIR}/${name}.png`, fullPage: true });

const page = await newPage();
await loginAs(page, 'admin', env.ADMIN_PASSWORD);

await step('the dashboard has a latency chart with axes and units (the throughput chart waits for traffic)', async () => {
  const t0 = Date.now();
  await page.locator('#lat-chart canvas').waitFor({ timeout: 20000 });
  const drawn = Date.now() - t0;
  const axes = await page.locator('#lat-chart .u-axis').count();
  if (axes < 2) throw new Error(`${axes} axes`);
  const over = page.locator('#lat-chart .u-over'); /* the cursor over the chart: the legend gives each value with its unit */
  const box = await over.boundingBox();
  await page.mouse.move(box.x + box.width - 4, box.y + box.height / 2);
  const legend = await page.locator('#lat-chart .u-legend').textContent();
  if (!/\d+ ms/.test(legend)) throw new Error(`no value in ms in the legend: ${legend.slice(0, 120)}`);
  return `latency chart drawn after ${drawn} ms`;
});
await step('the throughput chart moves during an iperf3 run', async () => {
  const before = Number(await page.locator('#tput-chart').getAttribute('data-peak'));
  execSync(env.IPERF, { stdio: 'ignore', shell: '/bin/bash' });
  await page.locator('#tput-chart canvas').waitFor({ timeout: 10000 }); /* idle, it waits for traffic */
  const peak = await until('a peak over 5 MB/s', async () => {
    const p = Number(await page.locator('#tput-chart').getAttribute('data-peak'));
    return p > 5e6 ? p : 0;
  }, 15000);
  const now = await page.locator('#tput-now').textContent();
  if (!/MB\/s|GB\/s/.test(now)) throw new Error(`summary: ${now}`);
  return `peak ${(peak / 1e6).toFixed(1)} MB/s, before ${(before / 1e6).toFixed(1)}; "${now}"`;
});
await page.getByRole('tab', { name: 'Dashboard' }).click();
await sleep(500);
await shot(page, 'dashboard-live');

await step('a running download appears in the Connections view', async () => {
  execSync(env.DOWNLOAD, { stdio: 'ignore', shell: '/bin/bash' });
  await page.getByRole('tab', { name: 'Connections' }).click();
  await page.locator('#conn-client').fill(env.CLIENT);
  await page.locator(`#conn-table tr[data-client="${env.CLIENT}"]`).first().waitFor({ timeout: 10000 });
});
await step('... with growing bytes (refreshed by itself)', async () => {
  const row = page.locator(`#conn-table tr[data-client="${env.CLIENT}"]`).first();
  const b1 = Number(await row.getAttribute('data-bytes-down'));
  const b2 = await until('more bytes', async () => {
    const b = Number(await page.locator(`#conn-table tr[data-client="${env.CLIENT}"]`).first().getAttribute('data-bytes-down'));
    return b > b1 + 100000 ? b : 0;
  }, 8000);
  return `${b1} -> ${b2} bytes`;
});
await step('the table sorts by a column with the keyboard (the rows in that order, both ways)', async () => {
  /* a second client's download, so that there is an order to see: every client's rows */
  execSync(env.OTHER_DOWNLOAD, { stdio: 'ignore', shell: '/bin/bash' });
  await page.locator('#conn-client').fill('');
  await until('two clients in the table', async () => (await page.locator('#conn-table tr[data-client]').count()) >= 2, 10000);
  /* one reading of the table: a refresh re-renders it between two separate reads */
  const order = () => page.evaluate(() => [...document.querySelectorAll('#conn-table tr[data-client]')].map((r) => Number(r.dataset.bytesDown)));
  const th = page.locator('#conn-table th[data-sort="bytes_down"]');
  const seen = [];
  for (const [want, ok] of [['ascending', (a, b) => a <= b], ['descending', (a, b) => a >= b]]) {
    await th.focus();
    await page.keyboard.press('Enter');
    const s = await th.getAttribute('aria-sort');
    if (s !== want) throw new Error(`aria-sort ${s}, want ${want}`);
    const b = await order();
    if (b.length < 2 || b.some((x, i) => i > 0 && !ok(b[i - 1], x))) throw new Error(`${want}: bytes ${b.join(', ')}`);
    seen.push(`${want} ${b.join(' ')}`);
  }
  await page.locator('#conn-client').fill(env.CLIENT);
  return seen.join('; ');
});
await step('while a client\'s address is being typed, the 2 s refresh keeps to the filter last asked for (no half-typed address asked)', async () => {
  await until('the table filtered to the client', async () => page.evaluate((c) => {
    const rows = [...document.querySelectorAll('#conn-table tr[data-client]')];
    return rows.length > 0 && rows.every((r) => r.dataset.client === c);
  }, env.CLIENT));
  /* every question for connections and every value the box held, with their times: an address
   * may be asked only once it sat in the box for the 300 ms pause after typing (a pause the
   * machine made, under load, is one too), or when it is the filter from before */
  await page.evaluate(() => {
    const box = document.querySelector('#conn-client');
    const t = window.__typing = { inputs: [{ at: performance.now(), v: box.value.trim() }], asked: [], bad: false };
    box.addEventListener('input', () => { t.inputs.push({ at: performance.now(), v: box.value.trim() }); }, true);
    const f = window.fetch;
    window.fetch = (u, o) => {
      if (String(u).startsWith('/api/v1/connections?')) {
        t.asked.push({ at: performance.now(), client: new URLSearchParams(String(u).split('?')[1]).get('client') || '' });
      }
      return f(u, o);
    };
    const total = document.querySelector('#conn-total');
    new MutationObserver(() => { if (total.classList.contains('bad')) t.bad = true; }).observe(total, { attributes: true });
  });
  const last = env.CLIENT.slice(env.CLIENT.lastIndexOf('.') + 1);
  await page.locator('#conn-client').focus();
  await page.keyboard.press('End');
  for (let i = 0; i < last.length; i++) await page.keyboard.press('Backspace'); /* "192.168.2." */
  const end = Date.now() + 3000; /* a key every ~100 ms for 3 s: at least one 2 s refresh */
  while (Date.now() < end) {
    await page.keyboard.press('9');
    await sleep(50);
    await page.keyboard.press('Backspace');
    await sleep(50);
  }
  const t = await page.evaluate(() => window.__typing);
  if (!t.asked.length) throw new Error('no refresh while typing');
  /* the value held from inputs[i].at until the next input (or now) */
  const settled = (a) => t.inputs.some((x, i) => x.v === a.client && a.at - x.at >= 290 &&
    (i + 1 === t.inputs.length || t.inputs[i + 1].at - x.at >= 290));
  const half = t.asked.filter((a) => a.client !== env.CLIENT);
  const early = half.filter((a) => !settled(a));
  if (early.length) throw new Error(`asked for ${early.map((a) => `"${a.client}"`).join(', ')} before it sat in the box for 300 ms`);
  if (!half.length) { /* no pause long enough for the filter to go: the rows are the last filter's still */
    if (t.bad) throw new Error(`the count showed an error while typing: ${await page.locator('#conn-total').textContent()}`);
    if (!(await page.locator(`#conn-table tr[data-client="${env.CLIENT}"]`).count())) throw new Error('the rows went while typing');
  }
  await page.keyboard.type(last);
  await until('the filter asked for again', async () => (await page.evaluate(() => window.__typing.asked.length)) > t.asked.length);
  await page.locator(`#conn-table tr[data-client="${env.CLIENT}"]`).first().waitFor({ timeout: 10000 });
  return `${t.asked.length} questions while typing, all client=${env.CLIENT}${half.length ? ` (${half.length} after a pause)` : ''}`;
});
await shot(page, 'connections');
await step('closed from the UI: it disappears and the client\'s transfer ends', async () => {
  const id = await page.locator(`#conn-table tr[data-client="${env.CLIENT}"]`).first().getAttribute('data-conn');
  await flashMark(page);
  await page.locator(`#conn-table tr[data-conn="${id}"]`).getByRole('button', { name: /^Close connection/ }).click();
  await flashNew(page, `Connection ${id} of ${env.CLIENT} closed.`, 5000);
  await page.locator(`#conn-table tr[data-conn="${id}"]`).waitFor({ state: 'detached', timeout: 5000 });
  const rc = await until('the download to end', async () => (existsSync(env.DOWNLOAD_END) ? readFileSync(env.DOWNLOAD_END, 'utf8').trim() || '' : ''), 5000);
  if (rc === '0') throw new Error('the download completed instead of being cut');
  return `curl exit ${rc}`;
});

await step('a client\'s drill-down and row follow a new download by themselves (no click)', async () => {
  /* the client's connection was closed above: none open when the drill-down is opened */
  await page.getByRole('tab', { name: 'Clients' }).click();
  const row = page.locator(`#client-table tr[data-client="${env.CLIENT}"]`);
  await row.getByRole('button', { name: 'Usage' }).click();
  await until('no open connection', async () => /^0 open connections now/.test(await page.locator('#client-usage-conns').textContent()), 8000);
  const b1 = Number(await row.getAttribute('data-bytes-down'));
  execSync(env.DOWNLOAD, { stdio: 'ignore', shell: '/bin/bash' });
  const n = await until('an open connection', async () => {
    const t = await page.locator('#client-usage-conns').textContent();
    return /^[1-9]\d* open connection/.test(t) ? t : '';
  }, 12000);
  const b2 = await until('the row\'s bytes to grow', async () => {
    const b = Number(await page.locator(`#client-table tr[data-client="${env.CLIENT}"]`).getAttribute('data-bytes-down'));
    return b > b1 ? b : 0;
  }, 12000);
  await shot(page, 'clients');
  return `"${n.trim()}"; down ${b1} -> ${b2} bytes`;
});
await step('... and leads to them', async () => {
  await page.locator('#client-usage-conns').getByRole('button', { name: 'Show them' }).click();
  await page.locator(`#conn-table tr[data-client="${env.CLIENT}"]`).first().waitFor({ timeout: 5000 });
});
await step('"Close all of this client" ends them', async () => {
  await flashMark(page);
  await page.getByRole('button', { name: 'Close all of this client' }).click();
  await flashNew(page, new RegExp(`^[1-9]\\d* connections? of ${env.CLIENT.replaceAll('.', '\\.')} closed\\.$`), 5000);
  await page.locator(`#conn-table tr[data-client="${env.CLIENT}"]`).first().waitFor({ state: 'detached', timeout: 5000 });
});

await step('an admin adds a webhook from the Configuration tab', async () => {
  await page.getByRole('tab', { name: 'Configuration' }).click();
  await page.getByRole('button', { name: 'Add webhook' }).click();
  await page.locator('#wh-name').fill('ops-chat');
  await page.locator('#wh-url').fill(env.RECEIVER);
  await page.locator('#wh-secret').fill('ui-secret-123');
  await page.locator('#wh-form').getByRole('button', { name: 'Save' }).click();
  await page.locator('#wh-table tr[data-webhook="ops-chat"]').waitFor({ timeout: 5000 });
  const ev = await page.locator('#wh-table tr[data-webhook="ops-chat"] td').nth(2).textContent();
  if (!ev.includes('proxy.down') || !ev.includes('agent.error')) throw new Error(`events: ${ev}`);
});
await step('... its test button delivers a signed test event', async () => {
  await flashMark(page);
  await page.locator('#wh-table tr[data-webhook="ops-chat"]').getByRole('button', { name: 'Test' }).click();
  await flashNew(page, /^Test event delivered to ops-chat \(HTTP 200/, 8000);
  const got = execSync(env.RECEIVED, { shell: '/bin/bash' }).toString();
  if (!/"event": "test"/.test(got) || !/"sig_ok": true/.test(got)) throw new Error(`receiver: ${got.slice(0, 200)}`);
  await page.locator('#wh-table tr[data-webhook="ops-chat"] td.delivery').getByText(/HTTP 200/).waitFor({ timeout: 5000 });
});
await step('... a form error is explained before anything is sent', async () => {
  await page.getByRole('button', { name: 'Add webhook' }).click();
  await page.locator('#wh-name').fill('bad');
  await page.locator('#wh-url').fill('ftp://example.com/x');
  await page.locator('#wh-form').getByRole('button', { name: 'Save' }).click();
  await page.getByText('The URL starts with http:// or https:// and names a host.').waitFor({ timeout: 3000 });
  await page.locator('#wh-form').getByRole('button', { name: 'Cancel' }).click();
});
await page.locator('#webhooks').screenshot({ path: `${env.SHOTS_DIR}/webhooks.png` });

await step('a viewer sees connections but cannot close them, and no webhooks', async () => {
  const v = await newPage();
  execSync(env.DOWNLOAD, { stdio: 'ignore', shell: '/bin/bash' });
  await loginAs(v, 'viewer', env.VIEWER_PASSWORD);
  await v.getByRole('tab', { name: 'Connections' }).click();
  await v.locator(`#conn-table tr[data-client="${env.CLIENT}"]`).first().waitFor({ timeout: 10000 });
  if (await v.getByRole('button', { name: /^Close connection/ }).count()) throw new Error('a Close button for a viewer');
  await v.getByRole('tab', { name: 'Configuration' }).click();
  if (await v.locator('#webhooks').isVisible()) throw new Error('webhooks shown to a viewer');
  await v.close();
});
await step('dark theme follows the system', async () => {
  const d = await newPage({ colorScheme: 'dark' });
  await loginAs(d, 'admin', env.ADMIN_PASSWORD);
  await d.locator('#lat-chart canvas').waitFor({ timeout: 10000 });
  const bg = await d.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const m = bg.match(/\d+/g).map(Number);
  if (m[0] + m[1] + m[2] > 150) throw new Error(`background ${bg}`);
  await shot(d, 'dashboard-dark');
  await d.close();
  return bg;
});
await step('usable at phone width: nothing wider than the screen, every tab reachable', async () => {
  const ph = await newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  await loginAs(ph, 'admin', env.ADMIN_PASSWORD);
  await ph.locator('#tput-chart').waitFor({ timeout: 5000 });
  await sleep(500);
  for (const t of ['Dashboard', 'Connections', 'Clients', 'Configuration']) {
    await ph.getByRole('tab', { name: t }).click();
    await sleep(300);
    const w = await ph.evaluate(() => document.documentElement.scrollWidth);
    if (w > 392) {
      const wide = await ph.evaluate(() => [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > 392 && e.offsetParent)
        .slice(0, 4).map((e) => `${e.tagName.toLowerCase()}${e.id ? `#${e.id}` : ''}${e.className ? `.${String(e.className).split(' ')[0]}` : ''}:${Math.round(e.getBoundingClientRect().right)}`).join(' '));
      throw new Error(`${t}: the page is ${w} px wide (${wide})`);
    }
  }
  await ph.getByRole('tab', { name: 'Dashboard' }).click();
  await sleep(300);
  await shot(ph, 'phone');
  await ph.close();
});
await step('tabs move with the arrow keys (Connections reachable from the keyboard)', async () => {
  await page.getByRole('tab', { name: 'Clients' }).click();
  await page.keyboard.press('ArrowRight');
  const sel = await page.getByRole('tab', { name: 'Connections' }).getAttribute('aria-selected');
  if (sel !== 'true') throw new Error(`aria-selected ${sel}`);
});
await step('a daemon that stops shows at once: pgw-forwarder killed, then started again (the live "daemons" event)', async () => {
  await page.getByRole('tab', { name: 'Dashboard' }).click();
  const banner = page.locator('#alert-banner');
  if ((await banner.textContent()).includes('is not running')) throw new Error('a daemon shown stopped before');
  const t0 = Date.now();
  execSync(env.FWD_KILL, { stdio: 'ignore', shell: '/bin/bash' });
  await banner.getByText('pgw-forwarder is not running').waitFor({ timeout: 8000 });
  const shown = Date.now() - t0;
  if (!(await banner.isVisible())) throw new Error('the banner is hidden');
  if (await banner.getByText(/pgw-(agent|healthd) is not running/).count()) throw new Error('another daemon shown stopped');
  execSync(env.FWD_START, { stdio: 'ignore', shell: '/bin/bash' });
  await banner.getByText('pgw-forwarder is not running').waitFor({ state: 'hidden', timeout: 10000 });
  return `shown ${shown} ms after the kill, gone once it runs again`;
});
ok(consoleErrors.length === 0, `no console errors (${consoleErrors.slice(0, 3).join(' | ')})`);
await browser.close();
finish();
