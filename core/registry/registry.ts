// An OCI distribution-spec v2 registry as an ImageEndpoint. Names are checked against the OCI grammar
// before any URL is built, manifests are kept as the exact bytes served and checked against their
// digest, and blob GETs follow redirects by hand so the registry's Authorization header never
// reaches another origin (ECR hands layer GETs to presigned S3 URLs).
import type { Readable } from 'node:stream';
import { isDigest } from '../../schema/names.ts';
import { DigestMismatchError } from '../model/digest.ts';
import type { ImageEndpoint, ImageListing, ImageReference, ImageRepository } from '../model/endpoint.ts';
import {
  blobsOf,
  MANIFEST_ACCEPT,
  manifestFromBytes,
  UnsupportedManifestError,
  type Descriptor,
  type Manifest,
} from '../model/manifest.ts';
import { Authenticator } from './auth.ts';
import { authFileCredentials, staticCredentials, type Credentials, type CredentialsProvider } from './credentials.ts';
import { RegistryConfigError, RegistryError } from './errors.ts';
import {
  assertTransport,
  backoff,
  discard,
  errorFromResponse,
  header,
  HttpClient,
  mayRetry,
  readBody,
  type HttpOptions,
  type HttpRequest,
  type HttpResponse,
} from './http.ts';
import { validDigest, validRepository, validTag } from './reference.ts';
import { resumableStream } from '../resumable.ts';
import { mountBlob, uploadBlob, type UploadOptions } from './upload.ts';

export interface RegistryEndpointOptions extends Partial<UploadOptions> {
  /** Explicit credentials or a provider; default: the auth files (REGISTRY_AUTH_FILE, containers, docker). */
  credentials?: Credentials | CredentialsProvider;
  /** Allow plain http to a non-loopback host (and to token realms and redirects). */
  insecure?: boolean;
  /** Timeouts and retry policy. */
  http?: Partial<HttpOptions>;
  /** `n` for catalog and tag listing pages; default 1000. */
  pageSize?: number;
  /** Bounds of one catalog or tag listing (a registry can send `Link: rel=next` forever). */
  listing?: Partial<ListingLimits>;
}

export interface ListingLimits {
  maxPages: number;
  maxEntries: number;
  maxDurationMs: number;
}

/** ECR's own caps are 10,000 repositories and 20,000 images per repository; these leave room. */
const DEFAULT_LISTING_LIMITS: ListingLimits = { maxPages: 10_000, maxEntries: 1_000_000, maxDurationMs: 30 * 60 * 1000 };

/** Registries cap manifests at a few MiB (distribution: 4 MiB); refuse to buffer more. */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_LISTING_BYTES = 32 * 1024 * 1024;
const MAX_REDIRECTS = 5;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

function isJson(bytes: Buffer): boolean {
  try {
    JSON.parse(bytes.toString('utf8'));
    return true;
  } catch {
    return false;
  }
}

/** The first byte of a `Content-Range: bytes START-END/TOTAL` answer, or -1. */
function rangeStart(value: string | undefined): number {
  const m = value ? /^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(value.trim()) : null;
  return m ? Number(m[1]) : -1;
}

export class RegistryEndpoint implements ImageEndpoint {
  readonly description: string;
  readonly baseUrl: URL;
  readonly insecure: boolean;
  readonly http: HttpClient;
  readonly upload: UploadOptions;
  private readonly pageSize: number;
  private readonly listing: ListingLimits;
  private readonly auth: Authenticator;
  /** Where this endpoint's credentials come from (also handed to skopeo by core/archive). */
  readonly credentials: CredentialsProvider;
  private ping?: Promise<void>;
  /** digest -> a repository of this registry known to hold the blob: where a mount can come from. */
  private readonly blobHomes = new Map<string, string>();

