// What the browser tests share: Debian's chromium under playwright-core
// (no browser download), started as this machine allows it (no sandbox as
// root; no background networking, which the closed network refuses).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
  '--no-first-run', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-proxy-server'];
// Deadlines only bound failures.  The end-to-end harness measures how slowly
// this machine starts processes and exports it (EXPOSE_TEST_SLOWNESS): a
// loaded machine starts chromium many times slower than a quiet one.  The
// cap keeps a hung browser reported by this script before pytest's own
// per-test timeout (300 s) cuts it off without a word.
const SLOWNESS = Math.max(1, Number(process.env.EXPOSE_TEST_SLOWNESS) || 1);
const STEP_BASE_MS = 15000;
const STEP_CAP_MS = 100000;
const TOTAL_BASE_MS = 90000;
const TOTAL_CAP_MS = 240000;
export const STEP_TIMEOUT_MS = Math.round(Math.min(STEP_BASE_MS * SLOWNESS, STEP_CAP_MS));
export const TOTAL_TIMEOUT_MS = Math.round(Math.min(TOTAL_BASE_MS * SLOWNESS, TOTAL_CAP_MS));
const HERE = path.dirname(fileURLToPath(import.meta.url));

// playwright-core's chromium, or fail(message, 2) saying what to install.
export async function loadChromium(fail) {
  if (!fs.existsSync(CHROMIUM))
    fail(`no chromium at ${CHROMIUM}: run \`make deps\` (Debian package chromium)`, 2);
  try {
    const { chromium } = await import('playwright-core');
    return chromium;
  } catch (e) {
    fail(`playwright-core is not installed in ${path.join(HERE, 'node_modules')}: run \`make deps\` ` +
         `(npm ci --prefix tests/browser) (${e.message})`, 2);
  }
}
