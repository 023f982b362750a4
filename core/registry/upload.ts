// Blob uploads (distribution spec "push"). Small blobs are read into memory, verified, and sent as
// POST + PUT, which can be retried because the body is replayable. Large blobs are streamed as
// chunked PATCHes of a bounded size, so memory stays at about one chunk whatever the blob size. A
// PATCH is not retried: after a lost response the upload's offset is unknown and registries refuse
// a resumed session at the wrong offset, so a failed chunked upload is cancelled and the copy engine
// transfers the blob again in a new session (Copier.transferBlob, transient failures only). The
// digest is checked before the final PUT, so a bad body never commits.
import type { Readable } from 'node:stream';
import { ContentHash, type Digest } from '../model/digest.ts';
import type { Descriptor } from '../model/manifest.ts';
import { RegistryAuthError, RegistryError, RegistryNotFoundError } from './errors.ts';
import { discard, header, type HttpClient, type HttpRequest, type HttpResponse } from './http.ts';

export interface UploadOptions {
  /** Blobs up to this size go up in one PUT (buffered, retryable); default 8 MiB. */
  monolithicMaxBytes: number;
  /** PATCH size for larger blobs; also the memory an upload holds. Default 16 MiB (ECR wants >= 5 MiB). */
  chunkBytes: number;
}

/** What an upload needs of its registry endpoint (RegistryEndpoint is one): declared here so the two modules do not import each other. */
export interface UploadTransport {
  readonly http: Pick<HttpClient, 'retry'>;
  readonly upload: UploadOptions;
  url(path: string): URL;
  /** One authorised attempt, whatever the status. */
  send(req: HttpRequest, scopes: string[], context: string): Promise<HttpResponse>;
  /** One authorised attempt that must answer one of `ok`; not retried. */
  attempt(req: HttpRequest, scopes: string[], context: string, ok?: number[]): Promise<HttpResponse>;
  /** `attempt` with retries. */
  call(req: HttpRequest, scopes: string[], context: string, ok?: number[]): Promise<HttpResponse>;
  /** A registry-provided location, resolved and checked to be on the registry's origin. */
  resolve(location: string | undefined, base: URL, context: string): URL;
  /** Another repository that holds `digest`, to mount from. */
  blobHome(digest: string, except: string): string | undefined;
}

type BlobDescriptor = Descriptor & { digest: Digest };
const OCTETS = { 'content-type': 'application/octet-stream' };

export async function uploadBlob(
  endpoint: UploadTransport,
  repository: string,
  descriptor: BlobDescriptor,
  body: Readable,
  context: string,
): Promise<void> {
  if (descriptor.size <= endpoint.upload.monolithicMaxBytes) await monolithic(endpoint, repository, descriptor, body, context);
  else await chunked(endpoint, repository, descriptor, body, context);
}

/** Mounts the blob from another repository of this registry known to hold it; false when not possible. */
export async function mountBlob(
  endpoint: UploadTransport,
  repository: string,
  descriptor: BlobDescriptor,
  context: string,
): Promise<boolean> {
  const session = await tryMount(endpoint, repository, descriptor, context);
  if (session instanceof URL) await cancel(endpoint, repository, session, context);
  return session === 'mounted';
}

/**
 * Asks for a cross-repository mount when this endpoint knows another repository holding the blob.
 * The registry answers 201 when it mounted, or 202 with an ordinary upload session (returned, to be
 * used). A mount we may not make (no pull on the source, source gone) is just a missed shortcut.
 */
async function tryMount(
  endpoint: UploadTransport,
  repository: string,
  descriptor: BlobDescriptor,
  context: string,
): Promise<URL | 'mounted' | undefined> {
  const from = endpoint.blobHome(descriptor.digest, repository);
  if (!from) return undefined;
  const url = endpoint.url(`/v2/${repository}/blobs/uploads/`);
  url.searchParams.set('mount', descriptor.digest);
  url.searchParams.set('from', from);
  try {
    return await start(endpoint, url, [push(repository), `repository:${from}:pull`], context);
  } catch (error) {
    if (error instanceof RegistryAuthError || error instanceof RegistryNotFoundError) return undefined;
    throw error;
  }
}