  constructor(url: string, options: RegistryEndpointOptions = {}) {
    let base: URL;
    try {
      base = new URL(url);
    } catch {
      throw new RegistryConfigError('registry URL is not a URL (expected https://host[:port])');
    }
    if (base.username || base.password) throw new RegistryConfigError('registry URL must not embed credentials; pass them as credentials');
    if (base.pathname !== '/' || base.search || base.hash)
      throw new RegistryConfigError(`registry URL for ${base.host} must be just scheme://host[:port]`);
    this.insecure = options.insecure ?? false;
    assertTransport(base, this.insecure, `registry ${base.host}`);
    this.baseUrl = base;
    this.description = `docker://${base.host}`;
    this.upload = { monolithicMaxBytes: options.monolithicMaxBytes ?? 8 * 1024 * 1024, chunkBytes: options.chunkBytes ?? 16 * 1024 * 1024 };
    if (this.upload.chunkBytes < 1 || this.upload.monolithicMaxBytes < 0) throw new RegistryConfigError('upload sizes must be positive');
    this.pageSize = options.pageSize ?? 1000;
    this.listing = { ...DEFAULT_LISTING_LIMITS, ...options.listing };
    this.http = new HttpClient(options.http);
    const credentials = options.credentials;
    const provider = !credentials ? authFileCredentials(base.host) : 'get' in credentials ? credentials : staticCredentials(credentials);
    this.credentials = provider;
    this.auth = new Authenticator(this.http, provider, this.description, this.insecure);
  }

  async listRepositories(): Promise<string[]> {
    return this.paginate(this.url('/v2/_catalog'), ['registry:catalog:*'], `${this.description} catalog`, 'repositories');
  }

  repository(name: string): RegistryRepository {
    return new RegistryRepository(this, validRepository(name));
  }

  /** Releases pooled connections. */
  async close(): Promise<void> {
    await this.http.close();
  }

  // ---- used by RegistryRepository and the upload module -------------------------------------------

  url(path: string): URL {
    return new URL(path, this.baseUrl);
  }

  /**
   * One authorised attempt: asks the authenticator for a header, and on a 401 lets it learn the
   * challenge (or refresh an expired token) and replays the request once. Bodies are Buffers, so
   * replaying is safe. Returns whatever status came back.
   */
  async send(req: HttpRequest, scopes: string[], context: string): Promise<HttpResponse> {
    this.ping ??= this.pingOnce().catch((error: unknown) => {
      this.ping = undefined;
      throw error;
    });
    await this.ping;
    for (let replayed = false; ; replayed = true) {
      const authorization = await this.auth.authorization(scopes);
      const res = await this.http.send({ ...req, headers: { ...req.headers, ...(authorization ? { authorization } : {}) } }, context);
      if (res.statusCode !== 401 || replayed) return res;
      if (!(await this.auth.unauthorized(header(res, 'www-authenticate'), scopes, authorization !== undefined))) return res;
      await discard(res);
    }
  }

  /** One attempt that must answer one of `ok`; anything else becomes a structured error. Not retried. */
  async attempt(req: HttpRequest, scopes: string[], context: string, ok: number[] = [200]): Promise<HttpResponse> {
    const res = await this.send(req, scopes, context);
    if (ok.includes(res.statusCode)) return res;
    throw await errorFromResponse(res, context);
  }

  /** `attempt` with retries: only for requests that are safe to repeat. */
  async call(req: HttpRequest, scopes: string[], context: string, ok: number[] = [200]): Promise<HttpResponse> {
    return this.http.retry(() => this.attempt(req, scopes, context, ok));
  }

  /** GET of a small body (manifest, listing), retried as a whole: reading the body is part of the attempt. */
  async fetch(req: HttpRequest, scopes: string[], context: string, limit: number): Promise<{ res: HttpResponse; bytes: Buffer }> {
    return this.http.retry(async () => {
      const res = await this.attempt(req, scopes, context);
      return { res, bytes: await readBody(res, limit, context, this.http.options.smallBodyDeadlineMs) };
    });
  }

