// The services of a test file (moto, registries) as vitest fixtures: one call registers a beforeAll
// that starts them all in parallel and an afterAll that stops them, and returns a handle per service
// that reads through to the running service once beforeAll has run.
//
//   const { moto, source } = useServices({ moto: motoService({ awsEnv: true, buckets: ['b'] }), source: registryService() });
//   const registry = useRegistry({ username: 'u', password: 'p' });
//
// Called inside a describe, the services live for that describe only.
import { CreateRepositoryCommand } from '@aws-sdk/client-ecr';
import { afterAll, beforeAll } from 'vitest';
import { applyAwsEnv, createBucket, startMoto, type TestMoto } from './moto.ts';
import { startRegistry, type RegistryOptions, type TestRegistry } from './registry.ts';

interface ServiceSpec<T> {
  start(): Promise<T>;
  stop(service: T): Promise<void>;
}

type Started<S> = { [K in keyof S]: S[K] extends ServiceSpec<infer T> ? T : never };

export interface MotoOptions {
  /** Point this process's AWS SDK at moto while the services run (AWS_ENDPOINT_URL etc., restored after). */
  awsEnv?: boolean;
  /** S3 buckets to create. */
  buckets?: string[];
  /** ECR repositories to create (moto's control plane; the images' bytes go to a registry, see ecr-images.ts). */
  repositories?: string[];
}

export function motoService(options: MotoOptions = {}): ServiceSpec<TestMoto> {
  let restoreEnv: (() => void) | undefined;
  return {
    async start() {
      const service = await startMoto();
      if (options.awsEnv) restoreEnv = applyAwsEnv(service.env);
      try {
        for (const bucket of options.buckets ?? []) await createBucket(service, bucket);
        if (options.repositories?.length) {
          const ecr = service.ecr();
          for (const repositoryName of options.repositories) await ecr.send(new CreateRepositoryCommand({ repositoryName }));
          ecr.destroy();
        }
      } catch (error) {
        // Not running yet as far as useServices knows, so its afterAll would not stop it.
        restoreEnv?.();
        await service.stop();
        throw error;
      }
      return service;
    },
    async stop(service) {
      restoreEnv?.();
      await service.stop();
    },
  };
}

export function registryService(options: RegistryOptions = {}): ServiceSpec<TestRegistry> {
  return { start: () => startRegistry(options), stop: (service) => service.stop() };
}

/** A stand-in that forwards every property to the service once it runs, and says so when used too early. */
function handle<T extends object>(name: string, current: () => T | undefined): T {
  return new Proxy({} as T, {
    get(_, key) {
      const service = current();
      // Not thenable before start: `await handle` must not throw.
      if (service === undefined && key === 'then') return undefined;
      if (service === undefined) throw new Error(`test service '${name}' used outside its beforeAll/afterAll`);
      return Reflect.get(service, key);
    },
    has: (_, key) => key in (current() ?? {}),
    ownKeys: () => Reflect.ownKeys(current() ?? {}),
    getOwnPropertyDescriptor: (_, key) => {
      const service = current();
      return service && Object.getOwnPropertyDescriptor(service, key);
    },
  });
}

export function useServices<S extends Record<string, ServiceSpec<object>>>(specs: S): Started<S> {
  const running = new Map<string, object>();
  beforeAll(async () => {
    const entries = Object.entries(specs);
    const started = await Promise.allSettled(entries.map(([, spec]) => spec.start()));
    started.forEach((result, i) => {
      if (result.status === 'fulfilled') running.set(entries[i]![0], result.value);
    });
    const failed = started.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
  });
  afterAll(async () => {
    const stopping = [...running].map(([name, service]) => specs[name]!.stop(service));
    running.clear();
    await Promise.all(stopping);
  });
  return Object.fromEntries(Object.keys(specs).map((name) => [name, handle(name, () => running.get(name))])) as Started<S>;
}

export const useMoto = (options: MotoOptions = {}): TestMoto => useServices({ moto: motoService(options) }).moto;

export const useRegistry = (options: RegistryOptions = {}): TestRegistry => useServices({ registry: registryService(options) }).registry;