/** A fresh upload session. */
async function open(endpoint: UploadTransport, repository: string, context: string): Promise<URL> {
  const session = await start(endpoint, endpoint.url(`/v2/${repository}/blobs/uploads/`), [push(repository)], context);
  if (session === 'mounted') throw new RegistryError(`${context}: the registry answered an upload request as a mount`);
  return session;
}

/** POST to the uploads URL. Retrying it is safe: at worst a session is left for the registry's upload purge. */
async function start(endpoint: UploadTransport, url: URL, scopes: string[], context: string): Promise<URL | 'mounted'> {
  const res = await endpoint.call({ method: 'POST', url, body: Buffer.alloc(0) }, scopes, context, [201, 202]);
  await discard(res);
  return res.statusCode === 201 ? 'mounted' : endpoint.resolve(header(res, 'location'), url, context);
}

async function monolithic(
  endpoint: UploadTransport,
  repository: string,
  descriptor: BlobDescriptor,
  body: Readable,
  context: string,
): Promise<void> {
  const bytes = await readExactly(body, descriptor);
  // A session is single-use, so every attempt opens its own.
  await endpoint.http.retry(async () => {
    const url = await open(endpoint, repository, context);
    url.searchParams.set('digest', descriptor.digest);
    await discard(await endpoint.attempt({ method: 'PUT', url, headers: OCTETS, body: bytes }, [push(repository)], context, [201]));
  });
}

async function chunked(
  endpoint: UploadTransport,
  repository: string,
  descriptor: BlobDescriptor,
  body: Readable,
  context: string,
): Promise<void> {
  let upload = await open(endpoint, repository, context);
  const content = new ContentHash(descriptor);
  try {
    for await (const chunk of rechunk(body, endpoint.upload.chunkBytes)) {
      const offset = content.size;
      content.update(chunk);
      const headers = { ...OCTETS, 'content-range': `${offset}-${offset + chunk.length - 1}` };
      const res = await endpoint.attempt({ method: 'PATCH', url: upload, headers, body: chunk }, [push(repository)], context, [202]);
      await discard(res);
      upload = endpoint.resolve(header(res, 'location'), upload, context);
    }
    content.verify();
    const url = new URL(upload);
    url.searchParams.set('digest', descriptor.digest);
    await discard(await endpoint.attempt({ method: 'PUT', url, body: Buffer.alloc(0) }, [push(repository)], context, [201]));
  } catch (error) {
    await cancel(endpoint, repository, upload, context);
    throw error;
  }
}

/** Best effort: the registry purges abandoned sessions anyway. */
async function cancel(endpoint: UploadTransport, repository: string, upload: URL, context: string): Promise<void> {
  await endpoint
    .send({ method: 'DELETE', url: upload }, [push(repository)], context)
    .then(discard)
    .catch(() => undefined);
}

/** Reads a small body whole, refusing more bytes than promised, and checks its digest. */
async function readExactly(body: Readable, descriptor: BlobDescriptor): Promise<Buffer> {
  const parts: Buffer[] = [];
  const content = new ContentHash(descriptor);
  for await (const chunk of body as AsyncIterable<Buffer>) {
    content.update(chunk);
    parts.push(chunk);
  }
  content.verify();
  return Buffer.concat(parts);
}

/** Re-cuts a stream into `size`-byte chunks (the last one shorter), holding one chunk at a time. */
async function* rechunk(body: Readable, size: number): AsyncGenerator<Buffer> {
  let buffer = Buffer.allocUnsafe(size);
  let filled = 0;
  for await (const piece of body as AsyncIterable<Buffer>) {
    for (let at = 0; at < piece.length; ) {
      const n = Math.min(size - filled, piece.length - at);
      piece.copy(buffer, filled, at, at + n);
      filled += n;
      at += n;
      if (filled === size) {
        yield buffer;
        buffer = Buffer.allocUnsafe(size);
        filled = 0;
      }
    }
  }
  if (filled > 0) yield buffer.subarray(0, filled);
}

function push(repository: string): string {
  return `repository:${repository}:pull,push`;
}
