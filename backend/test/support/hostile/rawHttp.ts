import { connect } from 'node:net';

/**
 * Requests no HTTP client library would send — bytes that are not UTF-8, bodies far past the
 * limit streamed without a length, headers one byte at a time — written straight to a socket,
 * and what the server answered before it closed.
 */
export interface RawAnswer {
  status: number;
  body: string;
  /** Bytes of the request the server let us write before it answered or closed. */
  bytesSent: number;
  ms: number;
}

function parse(text: string, bytesSent: number, started: number): RawAnswer {
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
  let body = text.slice(text.indexOf('\r\n\r\n') + 4);
  // A chunked answer: the JSON is inside the first chunk.
  if (/\r\ntransfer-encoding: chunked/i.test(text.slice(0, text.indexOf('\r\n\r\n')))) {
    body = body.replace(/^[0-9a-f]+\r\n/i, '').replace(/\r\n0\r\n\r\n$/, '');
  }
  return { status, body, bytesSent, ms: Date.now() - started };
}

/** Sends `head` then `body` (bytes), reads until the server closes or `timeoutMs` passes. */
export function rawRequest(url: string, head: string, body: Buffer = Buffer.alloc(0), timeoutMs = 5_000): Promise<RawAnswer> {
  const { hostname, port } = new URL(url);
  const started = Date.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = connect(Number(port), hostname, () => {
      socket.write(head);
      if (body.length > 0) socket.write(body);
    });
    const done = () => resolve(parse(Buffer.concat(chunks).toString('utf8'), Buffer.byteLength(head) + body.length, started));
    socket.on('data', (d) => {
      chunks.push(d);
      // One answer is all we want; a keep-alive server would otherwise wait for the next request.
      const text = Buffer.concat(chunks).toString('utf8');
      const split = text.indexOf('\r\n\r\n');
      const length = /\r\ncontent-length: (\d+)/i.exec(text.slice(0, split));
      if (split >= 0 && length && Buffer.byteLength(text.slice(split + 4)) >= Number(length[1])) socket.destroy();
    });
    socket.on('error', () => {});
    socket.on('close', done);
    setTimeout(() => socket.destroy(), timeoutMs).unref();
  });
}

/**
 * Streams `totalBytes` of body in chunks, chunked transfer encoding (no length announced), as
 * fast as the server takes them; stops when the server answers or closes. The answer and how
 * much the server took before it stopped reading.
 */
export function streamBody(url: string, path: string, totalBytes: number, timeoutMs = 20_000): Promise<RawAnswer> {
  const { hostname, port } = new URL(url);
  const started = Date.now();
  const chunk = Buffer.alloc(64 * 1024, 0x61); // 'a' — inside a JSON string it is harmless; the size is the point
  return new Promise((resolve) => {
    const received: Buffer[] = [];
    let sent = 0;
    let stopped = false;
    const socket = connect(Number(port), hostname, () => {
      socket.write(`POST ${path} HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`);
      socket.write(`1\r\n"\r\n`);
      pump();
    });
    function pump(): void {
      while (!stopped && sent < totalBytes) {
        const frame = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]);
        sent += chunk.length;
        if (!socket.write(frame)) {
          socket.once('drain', pump);
          return;
        }
      }
      if (!stopped) socket.write('1\r\n"\r\n0\r\n\r\n');
    }
    const finish = () => {
      if (stopped) return;
      stopped = true;
      resolve(parse(Buffer.concat(received).toString('utf8'), sent, started));
    };
    socket.on('data', (d) => {
      received.push(d);
      // The answer came: stop sending (a server that refused already will not read the rest).
      if (Buffer.concat(received).includes('\r\n\r\n')) setTimeout(() => socket.destroy(), 50);
    });
    socket.on('error', () => {});
    socket.on('close', finish);
    setTimeout(() => socket.destroy(), timeoutMs).unref();
  });
}

/** Sends a request's headers one byte every `everyMs`; resolves with what the server said when it closed. */
export function slowHeaders(url: string, path: string, everyMs = 100, timeoutMs = 10_000): Promise<RawAnswer> {
  const { hostname, port } = new URL(url);
  const head = `POST ${path} HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: application/json\r\nX-Padding: ${'p'.repeat(500)}\r\n\r\n`;
  const started = Date.now();
  return new Promise((resolve) => {
    let sent = 0;
    let answer = '';
    const socket = connect(Number(port), hostname);
    const drip = setInterval(() => {
      if (sent < head.length && !socket.destroyed && socket.writable) socket.write(head[sent++]!);
    }, everyMs);
    const giveUp = setTimeout(() => socket.destroy(), timeoutMs);
    socket.on('data', (d) => {
      answer += d.toString('utf8');
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearInterval(drip);
      clearTimeout(giveUp);
      resolve(parse(answer, sent, started));
    });
  });
}
