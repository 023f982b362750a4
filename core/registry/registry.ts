// An OCI distribution-spec v2 registry as an ImageEndpoint. Names are checked against the OCI grammar
// before any URL is built, manifests are kept as the exact bytes served and checked against their
// digest, and blob GETs follow redirects by hand so the registry's Authorization header never
// reaches another origin (ECR hands layer GETs to presigned S3 URLs). One repository: registry-repository.ts.
import type { ImageEndpoint, RegistryAccess } from '../model/endpoint.ts';
import { childManifests, isIndex } from '../model/manifest.ts';
import { Authenticator } from './auth.ts';
import { authFileCredentials, staticCredentials, type Credentials, type CredentialsProvider } from './credentials.ts';
import { RegistryConfigError, RegistryError } from './errors.ts';
import {
  assertTransport,
  discard,
  errorFromResponse,
  header,
  HttpClient,
  readBody,
  type HttpOptions,
  type HttpRequest,
  type HttpResponse,
} from './http.ts';
import { validRepository } from '../model/reference.ts';
import type { UploadOptions } from './upload.ts';
import { DEFAULT_LISTING_LIMITS, paginate, type ListingLimits } from './registry-listing.ts';
import { parseUrl, RegistryRepository, type RepositoryTransport } from './registry-repository.ts';

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

export class RegistryEndpoint implements ImageEndpoint, RepositoryTransport {
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

  /** DELETE of the manifest and, for an index, its child manifests (the CNCF registry needs `delete: enabled`). */
  async deleteImage(repository: string, digest: string): Promise<void> {
    const manifest = await this.repository(repository).getManifest({ digest });
    const digests = [digest, ...(isIndex(manifest) ? childManifests(manifest).map((c) => c.digest) : [])];
    for (const d of digests) {
      const res = await this.attempt(
        { method: 'DELETE', url: this.url(`/v2/${repository}/manifests/${d}`) },
        [`repository:${repository}:delete`],
        `${this.description} ${repository}@${d}: delete`,
        [202, 200, 404],
      );
      await discard(res);
    }
  }

  /** TLS is verified unless the registry is plain http, which the constructor accepts only for loopback or `insecure`. */
  async registryAccess(): Promise<RegistryAccess> {
    const credentials = await this.credentials.get();
    return { host: this.baseUrl.host, tlsVerify: this.baseUrl.protocol === 'https:', ...(credentials ? { credentials } : {}) };
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

  /** A paged listing within this endpoint's page size and listing limits (see registry-listing.ts). */
  paginate(first: URL, scopes: string[], context: string, field: 'repositories' | 'tags'): Promise<string[]> {
    return paginate(this, first, scopes, context, field, { pageSize: this.pageSize, limits: this.listing });
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
