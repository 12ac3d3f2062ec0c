// The HA pair in the dashboard (issue 22), in real headless Chromium against both nodes of the
// lab's pair. Prints TAP lines. Env: MASTER_URL, BACKUP_URL, MASTER_ADDR (the master's own
// address, which the backup names), ADMIN_PASSWORD, MASTER_CHANGE (a shell command: a change on
// the master that the backup syncs).
import { finish, launch, ok, step } from './tap.mjs';
import { execSync } from 'node:child_process';

const env = process.env;

const browser = await launch();
const consoleErrors = [];
async function dashboard(url) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  await page.goto(url);
  await page.locator('#login-user').fill('admin');
  await page.locator('#login-pass').fill(env.ADMIN_PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator('#st-ha-box').waitFor({ state: 'visible', timeout: 10000 });
  await page.waitForFunction(() => document.querySelector('#st-ha').textContent !== '–', null, { timeout: 10000 });
  return page;
}

let backup;
await step('the backup\'s dashboard shows its role, its peer and that it is read-only, naming the master', async () => {
  const page = backup = await dashboard(env.BACKUP_URL);
  const role = (await page.locator('#st-ha').textContent()).trim();
  const label = await page.locator('#st-ha-label').textContent();
  const banner = await page.locator('#alert-banner').textContent();
  if (role !== 'backup') throw new Error(`role shown: ${role}`);
  if (!label.includes(env.MASTER_ADDR) || !label.includes('in step')) throw new Error(`label: ${label}`);
  if (!banner.includes(`read-only and follows the master at ${env.MASTER_ADDR}`)) throw new Error(`banner: ${banner}`);
  return label;
});
await step('... and follows the master live: a change there shows as the next configuration, in step, with no reload', async () => {
  const label = async () => backup.locator('#st-ha-label').textContent();
  const before = await label();
  const g = Number((before.match(/configuration #(\d+)/) || [])[1]);
  if (!g) throw new Error(`no configuration number shown: ${before}`);
  execSync(env.MASTER_CHANGE, { stdio: 'ignore', shell: '/bin/bash' });
  await backup.waitForFunction((g0) => {
    const t = document.querySelector('#st-ha-label').textContent, m = t.match(/configuration #(\d+)/);
    return m && Number(m[1]) > g0 && t.includes('in step');
  }, g, { timeout: 10000 });
  return `${before} -> ${await label()}`;
});
await step('the master\'s dashboard shows master, and no read-only banner', async () => {
  const page = await dashboard(env.MASTER_URL);
  const role = (await page.locator('#st-ha').textContent()).trim();
  const banner = await page.locator('#alert-banner').textContent();
  if (role !== 'master') throw new Error(`role shown: ${role}`);
  if (banner.includes('read-only')) throw new Error(`banner: ${banner}`);
});
ok(consoleErrors.length === 0, `no page errors (${consoleErrors.slice(0, 3).join(' | ')})`);
await browser.close();
finish();
