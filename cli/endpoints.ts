// Builds the two ends of a CLI run from its options: the registry (any OCI registry by URL, or the
// caller's ECR registry) and the backup store (by URL). Configuration errors become UsageError so
// they exit 2 with one clear line.
import { EcrEndpoint } from '../core/registry/ecr.ts';
import { RegistryEndpoint } from '../core/registry/registry.ts';
import { RegistryConfigError } from '../core/registry/errors.ts';
import { openBackupStore as openStoreAt, StoreUrlError } from '../core/store/url.ts';
import type { BackupStore } from '../core/store/backup-store.ts';
import type { ImageEndpoint } from '../core/model/endpoint.ts';
import { ENV } from '../schema/environment.ts';

export class UsageError extends Error {
  override name = 'UsageError';
}

export interface RegistryOptions {
  registry?: string;
  insecure?: boolean;
  username?: string;
  passwordStdin?: boolean;
  password?: string;
}

/**
 * ECR by default. ECR_BACKUP_ECR_REGISTRY_URL replaces the registry address the authorization token
 * names (tests point it at a local registry; a VPC endpoint DNS name is the production use).
 */
export function openRegistry(options: RegistryOptions): ImageEndpoint {
  if (options.username && !options.passwordStdin)
    throw new UsageError('--username needs --password-stdin (passwords are never taken as arguments)');
  if (options.passwordStdin && !options.username) throw new UsageError('--password-stdin needs --username');
  if (!options.registry) {
    if (options.username) throw new UsageError('--username applies to --registry; ECR credentials come from the AWS SDK');
    return new EcrEndpoint({ registryUrl: process.env[ENV.ECR_REGISTRY_URL] || undefined });
  }
  try {
    return new RegistryEndpoint(options.registry, {
      insecure: options.insecure,
      ...(options.username ? { credentials: { username: options.username, password: options.password ?? '' } } : {}),
    });
  } catch (error) {
    if (error instanceof RegistryConfigError) throw new UsageError(error.message);
    throw error;
  }
}

/** `existing`: the command only reads the store, so a missing local directory is an error (exit 2). */
export function openBackupStore(url: string, options: { asOf?: string; existing?: boolean } = {}): BackupStore {
  let asOf: Date | undefined;
  if (options.asOf !== undefined) {
    asOf = new Date(options.asOf);
    if (!/^\d{4}-\d{2}-\d{2}(T|$)/.test(options.asOf) || Number.isNaN(asOf.getTime())) {
      throw new UsageError(`--as-of must be an ISO 8601 time such as 2026-01-31T12:00:00Z, got ${JSON.stringify(options.asOf)}`);
    }
  }
  try {
    return openStoreAt(url, { ...(asOf ? { asOf } : {}), store: { existing: options.existing ?? false } });
  } catch (error) {
    if (error instanceof StoreUrlError) throw new UsageError(error.message);
    throw error;
  }
}

export async function readPasswordFromStdin(): Promise<string> {
  if (process.stdin.isTTY) throw new UsageError('--password-stdin expects the password on standard input (pipe it in)');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const password = Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
  if (!password) throw new UsageError('--password-stdin: standard input was empty');
  return password;
}
