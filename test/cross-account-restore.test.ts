// Cross-account restore on the worker side: a restore target with `roleArn` makes the ECR client
// work with that role's temporary credentials. moto answers STS AssumeRole and then treats the
// assumed credentials as the role's account, so where a repository lands shows whose credentials
// the client used.
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { CreateRepositoryCommand, DescribeRepositoriesCommand, ECRClient } from '@aws-sdk/client-ecr';
import { describe, expect, it } from 'vitest';
import { RestoreTarget } from '../schema/contract.ts';
import { targetEcr } from '../core/registry/target-account.ts';
import { useMoto } from './harness/services.ts';

const TARGET_ROLE = 'arn:aws:iam::210987654321:role/ecr-backup-restore-target';
useMoto({ awsEnv: true });

async function repositoriesIn(account: string | undefined): Promise<string[]> {
  let client = new ECRClient({ region: 'us-east-1' });
  if (account) {
    const assumed = await new STSClient({ region: 'us-east-1' }).send(
      new AssumeRoleCommand({ RoleArn: `arn:aws:iam::${account}:role/observer`, RoleSessionName: 'observer' }),
    );
    const c = assumed.Credentials!;
    client = new ECRClient({
      region: 'us-east-1',
      credentials: { accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken! },
    });
  }
  return ((await client.send(new DescribeRepositoriesCommand({}))).repositories ?? []).map((r) => r.repositoryName!);
}

describe('restore into another account (moto STS and ECR)', () => {
  it("creates the repository in the role's account, with the role's credentials, not the task role's", async () => {
    const target = RestoreTarget.parse({ roleArn: TARGET_ROLE, repositoryPrefix: 'dr/' });
    const ecr = targetEcr(target, 'us-east-1', 'run-1');
    expect(ecr.registryId).toBe('210987654321');
    await ecr.client!.send(new CreateRepositoryCommand({ repositoryName: 'dr/team/app' }));
    expect(await repositoriesIn('210987654321')).toEqual(['dr/team/app']);
    expect(await repositoriesIn(undefined)).toEqual([]);
  });

  it("without roleArn keeps the task role's credentials (and an explicit accountId as registry)", () => {
    expect(targetEcr(RestoreTarget.parse({ accountId: '111122223333' }), 'us-east-1', 'run-2')).toEqual({ registryId: '111122223333' });
    expect(targetEcr(undefined, 'us-east-1', 'run-2')).toEqual({});
  });

  it('refuses a roleArn that is not a role ARN, or whose account differs from accountId, naming the field', () => {
    expect(RestoreTarget.safeParse({ roleArn: 'arn:aws:iam::210987654321:user/x' }).error?.issues[0]).toMatchObject({ path: ['roleArn'] });
    expect(RestoreTarget.safeParse({ roleArn: TARGET_ROLE, accountId: '111122223333' }).error?.issues[0]).toMatchObject({
      path: ['accountId'],
      message: 'accountId differs from the account of roleArn',
    });
  });
});
