// One Lambda function of the workflow: an ESM bundle of a handler in lambdas/ (the SDK bundled, so
// the versions tested are the ones that run), its own role and log group, and nothing else.
import { type Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { LOCK_FILE, REPO_ROOT } from './assets.ts';

export function createLambdaFunction(
  scope: Construct,
  id: string,
  entry: string,
  retention: logs.RetentionDays,
  timeout: Duration,
  environment: Record<string, string>,
): nodejs.NodejsFunction {
  const logGroup = new logs.LogGroup(scope, `${id}Logs`, { retention, removalPolicy: RemovalPolicy.DESTROY });
  const role = new iam.Role(scope, `${id}Role`, {
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    description: `ecr-backup ${id} Lambda`,
  });
  const fn = new nodejs.NodejsFunction(scope, id, {
    entry,
    handler: 'handler',
    runtime: lambda.Runtime.NODEJS_22_X,
    architecture: lambda.Architecture.ARM_64,
    memorySize: 1024,
    timeout,
    role,
    logGroup,
    environment,
    projectRoot: REPO_ROOT,
    depsLockFilePath: LOCK_FILE,
    bundling: {
      format: nodejs.OutputFormat.ESM,
      target: 'node22',
      mainFields: ['module', 'main'],
      // Some CommonJS dependencies call require() at run time; give the ESM bundle one.
      banner: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
      sourceMap: false,
      minify: false,
      forceDockerBundling: false,
      // The SDK versions tested are the ones that run: nothing is left to the runtime's copy.
      bundleAwsSDK: true,
      externalModules: [],
    },
  });
  // Logging: only its own log group (no AWSLambdaBasicExecutionRole managed policy).
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({ sid: 'Logs', actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [logGroup.logGroupArn] }),
  );
  return fn;
}
