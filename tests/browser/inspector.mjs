// The inspector page in a real browser: Debian's chromium, driven by
// playwright-core (no browser download).
//
//   node tests/browser/inspector.mjs INSPECTOR_URL TUNNEL_URL SCREENSHOT.png
//
// Opens the page, sends requests through the tunnel, waits for them to
// appear (waits for elements, never sleeps), opens one, checks its detail,
// replays it as is and edited, checks a refused edit is shown, and takes a
// screenshot.  Exits 0 on success; otherwise prints what failed and exits 1
// (2 when chromium or playwright-core is missing).
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { CHROMIUM, CHROMIUM_ARGS, STEP_TIMEOUT_MS, TOTAL_TIMEOUT_MS, loadChromium } from './chromium.mjs';

function fail(message, code = 1) {
  console.error(`inspector.mjs: FAILED: ${message}`);
  process.exit(code);
}

const [inspectorUrl, tunnelUrl, screenshot] = process.argv.slice(2);
if (!inspectorUrl || !tunnelUrl || !screenshot)
  fail('usage: node tests/browser/inspector.mjs INSPECTOR_URL TUNNEL_URL SCREENSHOT.png', 64);

const chromium = await loadChromium(fail);

/* A request through the tunnel; *.localhost names are reached on 127.0.0.1
 * with the Host header, as a browser would. */
