// ECR throttling during a large listing (scripted client: moto never throttles).
import { DescribeImagesCommand, DescribeRepositoriesCommand, ECRClient } from '@aws-sdk/client-ecr';
import { describe, expect, it } from 'vitest';
import { planImages } from '../core/engine/plan.ts';
import { EcrEndpoint } from '../core/registry/ecr.ts';

const digest = (n: number) => `sha256:${String(n).padStart(64, '0')}`;

function scriptedEcr(throttledCalls: Record<string, number>) {
  const calls: string[] = [];
  // An ECRClient whose send is scripted: the SDK paginators accept only ECRClient instances.
  const client = Object.assign(new ECRClient({ region: 'us-east-1' }), {
    async send(command: unknown) {
      if (command instanceof DescribeRepositoriesCommand) {
        calls.push('DescribeRepositories');
        return { repositories: ['a', 'b', 'c'].map((repositoryName) => ({ repositoryName })) };
      }
      if (command instanceof DescribeImagesCommand) {
        const name = command.input.repositoryName!;
        calls.push(`DescribeImages ${name}`);
        if ((throttledCalls[name] ?? 0) > 0) {
          throttledCalls[name]!--;
          throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } });
        }
        return { imageDetails: [{ imageDigest: digest(name.charCodeAt(0)), imageTags: ['1.0'], imageSizeInBytes: 10 }] };
      }
      throw new Error(`unexpected command ${(command as object).constructor.name}`);
    },
  }) as unknown as ECRClient;
  return { client, calls };
}

describe('ECR throttling (scripted client: moto never throttles)', () => {
  it('a throttled repository is retried and the listing completes with every repository', async () => {
    const { client, calls } = scriptedEcr({ b: 3 });
    const ecr = new EcrEndpoint({ client, registryUrl: 'http://127.0.0.1:9', throttle: { baseDelayMs: 1, ratePerSecond: 1000 } });
    const items = await planImages(ecr);
    expect(items.map((i) => i.repository)).toEqual(['a', 'b', 'c']);
    expect(calls.filter((c) => c === 'DescribeImages b')).toHaveLength(4);
  });

  it('gives up after the configured attempts with the throttling error named', async () => {
    const { client } = scriptedEcr({ b: 100 });
    const ecr = new EcrEndpoint({
      client,
      registryUrl: 'http://127.0.0.1:9',
      throttle: { baseDelayMs: 1, ratePerSecond: 1000, maxAttempts: 3 },
    });
    await expect(planImages(ecr)).rejects.toThrow(/ThrottlingException/);
  });
});
