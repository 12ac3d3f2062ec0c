// Open one URL in real headless Chromium and print the page's text (exit 1 on a load error).
// Run inside a lab namespace: the browser resolves names the way the devices there do.
import { chromium } from 'playwright-core';

const url = process.argv[2];
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--no-first-run', '--disable-sync'] });
let rc = 0;
try {
  const page = await browser.newPage();
  const resp = await page.goto(url, { timeout: 15000 });
  console.log(`status ${resp ? resp.status() : 0}`);
  console.log((await page.textContent('body')).trim());
} catch (e) {
  console.log(`error ${String(e.message).split('\n')[0]}`);
  rc = 1;
} finally {
  await browser.close();
}
process.exit(rc);
