// A loopback HTTP proxy in front of a test registry that lies about content: it forwards every
// request unchanged, but answers GETs of chosen blobs (by digest, or every blob of chosen
// repositories) with altered bodies while keeping the registry's headers (Content-Length,
// Docker-Content-Digest) - the way a broken or hostile registry would. Used to prove that a lie
// fails the image and stores nothing.
//
// Modes:
//   flip      same length, some bytes inverted (every 4096th byte, starting with the first)
//   truncate  only the first half of the body, with a Content-Length that matches the short body
//   abort     Content-Length of the full body, first half sent, then the connection is destroyed
//
// `intercept` picks requests to fault, in front of a registry or of S3 (moto) alike:
//   hold           never forwarded, never answered (the client is killed or times out meanwhile)
//   lose-response  forwarded and completed upstream, the answer never sent (a write whose reply is lost)
//   drop-response  forwarded and completed upstream, then the connection is reset (the client retries)
//   reset-before   the connection is reset before anything is forwarded
//   reset-body     forwarded; the full Content-Length, half the body, then a reset
//   truncate-body  forwarded; half the body with a Content-Length that matches it
//   slow-body      forwarded; the full Content-Length, half the body trickled in small pieces, then
//                  silence until the client gives up (its read deadline fires; it resumes or retries)
//   status-500/502/503  answered by the proxy with that status, not forwarded (403: a lasting refusal)
//   throttle       answered 429 with `Retry-After: 1`, not forwarded
import { createServer, request, Agent, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

type LieMode = 'flip' | 'truncate' | 'abort';

export interface LyingProxyOptions {
  /** Registry base URL (`http://127.0.0.1:PORT`) or host (`127.0.0.1:PORT`). */
  upstream: string;
  /** Blob digests whose GETs are answered with altered bytes (also manifests GET by digest). */
  digests?: Iterable<string>;
  /** Repositories whose every blob GET is altered. */
  repositories?: Iterable<string>;
  mode?: LieMode;
  intercept?: (request: { method: string; path: string; query: string }) => InterceptAction | undefined;
}

export type InterceptAction =
  | 'hold'
  | 'lose-response'
  | 'drop-response'
  | 'reset-before'
  | 'reset-body'
  | 'truncate-body'
  | 'slow-body'
  | 'status-500'
  | 'status-502'
  | 'status-503'
  | 'status-403'
  | 'throttle';

export const TRANSIENT_FAULTS: readonly InterceptAction[] = [
  'drop-response',
  'reset-before',
  'reset-body',
  'truncate-body',
  'slow-body',
  'status-500',
  'status-502',
  'status-503',
  'throttle',
];

/** Faults that need a response body to break (GETs). */
export const BODY_FAULTS: readonly InterceptAction[] = ['reset-body', 'truncate-body', 'slow-body'];

export interface LyingProxy {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** `127.0.0.1:PORT`, for `docker://` references and endpoint configs. */
  host: string;
  /** Adds digests / repositories to lie about, or changes the mode, while running. */
  digests: Set<string>;
  repositories: Set<string>;
  mode: LieMode;
  /** Every lie told, in order: which path, which digest, which mode. */
  lies: Array<{ path: string; digest: string; mode: LieMode }>;
  /** Requests forwarded (method and path), in order. */
  requests: Array<{ method: string; path: string }>;
  /** Requests `intercept` stalled, in order. */
  intercepted: Array<{ method: string; path: string; action: InterceptAction; upstreamDone: boolean }>;
  stop(): Promise<void>;
}

const BLOB_PATH = /^\/v2\/(.+)\/blobs\/(sha256:[a-f0-9]{64})$/;
const MANIFEST_BY_DIGEST_PATH = /^\/v2\/(.+)\/manifests\/(sha256:[a-f0-9]{64})$/;
const FLIP_EVERY = 4096;

/** truncate / abort: buffers the body (test blobs are small enough) and sends half of it. */
function sendHalf(
  upstreamRes: IncomingMessage,
  res: ServerResponse,
  status: number,
  headers: Record<string, unknown>,
  mode: 'truncate' | 'abort' | 'stall',
): void {
  const chunks: Buffer[] = [];
  upstreamRes.on('data', (chunk: Buffer) => chunks.push(chunk));
  upstreamRes.on('end', () => {
    const body = Buffer.concat(chunks);
    const half = body.subarray(0, Math.floor(body.length / 2));
    if (mode === 'truncate') {
      res.writeHead(status, upstreamRes.statusMessage, { ...headers, 'content-length': String(half.length) } as never);
      res.end(half);
    } else if (mode === 'stall') {
      res.writeHead(status, upstreamRes.statusMessage, { ...headers, 'content-length': String(body.length) } as never);
      const pieces = 4;
      const size = Math.ceil(half.length / pieces);
      for (let i = 0; i < pieces; i++) setTimeout(() => res.write(half.subarray(i * size, (i + 1) * size)), i * 50);
      // Then nothing more: the connection stays open until the client closes it.
    } else {
      res.writeHead(status, upstreamRes.statusMessage, { ...headers, 'content-length': String(body.length) } as never);
      res.write(half, () => setTimeout(() => res.destroy(), 20));
    }
  });
}

export async function startLyingProxy(options: LyingProxyOptions): Promise<LyingProxy> {
  const upstream = new URL(options.upstream.includes('://') ? options.upstream : `http://${options.upstream}`);
  const agent = new Agent({ keepAlive: true });
  const state = {
    digests: new Set(options.digests ?? []),
    repositories: new Set(options.repositories ?? []),
    mode: options.mode ?? ('flip' as LieMode),
    lies: [] as LyingProxy['lies'],
    requests: [] as LyingProxy['requests'],
    intercepted: [] as LyingProxy['intercepted'],
  };

  function lieFor(method: string, path: string): string | undefined {
    if (method !== 'GET') return undefined;
    const blob = BLOB_PATH.exec(path);
    if (blob && (state.digests.has(blob[2]!) || state.repositories.has(blob[1]!))) return blob[2];
    const manifest = MANIFEST_BY_DIGEST_PATH.exec(path);
    if (manifest && state.digests.has(manifest[2]!)) return manifest[2];
    return undefined;
  }

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const method = req.method ?? 'GET';
    const rawPath = req.url ?? '/';
    const path = rawPath.split('?')[0]!;
    state.requests.push({ method, path });
    const action = options.intercept?.({ method, path, query: rawPath.slice(path.length) });
    const stalled = action && { method, path, action, upstreamDone: false };
    if (stalled) state.intercepted.push(stalled);
    if (action === 'hold') return;
    if (action === 'reset-before') {
      req.socket.destroy();
      return;
    }
    if (action === 'throttle' || action?.startsWith('status-')) {
      req.resume();
      const status = action === 'throttle' ? 429 : Number(action.slice('status-'.length));
      res.writeHead(status, { 'content-type': 'text/plain', ...(status === 429 ? { 'retry-after': '1' } : {}) });
      res.end(`fault proxy: injected ${status}`);
      return;
    }
    const lie = lieFor(method, path);
    // Host is forwarded unchanged, so the registry builds upload Locations pointing at the proxy.
    const upstreamReq = request(
      { protocol: upstream.protocol, hostname: upstream.hostname, port: upstream.port, method, path: rawPath, headers: req.headers, agent },
      (upstreamRes) => {
        const headers = { ...upstreamRes.headers };
        const location = headers.location;
        if (typeof location === 'string' && location.startsWith(upstream.origin)) {
          headers.location = `http://${req.headers.host}${location.slice(upstream.origin.length)}`;
        }
        const status = upstreamRes.statusCode ?? 502;
        if (action === 'lose-response' || action === 'drop-response') {
          upstreamRes.on('end', () => {
            stalled!.upstreamDone = true;
            if (action === 'drop-response') req.socket.destroy();
          });
          upstreamRes.resume();
          return;
        }
        // Body faults only where there is a body to break (GET 200/206); anything else passes.
        if (action && BODY_FAULTS.includes(action) && method === 'GET' && (status === 200 || status === 206)) {
          sendHalf(upstreamRes, res, status, headers, action === 'reset-body' ? 'abort' : action === 'slow-body' ? 'stall' : 'truncate');
          return;
        }
        if (!lie || (status !== 200 && status !== 206)) {
          res.writeHead(status, upstreamRes.statusMessage, headers);
          upstreamRes.pipe(res);
          return;
        }
        const mode = state.mode;
        state.lies.push({ path, digest: lie, mode });
        if (mode === 'flip') {
          res.writeHead(status, upstreamRes.statusMessage, headers);
          let offset = 0;
          upstreamRes.on('data', (chunk: Buffer) => {
            const out = Buffer.from(chunk);
            for (let i = (FLIP_EVERY - (offset % FLIP_EVERY)) % FLIP_EVERY; i < out.length; i += FLIP_EVERY) out[i] = out[i]! ^ 0xff;
            offset += out.length;
            if (!res.write(out)) {
              upstreamRes.pause();
              res.once('drain', () => upstreamRes.resume());
            }
          });
          upstreamRes.on('end', () => res.end());
          return;
        }
        sendHalf(upstreamRes, res, status, headers, mode);
      },
    );
    upstreamReq.on('error', (err) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`lying proxy: upstream error ${err.message}`);
    });
    res.on('close', () => {
      if (!res.writableFinished) upstreamReq.destroy();
    });
    req.pipe(upstreamReq);
  });
  server.keepAliveTimeout = 1_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const host = `127.0.0.1:${port}`;

  return {
    url: `http://${host}`,
    host,
    get digests() {
      return state.digests;
    },
    get repositories() {
      return state.repositories;
    },
    get mode() {
      return state.mode;
    },
    set mode(mode: LieMode) {
      state.mode = mode;
    },
    get lies() {
      return state.lies;
    },
    get requests() {
      return state.requests;
    },
    get intercepted() {
      return state.intercepted;
    },
    async stop() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      agent.destroy();
    },
  };
}
