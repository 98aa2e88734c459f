// The app behind the tunnel in end-to-end tests: a real Node HTTP server
// (the parser most dev servers use) that records every request it gets.
//
//   node app.js [PORT]       prints "listening PORT" once it accepts
//
// Endpoints: /hello, /echo (JSON of the request), /bytes?n=N, /sink
// (sha256 and length of the body, ?rate=BYTES_PER_S reads slowly),
// /status/N, /chunked, /sse (events released by /sse-next), /barrier?n=N
// (answers once N requests wait), /ws (websocket echo), /ws-refuse (an
// upgrade answered 426), /close (closes without answering), /truncate
// (promises 1000 bytes, sends 10, drops the connection), /redirect-local
// (an absolute redirect and a cookie for localhost), /not-modified and
// /no-content (304 and 204 with a Content-Length, and so no body),
// /early-hints (a 103 with a Content-Length before its 200), /until-close
// (a body without a length, ended by closing), /too-big (413 to
// Expect: 100-continue, before the body), /__log, /__reset.
// `node app.js /path.sock` listens on a Unix socket.
'use strict';
const http = require('http');
const crypto = require('crypto');

const log = [];
let sseClients = [];
let barrier = [];

function send(res, status, body, type) {
  res.writeHead(status, { 'Content-Type': type || 'text/plain', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function pattern(n) {
  const chunk = Buffer.alloc(65536);
  for (let i = 0; i < chunk.length; i++) chunk[i] = i % 251;
  return chunk;
}
const PATTERN = pattern();

function streamBytes(res, n) {
  res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': n });
  let left = n;
  function more() {
    while (left > 0) {
      const k = Math.min(left, PATTERN.length);
      left -= k;
      if (!res.write(k === PATTERN.length ? PATTERN : PATTERN.subarray(0, k))) {
        res.once('drain', more);
        return;
      }
    }
    res.end();
  }
  more();
}

function sink(req, res, rate) {
  const hash = crypto.createHash('sha256');
  let length = 0;
  let started = Date.now();
  req.on('data', (d) => {
    hash.update(d);
    length += d.length;
    if (rate > 0) {
      // Read no faster than rate bytes per second.
      const due = started + (length / rate) * 1000;
      const wait = due - Date.now();
      if (wait > 0) {
        req.pause();
        setTimeout(() => req.resume(), wait);
      }
    }
  });
  req.on('end', () => send(res, 200, JSON.stringify({ length, sha256: hash.digest('hex') }), 'application/json'));
}

function record(req) {
  if (req.url.startsWith('/__')) return;
  log.push({ method: req.method, url: req.url, headers: req.rawHeaders, httpVersion: req.httpVersion });
}

// APP_TLS_CERT and APP_TLS_KEY (PEM files) make it an https server.
const tls = process.env.APP_TLS_CERT ? {
  cert: require('fs').readFileSync(process.env.APP_TLS_CERT),
  key: require('fs').readFileSync(process.env.APP_TLS_KEY),
} : null;
const server = (tls ? require('https').createServer.bind(null, tls) : http.createServer)((req, res) => {
  record(req);
  const url = new URL(req.url, 'http://app');
  const path = url.pathname;
  if (path === '/__log') return send(res, 200, JSON.stringify(log), 'application/json');
  if (path === '/__reset') { log.length = 0; return send(res, 200, 'ok'); }
  if (path === '/hello') return send(res, 200, 'hello');
  if (path === '/bytes') return streamBytes(res, Number(url.searchParams.get('n') || 0));
  if (path === '/sink') return sink(req, res, Number(url.searchParams.get('rate') || 0));
  if (path.startsWith('/status/')) {
    const code = Number(path.slice(8));
    if (code === 204 || code === 304) { res.writeHead(code); return res.end(); }
    return send(res, code, 'status ' + code);
  }
  if (path === '/chunked') {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.write('one,');
    setImmediate(() => { res.write('two,'); setImmediate(() => res.end('three')); });
    return;
  }
  if (path === '/sse') {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
    res.write('data: first\n\n');
    sseClients.push(res);
    req.on('close', () => { sseClients = sseClients.filter((r) => r !== res); });
    return;
  }
  if (path === '/sse-next') {
    const n = sseClients.length;
    for (const c of sseClients) c.write('data: next\n\n');
    return send(res, 200, String(n));
  }
  if (path === '/barrier') {
    const n = Number(url.searchParams.get('n') || 1);
    barrier.push(res);
    if (barrier.length >= n) {
      const all = barrier;
      barrier = [];
      for (const r of all) send(r, 200, 'released ' + all.length);
    }
    return;
  }
  if (path === '/close') { req.socket.destroy(); return; }
  // Fields that describe no body: RFC 9112 section 6.3 frames these by
  // their status, and a proxy that trusts the length eats what follows.
  if (path === '/not-modified') { res.writeHead(304, { 'Content-Length': 100, ETag: '"v1"' }); return res.end(); }
  if (path === '/no-content') { res.writeHead(204, { 'Content-Length': 5 }); return res.end(); }
  if (path === '/early-hints') {
    // Raw, as the first request on its connection: Node has no other way
    // to put a length on an interim response.
    req.socket.write('HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n' +
                     'Content-Length: 9\r\n\r\n');
    return send(res, 200, 'hinted');
  }
  if (path === '/until-close') {
    // HTTP/1.1 with neither length nor chunks: the close ends the body.
    req.socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nbody until close');
    return;
  }
  if (path === '/redirect-local') {
    // What a dev server does: an absolute redirect to itself, with a cookie for itself.
    const port = typeof server.address() === 'string' ? 80 : server.address().port;
    res.writeHead(302, { Location: `http://localhost:${port}/hello`,
                         'Set-Cookie': 'sid=1; Domain=localhost; Path=/', 'Content-Length': 0 });
    return res.end();
  }
  if (path === '/truncate') {
    // Promises 1000 bytes, sends 10, then drops the connection.
    res.writeHead(200, { 'Content-Length': 1000 });
    res.write('0123456789', () => req.socket.destroy());
    return;
  }
  let body = [];
  req.on('data', (d) => body.push(d));
  req.on('end', () => {
    const buf = Buffer.concat(body);
    send(res, 200, JSON.stringify({
      method: req.method, url: req.url, httpVersion: req.httpVersion,
      headers: req.rawHeaders, length: buf.length,
      sha256: crypto.createHash('sha256').update(buf).digest('hex'),
    }), 'application/json');
  });
});

// A websocket echo, as a dev server's hot reload would speak it.
function wsAccept(key) {
  return crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
}

function wsFrame(opcode, payload) {
  const len = payload.length;
  let head;
  if (len < 126) head = Buffer.from([0x80 | opcode, len]);
  else if (len < 65536) { head = Buffer.alloc(4); head[0] = 0x80 | opcode; head[1] = 126; head.writeUInt16BE(len, 2); }
  else { head = Buffer.alloc(10); head[0] = 0x80 | opcode; head[1] = 127; head.writeBigUInt64BE(BigInt(len), 2); }
  return Buffer.concat([head, payload]);
}

function wsEcho(socket, rest) {
  let buf = rest;
  socket.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      if (buf.length < 2) return;
      const opcode = buf[0] & 0x0f;
      let len = buf[1] & 0x7f, off = 2;
      if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); off = 10; }
      if (buf.length < off + 4 + len) return;
      const mask = buf.subarray(off, off + 4);
      const payload = Buffer.from(buf.subarray(off + 4, off + 4 + len));
      for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i & 3];
      buf = buf.subarray(off + 4 + len);
      if (opcode === 8) { socket.end(wsFrame(8, payload.subarray(0, 2))); return; }
      if (opcode === 9) { socket.write(wsFrame(10, payload)); continue; }
      if (opcode === 1 || opcode === 2) socket.write(wsFrame(opcode, payload));
    }
  });
}

