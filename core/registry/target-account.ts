// Cross-account restore: the ECR client of a restore target that names `roleArn` works with that
// role's temporary credentials (STS AssumeRole by the restore task role, renewed by the SDK before
// they expire). The target account's registry is the role's account unless `accountId` says so.
import { ECRClient } from '@aws-sdk/client-ecr';
import { fromTemporaryCredentials } from '@aws-sdk/credential-providers';
import type { RestoreTarget } from '../../schema/contract.ts';

export interface TargetEcr {
  client?: ECRClient;
  registryId?: string;
}

export function targetEcr(target: RestoreTarget | undefined, region: string | undefined, runId: string): TargetEcr {
  if (!target?.roleArn) return target?.accountId ? { registryId: target.accountId } : {};
  const credentials = fromTemporaryCredentials({
    params: { RoleArn: target.roleArn, RoleSessionName: `ecr-backup-restore-${runId}`.slice(0, 64).replace(/[^\w+=,.@-]/g, '-') },
    clientConfig: region ? { region } : {},
  });
  return {
    client: new ECRClient({ ...(region ? { region } : {}), credentials }),
    registryId: target.accountId ?? target.roleArn.split(':')[4],
  };
}