  /** A URL the registry handed back (upload Location, Link): resolved, and never on another origin. */
  resolve(location: string | undefined, base: URL, context: string): URL {
    const url = location ? parseUrl(location, base) : undefined;
    if (!url || url.origin !== this.baseUrl.origin)
      throw new RegistryError(`${context}: the registry answered with a missing or foreign location`);
    return url;
  }

  noteBlob(digest: string, repository: string): void {
    this.blobHomes.set(digest, repository);
  }

  /** Another repository of this registry that holds `digest`, to mount from. */
  blobHome(digest: string, except: string): string | undefined {
    const home = this.blobHomes.get(digest);
    return home !== except ? home : undefined;
  }

  /**
   * Follows `Link: <...>; rel="next"` pages, collecting `field` from each JSON page, within the
   * listing limits (pages, entries, time): a registry that never stops paging fails this listing.
   */
  async paginate(first: URL, scopes: string[], context: string, field: 'repositories' | 'tags'): Promise<string[]> {
    first.searchParams.set('n', String(this.pageSize));
    const items: string[] = [];
    const seen = new Set<string>();
    const { maxPages, maxEntries, maxDurationMs } = this.listing;
    const deadline = Date.now() + maxDurationMs;
    for (let url: URL | undefined = first; url && !seen.has(url.href); ) {
      if (seen.size >= maxPages)
        throw new RegistryError(`${context}: the listing goes on past ${maxPages} pages; refusing to follow it further`);
      if (Date.now() > deadline)
        throw new RegistryError(
          `${context}: the listing took longer than ${Math.round(maxDurationMs / 1000)} s; refusing to follow it further`,
        );
      seen.add(url.href);
      const { res, bytes } = await this.fetch(
        { method: 'GET', url, headers: { accept: 'application/json' } },
        scopes,
        context,
        MAX_LISTING_BYTES,
      );
      let page: Record<string, unknown>;
      try {
        page = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
      } catch {
        throw new RegistryError(`${context}: the registry's listing is not JSON`);
      }
      const values = page[field];
      // One at a time: spreading a page of 100k+ entries into push() overflows the call stack.
      if (Array.isArray(values)) {
        for (const v of values) if (typeof v === 'string') items.push(v);
      }
      if (items.length > maxEntries)
        throw new RegistryError(`${context}: the listing has more than ${maxEntries} entries; refusing to hold it`);
      const next = /<([^>]*)>\s*;[^,]*rel="?next"?/.exec(header(res, 'link') ?? '');
      url = next ? this.resolve(next[1], url, context) : undefined;
    }
    return items;
  }

  /** Not retried itself: it runs inside the first request's attempt, which is. */
  private async pingOnce(): Promise<void> {
    const context = `${this.description} /v2/`;
    const res = await this.http.send({ method: 'GET', url: this.url('/v2/') }, context);
    if (res.statusCode !== 200 && res.statusCode !== 401) throw await errorFromResponse(res, `${context} (is this an OCI registry?)`);
    this.auth.learn(res.statusCode === 401 ? header(res, 'www-authenticate') : undefined);
    await discard(res);
  }
}

export class RegistryRepository implements ImageRepository {
  constructor(
    private readonly endpoint: RegistryEndpoint,
    readonly name: string,
  ) {}

  get location(): string {
    return this.endpoint.description;
  }

  async listImages(): Promise<ImageListing[]> {
    const tags = await this.endpoint.paginate(this.endpoint.url(`/v2/${this.name}/tags/list`), this.scopes(false), this.context(), 'tags');
    return tags.map((tag) => ({ tag }));
  }

