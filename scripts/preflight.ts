// `npm run deploy` runs this first: what `cdk deploy` needs on this machine, checked up front with
// a fix for each failure (a missing Docker engine otherwise surfaces half-way through the deploy).
import { execFileSync } from 'node:child_process';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { createApp } from '../infra/stack.ts';

const problems: string[] = [];
try {
  execFileSync('docker', ['info'], { stdio: 'ignore' });
} catch {
  problems.push(
    'Docker engine not reachable (`docker info` failed): the worker image is built locally from the Dockerfile. Start Docker (or Colima/Podman with a docker socket).',
  );
}
try {
  const identity = await new STSClient({}).send(new GetCallerIdentityCommand({}));
  console.log(
    `AWS account ${identity.Account} (${identity.Arn}), region ${process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? '(from your profile)'}`,
  );
} catch (error) {
  problems.push(
    `no usable AWS credentials (${(error as Error).name}): set AWS_PROFILE or run \`aws sso login\`; then \`npx cdk bootstrap aws://ACCOUNT/REGION\` once per account and region.`,
  );
}
try {
  const { stack } = createApp({ nag: false });
  console.log(`stack ${stack.stackName}: store ${stack.backup.prefix ? `prefix ${stack.backup.prefix}` : 'at the bucket root'}`);
} catch (error) {
  problems.push(`the configuration does not synthesize: ${(error as Error).message} (cdk.json "ecrBackup", or -c ecrBackup='{...}')`);
}
if (problems.length) {
  for (const p of problems) console.error(`✗ ${p}`);
  process.exit(1);
}
console.log('✓ preflight passed');
