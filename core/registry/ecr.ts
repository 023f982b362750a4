// Amazon ECR as an ImageEndpoint. Listing and repository creation use the ECR API, which knows what a
// registry's catalog cannot (untagged images, sizes, push times) and pages through any number of
// repositories; bytes move over ECR's OCI registry API through a RegistryEndpoint whose Basic
// credentials come from GetAuthorizationToken and are renewed well before their 12-hour expiry.
import type { Readable } from 'node:stream';
import {
  BatchDeleteImageCommand,
  CreateRepositoryCommand,
  DeleteRepositoryCommand,
  ECRClient,
  GetAuthorizationTokenCommand,
  paginateDescribeImages,
  paginateDescribeRepositories,
  type ImageDetail,
} from '@aws-sdk/client-ecr';
import { throttledClient, type EcrThrottleOptions } from './ecr-throttle.ts';
import type { ImageEndpoint, ImageListing, ImageReference, ImageRepository, RegistryAccess } from '../model/endpoint.ts';
import type { Descriptor, Manifest } from '../model/manifest.ts';
import type { Credentials, CredentialsProvider } from './credentials.ts';
import { RegistryAuthError, RegistryError, RegistryNotFoundError } from './errors.ts';
import { validRepository } from '../model/reference.ts';
import { RegistryEndpoint, type RegistryEndpointOptions } from './registry.ts';
import type { RegistryRepository } from './registry-repository.ts';
import type { RepositorySettings } from '../../schema/repository-settings.ts';
import type { ApplyOptions, RepositoryPreparation } from '../model/repository-settings.ts';
import {
  compareExistingRepository,
  createRepositoryWithSettings,
  describedSettings,
  readRepositorySettings,
} from './repository-settings.ts';
import type { ShardRepository } from '../../schema/listing-shards.ts';
import { errorText } from '../redact.ts';

/** The part of ECRClient the token and settings calls use, so tests can hand in a scripted client. */
export type EcrClientLike = Pick<ECRClient, 'send'>;

export interface EcrEndpointOptions {
  /** Default: the SDK's (AWS_REGION, profile). */
  region?: string;
  /** The account whose registry to use (cross-account backup/restore); default: the caller's. */
  registryId?: string;
  /** Registry API URL instead of the token's proxyEndpoint (tests, private endpoints). */
  registryUrl?: string;
  /**
   * Default: `new ECRClient({ region })` in adaptive retry mode. Either way calls go through
   * `throttle`. An ECRClient (a scripted one overrides `send`): the SDK paginators require one.
   */
  client?: ECRClient;
  /** Client-side rate limit and throttling retries for ECR API calls (ecr-throttle.ts). */
  throttle?: EcrThrottleOptions;
  /** Renew the authorization token when less than this is left; default 30 minutes. */
  refreshBeforeExpiryMs?: number;
  /** Timeouts, retries, upload sizes and `insecure` for the registry API. */
  registry?: Omit<RegistryEndpointOptions, 'credentials'>;
}

interface EcrToken {
  credentials: Credentials;
  proxyEndpoint: string;
  /** When to renew: the margin before expiry, or half the lifetime for a token issued shorter-lived. */
  refreshAt: number;
}

const TOKEN_LIFETIME_MS = 12 * 60 * 60 * 1000;

/** GetAuthorizationToken as a credentials provider: cached, renewed ahead of expiry, one renewal at a time. */
export class EcrAuthorization implements CredentialsProvider {
  private current?: Promise<EcrToken>;

  constructor(
    private readonly client: EcrClientLike,
    private readonly registryId: string | undefined,
    private readonly refreshBeforeExpiryMs: number,
  ) {}

  async get(): Promise<Credentials> {
    return (await this.token()).credentials;
  }

  async token(): Promise<EcrToken> {
    const current = this.current;
    const token = current && (await current.catch(() => undefined));
    if (token && Date.now() < token.refreshAt) return token;
    // Whoever notices first renews; callers arriving meanwhile share that renewal.
    if (this.current === current) this.current = this.fetch();
    return this.current!;
  }

  private async fetch(): Promise<EcrToken> {
    const output = await this.client
      .send(new GetAuthorizationTokenCommand(this.registryId ? { registryIds: [this.registryId] } : {}))
      .catch((error: unknown) => {
        throw ecrError(error, 'ECR GetAuthorizationToken');
      });
    const data = output.authorizationData?.[0];
    const decoded = Buffer.from(data?.authorizationToken ?? '', 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (!data?.proxyEndpoint || colon <= 0) throw new RegistryAuthError('ECR GetAuthorizationToken returned no usable token');
    const now = Date.now();
    const lifetime = (data.expiresAt?.getTime() ?? now + TOKEN_LIFETIME_MS) - now;
    return {
      credentials: { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) },
      proxyEndpoint: data.proxyEndpoint,
      refreshAt: now + lifetime - Math.min(this.refreshBeforeExpiryMs, lifetime / 2),
    };
  }
}