function viaTunnel(method, pathAndQuery, { body, headers = {} } = {}) {
  const base = new URL(tunnelUrl);
  const local = base.hostname === 'localhost' || base.hostname.endsWith('.localhost');
  const mod = base.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request({
      host: local ? '127.0.0.1' : base.hostname,
      port: base.port || (base.protocol === 'https:' ? 443 : 80),
      servername: base.hostname,
      rejectUnauthorized: false,
      method,
      path: pathAndQuery,
      headers: { Host: base.host, ...headers, ...(body ? { 'Content-Length': Buffer.byteLength(body) } : {}) },
      agent: false,
      timeout: STEP_TIMEOUT_MS,
    }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${tunnelUrl} within ${STEP_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

let step = 'starting';
const problems = [];      // errors the page itself raised
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'expose-inspector-chromium-'));
let context;

const watchdog = setTimeout(() => {
  console.error(`inspector.mjs: FAILED: ${step}: the whole test took over ${TOTAL_TIMEOUT_MS} ms`);
  process.exit(1);
}, TOTAL_TIMEOUT_MS);
watchdog.unref();

try {
  step = `launching ${CHROMIUM}`;
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 760 }, deviceScaleFactor: 1,
    colorScheme: 'light', reducedMotion: 'reduce', timeout: STEP_TIMEOUT_MS,
  });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  const page = context.pages()[0] || await context.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  // (a 404 from the API is expected once: Chromium logs it as "Failed to load resource")
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(`console error: ${m.text()}`);
  });
  const rows = page.getByTestId('request-row');
  const rowFor = (p) => rows.filter({ has: page.locator(`.path[title="${p}"]`) });

  step = `opening ${inspectorUrl}`;
  const res = await page.goto(inspectorUrl, { waitUntil: 'domcontentloaded' });
  if (!res || res.status() !== 200) throw new Error(`the page answered ${res && res.status()}`);
  await page.locator('[data-testid="live"][data-state="open"]').waitFor();

  // A few requests for a list worth looking at, then the one followed.
  const token = Math.random().toString(36).slice(2, 10);
  const wanted = `/echo?from=browser&t=${token}`;
  step = `requests through ${tunnelUrl}`;
  for (const p of ['/hello', '/status/404', '/status/503', `/bytes?n=3000&t=${token}`]) {
    const r = await viaTunnel('GET', p);
    step = `requests through ${tunnelUrl}: GET ${p} answered ${r.status}`;
  }
  const answer = await viaTunnel('POST', wanted, {
    body: JSON.stringify({ hello: 'inspector', token, list: [1, 2, 3], nested: { ok: true } }),
    headers: { 'Content-Type': 'application/json', 'X-Browser-Test': token },
  });
  if (answer.status !== 200) throw new Error(`POST ${wanted} through the tunnel answered ${answer.status}`);

  step = `waiting for POST ${wanted} in the list`;
  const row = rowFor(wanted);
  await row.first().waitFor();
  const id = await row.first().getAttribute('data-id');
  const rowStatus = (await row.first().getByTestId('row-status').textContent()).trim();
  if (rowStatus !== String(answer.status)) throw new Error(`the row shows status ${rowStatus}, the tunnel answered ${answer.status}`);
  for (const s of ['404', '503'])
    await page.locator(`[data-testid="request-row"][data-status="${s}"]`).waitFor();

  step = `opening request #${id}`;
  await row.first().click();
  const detail = page.getByTestId('detail');
  await page.locator(`[data-testid="detail"][data-id="${id}"] [data-testid="detail-path"]`).waitFor();
  const shownPath = await detail.getByTestId('detail-path').textContent();
  if (shownPath !== wanted) throw new Error(`the detail shows path ${JSON.stringify(shownPath)}, not ${wanted}`);
  const shownStatus = await detail.getByTestId('detail-status').textContent();
  if (!shownStatus.startsWith(String(answer.status))) throw new Error(`the detail shows status ${JSON.stringify(shownStatus)}`);
  const requestHead = await detail.getByTestId('request-head').textContent();
  if (!requestHead.startsWith(`POST ${wanted} HTTP/1.1`) || !requestHead.includes(`X-Browser-Test: ${token}`))
    throw new Error(`the request head is not shown whole: ${JSON.stringify(requestHead.slice(0, 300))}`);
  const requestBody = await detail.getByTestId('request-body').textContent();
  if (!requestBody.includes('"hello": "inspector"')) throw new Error(`the request body is not pretty JSON: ${JSON.stringify(requestBody.slice(0, 300))}`);
  const responseHead = await detail.getByTestId('response-head').textContent();
  if (!responseHead.startsWith('HTTP/1.1 200')) throw new Error(`the response head: ${JSON.stringify(responseHead.slice(0, 200))}`);
  const responseBody = await detail.getByTestId('response-body').textContent();
  if (!responseBody.includes(`"url": "${wanted}"`)) throw new Error(`the response body (the app's echo) is not shown: ${JSON.stringify(responseBody.slice(0, 300))}`);

  step = `replaying #${id}`;
  await detail.getByTestId('replay').click();
  await detail.getByTestId('notice').waitFor();
  const replayRow = page.locator(`[data-testid="request-row"][data-replay-of="${id}"]`);
  await replayRow.first().waitFor();
  const replayPath = await replayRow.first().locator('.path').getAttribute('title');
  if (replayPath !== wanted) throw new Error(`the replay went to ${replayPath}, not ${wanted}`);

  step = `edit & replay of #${id}: a refused edit is shown`;
  await detail.getByTestId('edit-replay').click();
  const form = page.getByTestId('edit-form');
  await form.waitFor();
  await page.getByLabel('Path', { exact: true }).fill('no-slash');
  await form.getByTestId('edit-send').click();
  const error = await detail.getByTestId('error').textContent();
  if (!/path/i.test(error)) throw new Error(`a path without / gave no error, but ${JSON.stringify(error)}`);

  step = `edit & replay of #${id}: a new path`;
  const edited = `/echo?edited=${token}`;
  await page.getByLabel('Path', { exact: true }).fill(edited);
  await form.getByTestId('edit-send').click();
  await detail.getByTestId('notice').waitFor();
  await page.locator(`[data-testid="request-row"][data-replay-of="${id}"] .path[title="${edited}"]`).waitFor();
  await detail.getByTestId('edit-cancel').click();
  await form.waitFor({ state: 'hidden' });

  step = 'an unknown request shows the API error';
  await page.goto(inspectorUrl + '#999999', { waitUntil: 'domcontentloaded' });
  const notFound = await page.getByTestId('detail-error').textContent();
  if (!/no such request/.test(notFound)) throw new Error(`#999999 showed ${JSON.stringify(notFound)}`);

  step = `the screenshot of #${id}`;
  await page.goto(inspectorUrl + '#' + id, { waitUntil: 'domcontentloaded' });
  await page.locator(`[data-testid="detail"][data-id="${id}"] [data-testid="response-body"] pre`).waitFor();
  await page.locator('[data-testid="live"][data-state="open"]').waitFor();
  await replayRow.first().waitFor();
  await page.getByTestId('replay').focus();
  fs.mkdirSync(path.dirname(path.resolve(screenshot)), { recursive: true });
  await page.screenshot({ path: screenshot, type: 'png' });

  if (problems.length) throw new Error(problems.join('; '));
  await context.close();
  context = null;
  console.log(`inspector.mjs: ok: #${id} ${wanted} shown, replayed, edited and replayed; screenshot ${screenshot}`);
} catch (e) {
  if (context) {
    try {
      const failed = screenshot.replace(/(\.png)?$/, '.failed.png');
      await context.pages()[0]?.screenshot({ path: failed, timeout: 5000 });
      console.error(`inspector.mjs: the page as it was: ${failed}`);
    } catch (ignored) { /* the browser is gone */ }
  }
  console.error(`inspector.mjs: FAILED: ${step}: ${e.message.split('\n')[0]}`);
  if (problems.length) console.error(`inspector.mjs: the page reported: ${problems.join('; ')}`);
  process.exitCode = 1;
} finally {
  if (context) await context.close().catch(() => {});
  fs.rmSync(userDataDir, { recursive: true, force: true });
  clearTimeout(watchdog);
}
