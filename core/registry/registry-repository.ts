// One repository of an OCI registry (RegistryRepository, the registry's ImageRepository): tag
// listing, manifest GET/HEAD/PUT, and blob reads that follow redirects by hand and resume.
import type { Readable } from 'node:stream';
import { isDigest } from '../../schema/names.ts';
import { DigestMismatchError } from '../model/digest.ts';
import type { ImageListing, ImageReference, ImageRepository } from '../model/endpoint.ts';
import {
  blobsOf,
  MANIFEST_ACCEPT,
  manifestFromBytes,
  MAX_MANIFEST_BYTES,
  UnsupportedManifestError,
  type Descriptor,
  type Manifest,
} from '../model/manifest.ts';
import { RegistryError } from './errors.ts';
import {
  assertTransport,
  backoff,
  discard,
  errorFromResponse,
  header,
  mayRetry,
  type HttpClient,
  type HttpRequest,
  type HttpResponse,
} from './http.ts';
import { validDigest, validTag } from '../model/reference.ts';
import { resumableStream } from '../resumable.ts';
import { mountBlob, uploadBlob, type UploadTransport } from './upload.ts';

/**
 * What a repository needs of its registry endpoint (RegistryEndpoint is one): declared here so
 * registry.ts (which constructs repositories) and this module do not import each other.
 */
export interface RepositoryTransport extends UploadTransport {
  readonly description: string;
  readonly baseUrl: URL;
  readonly insecure: boolean;
  readonly http: HttpClient;
  /** GET of a small body, retried as a whole. */
  fetch(req: HttpRequest, scopes: string[], context: string, limit: number): Promise<{ res: HttpResponse; bytes: Buffer }>;
  /** A paged listing (catalog or tags), within the listing limits. */
  paginate(first: URL, scopes: string[], context: string, field: 'repositories' | 'tags'): Promise<string[]>;
  noteBlob(digest: string, repository: string): void;
}

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

export class RegistryRepository implements ImageRepository {
  constructor(
    private readonly endpoint: RepositoryTransport,
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
    const res = await this.headManifest(validTag(tag));
    const served = header(res, 'docker-content-digest');
    return res.statusCode === 200 && served && isDigest(served) ? served : undefined;
  }

  async hasManifest(descriptor: Descriptor): Promise<boolean> {
    return (await this.headManifest(validDigest(descriptor.digest))).statusCode === 200;
  }

  /** HEAD of a manifest by tag or digest (already validated): 200 or 404, the body discarded. */
  private async headManifest(reference: string): Promise<HttpResponse> {
    const res = await this.endpoint.call(
      { method: 'HEAD', url: this.endpoint.url(`/v2/${this.name}/manifests/${reference}`), headers: { accept: MANIFEST_ACCEPT } },
      this.scopes(false),
      this.context(reference),
      [200, 404],
    );
    await discard(res);
    return res;
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
   * Streams a blob. A body that breaks or ends short is resumed from where it stopped (a Range
   * request; a registry that ignores Range sends the whole blob again and the delivered part is
   * skipped), within the retry policy (core/resumable.ts). Redirects to another origin are fetched
   * without our Authorization.
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

/** A URL (possibly relative to `base`), or undefined when it does not parse. */
export function parseUrl(value: string, base: URL): URL | undefined {
  try {
    return new URL(value, base);
  } catch {
    return undefined;
  }
}
