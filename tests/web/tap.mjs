// tests/web/tap.mjs - what the browser scenarios share: TAP lines (ok, step, finish) and
// Debian's chromium started headless with no network of its own (launch).
import { chromium } from 'playwright-core';

let n = 0, failed = 0;

export const ok = (cond, what) => {
  n++;
  if (!cond) failed++;
  console.log(`${cond ? 'ok' : 'not ok'} ${n} - ${what}`);
};

// One check: passes when fn resolves; a string or number it resolves to follows the name.
export async function step(what, fn) {
  try {
    const extra = await fn();
    ok(true, extra && typeof extra !== 'object' ? `${what} (${extra})` : what);
  } catch (e) {
    ok(false, `${what}: ${String(e.message).split('\n')[0]}`);
  }
}

// Without the background-networking flags chromium tries hosts this machine cannot reach.
export const launch = () => chromium.launch({ executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--no-first-run', '--disable-quic', '--disable-sync'] });

// The dashboard's status line (#flash) keeps its last few messages, so an action's answer is a
// line that came after the action: flashMark(page) before it, flashNew(page, text) after.
export const flashMark = (page) =>
  page.evaluate(() => document.querySelectorAll('#flash > div').forEach((d) => { d.dataset.seen = ''; }));
export const flashNew = (page, text, timeout = 15000) =>
  page.locator('#flash > div:not([data-seen])', { hasText: text }).first().waitFor({ timeout });

// The plan line and the exit status: 1 when any check failed.
export function finish() {
  console.log(`1..${n}`);
  process.exit(failed ? 1 : 0);
}