  /**
   * Fetches a manifest. A body that arrives damaged (cut short under a matching Content-Length, or
   * not hashing to the digest asked for) is fetched again within the retry policy; the request
   * itself is already retried by `fetch`.
   */
  async getManifest(ref: ImageReference): Promise<Manifest> {
    const reference = 'tag' in ref ? validTag(ref.tag) : validDigest(ref.digest);
    const context = this.context(reference);
    const policy = this.endpoint.http.options.retry;
    const began = Date.now();
    for (let n = 1; ; n++) {
      const { res, bytes } = await this.endpoint.fetch(
        { method: 'GET', url: this.endpoint.url(`/v2/${this.name}/manifests/${reference}`), headers: { accept: MANIFEST_ACCEPT } },
        this.scopes(false),
        context,
        MAX_MANIFEST_BYTES,
      );
      // Verify against what was asked for, else against what the registry says it served.
      const served = header(res, 'docker-content-digest');
      const digest = 'digest' in ref ? ref.digest : served && isDigest(served) ? served : undefined;
      try {
        return manifestFromBytes(bytes, {
          mediaType: header(res, 'content-type') ?? ('mediaType' in ref ? ref.mediaType : undefined),
          digest,
        });
      } catch (error) {
        const damaged = error instanceof DigestMismatchError || !isJson(bytes);
        if (damaged && mayRetry(policy, n, began)) {
          await backoff(policy, n);
          continue;
        }
        if (error instanceof UnsupportedManifestError) throw new UnsupportedManifestError(`${context}: ${error.message}`, { cause: error });
        throw error;
      }
    }
  }

  async resolveTagDigest(tag: string): Promise<string | undefined> {
    const reference = validTag(tag);
    const res = await this.endpoint.call(
      { method: 'HEAD', url: this.endpoint.url(`/v2/${this.name}/manifests/${reference}`), headers: { accept: MANIFEST_ACCEPT } },
      this.scopes(false),
      this.context(reference),
      [200, 404],
    );
    await discard(res);
    const served = header(res, 'docker-content-digest');
    return res.statusCode === 200 && served && isDigest(served) ? served : undefined;
  }

  async hasManifest(descriptor: Descriptor): Promise<boolean> {
    const digest = validDigest(descriptor.digest);
    const res = await this.endpoint.call(
      { method: 'HEAD', url: this.endpoint.url(`/v2/${this.name}/manifests/${digest}`), headers: { accept: MANIFEST_ACCEPT } },
      this.scopes(false),
      this.context(digest),
      [200, 404],
    );
    await discard(res);
    return res.statusCode === 200;
  }

  async hasBlob(descriptor: Descriptor): Promise<boolean> {
    const digest = validDigest(descriptor.digest);
    const url = this.endpoint.url(`/v2/${this.name}/blobs/${digest}`);
    // A redirect means the registry found the blob and would send us to its storage.
    const res = await this.endpoint.call({ method: 'HEAD', url }, this.scopes(false), this.context(digest), [200, 404, ...REDIRECTS]);
    await discard(res);
    if (res.statusCode === 404) return false;
    this.endpoint.noteBlob(digest, this.name);
    return true;
  }

