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
export const STEP_TIMEOUT_MS = 15000;
export const TOTAL_TIMEOUT_MS = 90000;
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