export class EcrEndpoint implements ImageEndpoint {
  readonly description: string;
  readonly client: ECRClient;
  readonly registryId?: string;
  private readonly authorization: EcrAuthorization;
  private dataPlane?: Promise<RegistryEndpoint>;

  constructor(private readonly options: EcrEndpointOptions = {}) {
    const client =
      options.client ?? new ECRClient({ ...(options.region ? { region: options.region } : {}), retryMode: 'adaptive', maxAttempts: 5 });
    this.client = throttledClient(client, options.throttle);
    this.registryId = options.registryId;
    this.authorization = new EcrAuthorization(this.client, options.registryId, options.refreshBeforeExpiryMs ?? 30 * 60 * 1000);
    const region = options.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'default-region';
    this.description = `ecr://${options.registryId ?? 'default-account'}/${region}`;
  }

  async listRepositories(): Promise<string[]> {
    return (await this.describeRepositories()).map((r) => r.name);
  }

  /**
   * Every repository with what DescribeRepositories says about it (its ARN and the settings it
   * reports), one request per 1,000 repositories: the sharded listing's first step.
   */
  async describeRepositories(): Promise<ShardRepository[]> {
    const repositories: ShardRepository[] = [];
    const pages = paginateDescribeRepositories({ client: this.client }, { registryId: this.registryId, maxResults: 1000 });
    await eachPage(pages, `${this.description} DescribeRepositories`, (page) => {
      for (const repository of page.repositories ?? []) {
        if (!repository.repositoryName) continue;
        repositories.push({
          name: repository.repositoryName,
          ...(repository.repositoryArn ? { arn: repository.repositoryArn } : {}),
          described: describedSettings(repository),
        });
      }
    });
    return repositories;
  }

  repository(name: string): EcrRepository {
    return new EcrRepository(this, validRepository(name));
  }

  /**
   * Creates the repository, with the recorded settings when given (see repository-settings.ts). An
   * existing repository is never changed: with settings, the result lists how it differs from them.
   */
  async ensureRepository(name: string, settings?: RepositorySettings, options: ApplyOptions = {}): Promise<RepositoryPreparation> {
    const repositoryName = validRepository(name);
    if (settings) {
      const created = await createRepositoryWithSettings(this.client, repositoryName, settings, {
        ...options,
        registryId: this.registryId,
      }).catch((error: unknown) => {
        throw ecrError(error, `${this.description} ${name}: CreateRepository`);
      });
      return created ?? compareExistingRepository(this.client, repositoryName, settings, { ...options, registryId: this.registryId });
    }
    try {
      await this.client.send(new CreateRepositoryCommand({ repositoryName, registryId: this.registryId }));
      return { action: 'created', settingsApplied: false };
    } catch (error) {
      if ((error as { name?: unknown }).name !== 'RepositoryAlreadyExistsException')
        throw ecrError(error, `${this.description} ${name}: CreateRepository`);
      return { action: 'exists' };
    }
  }

  /** Tag mutability, scan on push, encryption, lifecycle and repository policies, and tags, as configured now. */
  async repositorySettings(name: string): Promise<RepositorySettings> {
    return readRepositorySettings(this.client, validRepository(name), this.registryId).catch((error: unknown) => {
      throw ecrError(error, `${this.description} ${name}: reading repository settings`);
    });
  }

  /** The registry API endpoint, created on first use (its URL comes from the first token). */
  registry(): Promise<RegistryEndpoint> {
    this.dataPlane ??= (async () => {
      const url = this.options.registryUrl ?? (await this.authorization.token()).proxyEndpoint;
      return new RegistryEndpoint(url, { ...this.options.registry, credentials: this.authorization });
    })().catch((error: unknown) => {
      this.dataPlane = undefined;
      throw error;
    });
    return this.dataPlane;
  }

  /** BatchDeleteImage of one digest (ECR removes an index's children with it); an absent image is no error. */
  async deleteImage(repository: string, digest: string): Promise<void> {
    const out = await this.client.send(
      new BatchDeleteImageCommand({ repositoryName: repository, registryId: this.registryId, imageIds: [{ imageDigest: digest }] }),
    );
    const failure = out.failures?.find((f) => f.failureCode !== 'ImageNotFound');
    if (failure) throw new Error(`${repository}@${digest}: ${failure.failureCode}: ${failure.failureReason}`);
  }

