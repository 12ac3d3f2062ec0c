// bench/bench_live.sh's browser part: the Connections view with thousands of connections open.
// Prints {"open": ms, "refresh": ms, "render1000": ms}. Env: PGW_URL, ADMIN_PASSWORD.
import { chromium } from 'playwright-core';

const env = process.env;
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--disable-sync'] });
const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
await page.goto(env.PGW_URL);
await page.locator('#login-user').fill('admin');
await page.locator('#login-pass').fill(env.ADMIN_PASSWORD);
await page.getByRole('button', { name: 'Log in' }).click();
await page.getByRole('tab', { name: 'Connections' }).waitFor({ timeout: 10000 });
/* the tab's own path: selectTab -> loadConns (fetch the page) -> renderConns (the table) */
const open = await page.evaluate(async () => {
  const t0 = performance.now();
  document.querySelector('#panel-conns').hidden = false;
  await loadConns();
  return performance.now() - t0;
});
await page.getByRole('tab', { name: 'Connections' }).click();
await page.locator('#conn-table tbody tr').first().waitFor({ timeout: 10000 });
const refresh = await page.evaluate(async () => { const t0 = performance.now(); await loadConns(); return performance.now() - t0; });
const rows = () => page.locator('#conn-table tbody tr').count();
while ((await rows()) < 1000 && await page.getByRole('button', { name: 'More' }).isVisible()) {
  const before = await rows();
  await page.getByRole('button', { name: 'More' }).click();
  for (let t = 0; t < 100 && (await rows()) === before; t++) await page.waitForTimeout(100);
}
const render1000 = await page.evaluate(() => { const t0 = performance.now(); renderConns(); return performance.now() - t0; });
console.log(JSON.stringify({ open: Math.round(open), refresh: Math.round(refresh), render1000: Math.round(render1000), rows: await rows() }));
await browser.close();
