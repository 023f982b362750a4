// RegistryEndpoints and loopback servers for registry tests, all closed together by closeAll() in the
// test file's afterAll (each test file runs in its own module instance, so the list is per file).
import { RegistryEndpoint, type RegistryEndpointOptions } from '../../core/registry/registry.ts';

export const ECR_USER = 'AWS';
export const ECR_PASSWORD = '123456789012-auth-token'; // what moto's GetAuthorizationToken hands out
/** The credentials of a registry standing in for ECR's data plane (moto's ECR is control plane only). */
export const ECR_AUTH = { username: ECR_USER, password: ECR_PASSWORD };
export const FAST_RETRY = { retry: { maxAttempts: 4, baseDelayMs: 10, maxDelayMs: 50, maxRetryAfterMs: 5_000 } };

const cleanups: (() => Promise<unknown>)[] = [];

/** Runs `close` in closeAll(). */
export function closeLater(close: () => Promise<unknown>): void {
  cleanups.push(close);
}

export async function closeAll(): Promise<void> {
  await Promise.allSettled(cleanups.splice(0).map((c) => c()));
}

/** An endpoint closed after the tests; anonymous unless given credentials (never the machine's auth files). */
export function endpoint(url: string, options: RegistryEndpointOptions = {}): RegistryEndpoint {
  const e = new RegistryEndpoint(url, { credentials: { get: async () => undefined }, ...options });
  closeLater(() => e.close());
  return e;
}
