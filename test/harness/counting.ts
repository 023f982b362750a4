// Request counters for budget tests and the scale benchmark: AWS SDK clients (every request the
// client sends, retries included, by command), and a loopback HTTP proxy in front of a registry
// (every request by method and kind: manifests, blobs, tags, other).
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ObjectStore } from '../../core/store/object-store.ts';

type Counts = Record<string, number>;

export interface Counter {
  counts: Counts;
  /** AWS clients: `${command} ${Key}` for requests naming one object (to find repeated HEADs). */
  keys: Counts;
  total(filter?: (name: string) => boolean): number;
  reset(): void;
}

function counter(): Counter {
  const c: Counter = {
    counts: {},
    keys: {},
    total: (filter = () => true) => Object.entries(c.counts).reduce((n, [k, v]) => (filter(k) ? n + v : n), 0),
    reset: () => {
      for (const k of Object.keys(c.counts)) delete c.counts[k];
      for (const k of Object.keys(c.keys)) delete c.keys[k];
    },
  };
  return c;
}

/** Counts every request an AWS SDK v3 client sends (after retries: one per attempt), by command name. */
export function countSdkRequests(client: { middlewareStack: { add: (...args: never[]) => void } }): Counter {
  const c = counter();
  const add = client.middlewareStack.add as unknown as (
    middleware: (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) => (args: unknown) => Promise<unknown>,
    options: { step: string; name: string },
  ) => void;
  add(
    (next, context) => async (args) => {
      const name = (context.commandName ?? 'unknown').replace(/Command$/, '');
      c.counts[name] = (c.counts[name] ?? 0) + 1;
      const key = (args as { input?: { Key?: unknown } }).input?.Key;
      if (typeof key === 'string') c.keys[`${name} ${key}`] = (c.keys[`${name} ${key}`] ?? 0) + 1;
      return next(args);
    },
    { step: 'finalizeRequest', name: `requestCounter${Math.random()}` },
  );
  return c;
}

export interface CountingProxy extends Counter {
  /** `127.0.0.1:PORT`, for registry endpoints. */
  host: string;
  url: string;
  stop(): Promise<void>;
}

const kindOf = (path: string) =>
  /\/manifests\//.test(path)
    ? 'manifest'
    : /\/blobs\//.test(path)
      ? 'blob'
      : /\/tags\/list/.test(path)
        ? 'tags'
        : /\/_catalog/.test(path)
          ? 'catalog'
          : 'other';

/** A forwarding proxy in front of `upstream` (`127.0.0.1:PORT`) that counts `${METHOD} ${kind}`. */
export async function startCountingProxy(upstream: string): Promise<CountingProxy> {
  const c = counter();
  const [hostname, port] = upstream.split(':');
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const name = `${req.method} ${kindOf(req.url ?? '')}`;
    c.counts[name] = (c.counts[name] ?? 0) + 1;
    const forward = request(
      { hostname, port: Number(port), path: req.url, method: req.method, headers: { ...req.headers, host: upstream } },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    ...c,
    get counts() {
      return c.counts;
    },
    get keys() {
      return c.keys;
    },
    host,
    url: `http://${host}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * An ObjectStore that counts the calls it forwards, named like the S3 requests they would be
 * (a listing counts one request per 1,000 keys, as ListObjectsV2 pages): for the directory backend.
 */
export function countingObjectStore(inner: ObjectStore): { store: ObjectStore; counter: Counter } {
  const c = counter();
  const note = (name: string, key?: string) => {
    c.counts[name] = (c.counts[name] ?? 0) + 1;
    if (key !== undefined) c.keys[`${name} ${key}`] = (c.keys[`${name} ${key}`] ?? 0) + 1;
  };
  const store: ObjectStore = {
    description: inner.description,
    get: (key) => {
      note('GetObject', key);
      return inner.get(key);
    },
    getBytes: (key) => {
      note('GetObject', key);
      return inner.getBytes(key);
    },
    head: (key) => {
      note('HeadObject', key);
      return inner.head(key);
    },
    put: (key, body, options) => {
      note('PutObject', key);
      return inner.put(key, body, options);
    },
    delete: (key) => {
      note('DeleteObject', key);
      return inner.delete(key);
    },
    ...(inner.deleteMany
      ? {
          deleteMany: (keys: readonly string[]) => {
            note('DeleteObjects');
            return inner.deleteMany!(keys);
          },
        }
      : {}),
    async *list(prefix) {
      let n = 0;
      note('ListObjectsV2');
      for await (const object of inner.list(prefix)) {
        if (++n % 1000 === 0) note('ListObjectsV2');
        yield object;
      }
    },
  };
  return { store, counter: c };
}