  /** DeleteRepository with whatever is left in it; a repository that does not exist is no error. */
  async deleteRepository(name: string): Promise<void> {
    try {
      await this.client.send(new DeleteRepositoryCommand({ repositoryName: name, registryId: this.registryId, force: true }));
    } catch (error) {
      if ((error as { name?: string }).name !== 'RepositoryNotFoundException') throw error;
    }
  }

  async registryAccess(): Promise<RegistryAccess> {
    return (await this.registry()).registryAccess();
  }

  async close(): Promise<void> {
    const dataPlane = await this.dataPlane?.catch(() => undefined);
    await dataPlane?.close();
  }
}

export class EcrRepository implements ImageRepository {
  constructor(
    private readonly endpoint: EcrEndpoint,
    readonly name: string,
  ) {}

  get location(): string {
    return this.endpoint.description;
  }

  /**
   * One listing per tag, plus a digest-only listing for each untagged image (callers filter those).
   * Sizes and push times come from DescribeImages, so listing needs no manifest fetches.
   */
  async listImages(): Promise<ImageListing[]> {
    const listings: ImageListing[] = [];
    const { client, registryId, description } = this.endpoint;
    const pages = paginateDescribeImages({ client }, { repositoryName: this.name, registryId, maxResults: 1000 });
    await eachPage(pages, `${description} ${this.name}: DescribeImages`, (page) => {
      for (const image of page.imageDetails ?? []) listings.push(...toListings(image));
    });
    return listings;
  }

  async getManifest(ref: ImageReference): Promise<Manifest> {
    return (await this.data()).getManifest(ref);
  }

  async openBlob(descriptor: Descriptor): Promise<Readable> {
    return (await this.data()).openBlob(descriptor);
  }

  async hasManifest(descriptor: Descriptor): Promise<boolean> {
    return (await this.data()).hasManifest(descriptor);
  }

  async hasBlob(descriptor: Descriptor): Promise<boolean> {
    return (await this.data()).hasBlob(descriptor);
  }

  async putBlob(descriptor: Descriptor, body: Readable): Promise<void> {
    return (await this.data()).putBlob(descriptor, body);
  }

  async mountBlob(descriptor: Descriptor): Promise<boolean> {
    return (await this.data()).mountBlob(descriptor);
  }

  async putManifest(manifest: Manifest, ref?: ImageReference): Promise<void> {
    return (await this.data()).putManifest(manifest, ref);
  }

  private async data(): Promise<RegistryRepository> {
    return (await this.endpoint.registry()).repository(this.name);
  }
}

function toListings(image: ImageDetail): ImageListing[] {
  const common: ImageListing = {
    ...(image.imageDigest ? { digest: image.imageDigest } : {}),
    ...(image.imageSizeInBytes !== undefined ? { sizeBytes: image.imageSizeInBytes } : {}),
    ...(image.imagePushedAt ? { time: image.imagePushedAt.toISOString() } : {}),
  };
  const tags = image.imageTags ?? [];
  return tags.length ? tags.map((tag) => ({ tag, ...common })) : [common];
}

/**
 * Runs `use` on every page of an SDK paginator, mapping a failed request onto the registry errors.
 * The paginator sends through the endpoint's client, so every page keeps the rate limit, the
 * throttling retries (ecr-throttle.ts) and the SDK's adaptive retry.
 */
async function eachPage<P>(pages: AsyncIterable<P>, context: string, use: (page: P) => void): Promise<void> {
  try {
    for await (const page of pages) use(page);
  } catch (error) {
    throw ecrError(error, context);
  }
}

/** Maps ECR API failures onto the registry error classes the CLI already recognises. */
function ecrError(error: unknown, context: string): RegistryError {
  const name = (error as { name?: unknown }).name;
  const message = errorText(error);
  const details = { code: typeof name === 'string' ? name : undefined, cause: error };
  if (name === 'RepositoryNotFoundException' || name === 'RegistryNotFoundException')
    return new RegistryNotFoundError(`${context}: not found (${message})`, details);
  if (
    name === 'AccessDeniedException' ||
    name === 'UnrecognizedClientException' ||
    name === 'ExpiredTokenException' ||
    name === 'CredentialsProviderError'
  ) {
    return new RegistryAuthError(`${context}: access denied (${name})`, details);
  }
  return new RegistryError(`${context}: ${details.code ?? 'failed'}: ${message}`, details);
}
