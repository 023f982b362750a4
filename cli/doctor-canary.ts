// `ecr-backup doctor --canary`: the one check that writes. It starts a backup of a scratch repository
// on the deployed workflow, exactly as `ecr-backup run` does, then a restore of it under a prefix, and
// compares the restored images' digests with the source's (ECR DescribeImages). What only a real run
// proves (Fargate pulls the image, the task reaches ECR and S3 through the endpoints, KMS, the Lambda
// runtime) is proven here.
import { DescribeExecutionCommand, StartExecutionCommand, type SFNClient } from '@aws-sdk/client-sfn';
import { DescribeImagesCommand, type ECRClient, type ImageDetail } from '@aws-sdk/client-ecr';
import { parseExecutionInput } from '../schema/contract.ts';
import type { Check, StackFacts } from './doctor-checks.ts';
import { defaultExecutionName } from './workflow.ts';

export const CANARY_REPOSITORY = 'ecr-backup-doctor-canary';
/** Restored copies land under this prefix, never over the source. */
export const CANARY_RESTORE_PREFIX = 'ecr-backup-doctor-restored/';

export interface CanaryClients {
  sfn: SFNClient;
  ecr: ECRClient;
}

const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED']);

export async function runCanary(
  clients: CanaryClients,
  facts: StackFacts,
  options: { repository: string; pollMs: number },
): Promise<Check> {
  const name = `canary: backup and restore of ${options.repository}`;
  const source = await tagDigests(clients.ecr, options.repository);
  if (!source || source.size === 0) {
    return {
      name,
      status: 'FAIL',
      detail: `repository ${options.repository} ${source ? 'has no tagged image' : 'does not exist'}`,
      fix: `create it with one small image within the stack's repositories (e.g. skopeo copy docker://public.ecr.aws/docker/library/busybox:latest docker://<registry>/${options.repository}:canary), or pass --canary-repository`,
    };
  }
  const restored = `${CANARY_RESTORE_PREFIX}${options.repository}`;
  for (const input of [
    { mode: 'backup', repositories: [options.repository] },
    { mode: 'restore', repositories: [options.repository], target: { repositoryPrefix: CANARY_RESTORE_PREFIX } },
  ]) {
    const parsed = parseExecutionInput(input);
    const started = await clients.sfn.send(
      new StartExecutionCommand({
        stateMachineArn: facts.stateMachineArn,
        name: defaultExecutionName(`doctor-${parsed.mode}`),
        input: JSON.stringify(parsed),
      }),
    );
    const execution = await waitFor(clients.sfn, started.executionArn!, options.pollMs);
    if (execution.status !== 'SUCCEEDED') {
      return {
        name,
        status: 'FAIL',
        detail: `${parsed.mode} execution ${execution.status}${execution.error ? `: ${execution.error}` : ''} (${started.executionArn})`,
        fix: `read the execution in the Step Functions console and its worker logs; then: ecr-backup runs --stack ${facts.stackName}`,
      };
    }
  }
  const copy = (await tagDigests(clients.ecr, restored)) ?? new Map<string, string>();
  const differing = [...source]
    .filter(([tag, digest]) => copy.get(tag) !== digest)
    .map(([tag, digest]) => `${tag}: ${digest} -> ${copy.get(tag) ?? 'missing'}`);
  return differing.length
    ? {
        name,
        status: 'FAIL',
        detail: `restored digests differ: ${differing.join('; ')}`,
        fix: 'this is a bug in ecr-backup: report it with the run reports under runs/ in the store',
      }
    : {
        name,
        status: 'ok',
        detail: `${source.size} tag(s) backed up and restored to ${restored}, digests equal (delete ${restored} when done)`,
      };
}

async function waitFor(sfn: SFNClient, executionArn: string, pollMs: number) {
  for (;;) {
    const execution = await sfn.send(new DescribeExecutionCommand({ executionArn }));
    if (TERMINAL.has(execution.status ?? '')) return execution;
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/** tag -> digest of a repository's tagged images; undefined when the repository does not exist. */
async function tagDigests(ecr: ECRClient, repositoryName: string): Promise<Map<string, string> | undefined> {
  const images: ImageDetail[] = [];
  let nextToken: string | undefined;
  try {
    do {
      const page = await ecr.send(new DescribeImagesCommand({ repositoryName, nextToken }));
      images.push(...(page.imageDetails ?? []));
      nextToken = page.nextToken;
    } while (nextToken);
  } catch (error) {
    if ((error as Error).name === 'RepositoryNotFoundException') return undefined;
    throw error;
  }
  return new Map(images.flatMap((i) => (i.imageTags ?? []).map((tag) => [tag, i.imageDigest!] as const)));
}
