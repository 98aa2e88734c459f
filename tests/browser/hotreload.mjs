// A dev server's hot reload in a real browser, through the tunnel:
// Debian's chromium, driven by playwright-core (no browser download).
//
//   node tests/browser/hotreload.mjs PAGE_URL WANTED
//
// Opens PAGE_URL (its host is resolved to 127.0.0.1, as DNS would send it
// to the edge), and says on stdout, one line each:
//   websocket URL   each websocket the page opens
//   ready TEXT      the page shows #message and its websocket has spoken:
//                   an edit made now is seen
//   updated TEXT    #message came to hold WANTED (then it exits 0)
// Waits for elements and events, never sleeps.  Exits 1 with what failed
// (2 when chromium or playwright-core is missing).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CHROMIUM, CHROMIUM_ARGS, STEP_TIMEOUT_MS, TOTAL_TIMEOUT_MS, loadChromium } from './chromium.mjs';

function fail(message, code = 1) {
  console.error(`hotreload.mjs: FAILED: ${message}`);
  process.exit(code);
}

const [pageUrl, wanted] = process.argv.slice(2);
if (!pageUrl || !wanted)
  fail('usage: node tests/browser/hotreload.mjs PAGE_URL WANTED', 64);

const chromium = await loadChromium(fail);
let step = 'starting';
const problems = [];
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'expose-hotreload-chromium-'));
let context;

const watchdog = setTimeout(() => {
  console.error(`hotreload.mjs: FAILED: ${step}: the whole test took over ${TOTAL_TIMEOUT_MS} ms`);
  process.exit(1);
}, TOTAL_TIMEOUT_MS);
watchdog.unref();

try {
  step = `launching ${CHROMIUM}`;
  const host = new URL(pageUrl).hostname;
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM, headless: true, timeout: STEP_TIMEOUT_MS,
    args: [...CHROMIUM_ARGS, `--host-resolver-rules=MAP ${host} 127.0.0.1`],
  });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  const page = context.pages()[0] || await context.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  let spoke;
  const spoken = new Promise((resolve) => { spoke = resolve; });
  page.on('websocket', (ws) => {
    console.log(`websocket ${ws.url()}`);
    ws.on('framereceived', () => spoke());
  });

  step = `opening ${pageUrl}`;
  await page.goto(pageUrl);
  const message = page.locator('#message');
  await message.filter({ hasNotText: 'loading' }).waitFor();
  step = 'waiting for the hot-reload websocket to speak';
  await spoken;
  console.log(`ready ${await message.textContent()}`);

  step = `waiting for #message to hold "${wanted}" (an edit, through the hot-reload websocket)`;
  await message.filter({ hasText: wanted }).waitFor({ timeout: TOTAL_TIMEOUT_MS });
  console.log(`updated ${await message.textContent()}`);
  if (problems.length) throw new Error(problems.join('; '));
  await context.close();
  context = null;
} catch (e) {
  console.error(`hotreload.mjs: FAILED: ${step}: ${e.message.split('\n')[0]}`);
  if (problems.length) console.error(`hotreload.mjs: the page reported: ${problems.join('; ')}`);
  process.exitCode = 1;
} finally {
  if (context) await context.close().catch(() => {});
  fs.rmSync(userDataDir, { recursive: true, force: true });
  clearTimeout(watchdog);
}