  /**
   * Streams a blob. Retried only until the body is handed over; after that a failure is the
   * caller's stream error. Redirects to another origin are fetched without our Authorization.
   */
  /**
   * Streams a blob. A body that breaks or ends short is resumed from where it stopped (a Range
   * request; a registry that ignores Range sends the whole blob again and the delivered part is
   * skipped), within the retry policy (core/resumable.ts).
   */
  async openBlob(descriptor: Descriptor): Promise<Readable> {
    const digest = validDigest(descriptor.digest);
    const context = this.context(digest);
    const first = this.endpoint.url(`/v2/${this.name}/blobs/${digest}`);
    const open = (offset: number) =>
      this.endpoint.http.retry(async () => {
        const headers = offset > 0 ? { range: `bytes=${offset}-` } : undefined;
        let url = first;
        let res = await this.endpoint.send({ method: 'GET', url, ...(headers ? { headers } : {}) }, this.scopes(false), context);
        for (let hops = 0; REDIRECTS.has(res.statusCode); hops++) {
          const location = header(res, 'location');
          await discard(res);
          const next = location && hops < MAX_REDIRECTS ? parseUrl(location, url) : undefined;
          // The target is left out of messages: a presigned URL's query string is a credential.
          if (!next) throw new RegistryError(`${context}: too many, empty or malformed redirects`);
          url = next;
          assertTransport(url, this.endpoint.insecure, `${context}: redirect`);
          res =
            url.origin === this.endpoint.baseUrl.origin
              ? await this.endpoint.send({ method: 'GET', url, ...(headers ? { headers } : {}) }, this.scopes(false), context)
              : await this.endpoint.http.send(
                  { method: 'GET', url, ...(headers ? { headers } : {}) },
                  `${context} (redirected to ${url.host})`,
                );
        }
        const start = res.statusCode === 206 ? rangeStart(header(res, 'content-range')) : 0;
        if (res.statusCode !== 200 && !(res.statusCode === 206 && start === offset)) {
          throw await errorFromResponse(res, url.origin === first.origin ? context : `${context} (redirected to ${url.host})`);
        }
        return { body: res.body as Readable, start };
      });
    const { body } = await open(0);
    this.endpoint.noteBlob(digest, this.name);
    return resumableStream(body, {
      size: descriptor.size,
      reopen: open,
      context: `GET ${context}`,
      policy: this.endpoint.http.options.retry,
    });
  }

  /** Uploads a blob (the engine tries `mountBlob` first, so a mountable blob is never read). */
  async putBlob(descriptor: Descriptor, body: Readable): Promise<void> {
    const digest = validDigest(descriptor.digest);
    await uploadBlob(this.endpoint, this.name, { ...descriptor, digest }, body, this.context(digest));
    this.endpoint.noteBlob(digest, this.name);
  }

  /** Makes the blob present by cross-repository mount when possible; false when it could not. */
  async mountBlob(descriptor: Descriptor): Promise<boolean> {
    const digest = validDigest(descriptor.digest);
    const mounted = await mountBlob(this.endpoint, this.name, { ...descriptor, digest }, this.context(digest));
    if (mounted) this.endpoint.noteBlob(digest, this.name);
    return mounted;
  }

  /**
   * PUTs the exact bytes with their media type: by tag when `ref` is a tag (the registry then holds
   * it by digest too, so a second PUT by digest would only cost a round trip), else by digest. The
   * digest the registry reports must be ours, or it has altered the manifest.
   */
  async putManifest(manifest: Manifest, ref?: ImageReference): Promise<void> {
    const digest = validDigest(manifest.descriptor.digest);
    if (ref && 'digest' in ref && ref.digest !== digest) {
      throw new DigestMismatchError({ digest: ref.digest, size: manifest.bytes.length }, { digest, size: manifest.bytes.length });
    }
    const reference = ref && 'tag' in ref ? validTag(ref.tag) : digest;
    const context = this.context(reference);
    const res = await this.endpoint.call(
      {
        method: 'PUT',
        url: this.endpoint.url(`/v2/${this.name}/manifests/${reference}`),
        headers: { 'content-type': manifest.descriptor.mediaType },
        body: manifest.bytes,
      },
      this.scopes(true),
      context,
      [200, 201],
    );
    await discard(res);
    const stored = header(res, 'docker-content-digest');
    if (stored && stored !== digest)
      throw new RegistryError(`${context}: the registry stored the manifest as ${stored}, expected ${digest}`);
    for (const blob of blobsOf(manifest)) this.endpoint.noteBlob(blob.digest, this.name);
  }

  private scopes(push: boolean): string[] {
    return [`repository:${this.name}:${push ? 'pull,push' : 'pull'}`];
  }

  private context(reference?: string): string {
    const suffix = reference === undefined ? '' : reference.startsWith('sha256:') ? `@${reference}` : `:${reference}`;
    return `${this.endpoint.description} ${this.name}${suffix}`;
  }
}

function parseUrl(value: string, base: URL): URL | undefined {
  try {
    return new URL(value, base);
  } catch {
    return undefined;
  }
}