// Expect: 100-continue: /too-big answers 413 before the body is sent
// (and closes); other requests get their 100 as Node would give it.
server.on('checkContinue', (req, res) => {
  if (req.url.startsWith('/too-big')) {
    record(req);
    res.writeHead(413, { 'Content-Length': 7, Connection: 'close' });
    return res.end('too big');
  }
  res.writeContinue();
  server.emit('request', req, res);
});

server.on('upgrade', (req, socket, head) => {
  record(req);
  if (req.url.startsWith('/ws-refuse')) {
    socket.end('HTTP/1.1 426 Upgrade Required\r\nContent-Length: 7\r\nConnection: close\r\n\r\nrefused');
    return;
  }
  socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
               'Sec-WebSocket-Accept: ' + wsAccept(req.headers['sec-websocket-key']) + '\r\n\r\n');
  wsEcho(socket, head);
});

server.keepAliveTimeout = 60000;
server.headersTimeout = 65000;
server.requestTimeout = 0;
// A path listens on a Unix socket instead of a port.
const where = process.argv[2] || '0';
if (where.startsWith('/')) {
  server.listen(where, () => console.log('listening ' + where));
} else {
  server.listen(Number(where), '127.0.0.1', () => {
    console.log('listening ' + server.address().port);
  });
}
