// A scripted hostile OCI registry for the hostile-input corpus: it serves real images from memory
// (so the copy engine, the store and the CLI run for real against it) and lets a test replace any
// route with misbehaviour: an endless or enormous listing, a trickling body, an error that echoes
// credentials, an index that lists the same child again and again. Mocked because no real registry
// misbehaves on demand; everything behind it (engine, store, CLI) is the real code.
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StoredManifest {
  bytes: Buffer;
  mediaType: string;
}

/** A route override: return true when it answered the request. */
export type Route = (req: IncomingMessage, res: ServerResponse, url: URL) => boolean | Promise<boolean>;

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

export const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

export class HostileRegistry {
  readonly blobs = new Map<string, Buffer>();
  readonly manifests = new Map<string, StoredManifest>();
  /** repository -> tag -> manifest digest */
  readonly repositories = new Map<string, Map<string, string>>();
  /** Extra names `_catalog` lists (valid or not) beside the repositories above. */
  readonly extraCatalog: string[] = [];
  readonly routes: Route[] = [];
  /** Requests seen, by `METHOD path`. */
  readonly requests = new Map<string, number>();
  private server?: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      void this.handle(req, res).catch(() => res.destroy());
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  addBlob(bytes: Buffer): { mediaType: string; digest: string; size: number } {
    const digest = sha256(bytes);
    this.blobs.set(digest, bytes);
    return { mediaType: 'application/octet-stream', digest, size: bytes.length };
  }

  addManifest(value: unknown, mediaType: string): { mediaType: string; digest: string; size: number } {
    const bytes = Buffer.from(JSON.stringify(value));
    const digest = sha256(bytes);
    this.manifests.set(digest, { bytes, mediaType });
    return { mediaType, digest, size: bytes.length };
  }

  /** A small single-platform image; returns its manifest descriptor. */
  addImage(seed: string): { mediaType: string; digest: string; size: number } {
    const config = this.addBlob(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', seed })));
    const layer = this.addBlob(Buffer.from(`layer of ${seed}`));
    return this.addManifest(
      {
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { ...config, mediaType: 'application/vnd.oci.image.config.v1+json' },
        layers: [{ ...layer, mediaType: 'application/vnd.oci.image.layer.v1.tar' }],
      },
      OCI_MANIFEST,
    );
  }

  tag(repository: string, tag: string, digest: string): void {
    const tags = this.repositories.get(repository) ?? new Map<string, string>();
    tags.set(tag, digest);
    this.repositories.set(repository, tags);
  }

  count(prefix: string): number {
    let n = 0;
    for (const [key, value] of this.requests) if (key.startsWith(prefix)) n += value;
    return n;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const key = `${req.method} ${url.pathname}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    for (const route of this.routes) if (await route(req, res, url)) return;
    if (url.pathname === '/v2/') return json(res, 200, {});
    if (url.pathname === '/v2/_catalog') return json(res, 200, { repositories: [...this.repositories.keys(), ...this.extraCatalog] });
    const m = /^\/v2\/(.+)\/(tags\/list|manifests|blobs)\/?(.*)$/.exec(url.pathname);
    if (!m) return json(res, 404, { errors: [{ code: 'NAME_UNKNOWN', message: 'unknown' }] });
    const [, name, kind, reference] = m as unknown as [string, string, string, string];
    const tags = this.repositories.get(name);
    if (kind === 'tags/list')
      return tags ? json(res, 200, { name, tags: [...tags.keys()] }) : json(res, 404, { errors: [{ code: 'NAME_UNKNOWN' }] });
    if (kind === 'manifests') {
      const digest = reference.startsWith('sha256:') ? reference : tags?.get(reference);
      const manifest = digest ? this.manifests.get(digest) : undefined;
      if (!manifest) return json(res, 404, { errors: [{ code: 'MANIFEST_UNKNOWN' }] });
      res.writeHead(200, { 'content-type': manifest.mediaType, 'docker-content-digest': digest!, 'content-length': manifest.bytes.length });
      res.end(req.method === 'HEAD' ? undefined : manifest.bytes);
      return;
    }
    const blob = this.blobs.get(reference);
    if (!blob) return json(res, 404, { errors: [{ code: 'BLOB_UNKNOWN' }] });
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'docker-content-digest': reference, 'content-length': blob.length });
    res.end(req.method === 'HEAD' ? undefined : blob);
  }
}

export function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const bytes = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': bytes.length, ...headers });
  res.end(bytes);
}
